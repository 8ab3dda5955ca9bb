package registrar

import (
	"errors"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

var (
	// ErrUnknownUser is matched by the error Targets and the REGISTER
	// handler return for an AOR that belongs to no account (404).
	ErrUnknownUser = errors.New("registrar: unknown user")
	// ErrBadRequest is matched by every 400 the REGISTER handler returns.
	ErrBadRequest = errors.New("registrar: bad request")
	// ErrForbidden is matched by the 403 for a REGISTER of another user's AOR.
	ErrForbidden = errors.New("registrar: forbidden")
	// ErrFlowFailed is matched when a request for a flow cannot be sent
	// because the flow (or its binding) is gone (430, RFC 5626 §5.3).
	ErrFlowFailed = errors.New("registrar: flow failed")
)

// StatusError is a failure that knows its SIP response. convergo's request
// guard answers with SIPStatus and SIPHeaders.
type StatusError struct {
	Code    int
	Reason  string
	Headers []sip.Header
	Err     error
}

func (e *StatusError) Error() string {
	s := "registrar: " + strconv.Itoa(e.Code) + " " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// SIPStatus returns the code and reason phrase to answer with.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

// SIPHeaders returns extra headers for the response.
func (e *StatusError) SIPHeaders() []sip.Header { return e.Headers }

func badRequest(reason string, err error) *StatusError {
	if err == nil {
		err = ErrBadRequest
	} else {
		err = errors.Join(ErrBadRequest, err)
	}
	return &StatusError{Code: sip.StatusBadRequest, Reason: reason, Err: err}
}

func notFound(aor string) *StatusError {
	return &StatusError{Code: sip.StatusNotFound, Reason: "Not Found", Err: errors.Join(ErrUnknownUser, errors.New(aor))}
}

func internal(err error) *StatusError {
	return &StatusError{Code: sip.StatusInternalServerError, Reason: "Server Internal Error", Err: err}
}
