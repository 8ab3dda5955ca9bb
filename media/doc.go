// Package media is convergo's in-process media relay: it anchors the RTP
// of B2BUA calls on its own UDP ports so that handsets behind NAT, SRTP
// and plain-RTP devices, and forked calls all work through one address.
//
// What it owns:
//   - the UDP port range (even RTP port, RTP+1 for RTCP; released pairs
//     rest for a quarantine before reuse; exhaustion is a 503);
//   - SDP anchoring with pion/sdp (c=, o=, m= ports, a=rtcp, a=rtcp-mux,
//     a=crypto); codecs and every other line cross untouched; m-line count
//     and order and rejected streams (port 0) are kept (RFC 3264);
//   - SDES-SRTP termination per leg (RFC 4568, package sdes): every leg
//     and every fork gets its own keys, never copied from another leg;
//     RTP/SAVP<->RTP/AVP and SAVP<->SAVP bridging with pion/srtp;
//   - symmetric RTP latching (RFC 4961) within a window after the answer,
//     only from packets that parse (RTP) or authenticate (SRTP);
//   - RTCP relaying, on port+1, a=rtcp (RFC 3605) or muxed (RFC 5761);
//   - inactivity detection reported through OnInactive (cmd/convergo
//     hangs the call up with BYE on both legs);
//   - per-side counters: Prometheus totals (convergo_media_*) and one
//     "media call ended" log line per call with each side's packets,
//     bytes, drops, SRTP failures and latch events ("a_" is what the
//     caller sent, "b_" what the answering device sent).
//
// What it does not do: signalling (the b2bua calls Offer/Answer/Release,
// see sip/b2bua Anchor), transcoding, DTLS-SRTP, ICE, or relaying
// non-RTP m-lines (MSRP, T.38): those cross untouched, keeping the
// device's own address.
//
// Goroutines: Run owns them all. Each bound socket has one reader
// goroutine that decrypts, re-encrypts and sends to the other side; the
// SRTP contexts it uses are handed to it through an atomic pointer and
// never touched by another goroutine (pion contexts are not goroutine-safe).
// Release closes sockets, which ends their readers; when Run's ctx ends
// every call is released and Run waits for all readers.
package media
