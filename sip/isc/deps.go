package isc

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// Handler is the shape of every convergo SIP handler (csip.Handler has the
// same underlying type, so values convert both ways without adapters).
// isc consumes nothing else: trust is decided from configuration alone.
type Handler = func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error
