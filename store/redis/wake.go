package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

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
				s.wait.Notify(user)
			}
		}
	}
}

// syncSubscriptions subscribes to the wake channels of users that gained
// waiters and unsubscribes from those that lost them. go-redis records a
// channel even when the command fails and resubscribes after reconnecting;
// Wait polls meanwhile, so failures only cost latency.
func (s *Store) syncSubscriptions(ctx context.Context, subscribed map[string]struct{}) {
	want := s.wait.Users()
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
