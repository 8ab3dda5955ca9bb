// Package registrar is convergo's registrar and location service. It owns
// the REGISTER handler for both deployment modes and turns stored bindings
// into routing targets for call control and messaging.
//
// Direct mode (RFC 3261 §10.3, RFC 5626 outbound, RFC 5627 GRUU, RFC 3327
// Path): a REGISTER from an untrusted source is authenticated through the
// Authenticator of deps.go (Digest or Bearer, answered by the request guard
// when it fails); the user may register only its own AOR. Bindings are keyed
// by +sip.instance plus reg-id, else by Contact URI (store.BindingKey).
// Per-contact expires wins over the Expires header; below MinExpires gives
// 423 with Min-Expires, above MaxExpires is capped, a Bearer token caps it
// at the token's lifetime. Contact: * with Expires: 0 removes every direct
// binding of the AOR. A REGISTER without Contact fetches. The 200 lists
// every live binding with its remaining expiry, +sip.instance, reg-id and,
// when the UA sent Supported: gruu, its pub-gruu (AOR;gr=instance; no
// temp-gruu is issued). Every REGISTER is validated completely before
// anything is written, so a rejected one leaves no state behind.
//
// Out-of-order REGISTERs: for a binding with the same Call-ID whose stored
// CSeq is not lower than the request's, the whole request is refused with
// 400 "Replayed CSeq", as Flexisip does (Kamailio answers 400 too, with
// P-Registrar-Error: Invalid CSeq number). RFC 3261 §10.3 step 7 only says
// the request fails; a stale retransmission must not resurrect a binding.
//
// NAT and flows: each direct binding records the source address and
// transport of the REGISTER (Received, Transport) and is reached there, so
// sipgo reuses the very connection the device registered on (its
// connection pool is keyed by remote address). sipgo v1.7.3 exposes no
// connection-close hook, so a closed TCP/TLS/WS flow is detected by looking
// the address up in sipgo's pool: Targets leaves such bindings out at once,
// and Run removes them from the store (emitting Removed) every
// SweepInterval. A device that closes its connection between refreshes is
// therefore unreachable until it registers again, as it would be behind any
// NAT. UDP keep-alives (CRLF) are absorbed by sipgo.
//
// Several nodes sharing Redis: the node that accepts a REGISTER stores
// itself as the first Path hop (RFC 3327), a URI whose user part is a flow
// token naming the binding (AOR and key, base64url). Targets on another
// node returns that Path as Route; Intercept on the owning node recognises
// the token in the top Route, looks the binding up and proxies the request
// statefully over the flow (RFC 3261 §16: Via, Max-Forwards, Record-Route
// with the same token so in-dialog requests come back through it, responses
// relayed, CANCEL forwarded, 430 Flow Failed when the flow is gone, RFC
// 5626 §5.3). A request arriving over the flow itself is forwarded onward
// by its remaining Route or Request-URI. The token is derivable from AOR
// and instance, so only requests from the trust domain may use it toward a
// device (the other nodes, which must be listed in isc.trusted_peers);
// anyone else gets 403 rather than a way around call control.
//
// IMS mode: a REGISTER from a trusted peer (isc.Info.Trusted) whose From
// is not its To (the S-CSCF registering on behalf of the user) is a
// third-party REGISTER (TS 24.229 §5.4.1.7); a device that happens to sit
// in a trusted network still authenticates. It is answered 200 with the
// same expiry and the devices are learned from its message/sip bodies
// (single or multipart/mixed, the UE's REGISTER and/or the S-CSCF's 200).
// Learned bindings have Source "isc", Path = the S-CSCF URI (From/Contact of
// the third-party REGISTER) and Params "icid" (P-Charging-Vector) and "gruu"
// (pub-gruu); Expires: 0 removes the AOR's isc bindings. A third-party
// REGISTER with an unparsable message/sip body is answered 400 and teaches
// nothing (a trusted peer sending garbage is a configuration error worth
// surfacing, and the S-CSCF applies its default handling); parts of other
// types are ignored, and a body without message/sip parts teaches nothing.
//
// Events: Subscribe delivers Added, Refreshed and Removed synchronously on
// the goroutine that made the change (a REGISTER handler or Run); they are
// local to the node that made the change.
//
// Goroutines: the package starts none of its own outside Run, which the
// caller owns and which returns when its ctx ends; proxied transactions
// live on the handler goroutine of the request. Locks: subMu (subscribers),
// flowMu (tracked flows) and nodeMu (lazily computed node address) are
// never held together nor across I/O or callbacks.
package registrar
