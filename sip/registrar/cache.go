package registrar

import (
	"context"
	"sync"
	"time"

	"github.com/convergo/convergo/internal/evict"
	"github.com/convergo/convergo/store"
)

// Bounds of the Targets cache (Deps.SoleWriter).
const (
	targetCacheTTL = 10 * time.Second
	targetCacheMax = 50000
)

// cachedBindings is the binding store of a registrar that is its only
// writer (Deps.SoleWriter: the embedded store). Every INVITE looks up its
// callee's bindings, and reading and decoding them from the store was a
// tenth of the CPU at 2,500 calls/s; registrations change far less often.
// listCached answers Targets from memory; every write through this
// registrar clears the AOR it touched once the store has it, and expired
// bindings are left out at read time (the store also drops them silently).
// Entries live at most ttl; at most max AORs are held.
type cachedBindings struct {
	Bindings
	sweeper Sweeper
	ttl     time.Duration
	max     int

	mu  sync.Mutex
	gen uint64 // bumped by every write: a read racing one is not kept
	m   map[string]cachedList
}

type cachedList struct {
	bs    []store.Binding
	until time.Time
}

func newCachedBindings(b Bindings, sw Sweeper, ttl time.Duration, maxAORs int) *cachedBindings {
	return &cachedBindings{Bindings: b, sweeper: sw, ttl: ttl, max: maxAORs, m: make(map[string]cachedList)}
}

// listCached returns aor's live bindings at now. The slice and the
// bindings are shared: callers copy what they keep or change.
func (c *cachedBindings) listCached(ctx context.Context, aor string, now time.Time) ([]store.Binding, error) {
	c.mu.Lock()
	e, ok := c.m[aor]
	gen := c.gen
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		bs, err := c.Bindings.List(ctx, aor)
		if err != nil {
			return nil, err
		}
		e = cachedList{bs: bs, until: now.Add(c.ttl)}
		c.mu.Lock()
		if c.gen == gen {
			evict.MakeRoom(c.m, c.max, func(v cachedList) bool { return !now.Before(v.until) })
			c.m[aor] = e
		}
		c.mu.Unlock()
	}
	live := e.bs
	for i, b := range e.bs {
		if !now.Before(b.Expires) { // rare: copy out the live ones
			live = make([]store.Binding, 0, len(e.bs))
			live = append(live, e.bs[:i]...)
			for _, b := range e.bs[i:] {
				if now.Before(b.Expires) {
					live = append(live, b)
				}
			}
			break
		}
	}
	return live, nil
}

// forget drops aor after a write (or all AORs when aor is "").
func (c *cachedBindings) forget(aor string) {
	c.mu.Lock()
	c.gen++
	if aor == "" {
		clear(c.m)
	} else {
		delete(c.m, aor)
	}
	c.mu.Unlock()
}

// Put writes through and forgets b's AOR.
func (c *cachedBindings) Put(ctx context.Context, b store.Binding) error {
	err := c.Bindings.Put(ctx, b)
	c.forget(b.AOR)
	return err
}

// Delete writes through and forgets aor.
func (c *cachedBindings) Delete(ctx context.Context, aor, key string) error {
	err := c.Bindings.Delete(ctx, aor, key)
	c.forget(aor)
	return err
}

// Sweep removes expired bindings and forgets their AORs.
func (c *cachedBindings) Sweep(ctx context.Context, now time.Time) ([]store.Binding, error) {
	bs, err := c.sweeper.Sweep(ctx, now)
	for _, b := range bs {
		c.forget(b.AOR)
	}
	return bs, err
}
