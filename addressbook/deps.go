package addressbook

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/convergo/convergo/store"
)

// Subject is the authenticated caller of a request.
type Subject struct {
	UserID string   // owner of the address book the request acts on
	Perms  []string // granted permissions, e.g. "addressbook:read"
}

// Authorizer authenticates API requests (JWT) and checks permissions.
// cmd/convergo adapts auth.Service to it.
type Authorizer interface {
	// Require serves h only to requests whose token grants perm, and
	// answers 401/403 itself otherwise.
	Require(perm string, h http.Handler) http.Handler
	// Subject returns the caller that Require authenticated.
	Subject(ctx context.Context) (Subject, bool)
}

// PasswordChecker verifies HTTP Basic credentials for CardDAV clients,
// which do not speak JWT. It returns the subject with its permissions, or
// an error for wrong credentials (including rate limiting by user and by
// the client address src).
type PasswordChecker interface {
	CheckPassword(ctx context.Context, username, password string, src netip.Addr) (Subject, error)
}

// UserDirectory tells whether a number or URI belongs to a convergo user
// (the rcs tag and suggestions). cmd/convergo adapts store.Users.GetByIdentity.
type UserDirectory interface {
	// LookupIdentity resolves a sip:, sips: or tel: URI; ok is false when no
	// user has it.
	LookupIdentity(ctx context.Context, uri string) (userID string, ok bool, err error)
}

// GroupPeers lists the convergo users who share group chats with a user
// (the "shares many groups" suggestions). It is optional: nil until the
// group-chat domain provides it.
type GroupPeers interface {
	// SharedGroups returns, per co-member identity (sip: or tel: URI), the
	// names of the groups shared with user.
	SharedGroups(ctx context.Context, user string) (map[string][]string, error)
}

// Events is the per-user event log, read as the contacts' change feed.
// store.EventLog satisfies it.
type Events interface {
	Read(ctx context.Context, user string, after uint64, limit int) ([]store.Event, error)
	Last(ctx context.Context, user string) (uint64, error)
}

var _ Events = store.EventLog(nil)
