package isc

import (
	"errors"

	"github.com/convergo/convergo/sip/sipmsg"
)

// ErrUntrustedIdentity is matched by the error the middleware returns for a
// request that carries P-Asserted-Identity from outside the trust domain.
var ErrUntrustedIdentity = errors.New("isc: P-Asserted-Identity from an untrusted source")

// StatusError is a failure that already knows its final response (see
// sipmsg.StatusError); the request guard answers with it.
type StatusError = sipmsg.StatusError
