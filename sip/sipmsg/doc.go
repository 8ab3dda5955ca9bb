// Package sipmsg holds the small SIP message builders and parsers that
// several of convergo's SIP packages need and sipgo does not export:
// splitting comma-separated header values (RFC 3261 §7.3.1) and building a
// CANCEL for a sent INVITE (RFC 3261 §9.1). It owns no state and no
// goroutines, and imports none of convergo's packages.
package sipmsg
