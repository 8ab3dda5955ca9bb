package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/convergo/convergo/store"
)

// Buckets of the contacts domain, created on first write (Open predates
// them):
//
//	contacts/<user>/c/<id>       contact JSON, tombstones included
//	contacts/<user>/n            live contacts, big-endian uint64
//	contact_interactions/<user>/<key>  interaction JSON
//
// Apply writes the contacts and appends their change events to
// events/<user> in the same transaction (appendTx), so a reader of the
// log never sees an event whose contact write is missing, or the reverse.
const (
	bucketContacts     = "contacts"
	bucketInteractions = "contact_interactions"
	contactsSub        = "c"
	contactsLive       = "n"
)

// contacts implements store.Contacts.
type contacts struct{ s *Store }

// Contacts returns the address-book view.
func (s *Store) Contacts() store.Contacts { return contacts{s} }

// userContacts returns user's contact bucket and its live counter (read
// only: nil when the user has none).
func userContacts(tx *bbolt.Tx, user string) *bbolt.Bucket {
	top := bucket(tx, bucketContacts)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(user))
}

func getContact(ub *bbolt.Bucket, id string) (store.Contact, bool, error) {
	if ub == nil {
		return store.Contact{}, false, nil
	}
	cb := ub.Bucket([]byte(contactsSub))
	if cb == nil {
		return store.Contact{}, false, nil
	}
	raw := cb.Get([]byte(id))
	if raw == nil {
		return store.Contact{}, false, nil
	}
	var c store.Contact
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, false, fmt.Errorf("decode contact %s: %w", id, err)
	}
	return c, true, nil
}

func liveCount(ub *bbolt.Bucket) uint64 {
	if ub == nil {
		return 0
	}
	if v := ub.Get([]byte(contactsLive)); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Get returns one contact, tombstones included; store.ErrNotFound if never written.
func (v contacts) Get(ctx context.Context, user, id string) (store.Contact, error) {
	if err := ctx.Err(); err != nil {
		return store.Contact{}, err
	}
	var (
		c  store.Contact
		ok bool
	)
	err := v.s.view(func(tx *bbolt.Tx) error {
		var err error
		c, ok, err = getContact(userContacts(tx, user), id)
		return err
	})
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Contact{}, fmt.Errorf("bolt: get contact %s/%s: %w", user, id, err)
	}
	return c, nil
}

