package store

import "errors"

var (
	// ErrNotFound is returned when the requested record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a write carries a stale version.
	ErrConflict = errors.New("store: version conflict")
	// ErrExists is returned when a create collides with an existing record
	// (same id, identity or alias).
	ErrExists = errors.New("store: already exists")
	// ErrInvalid is returned when a record fails the backend-independent
	// checks of its Validate method; nothing is written.
	ErrInvalid = errors.New("store: invalid record")
	// ErrCursorExpired is returned by EventLog.Read when the cursor points
	// before the oldest retained entry: the caller must resynchronise.
	ErrCursorExpired = errors.New("store: cursor expired")
	// ErrTokenReused is returned by Tokens.UseRefresh when a refresh token
	// that was already exchanged is presented again (a stolen-token signal).
	// The returned RefreshToken carries the family so the caller can revoke it.
	ErrTokenReused = errors.New("store: refresh token reused")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store: closed")
)
