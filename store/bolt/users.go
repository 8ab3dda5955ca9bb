package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/convergo/convergo/store"
)

// users implements store.Users: users/<id> holds the account and
// user_index maps each identity and tel alias (one namespace) to its ID.
type users struct{ s *Store }

func getUser(b *bbolt.Bucket, id string) (store.User, bool, error) {
	var u store.User
	raw := b.Get([]byte(id))
	if raw == nil {
		return u, false, nil
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return u, false, fmt.Errorf("decode user %s: %w", id, err)
	}
	return u, true, nil
}

// aliases returns the index keys of u: its identity and, if set, its tel alias.
func aliases(u store.User) []string {
	if u.Tel == "" || u.Tel == u.Identity {
		return []string{u.Identity}
	}
	return []string{u.Identity, u.Tel}
}

func putUser(all, index *bbolt.Bucket, u store.User) error {
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := all.Put([]byte(u.ID), data); err != nil {
		return err
	}
	for _, a := range aliases(u) {
		if err := index.Put([]byte(a), []byte(u.ID)); err != nil {
			return err
		}
	}
	return nil
}

// takenBy reports whether one of u's aliases belongs to another user.
func takenBy(index *bbolt.Bucket, u store.User) bool {
	for _, a := range aliases(u) {
		if owner := index.Get([]byte(a)); owner != nil && string(owner) != u.ID {
			return true
		}
	}
	return false
}

// Create inserts u with Version 1; store.ErrExists if its ID, identity or
// tel alias is taken.
func (v users) Create(ctx context.Context, u store.User) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("bolt: create user: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	u.Version = 1
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	if u.Updated.IsZero() {
		u.Updated = u.Created
	}
	err := v.s.update(func(tx *bbolt.Tx) error {
		all, index := bucket(tx, bucketUsers), bucket(tx, bucketUserIndex)
		if all.Get([]byte(u.ID)) != nil || takenBy(index, u) {
			return store.ErrExists
		}
		return putUser(all, index, u)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("bolt: create user %s: %w", u.ID, err)
	}
	return u, nil
}

// Get returns the user with this ID; store.ErrNotFound if none.
func (v users) Get(ctx context.Context, id string) (store.User, error) {
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	var u store.User
	err := v.s.view(func(tx *bbolt.Tx) error {
		var (
			found bool
			err   error
		)
		u, found, err = getUser(bucket(tx, bucketUsers), id)
		if err == nil && !found {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("bolt: get user %s: %w", id, err)
	}
	return u, nil
}

// GetByIdentity resolves an identity or tel alias to its user.
func (v users) GetByIdentity(ctx context.Context, identity string) (store.User, error) {
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	var u store.User
	err := v.s.view(func(tx *bbolt.Tx) error {
		id := bucket(tx, bucketUserIndex).Get([]byte(identity))
		if id == nil {
			return store.ErrNotFound
		}
		var (
			found bool
			err   error
		)
		u, found, err = getUser(bucket(tx, bucketUsers), string(id))
		if err == nil && !found {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("bolt: get user by identity %s: %w", identity, err)
	}
	return u, nil
}

// Update replaces u if u.Version is the stored version (store.ErrConflict
// otherwise), keeping Created and setting Updated to now.
func (v users) Update(ctx context.Context, u store.User) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("bolt: update user: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	err := v.s.update(func(tx *bbolt.Tx) error {
		all, index := bucket(tx, bucketUsers), bucket(tx, bucketUserIndex)
		old, found, err := getUser(all, u.ID)
		switch {
		case err != nil:
			return err
		case !found:
			return store.ErrNotFound
		case old.Version != u.Version:
			return store.ErrConflict
		case takenBy(index, u):
			return store.ErrExists
		}
		for _, a := range aliases(old) {
			if err := index.Delete([]byte(a)); err != nil {
				return err
			}
		}
		u.Version = old.Version + 1
		u.Created = old.Created
		u.Updated = time.Now()
		return putUser(all, index, u)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("bolt: update user %s: %w", u.ID, err)
	}
	return u, nil
}

// List returns every user ordered by ID (byte order).
func (v users) List(ctx context.Context) ([]store.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.User
	err := v.s.view(func(tx *bbolt.Tx) error {
		return bucket(tx, bucketUsers).ForEach(func(k, raw []byte) error {
			var u store.User
			if err := json.Unmarshal(raw, &u); err != nil {
				return fmt.Errorf("decode user %s: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list users: %w", err)
	}
	return out, nil
}
