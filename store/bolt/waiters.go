package bolt

import "sync"

// waiters is the in-process wake-up for EventLog.Wait: one entry per user
// that has at least one waiter, removed when the last waiter leaves, so the
// map is bounded by the number of blocked Wait calls.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waitSet
}

type waitSet struct {
	n  int           // waiters of this user
	ch chan struct{} // closed (and replaced) by notify
}

func newWaiters() *waiters { return &waiters{m: make(map[string]*waitSet)} }

// join registers a waiter for user; the caller must call leave.
func (w *waiters) join(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.m[user]
	if ws == nil {
		ws = &waitSet{ch: make(chan struct{})}
		w.m[user] = ws
	}
	ws.n++
}

// leave undoes join.
func (w *waiters) leave(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws := w.m[user]; ws != nil {
		if ws.n--; ws.n == 0 {
			delete(w.m, user)
		}
	}
}

// wake returns the channel the next notify for user closes. Take it before
// checking the log, so an append between the check and the select is not
// missed. The caller must have joined.
func (w *waiters) wake(user string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[user].ch
}

// notify wakes every current waiter of user; it is cheap when there is none.
func (w *waiters) notify(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws := w.m[user]; ws != nil {
		close(ws.ch)
		ws.ch = make(chan struct{})
	}
}

// len reports how many users have waiters (tests check it drops to 0).
func (w *waiters) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
