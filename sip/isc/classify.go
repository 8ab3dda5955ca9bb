package isc

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/sip/sipmsg"
)

// Case is the IMS session case of a request (TS 24.229 §5.4.3, RFC 5502).
type Case int

// Session cases.
const (
	// Unknown: the request is not from the trust domain (direct mode); the
	// caller is whoever authenticated, the callee is the Request-URI.
	Unknown Case = iota
	// Originating: the S-CSCF runs the served user's originating iFCs.
	Originating
	// Terminating: the S-CSCF runs the served user's terminating iFCs.
	Terminating
)

// String returns "unknown", "originating" or "terminating".
func (c Case) String() string {
	switch c {
	case Originating:
		return "originating"
	case Terminating:
		return "terminating"
	default:
		return "unknown"
	}
}

// Info is what the middleware learned about a request. The zero value
// describes an untrusted (direct-mode) request.
type Info struct {
	// Trusted is true when the request came from the trust domain.
	Trusted bool
	// Case is the session case; Unknown unless Trusted.
	Case Case
	// ServedUser is the canonical AOR the AS acts for ("sip:user@host", or
	// "tel:+number"); empty unless Trusted.
	ServedUser string
	// Unregistered is true when the served user is not registered
	// (P-Served-User regstate=unreg, or Kamailio's iscmark d=2): a
	// terminating request for store-and-forward.
	Unregistered bool
	// ReturnRoute holds the Route values after our own entry, in order, as
	// received (e.g. "<sip:odi_x@scscf;lr;service=scscf>"). A B2BUA leg
	// that continues the session copies them so the S-CSCF resumes its
	// iFC chain.
	ReturnRoute []string
	// ICID is the icid-value of P-Charging-Vector (RFC 7315 §4.6); empty
	// unless Trusted.
	ICID string
	// ChargingVector is the whole P-Charging-Vector value; empty unless Trusted.
	ChargingVector string
	// AssertedIdentity holds the P-Asserted-Identity URIs in order (a SIP
	// and a tel URI are common); empty unless Trusted.
	AssertedIdentity []string
}

type ctxKey struct{}

