package main

import "errors"

var (
	// errUsage reports bad flags (exit status 2).
	errUsage = errors.New("usage")
	// errSDP reports an SDP body the tool cannot use.
	errSDP = errors.New("sdp")
	// errRegister reports that the callee device could not register.
	errRegister = errors.New("register")
	// errProc reports that /proc figures of a process could not be read.
	errProc = errors.New("proc")
)
