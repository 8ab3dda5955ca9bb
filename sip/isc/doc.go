// Package isc is convergo's side of the IMS Service Control interface: it
// decides whether a SIP request comes from the operator's trust domain
// (S-CSCF, I-CSCF, other convergo nodes), enforces the header policy that
// follows from it, and classifies trusted requests into a session case.
//
// Trust is a property of the source address (Config.TrustedPeers, IPs or
// CIDRs; RFC 3325 §2.3 "Spec(T)"). sipgo v1.7.3 does not tell a handler which
// local listener a request arrived on, so a dedicated ISC listener cannot be
// told apart here: list the S-CSCF addresses instead.
//
// From an untrusted source a request carrying P-Asserted-Identity is
// refused with 403 (RFC 3325 §5: only a trusted node may assert an
// identity), and P-Served-User, P-Charging-Vector,
// P-Charging-Function-Addresses, P-Asserted-Service, P-Access-Network-Info
// and P-Visited-Network-ID are stripped (RFC 7315 §4, TS 24.229 §4.4). The
// handler behind the middleware gets a clone with those headers removed, so
// sipgo's transaction keeps the original untouched.
//
// For a trusted request the session case comes from P-Served-User sescase
// (RFC 5502, RFC 8498), else from an "orig" marker in the Route set (the
// orig URI parameter of TS 24.229 §5.4.3.1, or Kamailio's iscmark d=0), else
// it is terminating. The served user is the P-Served-User URI, else the
// first P-Asserted-Identity (originating) or the Request-URI (terminating).
// The Route entries after our own (the S-CSCF's return route carrying the
// iFC position, Kamailio iscmark or Sprout ODI) are kept in order so that a
// B2BUA leg can hand the request back to the S-CSCF.
//
// The package does not authenticate anyone, answer any request itself
// except the 403, own sockets, or start goroutines. It does not import
// convergo's sip package: the middleware signature uses only sipgo types.
package isc
