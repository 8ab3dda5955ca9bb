package registrar

import (
	"slices"
	"testing"
	"time"

	"github.com/convergo/convergo/auth"
)

// TestTargetsFollowEveryChangeWithTheCache: a node on its own store serves
// Targets from memory, and every registration change through it shows at
// once; a binding that expires drops out without any write.
func TestTargetsFollowEveryChangeWithTheCache(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{MinExpires: time.Second, SweepInterval: time.Hour}})
	if n.reg.cache == nil {
		t.Fatal("a node on its own bolt file has no Targets cache")
	}
	aor := n.addUser("kate")
	targets := func(t *testing.T) []string {
		t.Helper()
		ts, err := n.reg.Targets(t.Context(), aor)
		if err != nil {
			t.Fatalf("Targets: %v", err)
		}
		var out []string
		for _, tg := range ts {
			out = append(out, tg.Instance)
		}
		slices.Sort(out)
		return out
	}
	reg := func(t *testing.T, d *ua, inst, expires string) {
		t.Helper()
		host := map[string]string{inst1: "10.255.0.21:5060", inst2: "10.255.0.22:5060"}[inst]
		if res := d.register(n.addr("udp"), aor, "kate", auth.DigestMD5,
			contactLine("sip:kate@"+host, inst, 0, ";expires="+expires)); res.StatusCode != 200 {
			t.Fatalf("REGISTER %s expires=%s: %d %s", inst, expires, res.StatusCode, res.Reason)
		}
	}
	d1, d2 := newUA(t, "UDP"), newUA(t, "UDP")

	if got := targets(t); len(got) != 0 {
		t.Fatalf("before any REGISTER: %v", got)
	}
	reg(t, d1, inst1, "3600")
	if got := targets(t); !slices.Equal(got, []string{inst1}) {
		t.Fatalf("after device 1 registered: %v", got)
	}
	reg(t, d2, inst2, "2") // cached list now read again: both
	if got := targets(t); !slices.Equal(got, []string{inst2, inst1}) {
		t.Fatalf("after device 2 registered: %v", got)
	}
	reg(t, d1, inst1, "0")
	if got := targets(t); !slices.Equal(got, []string{inst2}) {
		t.Fatalf("after device 1 unregistered: %v", got)
	}
	// Device 2's 2 s run out with no write at all (the sweep is hourly).
	time.Sleep(2100 * time.Millisecond)
	if got := targets(t); len(got) != 0 {
		t.Fatalf("after device 2 expired: %v", got)
	}
}
