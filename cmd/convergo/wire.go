package main

import (
	"context"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/auth"
	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/registrar"
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
