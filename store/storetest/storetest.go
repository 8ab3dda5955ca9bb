package storetest

import (
	"testing"
	"time"

	"github.com/convergo/convergo/store"
)

// MaxEvents is the per-user log retention every store under test must be
// opened with; the trimming subtests append past it.
const MaxEvents = 50

// Opener opens a store for t; see the package documentation for the rules
// it must follow (empty backend on the first call for t, the same backend on
// later calls, MaxEvents, cleanup through t.Cleanup).
type Opener func(t *testing.T) store.Store

// Run runs every domain of the suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	t.Run("Bindings", func(t *testing.T) { RunBindings(t, open) })
	t.Run("Events", func(t *testing.T) { RunEvents(t, open) })
	t.Run("Users", func(t *testing.T) { RunUsers(t, open) })
	t.Run("Tokens", func(t *testing.T) { RunTokens(t, open) })
}

// waitFor polls cond every 20ms until it returns true or timeout passes
// (nats' checkFor): expiry is observed without fixed sleeps.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
