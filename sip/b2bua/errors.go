package b2bua

import (
	"errors"

	"github.com/convergo/convergo/sip/sipmsg"
)

var (
	// ErrNotBound is returned by handlers before Bind: the Server does not
	// know which listeners to send from yet (answered 503).
	ErrNotBound = errors.New("b2bua: no listener bound")
	// ErrTooManyCalls is returned when Config.MaxCalls calls are held
	// (answered 503 with Retry-After).
	ErrTooManyCalls = errors.New("b2bua: call limit reached")
	// ErrShuttingDown is returned for new calls once Run's context ended
	// (answered 503 with Retry-After).
	ErrShuttingDown = errors.New("b2bua: shutting down")
	// ErrNoTargets is returned when the callee has no usable binding
	// (answered 480).
	ErrNoTargets = errors.New("b2bua: callee has no usable binding")
	// ErrUnknownDialog is returned for an in-dialog request that matches no
	// dialog (answered 481).
	ErrUnknownDialog = errors.New("b2bua: no such dialog")
	// ErrInvalidTarget wraps why a Target or Route value was refused.
	ErrInvalidTarget = errors.New("b2bua: invalid target")
	// ErrBadRequest wraps why an initial INVITE was refused (answered 4xx).
	ErrBadRequest = errors.New("b2bua: bad request")
	// errAnchor wraps a media Anchor failure (the fork counts as 500).
	errAnchor = errors.New("b2bua: media anchor failed")
	// errAbandoned ends a fork that never answered our CANCEL (RFC 3261
	// §9.1: give up 64·T1 after the CANCEL).
	errAbandoned = errors.New("b2bua: fork abandoned after cancel")
)

// StatusError is a failure that already knows its final response (see
// sipmsg.StatusError); the request guard answers with it.
type StatusError = sipmsg.StatusError

// statusCarrier is what csip's guard looks for; Locator and Classifier
// errors that implement it are passed through unchanged.
type statusCarrier interface{ SIPStatus() (int, string) }
