package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/internal/evict"
	"github.com/convergo/convergo/store"
)

// peerRecorder is what callLog needs of the address book.
type peerRecorder interface {
	RecordPeerInteraction(ctx context.Context, user, peer string, at time.Time, n int) error
}

// identityResolver is what callLog needs of the accounts.
type identityResolver interface {
	GetByIdentity(ctx context.Context, identity string) (store.User, error)
}

// callLog feeds answered calls into both parties' address-book interactions
// (the "frequent" tag, ranking and suggestions). The B2BUA reports on the
// call's goroutine; a bounded queue keeps the store writes off it, and a
// report that finds the queue full is dropped and counted. Run owns the
// worker goroutines.
type callLog struct {
	users   *identityCache
	book    peerRecorder
	log     *zap.Logger
	q       chan [2]string
	dropped prometheus.Counter
}

func newCallLog(users identityResolver, book peerRecorder, log *zap.Logger, reg prometheus.Registerer) (*callLog, error) {
	l := &callLog{users: newIdentityCache(users, identityTTL, identityCacheMax, time.Now), book: book, log: log.Named("calllog"), q: make(chan [2]string, 4096),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_calllog_dropped_total",
			Help: "Answered calls not recorded as address-book interactions because the queue was full.",
		})}
	if err := reg.Register(l.dropped); err != nil {
		return nil, err
	}
	return l, nil
}

// answered is the B2BUA's AnsweredFunc: it never blocks.
func (l *callLog) answered(caller, callee string) {
	select {
	case l.q <- [2]string{caller, callee}:
	default:
		l.dropped.Inc()
	}
}

// recordConcurrency bounds the records in flight. The store groups
// concurrent writes into one transaction (bolt: one fsync per group), so a
// single writer would cap the call rate at the disk's sync rate.
const recordConcurrency = 64

// maxRound bounds the calls one round of Run takes from the queue.
const maxRound = 1024

// Run records queued calls until ctx ends. A round takes what the queue
// holds (up to maxRound calls), folds the calls between the same two
// parties into one record with a count, writes the records concurrently
// and waits for them: under load the queue fills meanwhile, so the rounds
// grow and the writes per call fall (the same pair calling repeatedly
// costs one write per round, not one per call). Run returns once the
// round in flight is done.
func (l *callLog) Run(ctx context.Context) error {
	sem := make(chan struct{}, recordConcurrency)
	round := make(map[[2]string]int)
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-l.q:
			round[p]++
		}
	fill:
		for n := 1; n < maxRound; n++ {
			select {
			case p := <-l.q:
				round[p]++
			default:
				break fill
			}
		}
		var wg sync.WaitGroup
		for p, n := range round {
			sem <- struct{}{} // a record ends (its store calls take ctx)
			wg.Go(func() {
				defer func() { <-sem }()
				l.record(ctx, p[0], p[1], n)
			})
		}
		wg.Wait()
		clear(round)
	}
}

// record adds n calls to the book of each party that is a convergo user.
func (l *callLog) record(ctx context.Context, caller, callee string, n int) {
	now := time.Now()
	for _, side := range [][2]string{{caller, callee}, {callee, caller}} {
		id, found, err := l.users.userID(ctx, side[0])
		if err == nil && !found {
			continue
		}
		if err == nil {
			err = l.book.RecordPeerInteraction(ctx, id, side[1], now, n)
		}
		if err != nil && ctx.Err() == nil {
			l.log.Warn("record call interaction", zap.String("aor", side[0]), zap.Error(err))
		}
	}
}

// The call log resolves both parties of every answered call; at thousands
// of calls/s reading and decoding two user records each was a few percent
// of the CPU. An identity's owner rarely changes, and a call credited to
// the previous owner for up to identityTTL is harmless.
const (
	identityTTL      = 30 * time.Second
	identityCacheMax = 10000
)

// identityCache remembers for ttl which user an identity belongs to, or
// that it belongs to none (a caller from outside). Errors are not cached.
// It holds at most max identities: when full, expired entries go, and if
// none had expired, all of them. Safe for concurrent use.
type identityCache struct {
	users identityResolver
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]identityEntry
}

type identityEntry struct {
	id    string // "" when the identity is nobody's
	until time.Time
}

func newIdentityCache(users identityResolver, ttl time.Duration, maxEntries int, now func() time.Time) *identityCache {
	return &identityCache{users: users, ttl: ttl, max: maxEntries, now: now, m: make(map[string]identityEntry)}
}

// userID returns the ID of the user owning identity; found is false (and
// err nil) when no user has it.
func (c *identityCache) userID(ctx context.Context, identity string) (id string, found bool, err error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[identity]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.id, e.id != "", nil
	}
	u, err := c.users.GetByIdentity(ctx, identity)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u.ID = ""
	case err != nil:
		return "", false, err
	}
	c.mu.Lock()
	evict.MakeRoom(c.m, c.max, func(v identityEntry) bool { return !now.Before(v.until) })
	c.m[identity] = identityEntry{id: u.ID, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return u.ID, u.ID != "", nil
}
