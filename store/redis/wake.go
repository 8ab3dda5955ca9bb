package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// waiters is the in-process side of EventLog.Wait: one entry per user with
// at least one local waiter, removed when the last one leaves, so the map is
// bounded by the number of blocked Wait calls.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waitSet
}

type waitSet struct {
	n  int           // waiters of this user
	ch chan struct{} // closed (and replaced) by notify
}

func newWaiters() *waiters { return &waiters{m: make(map[string]*waitSet)} }

// join registers a waiter for user and reports whether it is the first.
func (w *waiters) join(user string) (first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.m[user]
	if ws == nil {
		ws = &waitSet{ch: make(chan struct{})}
		w.m[user] = ws
	}
	ws.n++
	return ws.n == 1
}

// leave undoes join and reports whether it was the last waiter of user.
func (w *waiters) leave(user string) (last bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.m[user]
	if ws == nil {
		return false
	}
	if ws.n--; ws.n > 0 {
		return false
	}
	delete(w.m, user)
	return true
}

// wake returns the channel the next notify for user closes. Take it before
// checking the log, so an append between the check and the select is not
// missed. The caller must have joined.
func (w *waiters) wake(user string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[user].ch
}

// notify wakes every local waiter of user; it is cheap when there is none.
func (w *waiters) notify(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws := w.m[user]; ws != nil {
		close(ws.ch)
		ws.ch = make(chan struct{})
	}
}

// users returns the users that have waiters now.
func (w *waiters) users() map[string]struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]struct{}, len(w.m))
	for u := range w.m {
		out[u] = struct{}{}
	}
	return out
}

func (w *waiters) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// resubscribe asks the dispatch goroutine to bring the subscriptions in
// line with the waiter set; it never blocks.
func (s *Store) resubscribe() {
	select {
	case s.resub <- struct{}{}:
	default: // one pending request covers this one
	}
}

// dispatch is the Store's only goroutine (started by Open, ended by Close).
// It owns the subscription set: only it calls Subscribe and Unsubscribe, so
// the two can never be reordered, and it turns each message on a wake
// channel into a local notify.
func (s *Store) dispatch(ctx context.Context, msgs <-chan *goredis.Message) {
	defer close(s.loopDone)
	subscribed := make(map[string]struct{}) // users
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.resub:
			s.syncSubscriptions(ctx, subscribed)
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if user, ok := s.keys.userOf(m.Channel); ok {
				s.wait.notify(user)
			}
		}
	}
}

// syncSubscriptions subscribes to the wake channels of users that gained
// waiters and unsubscribes from those that lost them. go-redis records a
// channel even when the command fails and resubscribes after reconnecting;
// Wait polls meanwhile, so failures only cost latency.
func (s *Store) syncSubscriptions(ctx context.Context, subscribed map[string]struct{}) {
	want := s.wait.users()
	var add, drop []string
	for u := range want {
		if _, ok := subscribed[u]; !ok {
			add = append(add, s.keys.wake(u))
			subscribed[u] = struct{}{}
		}
	}
	for u := range subscribed {
		if _, ok := want[u]; !ok {
			drop = append(drop, s.keys.wake(u))
			delete(subscribed, u)
		}
	}
	if len(add) > 0 {
		if err := s.ps.Subscribe(ctx, add...); err != nil && ctx.Err() == nil {
			s.log.Debug("subscribe to wake channels failed", zap.Int("channels", len(add)), zap.Error(err))
		}
	}
	if len(drop) > 0 {
		if err := s.ps.Unsubscribe(ctx, drop...); err != nil && ctx.Err() == nil {
			s.log.Debug("unsubscribe from wake channels failed", zap.Int("channels", len(drop)), zap.Error(err))
		}
	}
}
