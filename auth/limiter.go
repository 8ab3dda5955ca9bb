package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// lru is a map with a size cap and per-entry expiry, swept lazily: every
// put drops expired entries from the least recently touched end, and
// evicts the oldest entry when full. Not safe for concurrent use; owners lock.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*list.Element
	order list.List // of *lruEntry; front = least recently touched
}

type lruEntry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
}

func newLRU[K comparable, V any](maxEntries int) *lru[K, V] {
	l := &lru[K, V]{max: maxEntries, items: make(map[K]*list.Element)}
	l.order.Init()
	return l
}

// get returns the live value of k; an expired entry is removed.
func (l *lru[K, V]) get(k K, now time.Time) (V, bool) {
	var zero V
	el, ok := l.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if !now.Before(e.expires) {
		l.order.Remove(el)
		delete(l.items, k)
		return zero, false
	}
	return e.val, true
}

// put stores v under k until expires and marks it most recently touched.
// It returns the live entry it had to evict to stay under the cap, if any.
func (l *lru[K, V]) put(k K, v V, expires, now time.Time) (evicted lruEntry[K, V], ok bool) {
	if el, found := l.items[k]; found {
		e := el.Value.(*lruEntry[K, V])
		e.val, e.expires = v, expires
		l.order.MoveToBack(el)
		return evicted, false
	}
	l.sweep(now)
	if l.order.Len() >= l.max {
		front := l.order.Front()
		e := front.Value.(*lruEntry[K, V])
		l.order.Remove(front)
		delete(l.items, e.key)
		evicted, ok = *e, true
	}
	l.items[k] = l.order.PushBack(&lruEntry[K, V]{key: k, val: v, expires: expires})
	return evicted, ok
}

func (l *lru[K, V]) delete(k K) {
	if el, ok := l.items[k]; ok {
		l.order.Remove(el)
		delete(l.items, k)
	}
}

// sweep removes expired entries from the front until it meets a live one.
// Entries are touched in roughly expiry order, so this keeps the map small
// without a goroutine; a live entry shields later expired ones only until
// it expires itself, and get never returns an expired value anyway.
func (l *lru[K, V]) sweep(now time.Time) {
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		e := el.Value.(*lruEntry[K, V])
		if now.Before(e.expires) {
			return
		}
		l.order.Remove(el)
		delete(l.items, e.key)
	}
}

func (l *lru[K, V]) len() int { return l.order.Len() }

// limiter counts authentication failures per key ("u:<user>",
// "a:<address>") in a fixed window; MaxFailures failures block the key for
// Block. Safe for concurrent use.
type limiter struct {
	cfg RateLimitConfig
	mu  sync.Mutex
	m   *lru[string, failState]
}

type failState struct {
	windowStart  time.Time
	fails        int
	blockedUntil time.Time
}

func newLimiter(cfg RateLimitConfig) *limiter {
	return &limiter{cfg: cfg, m: newLRU[string, failState](cfg.MaxKeys)}
}

// blocked returns how long key stays blocked (0: not blocked).
func (l *limiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m.get(key, now)
	if !ok || !now.Before(st.blockedUntil) {
		return 0
	}
	return st.blockedUntil.Sub(now)
}

// fail records one failure for each key and returns the longest block it
// caused (0 if none).
func (l *limiter) fail(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, key := range keys {
		st, _ := l.m.get(key, now)
		if !now.Before(st.windowStart.Add(l.cfg.Window)) {
			st.windowStart, st.fails = now, 0
		}
		st.fails++
		if st.fails >= l.cfg.MaxFailures {
			st.blockedUntil = now.Add(l.cfg.Block)
			st.windowStart, st.fails = st.blockedUntil, 0 // a fresh window after the block
			longest = max(longest, l.cfg.Block)
		}
		l.m.put(key, st, later(st.windowStart.Add(l.cfg.Window), st.blockedUntil), now)
	}
	return longest
}

// reset forgets key (after a successful login of that user).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m.delete(key)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func userKey(id string) string { return "u:" + id }

// addrKey keys an address: IPv4 as is, IPv6 by its /64, since one host
// usually owns a whole /64.
func addrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "a:" + p.String()
	}
	return "a:" + a.String()
}
