package b2bua

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// Direct is the direct-mode Classifier: the callee is the AOR of the
// Request-URI and every call terminates here (forks to its bindings). It
// asserts no identity and carries no charging data.
type Direct struct{}

// Classify returns Terminating to the canonical AOR of req's Request-URI;
// a URI that is not sip/sips gets 416, one without a user 404.
func (Direct) Classify(_ context.Context, req *sip.Request) (Route, error) {
	aor, err := CanonicalAOR(req.Recipient)
	if err != nil {
		return Route{}, err
	}
	return Route{Kind: Terminating, CalleeAOR: aor}, nil
}
