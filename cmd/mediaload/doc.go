// Command mediaload is a loopback load tool for convergo's media relay. It
// sets up N calls through a running server over SIP/UDP, sends 20 ms-paced
// G.711 (PCMU, 172-byte RTP packets) both ways on every call, and reports
// the packets per second the relay forwarded, loss per direction, SRTP
// failures, and the server's CPU and RSS over the media phase.
//
// One process plays both ends of every call:
//   - the callee device: it REGISTERs -aor with Digest (-user/-password,
//     +sip.instance -instance) and answers each INVITE 200 OK with SDP,
//     then handles ACK and BYE;
//   - the caller: it INVITEs -aor from a trusted peer address (the server
//     must list it in isc.trusted_peers, so no Digest), ACKs, holds the call
//     for the measured window, then sends BYE and expects 200.
//
// With -srtp the caller offers RTP/SAVP AES_CM_128_HMAC_SHA1_80 with an SDES
// key (RFC 4568) per call, encrypts what it sends and decrypts with the key
// of the relay's answer. The callee answers in the profile it is offered:
// plain RTP/AVP when the server's media.srtp_policy is strip (the relay then
// bridges SRTP<->RTP, the case measured by make bench-media), RTP/SAVP with
// its own key otherwise.
//
// Cost of the tool itself: all callers share ONE UDP socket and all callees
// another; every SDP points at one of the two, and received packets are
// told apart by SSRC (the caller of call i sends SSRC baseA|i, its callee
// baseB|i). golang.org/x/net is not a dependency of convergo, so there is no
// sendmmsg/recvmmsg: packets go out with one WriteTo each and come in with
// one ReadFrom each. One sender goroutine wakes every millisecond and serves
// 1/20 of the calls, so the 20 ms packet times of the calls are spread
// evenly instead of arriving as one burst.
//
// Phases: register, set up calls at -rate (the caller's media starts on
// the 200, the callee's once its own 200 was ACKed and the caller has the
// 200, which proves the relay took the answer), measure a window of -duration once every call is
// up or failed, stop sending, drain for up to -drain, BYE every call at
// -rate, unregister. Loss is counted over the whole life of the calls
// (sent minus received after the drain); packets/s and server CPU over the
// window only.
//
// Server figures come from /proc/<-server-pid>/stat (utime+stime, USER_HZ
// taken as 100) and /proc/<pid>/status (VmRSS); kernel UDP drop counters
// from /proc/net/snmp are machine-wide. With -metrics the relay's own
// counters (convergo_media_*) are scraped before and after the window.
//
// Goroutines: runLoad owns them all and returns only after every one ended:
// two receivers (one per media socket, ended by closing the socket), the
// sender (ended by a channel), the SIP listener (ended by closing the user
// agent and the socket) and one goroutine per call (ended by its BYE, or
// by ctx). sipgo runs the handlers of incoming requests on its own
// goroutines; they end with their transactions. Each SRTP context is used
// by exactly one goroutine: send contexts by the sender, receive contexts
// by the receiver of that side; they are published before the call's
// sending flag (atomic) is set.
//
// Exit status: 0 when every call was set up and nothing was lost; 3 when
// the run completed but calls failed or packets were lost or failed SRTP
// authentication; 4 when nothing was lost but the tool offered less than
// 98% of the nominal packet rate (CPU starved: the target is not shown);
// 1 on errors (server unreachable, REGISTER refused); 2 on bad flags.
package main
