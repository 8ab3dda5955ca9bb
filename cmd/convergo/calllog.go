package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// peerRecorder is what callLog needs of the address book.
type peerRecorder interface {
	RecordPeerInteraction(ctx context.Context, user, peer string, at time.Time) error
}

// identityResolver is what callLog needs of the accounts.
type identityResolver interface {
	GetByIdentity(ctx context.Context, identity string) (store.User, error)
}

// callLog feeds answered calls into both parties' address-book interactions
// (the "frequent" tag, ranking and suggestions). The B2BUA reports on the
// call's goroutine; a bounded queue keeps the store writes off it, and a
// report that finds the queue full is dropped and counted. Run owns the
// one worker goroutine.
type callLog struct {
	users   identityResolver
	book    peerRecorder
	log     *zap.Logger
	q       chan [2]string
	dropped prometheus.Counter
}

func newCallLog(users identityResolver, book peerRecorder, log *zap.Logger, reg prometheus.Registerer) (*callLog, error) {
	l := &callLog{users: users, book: book, log: log.Named("calllog"), q: make(chan [2]string, 4096),
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

// Run records queued calls until ctx ends, and returns once the records
// in flight are done.
func (l *callLog) Run(ctx context.Context) error {
	sem := make(chan struct{}, recordConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-l.q:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Go(func() {
				defer func() { <-sem }()
				l.record(ctx, p[0], p[1])
			})
		}
	}
}

// record adds the call to the book of each party that is a convergo user.
func (l *callLog) record(ctx context.Context, caller, callee string) {
	now := time.Now()
	for _, side := range [][2]string{{caller, callee}, {callee, caller}} {
		u, err := l.users.GetByIdentity(ctx, side[0])
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err == nil {
			err = l.book.RecordPeerInteraction(ctx, u.ID, side[1], now)
		}
		if err != nil && ctx.Err() == nil {
			l.log.Warn("record call interaction", zap.String("aor", side[0]), zap.Error(err))
		}
	}
}
