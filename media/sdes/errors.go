package sdes

import "errors"

var (
	// ErrSyntax reports an a=crypto value that does not follow RFC 4568.
	ErrSyntax = errors.New("sdes: malformed crypto attribute")
	// ErrSuite reports a crypto suite we do not support.
	ErrSuite = errors.New("sdes: unsupported crypto suite")
	// ErrKey reports key material of the wrong size or encoding.
	ErrKey = errors.New("sdes: bad key material")
)
