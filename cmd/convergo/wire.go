package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/auth"
	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/b2bua"
	"github.com/convergo/convergo/sip/isc"
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

// locator hands the registrar's targets to the B2BUA.
type locator struct{ r *registrar.Registrar }

func (l locator) Targets(ctx context.Context, aor string) ([]b2bua.Target, error) {
	ts, err := l.r.Targets(ctx, aor)
	if err != nil {
		return nil, err
	}
	out := make([]b2bua.Target, len(ts))
	for i, t := range ts {
		out[i] = b2bua.Target{AOR: t.AOR, Key: t.Key, Instance: t.Instance, RequestURI: t.RequestURI,
			Route: t.Route, Destination: t.Destination, Transport: t.Transport, Source: t.Source}
	}
	return out, nil
}

// classifier routes an initial INVITE by the ISC classification the trust
// middleware put in ctx: a trusted originating request continues towards
// the S-CSCF with the return route kept; a trusted terminating one forks to
// the served user's devices; anything else is direct mode (the R-URI's AOR).
// In direct mode a Request-URI addressed to this server itself (one of its
// listener hosts or its hostname, as in sip:bob@192.0.2.10) means a user of
// sip.domain, as a proxy's "myself" check does.
type classifier struct {
	domain string
	self   func() []string // hosts that name this server
}

func (c classifier) Classify(ctx context.Context, req *sip.Request) (b2bua.Route, error) {
	info, ok := isc.FromContext(ctx)
	if !ok || !info.Trusted {
		return c.direct(ctx, req)
	}
	r := b2bua.Route{AssertedIdentity: info.AssertedIdentity, ChargingVector: info.ChargingVector}
	switch {
	case info.Case == isc.Originating && len(info.ReturnRoute) > 0:
		r.Kind, r.ReturnRoute = b2bua.Continue, info.ReturnRoute
		return r, nil
	case info.Case == isc.Terminating && info.ServedUser != "":
		r.Kind, r.CalleeAOR = b2bua.Terminating, c.local(info.ServedUser)
		return r, nil
	default:
		d, err := c.direct(ctx, req)
		d.AssertedIdentity, d.ChargingVector = r.AssertedIdentity, r.ChargingVector
		return d, err
	}
}

func (c classifier) direct(ctx context.Context, req *sip.Request) (b2bua.Route, error) {
	r, err := b2bua.Direct{}.Classify(ctx, req)
	r.CalleeAOR = c.local(r.CalleeAOR)
	return r, err
}

// local rewrites an AOR whose host names this server to sip.domain.
func (c classifier) local(aor string) string {
	scheme, rest, _ := strings.Cut(aor, ":")
	user, host, found := strings.Cut(rest, "@")
	if c.domain == "" || !found || (scheme != "sip" && scheme != "sips") {
		return aor
	}
	for _, h := range c.self() {
		if strings.EqualFold(strings.Trim(host, "[]"), strings.Trim(h, "[]")) {
			return scheme + ":" + user + "@" + c.domain
		}
	}
	return aor
}

// selfHosts lists the hosts that name this SIP server. The list is built
// once the listeners are bound (they do not change afterwards): it is
// consulted for every INVITE.
func selfHosts(s *csip.Server) func() []string {
	var cached atomic.Pointer[[]string]
	return func() []string {
		if p := cached.Load(); p != nil {
			return *p
		}
		cfg := s.Config()
		hosts := []string{cfg.Hostname}
		bound := s.Addrs()
		for _, l := range bound {
			if h, _, err := net.SplitHostPort(l.Addr); err == nil {
				hosts = append(hosts, h)
			}
		}
		if len(bound) > 0 {
			cached.Store(&hosts)
		}
		return hosts
	}
}

// callerAuth challenges initial INVITEs from outside the trust domain (direct
// mode: handsets authenticate their calls as they do their REGISTERs; RFC
// 3261 §22). Trusted peers (the S-CSCF) have authenticated the caller
// already; in-dialog requests belong to a dialog that was authenticated.
func callerAuth(a *auth.SIPAuth, next csip.Handler) csip.Handler {
	return func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		if info, ok := isc.FromContext(ctx); ok && info.Trusted {
			return next(ctx, req, tx)
		}
		if to := req.To(); to != nil {
			if _, inDialog := to.Params.Get("tag"); inDialog {
				return next(ctx, req, tx)
			}
		}
		src, err := netip.ParseAddrPort(req.Source())
		if err != nil {
			return &csip.StatusError{Code: sip.StatusBadRequest, Reason: "Bad Request", Err: err}
		}
		if _, err := a.Authenticate(ctx, req, src); err != nil {
			return err
		}
		return next(ctx, req, tx)
	}
}

var (
	_ b2bua.Locator    = locator{}
	_ b2bua.Classifier = classifier{}
)
