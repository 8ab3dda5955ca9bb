package registrar

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/sip/sipmsg"
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

// StatusError is a failure that already knows its final response (see
// sipmsg.StatusError); the request guard answers with it.
type StatusError = sipmsg.StatusError

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
