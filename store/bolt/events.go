package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/convergo/convergo/store"
)

// eventLog implements store.EventLog: events/<user> holds the entries keyed
// by big-endian seq, and its bucket sequence (NextSequence) is the dense
// counter, which survives trimming; event_ids/<user> maps idempotency IDs to
// seqs and is trimmed with the log.
type eventLog struct{ s *Store }

func checkEvent(user string, e store.Event) error {
	switch {
	case user == "":
		return invalid("event needs a user")
	case e.Type == "":
		return invalid("event needs a type")
	}
	return nil
}

// Append adds e to user's log; see store.EventLog.
func (v eventLog) Append(ctx context.Context, user string, e store.Event) (uint64, bool, error) {
	if err := checkEvent(user, e); err != nil {
		return 0, false, fmt.Errorf("bolt: append %s: %w", user, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var (
		seq     uint64
		created bool
	)
	err := v.s.update(func(tx *bbolt.Tx) error {
		seq, created = 0, false
		lb, err := bucket(tx, bucketEvents).CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		var ib *bbolt.Bucket
		if e.ID != "" {
			if ib, err = bucket(tx, bucketEventIDs).CreateBucketIfNotExists([]byte(user)); err != nil {
				return err
			}
			if old := ib.Get([]byte(e.ID)); old != nil {
				seq = binary.BigEndian.Uint64(old)
				return nil
			}
		}
		if seq, err = lb.NextSequence(); err != nil {
			return err
		}
		e.Seq = seq
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := lb.Put(be64(seq), data); err != nil {
			return err
		}
		if ib != nil {
			if err := ib.Put([]byte(e.ID), be64(seq)); err != nil {
				return err
			}
		}
		created = true
		return v.trim(tx, user, lb, seq)
	})
	if err != nil {
		return 0, false, fmt.Errorf("bolt: append %s: %w", user, err)
	}
	if created {
		v.s.wait.Notify(user)
	}
	return seq, created, nil
}

// trim drops the entries (and their IDs) that fall out of the newest MaxEvents.
func (v eventLog) trim(tx *bbolt.Tx, user string, lb *bbolt.Bucket, last uint64) error {
	keep := uint64(v.s.cfg.MaxEvents)
	if last <= keep {
		return nil
	}
	cut := last - keep
	type old struct {
		key []byte
		id  string
	}
	var drop []old
	c := lb.Cursor()
	for k, raw := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cut; k, raw = c.Next() {
		var e struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(k), err)
		}
		drop = append(drop, old{clone(k), e.ID})
	}
	ib := bucket(tx, bucketEventIDs).Bucket([]byte(user))
	for _, d := range drop {
		if err := lb.Delete(d.key); err != nil {
			return err
		}
		if d.id == "" || ib == nil {
			continue
		}
		if s := ib.Get([]byte(d.id)); s != nil && binary.BigEndian.Uint64(s) == binary.BigEndian.Uint64(d.key) {
			if err := ib.Delete([]byte(d.id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Read returns up to limit entries after the cursor (all retained ones when
// limit <= 0); store.ErrCursorExpired if some of them were trimmed.
func (v eventLog) Read(ctx context.Context, user string, after uint64, limit int) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Event
	err := v.s.view(func(tx *bbolt.Tx) error {
		lb := bucket(tx, bucketEvents).Bucket([]byte(user))
		if lb == nil || after >= lb.Sequence() {
			return nil
		}
		c := lb.Cursor()
		if k, _ := c.First(); k != nil && after+1 < binary.BigEndian.Uint64(k) {
			return store.ErrCursorExpired
		}
		for k, raw := c.Seek(be64(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, raw = c.Next() {
			var e store.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read %s after %d: %w", user, after, err)
	}
	return out, nil
}

// Last returns the highest sequence of user's log, 0 when empty.
func (v eventLog) Last(ctx context.Context, user string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var last uint64
	err := v.s.view(func(tx *bbolt.Tx) error {
		if lb := bucket(tx, bucketEvents).Bucket([]byte(user)); lb != nil {
			last = lb.Sequence()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: last %s: %w", user, err)
	}
	return last, nil
}

// Wait blocks until user's log goes past after, ctx ends (ctx.Err()) or
// the store is closed (store.ErrClosed). Only this process writes the file,
// so Append's in-process notification is complete; the log is re-checked
// after every wake-up.
func (v eventLog) Wait(ctx context.Context, user string, after uint64) (uint64, error) {
	v.s.wait.Join(user)
	defer v.s.wait.Leave(user)
	for {
		wake := v.s.wait.Wake(user)
		last, err := v.Last(ctx, user)
		if err != nil || last > after {
			return last, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return last, ctx.Err()
		case <-v.s.done:
			return last, store.ErrClosed
		}
	}
}
