package registrar

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/store"
)

// Target is one place to send a request for an AOR: one live binding.
type Target struct {
	AOR      string // canonical AOR
	Key      string // binding key
	Instance string // +sip.instance, empty when the device sent none
	// RequestURI is the Request-URI to use: the contact, or for a device
	// learned through the S-CSCF its pub-GRUU when known.
	RequestURI string
	// Route is the route set to preload, in order, each value in <>: the
	// owning node's flow URI (and the device's own Path) for a binding held
	// by another node, the S-CSCF for an IMS device, the device's Path
	// beyond this node for a local binding.
	Route []string
	// Destination is the "host:port" the device registered from, set for
	// bindings whose flow ends on this node: send there over Transport and
	// sipgo reuses that very connection (NAT).
	Destination string
	// Transport is lower case (udp, tcp, tls, ws, wss): the flow's for a
	// local binding, else the transport parameter of the first Route.
	// sipgo's SetTransport wants it upper case.
	Transport string
	Source    string            // SourceDirect or SourceISC
	ICID      string            // P-Charging-Vector icid-value to keep on the new leg (IMS)
	Params    map[string]string // Contact feature tags and q, as registered
}

// Targets returns one Target per live binding of aor, oldest first. aor is
// a SIP or tel URI (with or without <>); a gr parameter (RFC 5627 §6)
// restricts the result to that instance. Bindings whose flow on this node
// has closed are left out. An AOR that belongs to no account and has no
// binding is an error with SIPStatus 404; a known user with nothing
// registered gives an empty slice (answer 480).
func (r *Registrar) Targets(ctx context.Context, aor string) ([]Target, error) {
	canon, gr, err := r.resolve(ctx, aor)
	if err != nil {
		return nil, err
	}
	var bs []store.Binding
	if r.cache != nil {
		bs, err = r.cache.listCached(ctx, canon, r.now())
	} else {
		bs, err = r.bindings.List(ctx, canon)
	}
	if err != nil {
		return nil, internal(fmt.Errorf("registrar: list %s: %w", canon, err))
	}
	if len(bs) == 0 {
		if _, err := r.users.GetByIdentity(ctx, canon); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, notFound(canon)
			}
			return nil, internal(fmt.Errorf("registrar: look up %s: %w", canon, err))
		}
		return []Target{}, nil
	}
	_, node, _, _ := r.self()
	out := make([]Target, 0, len(bs))
	for _, b := range bs {
		if gr != "" && b.Instance != gr {
			continue
		}
		t := Target{AOR: b.AOR, Key: b.Key, Instance: b.Instance, RequestURI: b.Contact,
			Source: b.Source, Params: maps.Clone(b.Params)}
		switch {
		case b.Source == SourceISC:
			if g := b.Params["gruu"]; g != "" {
				t.RequestURI = g
			}
			t.ICID = b.Params["icid"]
			t.Route = clone(b.Path)
			t.Transport = routeTransport(t.Route)
		case b.Node == node && node != "":
			if !r.flowAlive(b.Transport, b.Received) {
				continue
			}
			if len(b.Path) > 1 {
				t.Route = clone(b.Path[1:])
			}
			t.Destination = b.Received
			t.Transport = b.Transport
		default:
			t.Route = clone(b.Path)
			t.Transport = routeTransport(t.Route)
		}
		out = append(out, t)
	}
	return out, nil
}

// resolve canonicalises aor and returns the gr instance it names, if any.
// A tel URI is resolved to the account's identity.
func (r *Registrar) resolve(ctx context.Context, aor string) (canon, gr string, err error) {
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(aor), "<"), ">")
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return "", "", badRequest("Invalid Target URI", err)
	}
	switch u.Scheme {
	case "sip", "sips":
		if g, ok := u.UriParams.Get("gr"); ok {
			gr = g
		}
		return isc.CanonicalAOR(u), gr, nil
	case "tel":
		tel := isc.CanonicalAOR(u)
		usr, err := r.users.GetByIdentity(ctx, tel)
		if errors.Is(err, store.ErrNotFound) {
			return "", "", notFound(tel)
		}
		if err != nil {
			return "", "", internal(fmt.Errorf("registrar: look up %s: %w", tel, err))
		}
		return canonicalAOR(usr.Identity), "", nil
	default:
		return "", "", badRequest("Invalid Target URI", fmt.Errorf("scheme %q", u.Scheme))
	}
}

// routeTransport returns the transport parameter of the first route, lower case.
func routeTransport(route []string) string {
	if len(route) == 0 {
		return ""
	}
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(route[0], &u, &params); err != nil {
		return ""
	}
	if t, ok := u.UriParams.Get("transport"); ok {
		return strings.ToLower(t)
	}
	return ""
}

func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}
