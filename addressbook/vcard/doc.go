// Package vcard converts address-book entries to and from vCard 3.0
// (RFC 2425/2426) and 4.0 (RFC 6350) on top of github.com/emersion/go-vcard,
// and reads whole .vcf files as a stream of cards.
//
// Reader splits its input into cards itself (unfolding lines, RFC 6350
// §3.2, and vCard 2.1 quoted-printable soft breaks) before go-vcard decodes
// each one, so a malformed or oversized card yields an Item with an error
// and reading resumes at the next BEGIN:VCARD: one bad card never costs the
// rest of the file. Values are cleaned on the way in: control characters
// are stripped (line breaks survive only in NOTE), because names and URIs
// end up in SIP headers.
//
// The package maps fields only; phone normalisation, validation and limits
// belong to the addressbook package. It holds no state and starts no
// goroutines; a Reader is not safe for concurrent use.
package vcard
