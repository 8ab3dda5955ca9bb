package sipmsg

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// StatusError is a failure that already knows its final SIP response. The
// request guard of convergo's sip package answers any error carrying
// SIPStatus (and SIPHeaders, for challenges or Retry-After) with it; the
// SIP packages alias this one type instead of each declaring their own.
type StatusError struct {
	Code    int
	Reason  string
	Headers []sip.Header
	Err     error
}

func (e *StatusError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("%d %s: %v", e.Code, e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// SIPStatus returns the code and reason phrase to answer with.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

// SIPHeaders returns extra headers for the response.
func (e *StatusError) SIPHeaders() []sip.Header { return e.Headers }
