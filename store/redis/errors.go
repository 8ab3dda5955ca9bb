package redis

import (
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convergo/convergo/store"
)

// translate maps go-redis errors to the store sentinels.
func translate(err error) error {
	switch {
	case errors.Is(err, goredis.Nil):
		return store.ErrNotFound
	case errors.Is(err, goredis.ErrClosed):
		return store.ErrClosed
	}
	return err
}
