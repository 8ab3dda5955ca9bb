package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/internal/waitset"
)

// Top-level bucket names; see doc.go for what each holds.
const (
	bucketBindings       = "bindings"
	bucketBindingExpiry  = "binding_expiry"
	bucketBindingExpired = "binding_expired"
	bucketEvents         = "events"
	bucketEventIDs       = "event_ids"
	bucketUsers          = "users"
	bucketUserIndex      = "user_index"
	bucketRefresh        = "refresh"
	bucketFamilies       = "families"
	bucketRevoked        = "revoked"
	bucketTokenExpiry    = "token_expiry"
)

// Store is the bbolt backend. It implements store.Store; the views it hands
// out are safe for concurrent use. Create it with Open and release it with
// Close.
type Store struct {
	db   *bbolt.DB
	cfg  Config
	log  *zap.Logger
	wait *waitset.Set

	done      chan struct{} // closed by Close; wakes Wait and Run
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file cfg.Path, after
// applying defaults to zero fields. It fails after about a second, with an
// error saying so, when another process holds the file. log may be nil.
func Open(cfg Config, log *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bolt: config: %w", err)
	}
	cfg = cfg.WithDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", cfg.Path, err)
	}
	db, err := bbolt.Open(cfg.Path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: file is locked by another process (gave up after %v): %w",
			cfg.Path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", cfg.Path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [...]string{
			bucketBindings, bucketBindingExpiry, bucketBindingExpired, bucketEvents, bucketEventIDs,
			bucketUsers, bucketUserIndex, bucketRefresh, bucketFamilies, bucketRevoked, bucketTokenExpiry,
		} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", cfg.Path, err)
	}
	return &Store{
		db:   db,
		cfg:  cfg,
		log:  log.Named("store.bolt"),
		wait: waitset.New(),
		done: make(chan struct{}),
	}, nil
}

// Bindings returns the registration view.
func (s *Store) Bindings() store.Bindings { return bindings{s} }

// Events returns the per-user event log view.
func (s *Store) Events() store.EventLog { return eventLog{s} }

// Users returns the account view.
func (s *Store) Users() store.Users { return users{s} }

// Tokens returns the refresh-token and revocation view.
func (s *Store) Tokens() store.Tokens { return tokens{s} }

// Ping reports store.ErrClosed after Close and nil otherwise: an open bbolt
// file has nothing else that can stop answering.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return store.ErrClosed
	default:
	}
	return s.view(func(*bbolt.Tx) error { return nil })
}

// Run removes expired bindings, refresh tokens and revocations every
// SweepInterval on the caller's goroutine. It returns nil when ctx ends and
// store.ErrClosed if the store is closed first. Bindings swept here are
// dropped; a caller that must see them calls Bindings().Sweep itself.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return store.ErrClosed
		case now := <-tick.C:
			n, err := s.sweepTokens(now)
			if n > 0 {
				s.log.Debug("swept expired tokens", zap.Int("tokens", n))
			}
			switch {
			case errors.Is(err, store.ErrClosed):
				return err
			case err != nil && ctx.Err() == nil:
				s.log.Warn("sweep failed", zap.Error(err))
			}
		}
	}
}

// Close wakes every Wait with store.ErrClosed and closes the file. It is
// idempotent; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close %s: %w", s.cfg.Path, err)
		}
	})
	return s.closeErr
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.Update(fn))
}

// batch is update for writes that come in bursts from many goroutines:
// bbolt groups concurrent calls into one transaction (one fsync). fn must
// be idempotent: it runs again alone if the group's transaction fails.
func (s *Store) batch(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.Batch(fn))
}

func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.View(fn))
}

func closedErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

func bucket(tx *bbolt.Tx, name string) *bbolt.Bucket { return tx.Bucket([]byte(name)) }
