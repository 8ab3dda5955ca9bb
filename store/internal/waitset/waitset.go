// Package waitset is the in-process wake-up behind EventLog.Wait, shared by
// the store backends: one entry per user with at least one blocked waiter,
// removed when the last one leaves, so its size is bounded by the number of
// blocked Wait calls. It is safe for concurrent use and starts no goroutines.
package waitset

import "sync"

// Set tracks the waiters of each user.
type Set struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	n  int           // waiters of this user
	ch chan struct{} // closed (and replaced) by Notify
}

// New returns an empty set.
func New() *Set { return &Set{m: make(map[string]*entry)} }

// Join registers a waiter for user and reports whether it is the first.
// The caller must call Leave.
func (s *Set) Join(user string) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[user]
	if e == nil {
		e = &entry{ch: make(chan struct{})}
		s.m[user] = e
	}
	e.n++
	return e.n == 1
}

// Leave undoes Join and reports whether it was the last waiter of user.
func (s *Set) Leave(user string) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[user]
	if e == nil {
		return false
	}
	if e.n--; e.n > 0 {
		return false
	}
	delete(s.m, user)
	return true
}

// Wake returns the channel the next Notify for user closes. Take it before
// checking the log, so that an append between the check and the select is
// not missed. The caller must have joined.
func (s *Set) Wake(user string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[user].ch
}

// Notify wakes every current waiter of user; it is cheap when there is none.
func (s *Set) Notify(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[user]; e != nil {
		close(e.ch)
		e.ch = make(chan struct{})
	}
}

// Users returns the users that have waiters now.
func (s *Set) Users() map[string]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]struct{}, len(s.m))
	for u := range s.m {
		out[u] = struct{}{}
	}
	return out
}

// Len reports how many users have waiters.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
