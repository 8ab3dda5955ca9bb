// Package b2bua is convergo's call control. It answers an incoming INVITE
// (the A-leg: 100 Trying at once), forks one B-leg per live binding of the
// callee (each with its own Call-ID, tags and CSeq space), bridges the first fork to answer
// and cancels the rest with Reason: SIP;cause=200;text="Call completed
// elsewhere" (RFC 3326). A late 2xx from a loser is ACKed, then BYEd. A 6xx
// ends the fork unless Config.DeclinePerDevice; when every fork fails the
// caller gets the best final response (RFC 3261 §16.7); no binding gives
// 480; the ring timeout gives 408 or the best failure held. A CANCEL from
// the caller cancels every fork (sipgo answers the 487 itself).
//
// Once answered, ACK, BYE, re-INVITE, UPDATE, INFO, NOTIFY and REFER cross
// between the caller and the winner, each leg with its own CSeq. We
// retransmit our 2xx over UDP until the ACK (RFC 3261 §13.3.1.4; sipgo's
// server transaction does not, per RFC 6026). A BYE from either side ends
// both; a request the other leg does not answer (timeout, 408, 481) ends
// the call. Session-Expires/Min-SE and the "timer" option tag cross
// unchanged (RFC 4028: each leg's refresher is the relayed one), so refresh
// re-INVITEs/UPDATEs are relayed like any other. 100rel and precondition
// never cross: B-legs do not offer 100rel; a device that still sends a
// reliable provisional gets its PRACK from us (RFC 3262) and the caller an
// unreliable 18x. Every SDP crossing goes through the Anchor (deps.go) so
// the media relay can rewrite it; the default passes it through. An Anchor
// error with a SIP status fails that fork with it (488 for SDP the relay
// cannot anchor, with a Warning; 503 with Retry-After when it is out of
// ports); when every fork fails so, the caller gets that status as is.
// Hangup ends an answered call from outside (the relay's inactivity
// timer) with a BYE on both legs.
//
// Identity: P-Asserted-Identity and P-Charging-Vector on B-legs come only
// from the Classifier (trusted sources); the caller's own PAI, User-Agent,
// Via, Record-Route and Contact never cross. Every value taken from a
// Target (stored binding data) is validated before it reaches a header,
// and a target that is this server's own address is dropped (it would
// loop).
//
// Ownership and concurrency: a Server owns its calls, held in a registry
// capped by Config.MaxCalls (503 beyond) and swept by Run for calls older
// than Config.MaxAge; a call leaves the registry and the dialog index on
// every exit path. Each call is an actor: its state is touched only by
// events run one at a time by at most one goroutine, started on demand
// (call.post), so fork responses, CANCEL, BYE and timers never race. Each
// client transaction gets a watcher goroutine until its final response
// (sipgo's response channel is unbuffered); the call waits for them before
// it finishes, and Run waits for every call when its context ends, after
// sending BYE/CANCEL, up to Config.ShutdownTimeout. No lock is held across
// I/O: the only locks are the actor queue's, the registry's and the dialog
// index shards', never nested.
//
// The package opens no sockets: it sends through sipgo clients built from
// the csip.Server's user agent (Bind), from the listener of each leg's
// transport. It does not import convergo's sip package; handlers have the
// csip.Handler shape.
package b2bua