// WithInfo returns a context carrying info.
func WithInfo(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// FromContext returns the Info the middleware attached, and whether there
// was one.
func FromContext(ctx context.Context) (Info, bool) {
	info, ok := ctx.Value(ctxKey{}).(Info)
	return info, ok
}

// classify builds the Info of a request from the trust domain.
func (t *Trust) classify(req *sip.Request) Info {
	info := Info{Trusted: true}
	if v := sipmsg.Header(req, "P-Charging-Vector"); v != nil {
		info.ChargingVector = v.Value()
		info.ICID = ICID(info.ChargingVector)
	}
	for _, v := range sipmsg.Values(sipmsg.Headers(req, "P-Asserted-Identity")) {
		if u, _, ok := parseNameAddr(v); ok {
			info.AssertedIdentity = append(info.AssertedIdentity, u.String())
		}
	}

	routes := sipmsg.Headers(req, "Route")
	own := t.ownRoute(routes)
	for _, h := range routes[own+1:] {
		info.ReturnRoute = append(info.ReturnRoute, h.Value())
	}

	// 1. P-Served-User (RFC 5502 §6, RFC 8498 §3).
	if v := sipmsg.Header(req, "P-Served-User"); v != nil {
		if u, params, ok := parseNameAddr(v.Value()); ok {
			info.ServedUser = CanonicalAOR(u)
			switch sescase, _ := params.Get("sescase"); {
			case strings.EqualFold(sescase, "orig"), params.Has("orig-cdiv"):
				info.Case = Originating
			case strings.EqualFold(sescase, "term"):
				info.Case = Terminating
			}
			if rs, _ := params.Get("regstate"); strings.EqualFold(rs, "unreg") {
				info.Unregistered = true
			}
		}
	}
	// 2. An orig marker in the Route set: the orig URI parameter on our
	// entry or on the return route (TS 24.229 §5.4.3.1; Sprout's ODI), or
	// Kamailio's iscmark direction d=0 (originating), 1, 2 (terminating,
	// 2 = unregistered).
	if info.Case == Unknown {
		info.Case = Terminating
		for _, h := range routes[max(own, 0):] {
			r, ok := h.(*sip.RouteHeader)
			if !ok {
				continue
			}
			if r.Address.UriParams.Has("orig") || strings.EqualFold(r.Address.User, "orig") {
				info.Case = Originating
				break
			}
			if strings.EqualFold(r.Address.User, "iscmark") {
				d, _ := r.Address.UriParams.Get("d")
				switch d {
				case "0":
					info.Case = Originating
				case "2":
					info.Unregistered = true
				}
				break
			}
		}
	}
	// 3. Served user fallbacks (RFC 5502 is optional in Kamailio).
	if info.ServedUser == "" {
		switch info.Case {
		case Originating:
			info.ServedUser = firstSIPIdentity(info.AssertedIdentity)
			if info.ServedUser == "" && req.From() != nil {
				info.ServedUser = CanonicalAOR(req.From().Address)
			}
		default:
			info.ServedUser = CanonicalAOR(req.Recipient)
		}
	}
	return info
}

// ownRoute returns the index of our own Route entry: the first matching
// ASURI, or 0 (the top) when no ASURI is configured; -1 when the request
// carries no Route or none matches.
func (t *Trust) ownRoute(routes []sip.Header) int {
	if len(routes) == 0 {
		return -1
	}
	if t.as == nil {
		return 0
	}
	for i, h := range routes {
		if r, ok := h.(*sip.RouteHeader); ok && sameTarget(*t.as, r.Address) {
			return i
		}
	}
	return -1
}

// sameTarget compares the parts of two SIP URIs that address a server:
// host (case-insensitive), port (5060/5061 when absent) and user.
func sameTarget(a, b sip.Uri) bool {
	return strings.EqualFold(a.Host, b.Host) && a.User == b.User && portOf(a) == portOf(b)
}

func portOf(u sip.Uri) int {
	if u.Port != 0 {
		return u.Port
	}
	if strings.EqualFold(u.Scheme, "sips") {
		return 5061
	}
	return 5060
}

// CanonicalAOR returns the address-of-record form of u: "sip:user@host"
// (sips folded to sip, host lower-cased, port and parameters dropped, RFC
// 3261 §10.3 step 5) or "tel:number" without parameters. Other schemes are
// returned as written.
func CanonicalAOR(u sip.Uri) string {
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips", "":
		if u.User == "" {
			return "sip:" + strings.ToLower(u.Host)
		}
		return "sip:" + u.User + "@" + strings.ToLower(u.Host)
	case "tel":
		num, _, _ := strings.Cut(u.Raw(), ";")
		return "tel:" + num
	default:
		return u.String()
	}
}

// ICID extracts icid-value from a P-Charging-Vector value (RFC 7315 §4.6),
// unquoting it.
func ICID(pcv string) string {
	for _, p := range strings.Split(pcv, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "icid-value") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

func firstSIPIdentity(ids []string) string {
	for _, id := range ids {
		var u sip.Uri
		if err := sip.ParseUri(id, &u); err == nil && (u.Scheme == "sip" || u.Scheme == "sips") {
			return CanonicalAOR(u)
		}
	}
	for _, id := range ids {
		var u sip.Uri
		if err := sip.ParseUri(id, &u); err == nil {
			return CanonicalAOR(u)
		}
	}
	return ""
}

// parseNameAddr parses `"name" <uri>;params` or `uri;params`.
func parseNameAddr(v string) (sip.Uri, sip.HeaderParams, bool) {
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(strings.TrimSpace(v), &u, &params); err != nil {
		return sip.Uri{}, nil, false
	}
	return u, params, true
}
