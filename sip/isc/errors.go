package isc

import (
	"errors"
	"strconv"
)

// ErrUntrustedIdentity is matched by the error the middleware returns for a
// request that carries P-Asserted-Identity from outside the trust domain.
var ErrUntrustedIdentity = errors.New("isc: P-Asserted-Identity from an untrusted source")

// StatusError is a refusal that knows its SIP response; convergo's request
// guard answers with SIPStatus.
type StatusError struct {
	Code   int
	Reason string
	Err    error
}

func (e *StatusError) Error() string {
	return "isc: " + strconv.Itoa(e.Code) + " " + e.Reason + ": " + errString(e.Err)
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// SIPStatus returns the code and reason phrase to answer with.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
