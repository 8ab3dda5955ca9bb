package media

import (
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.PortMin != 30000 || d.PortMax != 39999 || d.Quarantine != 5*time.Second || d.LatchWindow != 5*time.Second ||
		d.Inactivity != 60*time.Second || d.SRTPPolicy != PolicyPass || d.Advertise != d.Address || d.Mode != ModeRelay || d.SocketBuffer != 512<<10 {
		t.Fatalf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{Mode: "proxy", Address: "nope", Advertise: "0.0.0.0", PortMin: 10, PortMax: 5, Quarantine: -1,
		LatchWindow: -1, Inactivity: -1, SRTPPolicy: "maybe", MaxCalls: -1, SocketBuffer: 10}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"mode:", "address:", "advertise:", "port_min:", "port_max:", "quarantine:",
		"latch_window:", "inactivity:", "srtp_policy:", "max_calls:", "socket_buffer:"} {
		if !strings.Contains(err.Error(), "\n"+key) && !strings.HasPrefix(err.Error(), key) {
			t.Errorf("no %s problem in %v", key, err)
		}
	}
}
