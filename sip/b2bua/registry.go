package b2bua

import (
	"hash/maphash"
	"sync"
	"time"
)

// registry holds every call of a Server, bounded twice: add fails at max
// entries (the caller gets 503) and Run ends calls older than MaxAge. A
// call removes itself on every exit path (call.finish).
type registry struct {
	mu     sync.Mutex
	calls  map[*call]struct{}
	byID   map[string]*call
	max    int
	closed bool
	empty  chan struct{} // closed once closed and no call is left
}

func newRegistry(max int) *registry {
	return &registry{calls: make(map[*call]struct{}), byID: make(map[string]*call), max: max}
}

// add admits c, or fails with ErrTooManyCalls or ErrShuttingDown.
func (r *registry) add(c *call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrShuttingDown
	}
	if len(r.calls) >= r.max {
		return ErrTooManyCalls
	}
	r.calls[c] = struct{}{}
	r.byID[c.id] = c
	return nil
}

// remove forgets c; it reports whether c was held.
func (r *registry) remove(c *call) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.calls[c]; !ok {
		return false
	}
	delete(r.calls, c)
	delete(r.byID, c.id)
	if r.closed && len(r.calls) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
	return true
}

// get returns the call with internal id id, nil if none is held.
func (r *registry) get(id string) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// len returns the number of calls held.
func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// olderThan returns the calls created before t.
func (r *registry) olderThan(t time.Time) []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*call
	for c := range r.calls {
		if c.created.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// all returns every call held.
func (r *registry) all() []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*call, 0, len(r.calls))
	for c := range r.calls {
		out = append(out, c)
	}
	return out
}

// close refuses new calls from now on and returns a channel closed once no
// call is left.
func (r *registry) close() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	ch := make(chan struct{})
	if len(r.calls) == 0 {
		close(ch)
		return ch
	}
	r.empty = ch
	return ch
}

// dialogRef points from a dialog identifier to the leg that owns it.
type dialogRef struct {
	c *call
	l *leg
}

// dialogIndex maps Call-ID + our tag to legs, for in-dialog requests. It is
// sharded to keep lock contention low at high call rates. Entries live
// exactly as long as their call is in the registry (added by the call's
// creator, removed by call.finish), so the registry's count cap and age
// limit bound the index too.
type dialogIndex struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]dialogRef
	}
}

func newDialogIndex() *dialogIndex {
	x := &dialogIndex{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = make(map[string]dialogRef)
	}
	return x
}

// dialogKey identifies a dialog from our side: its Call-ID and our tag,
// which is the To tag of every request the peer sends us.
func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

func (x *dialogIndex) shard(key string) int {
	return int(maphash.String(x.seed, key) % uint64(len(x.shards)))
}

func (x *dialogIndex) put(key string, ref dialogRef) {
	sh := &x.shards[x.shard(key)]
	sh.mu.Lock()
	sh.m[key] = ref
	sh.mu.Unlock()
}

func (x *dialogIndex) get(key string) (dialogRef, bool) {
	sh := &x.shards[x.shard(key)]
	sh.mu.Lock()
	ref, ok := sh.m[key]
	sh.mu.Unlock()
	return ref, ok
}

func (x *dialogIndex) del(key string) {
	sh := &x.shards[x.shard(key)]
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
}

func (x *dialogIndex) len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
