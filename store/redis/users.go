package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convergo/convergo/store"
)

// users implements store.Users over {users}:u (ID -> JSON) and {users}:i
// (identity or tel alias -> ID), both under one hash tag so that Create
// and Update are single scripts.
type users struct{ s *Store }

// Create inserts u with Version 1; store.ErrExists if its ID, identity or
// tel alias is taken.
func (v users) Create(ctx context.Context, u store.User) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("redis: create user: %w", err)
	}
	u.Version = 1
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	if u.Updated.IsZero() {
		u.Updated = u.Created
	}
	data, err := json.Marshal(u)
	if err != nil {
		return store.User{}, fmt.Errorf("redis: create user %s: %w", u.ID, err)
	}
	code, err := userCreate.Run(ctx, v.s.rdb, v.s.keys.users(), u.ID, u.Identity, u.Tel, data).Int()
	if err == nil && code != 0 {
		err = store.ErrExists
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis: create user %s: %w", u.ID, translate(err))
	}
	return u, nil
}

func (v users) get(ctx context.Context, id string) (store.User, error) {
	var u store.User
	raw, err := v.s.rdb.HGet(ctx, v.s.keys.users()[0], id).Result()
	if err != nil {
		return u, translate(err)
	}
	if err := json.Unmarshal([]byte(raw), &u); err != nil {
		return u, fmt.Errorf("decode user: %w", err)
	}
	return u, nil
}

// Get returns the user with this ID; store.ErrNotFound if none.
func (v users) Get(ctx context.Context, id string) (store.User, error) {
	u, err := v.get(ctx, id)
	if err != nil {
		return store.User{}, fmt.Errorf("redis: get user %s: %w", id, err)
	}
	return u, nil
}

// GetByIdentity resolves an identity or tel alias to its user.
func (v users) GetByIdentity(ctx context.Context, identity string) (store.User, error) {
	id, err := v.s.rdb.HGet(ctx, v.s.keys.users()[1], identity).Result()
	var u store.User
	if err == nil {
		u, err = v.get(ctx, id)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis: get user by identity %s: %w", identity, translate(err))
	}
	return u, nil
}

// Update replaces u if u.Version is the stored version (store.ErrConflict
// otherwise), keeping Created and setting Updated to now. The stored
// record is read first for Created; the script re-checks the version, so
// a concurrent update still yields ErrConflict.
func (v users) Update(ctx context.Context, u store.User) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("redis: update user: %w", err)
	}
	old, err := v.get(ctx, u.ID)
	if err == nil && old.Version != u.Version {
		err = store.ErrConflict
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis: update user %s: %w", u.ID, err)
	}
	u.Version = old.Version + 1
	u.Created = old.Created
	u.Updated = time.Now()
	data, err := json.Marshal(u)
	if err != nil {
		return store.User{}, fmt.Errorf("redis: update user %s: %w", u.ID, err)
	}
	code, err := userUpdate.Run(ctx, v.s.rdb, v.s.keys.users(), u.ID, u.Identity, u.Tel, data, old.Version).Int()
	if err == nil {
		switch code {
		case 0:
		case 1:
			err = store.ErrNotFound
		case 2:
			err = store.ErrConflict
		case 3:
			err = store.ErrExists
		default:
			err = fmt.Errorf("unexpected script reply %d", code)
		}
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis: update user %s: %w", u.ID, translate(err))
	}
	return u, nil
}

// List returns every user ordered by ID (byte order).
func (v users) List(ctx context.Context) ([]store.User, error) {
	vals, err := v.s.rdb.HVals(ctx, v.s.keys.users()[0]).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: list users: %w", translate(err))
	}
	out := make([]store.User, 0, len(vals))
	for _, raw := range vals {
		var u store.User
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			return nil, fmt.Errorf("redis: list users: decode: %w", err)
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b store.User) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
