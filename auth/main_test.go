package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// The SIP tests run real sipgo UAs and the HTTP tests an httptest.Server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
