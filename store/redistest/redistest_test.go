package redistest

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartServer(t *testing.T) {
	addr := StartServer(t)
	if got, err := do(addr, "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	if got, err := do(addr, "CONFIG", "GET", "save"); err == nil {
		t.Logf("CONFIG GET save = %q", got)
	}
	if _, err := do(addr, "NOSUCHCOMMAND"); err == nil {
		t.Fatal("unknown command succeeded")
	}
}

func TestStartCluster(t *testing.T) {
	addrs := StartCluster(t, 3)
	if len(addrs) != 3 {
		t.Fatalf("got %d nodes, want 3", len(addrs))
	}
	for _, a := range addrs {
		info, err := do(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
			t.Fatalf("CLUSTER INFO on %s = %q, %v; want all slots assigned", a, info, err)
		}
	}
}

func TestStopped(t *testing.T) {
	var addr string
	t.Run("start", func(t *testing.T) { addr = StartServer(t) })
	if _, err := do(addr, "PING"); err == nil {
		t.Fatal("server still answers after its test's cleanup")
	}
}
