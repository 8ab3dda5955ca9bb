package registrar

import (
	"context"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/store"
)

// Authenticator authenticates a REGISTER of a directly attached device.
// cmd/convergo adapts *auth.SIPAuth to it. A failure is returned to the
// request guard unchanged, so it should carry its response through
// SIPStatus() (int, string) and SIPHeaders() []sip.Header (the 401
// challenges).
type Authenticator interface {
	Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (Identity, error)
}

// Identity is who authenticated a REGISTER.
type Identity struct {
	UserID  string    // account ID
	AOR     string    // the account's public identity, e.g. sip:alice@example.net
	Device  string    // sip.instance named by a Bearer token; empty for Digest
	Expires time.Time // credential expiry (a Bearer token's exp); zero for Digest
}

// Bindings is the binding store. store.Bindings satisfies it.
type Bindings interface {
	Put(ctx context.Context, b store.Binding) error
	List(ctx context.Context, aor string) ([]store.Binding, error)
	Delete(ctx context.Context, aor, key string) error
}

// Sweeper removes expired bindings, each exactly once across nodes.
// store.Bindings satisfies it.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) ([]store.Binding, error)
}

// Users resolves an AOR (or tel alias) to its account. store.Users
// satisfies it.
type Users interface {
	GetByIdentity(ctx context.Context, identity string) (store.User, error)
}

var (
	_ Bindings = store.Bindings(nil)
	_ Sweeper  = store.Bindings(nil)
	_ Users    = store.Users(nil)
)
