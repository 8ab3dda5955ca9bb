package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/internal/waitset"
)

const (
	// pollInterval is how often Wait re-checks the log when no wake-up
	// arrives: Pub/Sub may lose messages, this bounds the delay.
	pollInterval = 500 * time.Millisecond
	// checkTimeout bounds each of Wait's reads, and with it how long Wait
	// may take to notice that its ctx ended.
	checkTimeout = 500 * time.Millisecond
	// indexShards spreads the binding sweep index over several slots.
	indexShards = 16
	// graveCap bounds the expired-but-unswept bindings kept per AOR.
	graveCap = 1000
	// sweepBatch is how many due AORs Sweep reads from an index shard at once.
	sweepBatch = 256
	// wakeBuffer is the size of the Go channel between the PubSub reader
	// and the dispatch goroutine.
	wakeBuffer = 1024
)

// Store is the Redis backend. It implements store.Store; the views it hands
// out are safe for concurrent use. Create it with Open and release it with
// Close.
type Store struct {
	rdb  goredis.UniversalClient
	cfg  Config
	log  *zap.Logger
	keys keys
	// grace is added to the TTL of binding keys so that a sweeper sees
	// expired bindings before Redis drops them.
	grace time.Duration
	poll  time.Duration

	wait      *waitset.Set
	ps        *goredis.PubSub
	resub     chan struct{} // asks the dispatch goroutine to update subscriptions
	stopLoop  context.CancelFunc
	loopDone  chan struct{}
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open connects with one UniversalClient chosen by cfg (single, Sentinel
// or Cluster), checks it answers PING within ctx, and starts the goroutine
// that dispatches wake-ups to local Wait calls (stopped by Close).
// Defaults are applied to zero fields. log may be nil.
func Open(ctx context.Context, cfg Config, log *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis: config: %w", err)
	}
	cfg = cfg.WithDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("redis: config: %w", err)
	}
	rdb := goredis.NewUniversalClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: connect %s: %w", cfg.where(), err)
	}
	// The dispatch goroutine lives as long as the Store, not as Open's ctx.
	loopCtx, stop := context.WithCancel(context.Background())
	s := &Store{
		rdb:      rdb,
		cfg:      cfg,
		log:      log.Named("store.redis"),
		keys:     keys{cfg.KeyPrefix},
		grace:    10 * cfg.SweepInterval,
		poll:     pollInterval,
		wait:     waitset.New(),
		ps:       rdb.Subscribe(ctx), // no channel yet: Wait adds them
		resub:    make(chan struct{}, 1),
		stopLoop: stop,
		loopDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.dispatch(loopCtx, s.ps.Channel(goredis.WithChannelSize(wakeBuffer)))
	return s, nil
}

// Bindings returns the registration view.
func (s *Store) Bindings() store.Bindings { return bindings{s} }

// Events returns the per-user event log view.
func (s *Store) Events() store.EventLog { return eventLog{s} }

// Users returns the account view.
func (s *Store) Users() store.Users { return users{s} }

// Tokens returns the refresh-token and revocation view.
func (s *Store) Tokens() store.Tokens { return tokens{s} }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping %s: %w", s.cfg.where(), translate(err))
	}
	return nil
}

// Run sweeps expired bindings every SweepInterval on the caller's
// goroutine; refresh tokens and revocations expire through Redis TTLs. It
// returns nil when ctx ends and store.ErrClosed if the store is closed
// first. Bindings swept here are dropped; a caller that must see them calls
// Bindings().Sweep itself. Several nodes may run it against one Redis.
func (s *Store) Run(ctx context.Context) error {
	// Tokens and revocations expire through Redis TTLs; bindings are swept
	// by their owner (the registrar) through Bindings.Sweep.
	select {
	case <-ctx.Done():
		return nil
	case <-s.done:
		return store.ErrClosed
	}
}

// Close stops the wake-up goroutine and waits for it, wakes every Wait
// with store.ErrClosed and closes the client. It is idempotent; later
// calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.stopLoop()
		<-s.loopDone
		var errs []error
		if err := s.ps.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("redis: close: %w", err)
		}
	})
	return s.closeErr
}

// keys builds key and channel names; see doc.go for the layout.
type keys struct{ prefix string }

func (k keys) binding(aor string) []string {
	tag := k.prefix + "{b:" + aor + "}"
	return []string{tag + ":h", tag + ":x", tag + ":g"}
}

func (k keys) bindingIndex(shard uint32) string {
	return k.prefix + "{bidx:" + strconv.FormatUint(uint64(shard), 10) + "}"
}

func (k keys) bindingIndexOf(aor string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(aor))
	return k.bindingIndex(h.Sum32() % indexShards)
}

func (k keys) events(user string) []string {
	tag := k.prefix + "{u:" + user + "}"
	return []string{tag + ":seq", tag + ":log", tag + ":ids"}
}

func (k keys) wakePrefix() string        { return k.prefix + "wake:" }
func (k keys) wake(user string) string   { return k.wakePrefix() + user }
func (k keys) users() []string           { return []string{k.prefix + "{users}:u", k.prefix + "{users}:i"} }
func (k keys) refresh(id string) string  { return k.prefix + "{tokens}:rt:" + id }
func (k keys) family(fam string) string  { return k.prefix + "{tokens}:rf:" + fam }
func (k keys) revoked(jti string) string { return k.prefix + "jti:" + jti }
func (k keys) userOf(channel string) (string, bool) {
	return strings.CutPrefix(channel, k.wakePrefix())
}
