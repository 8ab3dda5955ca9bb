package main

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/auth"
	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/registrar"
	"github.com/convergo/convergo/store"
)

// Adapters between packages that do not import each other (DESIGN.md:
// domain packages meet only through interfaces their consumer declares).

// sipAuth lets the registrar consume auth's SIP authenticator. Failures
// (*auth.SIPError) carry their SIP status and challenges and pass through.
type sipAuth struct{ a *auth.SIPAuth }

func (x sipAuth) Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (registrar.Identity, error) {
	p, err := x.a.Authenticate(ctx, req, src)
	if err != nil {
		return registrar.Identity{}, err
	}
	return registrar.Identity{UserID: p.User.ID, AOR: p.User.Identity, Device: p.Device, Expires: p.Expires}, nil
}

var _ registrar.Authenticator = sipAuth{}

// listeners reports the SIP server's bound listeners to the registrar.
func listeners(s *csip.Server) func() []registrar.Listener {
	return func() []registrar.Listener {
		var out []registrar.Listener
		for _, l := range s.Addrs() {
			out = append(out, registrar.Listener{Transport: l.Transport, Addr: l.Addr})
		}
		return out
	}
}

// abAuth lets the address book use auth's JWT middleware and claims.
type abAuth struct{ a *auth.Service }

func (x abAuth) Require(perm string, h http.Handler) http.Handler { return x.a.RequirePerm(perm, h) }

func (x abAuth) Subject(ctx context.Context) (addressbook.Subject, bool) {
	c, ok := auth.ClaimsFrom(ctx)
	if !ok {
		return addressbook.Subject{}, false
	}
	return addressbook.Subject{UserID: c.Subject, Perms: c.Perms}, true
}

// CheckPassword serves CardDAV Basic auth through auth's rate-limited check.
func (x abAuth) CheckPassword(ctx context.Context, username, password string, src netip.Addr) (addressbook.Subject, error) {
	u, err := x.a.CheckPassword(ctx, username, password, src)
	if err != nil {
		return addressbook.Subject{}, err
	}
	return addressbook.Subject{UserID: u.ID, Perms: x.a.Perms(u.Roles)}, nil
}

var (
	_ addressbook.Authorizer      = abAuth{}
	_ addressbook.PasswordChecker = abAuth{}
	_ addressbook.UserDirectory   = directory{}
)

// directory tells the address book which numbers and URIs are convergo users.
type directory struct{ users store.Users }

func (d directory) LookupIdentity(ctx context.Context, uri string) (string, bool, error) {
	u, err := d.users.GetByIdentity(ctx, uri)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return u.ID, true, nil
}
