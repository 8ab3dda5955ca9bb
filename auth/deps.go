package auth

import (
	"context"
	"time"

	"github.com/convergo/convergo/store"
)

// Users is what auth reads about accounts. store.Users satisfies it.
type Users interface {
	// Get returns the user with this ID; store.ErrNotFound if none.
	Get(ctx context.Context, id string) (store.User, error)
}

// Tokens holds refresh-token state and the access-token revocation list.
// store.Tokens satisfies it.
type Tokens interface {
	PutRefresh(ctx context.Context, t store.RefreshToken) error
	UseRefresh(ctx context.Context, id string, now time.Time) (store.RefreshToken, error)
	RevokeFamily(ctx context.Context, family string, expires time.Time) error
	Revoke(ctx context.Context, jti string, expires time.Time) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

var (
	_ Users  = store.Users(nil)
	_ Tokens = store.Tokens(nil)
)
