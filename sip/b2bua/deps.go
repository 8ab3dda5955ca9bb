package b2bua

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// Locator finds the devices of a callee. cmd/convergo adapts the
// registrar's Targets to it. Implementations are safe for concurrent use.
type Locator interface {
	// Targets returns one Target per live binding of aor (a canonical
	// "sip:user@domain"). An error that has a SIPStatus() (int, string)
	// method (e.g. 404 for an unknown user) is answered to the caller as
	// is; an empty slice means the user exists but nothing is registered,
	// answered with 480.
	Targets(ctx context.Context, aor string) ([]Target, error)
}

// Target is one device to fork to; the fields match registrar.Target. Every
// value is validated before it is written into a request (no CR, LF or
// other control characters, URIs must parse), because it comes from stored
// data.
type Target struct {
	AOR      string // the callee's AOR; for logs
	Key      string // binding key; for logs
	Instance string // +sip.instance of the device; for logs
	// RequestURI is the Request-URI of the B-leg INVITE (the contact, or a
	// pub-GRUU when routed through the S-CSCF).
	RequestURI string
	// Route is the preloaded route set, in order ("<sip:host;lr>" or bare
	// URIs); empty for a device reached directly.
	Route []string
	// Destination is the "host:port" to send to when Route is empty (the
	// received address of a NATed device, so the registered flow is reused).
	Destination string
	// Transport is udp, tcp, tls, ws or wss; empty means the transport
	// parameter of the first Route or of RequestURI, else udp.
	Transport string
	// Source is "direct" or "isc"; for logs.
	Source string
}

// RouteKind says what to do with an initial INVITE.
type RouteKind int

const (
	// Terminating forks the call to every Target of Route.CalleeAOR.
	Terminating RouteKind = iota
	// Continue sends one B-leg back to the S-CSCF: the Request-URI of the
	// incoming INVITE with Route set to Route.ReturnRoute, so the S-CSCF
	// resumes its iFC chain (TS 24.229 §5.7.5, routeing B2BUA).
	Continue
)

// Route is a Classifier's decision for one initial INVITE.
type Route struct {
	Kind RouteKind
	// CalleeAOR is the canonical AOR to fork to (Terminating).
	CalleeAOR string
	// ReturnRoute holds the Route values for the single Continue leg, in
	// order.
	ReturnRoute []string
	// AssertedIdentity holds the P-Asserted-Identity values to put on every
	// B-leg. Only a classifier that trusts the source sets it (RFC 3325);
	// the caller's own P-Asserted-Identity is never copied.
	AssertedIdentity []string
	// ChargingVector is the P-Charging-Vector value to carry on every B-leg
	// (RFC 7315, routeing B2BUA keeps the icid-value); trusted only.
	ChargingVector string
}

// Classifier decides how an initial INVITE is routed. cmd/convergo adapts
// isc.Info to it in IMS mode; Direct is the direct-mode default. An error
// with a SIPStatus() (int, string) method is answered as is.
type Classifier interface {
	Classify(ctx context.Context, req *sip.Request) (Route, error)
}

// Anchor is the media seam: every SDP that crosses the call goes through it
// so that the media relay (issue 5) can rewrite it to its own ports.
// leg names the answerer of the offer/answer exchange: "a" for the caller's
// leg, "b1".."bN" for the forks. So Offer(ctx, id, "b2", sdp) is the
// caller's offer on its way to fork b2 and Answer(ctx, id, "b2", sdp) is
// b2's answer on its way back; Offer(ctx, id, "a", sdp) is an offer from the
// connected B-leg (re-INVITE, UPDATE, delayed offer) on its way to the
// caller and Answer(ctx, id, "a", sdp) the caller's answer to it.
// callID is the call's internal id (stable for the call, unique per node).
// Implementations are safe for concurrent use and must not block for long:
// the call's owner waits for them.
type Anchor interface {
	Offer(ctx context.Context, callID, leg string, sdp []byte) ([]byte, error)
	Answer(ctx context.Context, callID, leg string, sdp []byte) ([]byte, error)
	// Release frees what leg holds; leg "" releases the whole call. Losing
	// forks are released as soon as the call is decided, the call when it
	// ends.
	Release(callID, leg string)
}

// PassThrough is the default Anchor: SDP crosses unchanged.
type PassThrough struct{}

// Offer returns sdp unchanged.
func (PassThrough) Offer(_ context.Context, _, _ string, sdp []byte) ([]byte, error) { return sdp, nil }

// Answer returns sdp unchanged.
func (PassThrough) Answer(_ context.Context, _, _ string, sdp []byte) ([]byte, error) {
	return sdp, nil
}

// Release does nothing.
func (PassThrough) Release(string, string) {}

var (
	_ Anchor     = PassThrough{}
	_ Classifier = Direct{}
)
