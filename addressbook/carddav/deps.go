package carddav

import (
	"context"
	"net/netip"

	"github.com/convergo/convergo/store"
)

// Authenticator checks HTTP Basic credentials.
type Authenticator interface {
	// Authenticate returns the user the credentials belong to and whether
	// they may write the address book; an error for bad credentials.
	Authenticate(ctx context.Context, username, password string, src netip.Addr) (user string, canWrite bool, err error)
}

// Book reads a user's address book and its change feed.
type Book interface {
	// Snapshot returns every live contact and the sync token of that state.
	Snapshot(ctx context.Context, user string) ([]store.Contact, string, error)
	// Get returns one contact (tombstones included); store.ErrNotFound if unknown.
	Get(ctx context.Context, user, id string) (store.Contact, error)
	// Changes returns the contacts changed after token (tombstones for
	// deleted ones), at most limit (0: all), the token to continue from, and
	// whether more remain. ErrSyncToken when token cannot be continued.
	Changes(ctx context.Context, user, token string, limit int) (cs []store.Contact, next string, more bool, err error)
}

// Writer changes a user's address book with the REST API's rules.
type Writer interface {
	// Put stores c over version expect (0: create; ErrExists, ErrConflict
	// and ErrNotFound as store.Contacts.Apply) after validating it like an
	// import: fields that fail on their own are dropped.
	Put(ctx context.Context, user string, c store.Contact, expect uint64) (store.Contact, error)
	// Delete deletes version expect of contact id.
	Delete(ctx context.Context, user, id string, expect uint64) error
}
