package sip

import "errors"

var (
	// ErrDraining is returned by Handle after Run started.
	ErrDraining = errors.New("sip: handlers must be registered before Run")
)
