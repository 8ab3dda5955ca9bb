// Package sdes parses and formats SDP Security Descriptions (RFC 4568)
// a=crypto attribute values and maps their suite names to pion/srtp
// protection profiles (RFC 4568, RFC 6188, RFC 7714 names).
//
// It owns no goroutines and does no I/O besides reading crypto/rand when a
// key is generated. It does not choose which line to answer: callers pick
// the first offered line whose suite is known (offer order = preference).
package sdes
