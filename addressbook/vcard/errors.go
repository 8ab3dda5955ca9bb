package vcard

import "errors"

// Errors of single cards, reported in Item.Err; the reader goes on.
var (
	// ErrMalformed: the card cannot be decoded (no END, a line without a
	// colon, an unknown VERSION, nothing usable in it).
	ErrMalformed = errors.New("vcard: malformed card")
	// ErrTooLarge: the card is longer than the reader's per-card limit.
	ErrTooLarge = errors.New("vcard: card too large")
)