// GetMany returns the contacts of ids that exist, in the order of ids.
func (v contacts) GetMany(ctx context.Context, user string, ids []string) ([]store.Contact, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Contact
	err := v.s.view(func(tx *bbolt.Tx) error {
		ub := userContacts(tx, user)
		for _, id := range ids {
			c, ok, err := getContact(ub, id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get contacts of %s: %w", user, err)
	}
	return out, nil
}

// List returns the live contacts and the event-log sequence, read in one
// transaction.
func (v contacts) List(ctx context.Context, user string) ([]store.Contact, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var (
		out []store.Contact
		seq uint64
	)
	err := v.s.view(func(tx *bbolt.Tx) error {
		out, seq = nil, 0
		if lb := bucket(tx, bucketEvents).Bucket([]byte(user)); lb != nil {
			seq = lb.Sequence()
		}
		ub := userContacts(tx, user)
		if ub == nil || ub.Bucket([]byte(contactsSub)) == nil {
			return nil
		}
		out = make([]store.Contact, 0, liveCount(ub))
		return ub.Bucket([]byte(contactsSub)).ForEach(func(k, raw []byte) error {
			var c store.Contact
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("decode contact %s: %w", k, err)
			}
			if !c.Deleted {
				out = append(out, c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: list contacts of %s: %w", user, err)
	}
	return out, seq, nil
}

// Count returns the number of live contacts.
func (v contacts) Count(ctx context.Context, user string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := v.s.view(func(tx *bbolt.Tx) error {
		n = liveCount(userContacts(tx, user))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: count contacts of %s: %w", user, err)
	}
	return int(n), nil
}

// Apply performs ops atomically with their change events; see store.Contacts.
func (v contacts) Apply(ctx context.Context, user string, ops []store.ContactOp, limit int) ([]store.Contact, error) {
	if user == "" {
		return nil, fmt.Errorf("bolt: apply contacts: %w", invalid("contacts need a user"))
	}
	for _, op := range ops {
		if err := op.Contact.Validate(); err != nil {
			return nil, fmt.Errorf("bolt: apply contacts of %s: %w", user, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Contact
	err := v.s.update(func(tx *bbolt.Tx) error {
		out = out[:0]
		top, err := tx.CreateBucketIfNotExists([]byte(bucketContacts))
		if err != nil {
			return err
		}
		ub, err := top.CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		cb, err := ub.CreateBucketIfNotExists([]byte(contactsSub))
		if err != nil {
			return err
		}
		live := int64(liveCount(ub))
		now := time.Now().UTC()
		for _, op := range ops {
			c, err := applyOne(ub, cb, op, now, &live)
			if err != nil {
				return err
			}
			ev, err := changeEvent(c, now)
			if err != nil {
				return err
			}
			if c.Seq, err = v.appendTx(tx, user, ev); err != nil {
				return err
			}
			raw, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := cb.Put([]byte(c.ID), raw); err != nil {
				return err
			}
			out = append(out, c)
		}
		if limit > 0 && live > int64(limit) && live > int64(liveCount(ub)) {
			return store.ErrContactLimit
		}
		return ub.Put([]byte(contactsLive), be64(uint64(live)))
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: apply contacts of %s: %w", user, err)
	}
	v.s.wait.Notify(user)
	return out, nil
}

// applyOne checks op against the stored contact and returns what to store;
// live is adjusted for creates and deletes.
func applyOne(ub, cb *bbolt.Bucket, op store.ContactOp, now time.Time, live *int64) (store.Contact, error) {
	id := op.Contact.ID
	cur, exists, err := getContact(ub, id)
	if err != nil {
		return store.Contact{}, err
	}
	isLive := exists && !cur.Deleted
	if op.Delete {
		switch {
		case !isLive:
			return store.Contact{}, fmt.Errorf("contact %s: %w", id, store.ErrNotFound)
		case cur.Version != op.Expect:
			return store.Contact{}, fmt.Errorf("contact %s at version %d, not %d: %w", id, cur.Version, op.Expect, store.ErrConflict)
		}
		*live--
		return store.Contact{ID: id, Version: cur.Version + 1, Deleted: true, MergedInto: op.Contact.MergedInto,
			Created: cur.Created, Updated: now}, nil
	}
	c := op.Contact
	c.Deleted, c.MergedInto, c.Updated = false, "", now
	switch {
	case op.Expect == 0 && isLive:
		return store.Contact{}, fmt.Errorf("contact %s: %w", id, store.ErrExists)
	case op.Expect == 0:
		c.Version, c.Created = cur.Version+1, now // after a tombstone, versions go on
		*live++
	case !isLive:
		return store.Contact{}, fmt.Errorf("contact %s: %w", id, store.ErrNotFound)
	case cur.Version != op.Expect:
		return store.Contact{}, fmt.Errorf("contact %s at version %d, not %d: %w", id, cur.Version, op.Expect, store.ErrConflict)
	default:
		c.Version, c.Created = cur.Version+1, cur.Created
	}
	return c, nil
}

// changeEvent is the change-feed entry of a stored contact version.
func changeEvent(c store.Contact, now time.Time) (store.Event, error) {
	data, err := json.Marshal(store.ContactChange{ID: c.ID, Version: c.Version, MergedInto: c.MergedInto})
	if err != nil {
		return store.Event{}, err
	}
	typ := store.EventContactUpsert
	if c.Deleted {
		typ = store.EventContactDelete
	}
	return store.Event{Type: typ, Time: now, Data: data}, nil
}

// appendTx appends e (no idempotency ID) to user's event log inside tx:
// the same layout and trimming as eventLog.Append, for writes that must
// commit together with their event. The caller notifies waiters after
// the commit.
func (v contacts) appendTx(tx *bbolt.Tx, user string, e store.Event) (uint64, error) {
	lb, err := bucket(tx, bucketEvents).CreateBucketIfNotExists([]byte(user))
	if err != nil {
		return 0, err
	}
	seq, err := lb.NextSequence()
	if err != nil {
		return 0, err
	}
	e.Seq = seq
	data, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	if err := lb.Put(be64(seq), data); err != nil {
		return 0, err
	}
	return seq, eventLog(v).trim(tx, user, lb, seq)
}

// RecordInteraction adds n interactions; see store.Contacts.
func (v contacts) RecordInteraction(ctx context.Context, user, key string, at time.Time, n int, halfLife time.Duration, maxKeys int) (store.Interaction, error) {
	if user == "" || key == "" {
		return store.Interaction{}, fmt.Errorf("bolt: record interaction: %w", invalid("interaction needs a user and a key"))
	}
	if n < 1 {
		return store.Interaction{}, fmt.Errorf("bolt: record interaction: %w", invalid("interaction count must be at least 1"))
	}
	if err := ctx.Err(); err != nil {
		return store.Interaction{}, err
	}
	var rec store.Interaction
	// Batch: concurrent records (one per answered call) share one
	// transaction and one fsync. fn may run twice; it sets rec afresh.
	err := v.s.batch(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte(bucketInteractions))
		if err != nil {
			return err
		}
		ib, err := top.CreateBucketIfNotExists([]byte(user))
		if err != nil {
			return err
		}
		rec = store.Interaction{Key: key}
		if raw := ib.Get([]byte(key)); raw != nil {
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("decode interaction %s: %w", key, err)
			}
		}
		rec = store.NextInteraction(rec, at, n, halfLife)
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := ib.Put([]byte(key), raw); err != nil {
			return err
		}
		if n := countKeys(ib, maxKeys+1); maxKeys > 0 && n > maxKeys {
			return evictOldest(ib, n-maxKeys, key)
		}
		return nil
	})
	if err != nil {
		return store.Interaction{}, fmt.Errorf("bolt: record interaction of %s: %w", user, err)
	}
	return rec, nil
}

// countKeys counts the keys of b, stopping at upTo.
func countKeys(b *bbolt.Bucket, upTo int) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil && n < upTo; k, _ = c.Next() {
		n++
	}
	return n
}

// evictOldest deletes the n records with the oldest Last (never keep).
func evictOldest(ib *bbolt.Bucket, n int, keep string) error {
	for ; n > 0; n-- {
		var (
			oldKey []byte
			oldAt  = time.Unix(math.MaxInt32, 0)
		)
		err := ib.ForEach(func(k, raw []byte) error {
			var r store.Interaction
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode interaction %s: %w", k, err)
			}
			if string(k) != keep && r.Last.Before(oldAt) {
				oldKey, oldAt = clone(k), r.Last
			}
			return nil
		})
		if err != nil {
			return err
		}
		if oldKey == nil {
			return nil
		}
		if err := ib.Delete(oldKey); err != nil {
			return err
		}
	}
	return nil
}

// Interactions returns every interaction record of user.
func (v contacts) Interactions(ctx context.Context, user string) ([]store.Interaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Interaction
	err := v.s.view(func(tx *bbolt.Tx) error {
		top := bucket(tx, bucketInteractions)
		if top == nil {
			return nil
		}
		ib := top.Bucket([]byte(user))
		if ib == nil {
			return nil
		}
		return ib.ForEach(func(k, raw []byte) error {
			var r store.Interaction
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode interaction %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: interactions of %s: %w", user, err)
	}
	return out, nil
}
