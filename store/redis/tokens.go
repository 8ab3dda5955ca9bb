package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/convergo/convergo/store"
)

// tokens implements store.Tokens: refresh tokens and revoked families under
// the {tokens} tag, revoked access tokens as independent keys. All of them
// expire through Redis TTLs, so Run has nothing to sweep here.
type tokens struct{ s *Store }

// PutRefresh stores a new, unused refresh token until its expiry;
// store.ErrExists if the ID is known (a used token is never reset).
func (v tokens) PutRefresh(ctx context.Context, t store.RefreshToken) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("redis: put refresh token: %w", err)
	}
	t.Used = false
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("redis: put refresh token of %s: %w", t.User, err)
	}
	code, err := refreshPut.Run(ctx, v.s.rdb, []string{v.s.keys.refresh(t.ID)}, data, t.Family, t.Expires.UnixMilli()).Int()
	if err == nil && code != 0 {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("redis: put refresh token of %s: %w", t.User, translate(err))
	}
	return nil
}

// UseRefresh marks the token used and returns it; see store.Tokens. The
// family is read first to name the family key; the script then checks
// expiry, revocation and use atomically.
func (v tokens) UseRefresh(ctx context.Context, id string, now time.Time) (store.RefreshToken, error) {
	key := v.s.keys.refresh(id)
	family, err := v.s.rdb.HGet(ctx, key, "f").Result()
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("redis: use refresh token: %w", translate(err))
	}
	res, err := refreshUse.Run(ctx, v.s.rdb, []string{key, v.s.keys.family(family)}, now.UnixMilli(), family).Slice()
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("redis: use refresh token: %w", translate(err))
	}
	var code int64 = 1
	if len(res) == 2 {
		code, _ = res[0].(int64)
	}
	if code != 0 && code != 2 {
		return store.RefreshToken{}, fmt.Errorf("redis: use refresh token: %w", store.ErrNotFound)
	}
	raw, _ := res[1].(string)
	var t store.RefreshToken
	if err := json.Unmarshal([]byte(raw), &t); err != nil {
		return store.RefreshToken{}, fmt.Errorf("redis: use refresh token: decode: %w", err)
	}
	t.Used = true
	if code == 2 {
		return t, fmt.Errorf("redis: use refresh token of %s: %w", t.User, store.ErrTokenReused)
	}
	return t, nil
}

// revoke sets key until expires, never shortening an existing revocation;
// an expiry that is already over does nothing.
func (v tokens) revoke(ctx context.Context, key string, expires time.Time) error {
	ttl := time.Until(expires).Milliseconds()
	if ttl <= 0 {
		return nil
	}
	return translate(revokeUntil.Run(ctx, v.s.rdb, []string{key}, ttl).Err())
}

// RevokeFamily makes every token of family unusable until expires.
func (v tokens) RevokeFamily(ctx context.Context, family string, expires time.Time) error {
	if family == "" {
		return fmt.Errorf("redis: revoke family: %w: family must not be empty", store.ErrInvalid)
	}
	if err := v.revoke(ctx, v.s.keys.family(family), expires); err != nil {
		return fmt.Errorf("redis: revoke family %s: %w", family, err)
	}
	return nil
}

// Revoke puts an access-token ID on the revocation list until expires.
func (v tokens) Revoke(ctx context.Context, jti string, expires time.Time) error {
	if jti == "" {
		return fmt.Errorf("redis: revoke: %w: jti must not be empty", store.ErrInvalid)
	}
	if err := v.revoke(ctx, v.s.keys.revoked(jti), expires); err != nil {
		return fmt.Errorf("redis: revoke %s: %w", jti, err)
	}
	return nil
}

// IsRevoked reports whether jti is on the revocation list.
func (v tokens) IsRevoked(ctx context.Context, jti string) (bool, error) {
	n, err := v.s.rdb.Exists(ctx, v.s.keys.revoked(jti)).Result()
	if err != nil {
		return false, fmt.Errorf("redis: is revoked %s: %w", jti, translate(err))
	}
	return n == 1, nil
}
