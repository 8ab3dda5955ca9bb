package media

import (
	"errors"
	"fmt"
)

var (
	// ErrNoPorts reports that the port range is exhausted (503).
	ErrNoPorts = errors.New("media: no free relay ports")
	// ErrBadSDP reports an SDP we cannot anchor (488).
	ErrBadSDP = errors.New("media: SDP not acceptable")
	// ErrNotRunning reports a call to the relay before Run or after it ended (503).
	ErrNotRunning = errors.New("media: relay not running")
	// ErrTooManyCalls reports that max_calls is reached (503).
	ErrTooManyCalls = errors.New("media: too many anchored calls")
	// ErrUnknownLeg reports an Answer without a matching Offer (500).
	ErrUnknownLeg = errors.New("media: no offer for this leg")
)

// StatusError carries the SIP status the b2bua answers with; it satisfies
// the SIPStatus() convention of convergo's SIP guard.
type StatusError struct {
	// Code is the SIP status code (488, 503, 500).
	Code int
	// Reason is the reason phrase.
	Reason string
	// Err is the cause, wrapping one of the sentinels above.
	Err error
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %v", e.Code, e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// SIPStatus returns the SIP response code and reason phrase.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

func notAcceptable(format string, args ...any) error {
	return &StatusError{Code: 488, Reason: "Not Acceptable Here",
		Err: fmt.Errorf("%w: "+format, append([]any{ErrBadSDP}, args...)...)}
}

func unavailable(err error) error {
	return &StatusError{Code: 503, Reason: "Service Unavailable", Err: err}
}
