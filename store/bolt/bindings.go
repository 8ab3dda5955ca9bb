package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/convergo/convergo/store"
)

// expiredCap bounds binding_expired: if nobody sweeps, the oldest
// unreported expired bindings are forgotten rather than kept forever.
const expiredCap = 10000

// bindings implements store.Bindings over the bindings, binding_expiry and
// binding_expired buckets.
type bindings struct{ s *Store }

type bindingBuckets struct {
	all, expiry, expired *bbolt.Bucket
}

func bindingBucketsOf(tx *bbolt.Tx) bindingBuckets {
	return bindingBuckets{
		all:     bucket(tx, bucketBindings),
		expiry:  bucket(tx, bucketBindingExpiry),
		expired: bucket(tx, bucketBindingExpired),
	}
}

// get returns the stored binding with its raw JSON, or ok=false.
func (bb bindingBuckets) get(aor, key string) (b store.Binding, raw []byte, ok bool, err error) {
	ab := bb.all.Bucket([]byte(aor))
	if ab == nil {
		return b, nil, false, nil
	}
	raw = ab.Get([]byte(key))
	if raw == nil {
		return b, nil, false, nil
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, nil, false, fmt.Errorf("decode binding %s %s: %w", aor, key, err)
	}
	return b, clone(raw), true, nil
}

// remove deletes a stored binding, its expiry entry and, when it was the
// last one, the AOR's bucket.
func (bb bindingBuckets) remove(b store.Binding) error {
	ab := bb.all.Bucket([]byte(b.AOR))
	if ab == nil {
		return nil
	}
	if err := ab.Delete([]byte(b.Key)); err != nil {
		return err
	}
	if err := bb.expiry.Delete(expiryKey(b.Expires, b.AOR, b.Key)); err != nil {
		return err
	}
	if k, _ := ab.Cursor().First(); k == nil {
		return bb.all.DeleteBucket([]byte(b.AOR))
	}
	return nil
}

// bury keeps an expired binding that is being replaced or removed for the
// next Sweep, so that every expiry is reported once.
func (bb bindingBuckets) bury(raw []byte) error {
	n, err := bb.expired.NextSequence()
	if err != nil {
		return err
	}
	if err := bb.expired.Put(be64(n), raw); err != nil {
		return err
	}
	if n > expiredCap {
		return bb.expired.Delete(be64(n - expiredCap))
	}
	return nil
}

// Put inserts or refreshes b; see store.Bindings.
func (v bindings) Put(ctx context.Context, b store.Binding) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("bolt: put binding: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	err := v.s.update(func(tx *bbolt.Tx) error {
		bb := bindingBucketsOf(tx)
		old, oldRaw, found, err := bb.get(b.AOR, b.Key)
		if err != nil {
			return err
		}
		live := found && old.Expires.After(now)
		if found && !live {
			// Expired but not swept yet: Sweep still reports it.
			if err := bb.bury(oldRaw); err != nil {
				return err
			}
		}
		if found {
			if err := bb.remove(old); err != nil {
				return err
			}
		}
		if !b.Expires.After(now) {
			return nil // RFC 3261 §10.2.2: Expires 0 removes the binding
		}
		switch {
		case live:
			b.Created = old.Created
		case b.Created.IsZero():
			b.Created = now
		}
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		ab, err := bb.all.CreateBucketIfNotExists([]byte(b.AOR))
		if err != nil {
			return err
		}
		if err := ab.Put([]byte(b.Key), data); err != nil {
			return err
		}
		return bb.expiry.Put(expiryKey(b.Expires, b.AOR, b.Key), []byte{})
	})
	if err != nil {
		return fmt.Errorf("bolt: put binding %s: %w", b.AOR, err)
	}
	return nil
}

// List returns the live bindings of aor, oldest first.
func (v bindings) List(ctx context.Context, aor string) ([]store.Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []store.Binding
	err := v.s.view(func(tx *bbolt.Tx) error {
		ab := bucket(tx, bucketBindings).Bucket([]byte(aor))
		if ab == nil {
			return nil
		}
		return ab.ForEach(func(k, raw []byte) error {
			var b store.Binding
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("decode binding %s: %w", k, err)
			}
			if b.Expires.After(now) {
				out = append(out, b)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list bindings %s: %w", aor, err)
	}
	slices.SortFunc(out, func(a, b store.Binding) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}

// Delete removes one live binding; store.ErrNotFound if absent or expired.
func (v bindings) Delete(ctx context.Context, aor, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	err := v.s.update(func(tx *bbolt.Tx) error {
		bb := bindingBucketsOf(tx)
		old, _, found, err := bb.get(aor, key)
		if err != nil {
			return err
		}
		if !found || !old.Expires.After(now) {
			return store.ErrNotFound // an expired one is left for Sweep
		}
		return bb.remove(old)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete binding %s: %w", aor, err)
	}
	return nil
}

// DeleteAll removes every binding of aor and returns how many were live.
func (v bindings) DeleteAll(ctx context.Context, aor string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now()
	var n int
	err := v.s.update(func(tx *bbolt.Tx) error {
		n = 0
		bb := bindingBucketsOf(tx)
		ab := bb.all.Bucket([]byte(aor))
		if ab == nil {
			return nil
		}
		err := ab.ForEach(func(k, raw []byte) error {
			var b store.Binding
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("decode binding %s: %w", k, err)
			}
			if b.Expires.After(now) {
				n++
			} else if err := bb.bury(clone(raw)); err != nil {
				return err
			}
			return bb.expiry.Delete(expiryKey(b.Expires, aor, b.Key))
		})
		if err != nil {
			return err
		}
		return bb.all.DeleteBucket([]byte(aor))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: delete bindings %s: %w", aor, err)
	}
	return n, nil
}

// Sweep removes and returns every binding that expired at or before now,
// plus the expired ones that were replaced or removed since the last sweep.
// bbolt serialises write transactions, so each is returned once.
func (v bindings) Sweep(ctx context.Context, now time.Time) ([]store.Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Binding
	err := v.s.update(func(tx *bbolt.Tx) error {
		out = nil
		bb := bindingBucketsOf(tx)
		limit := msKey(now)
		var due [][]byte
		c := bb.expiry.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= limit; k, _ = c.Next() {
			due = append(due, clone(k))
		}
		for _, k := range due {
			_, aor, key, err := parseExpiryKey(k)
			if err != nil {
				return err
			}
			b, _, found, err := bb.get(aor, key)
			if err != nil {
				return err
			}
			if !found || !slices.Equal(expiryKey(b.Expires, aor, key), k) {
				if err := bb.expiry.Delete(k); err != nil { // stale index entry
					return err
				}
				continue
			}
			if b.Expires.After(now) {
				continue // same millisecond, later nanosecond
			}
			if err := bb.remove(b); err != nil {
				return err
			}
			out = append(out, b)
		}
		var buried [][]byte
		err := bb.expired.ForEach(func(k, raw []byte) error {
			var b store.Binding
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("decode expired binding: %w", err)
			}
			out = append(out, b)
			buried = append(buried, clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range buried {
			if err := bb.expired.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: sweep bindings: %w", err)
	}
	return out, nil
}
