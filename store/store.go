package store

import (
	"context"
	"time"
)

// Store is one opened backend. It hands out the per-domain views; each view
// is safe for concurrent use. Run performs background housekeeping (token
// expiry) until ctx ends; Close releases the backend and is idempotent.
// Expired bindings are hidden from reads at once and swept by their owner,
// the registrar, through Bindings.Sweep, so that it can announce each removal.
type Store interface {
	Bindings() Bindings
	Events() EventLog
	Users() Users
	Tokens() Tokens
	// Contacts returns the address books; their change feed is Events().
	Contacts() Contacts
	// Ping reports whether the backend answers (used by /readyz).
	Ping(ctx context.Context) error
	// Run sweeps expired tokens every interval until ctx ends; it returns nil on ctx end.
	Run(ctx context.Context) error
	// Close releases files and connections. Safe to call more than once.
	Close() error
}

// Bindings stores registrations (RFC 3261 §10, RFC 5626/5627).
// A binding is identified by (AOR, Key); see BindingKey.
type Bindings interface {
	// Put inserts or refreshes a binding. A binding whose Expires is not in
	// the future removes the stored one with the same key (no error if absent).
	Put(ctx context.Context, b Binding) error
	// List returns the live bindings of aor, oldest first (by Created).
	// None is not an error: the result is empty.
	List(ctx context.Context, aor string) ([]Binding, error)
	// Delete removes one binding; ErrNotFound if it is absent or expired.
	Delete(ctx context.Context, aor, key string) error
	// DeleteAll removes every binding of aor and returns how many live ones it removed.
	DeleteAll(ctx context.Context, aor string) (int, error)
	// Sweep removes bindings that expired at or before now, in every AOR,
	// and returns them. Each expired binding is returned by exactly one
	// Sweep call, even with several nodes sweeping one Redis.
	Sweep(ctx context.Context, now time.Time) ([]Binding, error)
}

// EventLog is a per-user ordered log with a dense, monotonic sequence
// starting at 1. It backs /v1/sync and message history.
type EventLog interface {
	// Append adds e to user's log and returns its sequence number. If e.ID is
	// set and an entry with the same ID is still retained, nothing is written
	// and the original sequence is returned with created=false.
	Append(ctx context.Context, user string, e Event) (seq uint64, created bool, err error)
	// Read returns up to limit entries with Seq > after, in order. It returns
	// ErrCursorExpired when entries after the cursor were already trimmed.
	Read(ctx context.Context, user string, after uint64, limit int) ([]Event, error)
	// Last returns the highest sequence of user's log (0 when empty).
	Last(ctx context.Context, user string) (uint64, error)
	// Wait blocks until user's log holds an entry with Seq > after, or ctx
	// ends (then it returns ctx.Err()). It returns the last sequence.
	Wait(ctx context.Context, user string, after uint64) (uint64, error)
}

// Users stores accounts. ID is the login name and is immutable.
type Users interface {
	// Create inserts u with Version 1; ErrExists if the ID, identity or tel alias is taken.
	Create(ctx context.Context, u User) (User, error)
	// Get returns the user with this ID; ErrNotFound if none.
	Get(ctx context.Context, id string) (User, error)
	// GetByIdentity resolves a public identity (sip: URI or tel: alias) to its user.
	GetByIdentity(ctx context.Context, identity string) (User, error)
	// Update replaces u if u.Version equals the stored version (ErrConflict
	// otherwise) and returns it with Version incremented.
	Update(ctx context.Context, u User) (User, error)
	// List returns every user ordered by ID.
	List(ctx context.Context) ([]User, error)
}

