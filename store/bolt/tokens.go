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

// Kinds of token_expiry entries.
const (
	kindRefresh byte = 'r'
	kindFamily  byte = 'f'
	kindJTI     byte = 'j'
)

// tokens implements store.Tokens over refresh, families, revoked and the
// token_expiry index that Run sweeps.
type tokens struct{ s *Store }

func kindBucket(kind byte) string {
	switch kind {
	case kindRefresh:
		return bucketRefresh
	case kindFamily:
		return bucketFamilies
	default:
		return bucketRevoked
	}
}

// PutRefresh stores a new, unused refresh token; store.ErrExists if the ID
// is known (so a used token can never be reset to unused).
func (v tokens) PutRefresh(ctx context.Context, t store.RefreshToken) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("bolt: put refresh token: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.Used = false
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("bolt: put refresh token: %w", err)
	}
	err = v.s.update(func(tx *bbolt.Tx) error {
		b := bucket(tx, bucketRefresh)
		if b.Get([]byte(t.ID)) != nil {
			return store.ErrExists
		}
		if err := b.Put([]byte(t.ID), data); err != nil {
			return err
		}
		return bucket(tx, bucketTokenExpiry).Put(expiryKey(t.Expires, string(kindRefresh), t.ID), []byte{})
	})
	if err != nil {
		return fmt.Errorf("bolt: put refresh token of %s: %w", t.User, err)
	}
	return nil
}

// UseRefresh marks the token used and returns it; see store.Tokens.
func (v tokens) UseRefresh(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.RefreshToken{}, err
	}
	var t store.RefreshToken
	err := v.s.update(func(tx *bbolt.Tx) error {
		t = store.RefreshToken{}
		b := bucket(tx, bucketRefresh)
		raw := b.Get([]byte(id))
		if raw == nil {
			return store.ErrNotFound
		}
		var stored store.RefreshToken
		if err := json.Unmarshal(raw, &stored); err != nil {
			return fmt.Errorf("decode refresh token: %w", err)
		}
		if !stored.Expires.After(now) {
			return store.ErrNotFound
		}
		if until, ok := revokedUntil(bucket(tx, bucketFamilies), stored.Family); ok && until.After(now) {
			return store.ErrNotFound
		}
		t = stored
		if stored.Used {
			return store.ErrTokenReused
		}
		t.Used = true
		data, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
	switch {
	case err == nil:
		return t, nil
	case t.ID != "": // ErrTokenReused carries the token
		return t, fmt.Errorf("bolt: use refresh token of %s: %w", t.User, err)
	default:
		return store.RefreshToken{}, fmt.Errorf("bolt: use refresh token: %w", err)
	}
}

func revokedUntil(b *bbolt.Bucket, name string) (time.Time, bool) {
	v := b.Get([]byte(name))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return msTime(binary.BigEndian.Uint64(v)), true
}

// revokeUntil records name in the kind's bucket until expires, never
// shortening an existing entry, and keeps token_expiry in step.
func (v tokens) revokeUntil(kind byte, name string, expires time.Time) error {
	if !expires.After(time.Now()) {
		return nil
	}
	return v.s.update(func(tx *bbolt.Tx) error {
		b, idx := bucket(tx, kindBucket(kind)), bucket(tx, bucketTokenExpiry)
		if until, ok := revokedUntil(b, name); ok {
			if !expires.After(until) {
				return nil
			}
			if err := idx.Delete(expiryKey(until, string(kind), name)); err != nil {
				return err
			}
		}
		if err := b.Put([]byte(name), be64(msKey(expires))); err != nil {
			return err
		}
		return idx.Put(expiryKey(expires, string(kind), name), []byte{})
	})
}

// RevokeFamily makes every token of family unusable until expires.
func (v tokens) RevokeFamily(ctx context.Context, family string, expires time.Time) error {
	if family == "" {
		return fmt.Errorf("bolt: revoke family: %w", invalid("family must not be empty"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := v.revokeUntil(kindFamily, family, expires); err != nil {
		return fmt.Errorf("bolt: revoke family %s: %w", family, err)
	}
	return nil
}

// Revoke puts an access-token ID on the revocation list until expires.
func (v tokens) Revoke(ctx context.Context, jti string, expires time.Time) error {
	if jti == "" {
		return fmt.Errorf("bolt: revoke: %w", invalid("jti must not be empty"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := v.revokeUntil(kindJTI, jti, expires); err != nil {
		return fmt.Errorf("bolt: revoke %s: %w", jti, err)
	}
	return nil
}

// IsRevoked reports whether jti is on the revocation list now.
func (v tokens) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	var revoked bool
	err := v.s.view(func(tx *bbolt.Tx) error {
		until, ok := revokedUntil(bucket(tx, bucketRevoked), jti)
		revoked = ok && until.After(now)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("bolt: is revoked %s: %w", jti, err)
	}
	return revoked, nil
}

// sweepTokens deletes refresh tokens and revocations that expired at or
// before now and returns how many.
func (s *Store) sweepTokens(now time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bbolt.Tx) error {
		n = 0
		idx := bucket(tx, bucketTokenExpiry)
		limit := msKey(now)
		var due [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= limit; k, _ = c.Next() {
			due = append(due, clone(k))
		}
		for _, k := range due {
			_, kind, name, err := parseExpiryKey(k)
			if err != nil {
				return err
			}
			// An index entry always matches the record's current expiry:
			// revokeUntil moves it when it extends one.
			if len(kind) == 1 {
				if err := bucket(tx, kindBucket(kind[0])).Delete([]byte(name)); err != nil {
					return err
				}
			}
			if err := idx.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep tokens: %w", err)
	}
	return n, nil
}