// Tokens stores refresh-token state and the access-token revocation list,
// so that every node sees logouts and reuse detection.
type Tokens interface {
	// PutRefresh stores a new, unused refresh token.
	PutRefresh(ctx context.Context, t RefreshToken) error
	// UseRefresh atomically marks the token with this ID as used and returns
	// it. ErrNotFound if unknown, expired or its family is revoked;
	// ErrTokenReused (with the token, so the family is known) if it was used before.
	UseRefresh(ctx context.Context, id string, now time.Time) (RefreshToken, error)
	// RevokeFamily makes every token of the family unusable until expires.
	RevokeFamily(ctx context.Context, family string, expires time.Time) error
	// Revoke adds an access-token ID (jti) to the revocation list until expires.
	Revoke(ctx context.Context, jti string, expires time.Time) error
	// IsRevoked reports whether jti is on the revocation list.
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// Binding is one registered contact of an address of record.
type Binding struct {
	AOR       string            `json:"aor"`                 // canonical AOR, e.g. sip:alice@example.net
	Key       string            `json:"key"`                 // identity within the AOR, see BindingKey
	Contact   string            `json:"contact"`             // Contact URI as registered (no params)
	Instance  string            `json:"instance,omitempty"`  // +sip.instance URN without quotes and <>
	RegID     int               `json:"reg_id,omitempty"`    // RFC 5626 reg-id, 0 when absent
	CallID    string            `json:"call_id,omitempty"`   // Call-ID of the REGISTER
	CSeq      uint32            `json:"cseq,omitempty"`      // CSeq of the REGISTER
	Expires   time.Time         `json:"expires"`             // absolute expiry
	Created   time.Time         `json:"created"`             // first registration of this key
	Received  string            `json:"received,omitempty"`  // source ip:port the REGISTER came from
	Transport string            `json:"transport,omitempty"` // udp, tcp, tls, ws, wss
	Node      string            `json:"node,omitempty"`      // convergo node holding the flow
	Path      []string          `json:"path,omitempty"`      // Path header values, in order
	Params    map[string]string `json:"params,omitempty"`    // other Contact params (feature tags, q)
	Source    string            `json:"source,omitempty"`    // "direct" or "isc"
}

// BindingKey returns the key of a binding: the instance plus reg-id when an
// instance is present (RFC 5626 §6), else the contact URI (RFC 3261 §10.3).
func BindingKey(instance string, regID int, contact string) string {
	switch {
	case instance != "" && regID > 0:
		return instance + ";reg-id=" + itoa(regID)
	case instance != "":
		return instance
	default:
		return contact
	}
}

// Validate checks the fields every backend relies on.
func (b Binding) Validate() error {
	if b.AOR == "" || b.Key == "" || b.Contact == "" {
		return wrapInvalid("binding needs aor, key and contact")
	}
	if b.Expires.IsZero() {
		return wrapInvalid("binding needs expires")
	}
	return nil
}

// Event is one entry of a user's log. Data is opaque to the store.
type Event struct {
	Seq  uint64    `json:"seq"`            // assigned by Append
	ID   string    `json:"id,omitempty"`   // caller-given idempotency key (e.g. imdn.Message-ID)
	Type string    `json:"type"`           // e.g. "message.in", "contact.updated"
	Time time.Time `json:"time"`           // set by Append when zero
	Data []byte    `json:"data,omitempty"` // JSON payload owned by the producer
}

// User is an account.
type User struct {
	ID           string            `json:"id"`            // login name, immutable
	Identity     string            `json:"identity"`      // public identity, sip:alice@example.net
	Tel          string            `json:"tel,omitempty"` // optional tel: alias, tel:+15551230001
	DisplayName  string            `json:"display_name,omitempty"`
	PasswordHash string            `json:"password_hash"`        // PHC string (argon2id/bcrypt), never clear text
	DigestHA1    map[string]string `json:"digest_ha1,omitempty"` // SIP Digest HA1 per algorithm ("MD5", "SHA-256")
	Roles        []string          `json:"roles,omitempty"`
	Disabled     bool              `json:"disabled,omitempty"`
	Created      time.Time         `json:"created"`
	Updated      time.Time         `json:"updated"`
	Version      uint64            `json:"version"`
}

// Validate checks the fields every backend relies on.
func (u User) Validate() error {
	if u.ID == "" || u.Identity == "" {
		return wrapInvalid("user needs id and identity")
	}
	return nil
}

// RefreshToken is the server-side state of one refresh token. ID is a hash
// of the secret handed to the client, never the secret itself.
type RefreshToken struct {
	ID      string    `json:"id"`
	Family  string    `json:"family"` // all rotations of one login share it
	User    string    `json:"user"`
	Device  string    `json:"device,omitempty"` // sip.instance when known
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used,omitempty"`
}

// Validate checks the fields every backend relies on.
func (t RefreshToken) Validate() error {
	if t.ID == "" || t.Family == "" || t.User == "" || t.Expires.IsZero() {
		return wrapInvalid("refresh token needs id, family, user and expires")
	}
	return nil
}
