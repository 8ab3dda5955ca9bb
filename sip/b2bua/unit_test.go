package b2bua

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // prefixes of the reported problems
	}{
		{name: "defaults", cfg: Config{}},
		{name: "negative", cfg: Config{RingTimeout: -1, MaxCalls: -2, T1: -time.Second},
			want: []string{"ring_timeout:", "t1:", "max_calls:"}},
		{name: "t2 below t1", cfg: Config{T1: time.Second, T2: time.Millisecond}, want: []string{"t2:"}},
		{name: "bad contact host", cfg: Config{ContactHost: "a b;c"}, want: []string{"contact_host:"}},
		{name: "control in user agent", cfg: Config{UserAgent: "x\r\nY: z"}, want: []string{"user_agent:"}},
		{name: "ipv6 contact host", cfg: Config{ContactHost: "[2001:db8::1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			var got []string
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					got = append(got, line[:strings.IndexByte(line, ':')+1])
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() problems (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.RingTimeout != 60*time.Second || c.MaxAge != 4*time.Hour || c.MaxCalls != 10000 || c.DeclinePerDevice {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name      string
		in        Target
		wantErr   bool
		transport string
		dest      string
	}{
		{name: "direct udp", in: Target{RequestURI: "sip:bob@192.0.2.7:5060", Destination: "198.51.100.1:40000", Transport: "udp"},
			transport: "UDP", dest: "198.51.100.1:40000"},
		{name: "tcp from uri", in: Target{RequestURI: "sip:bob@192.0.2.7;transport=tcp"}, transport: "TCP"},
		{name: "tls from sips route", in: Target{RequestURI: "sip:bob@x", Route: []string{"<sips:node2.example;lr;transport=tcp>"}}, transport: "TLS"},
		{name: "ipv6 destination", in: Target{RequestURI: "sip:bob@[2001:db8::1]", Destination: "[2001:db8::1]:5060"}, transport: "UDP", dest: "[2001:db8::1]:5060"},
		{name: "crlf in uri", in: Target{RequestURI: "sip:bob@x\r\nVia: evil"}, wantErr: true},
		{name: "crlf in route", in: Target{RequestURI: "sip:bob@x", Route: []string{"<sip:a;lr>\r\nX: y"}}, wantErr: true},
		{name: "comma in route", in: Target{RequestURI: "sip:bob@x", Route: []string{"<sip:a;lr>,<sip:b;lr>"}}, wantErr: true},
		{name: "tel uri", in: Target{RequestURI: "tel:+15551234"}, wantErr: true},
		{name: "empty uri", in: Target{}, wantErr: true},
		{name: "bad destination", in: Target{RequestURI: "sip:bob@x", Destination: "x"}, wantErr: true},
		{name: "bad port", in: Target{RequestURI: "sip:bob@x", Destination: "x:70000"}, wantErr: true},
		{name: "bad transport", in: Target{RequestURI: "sip:bob@x", Transport: "sctp"}, wantErr: true},
		{name: "nul in destination", in: Target{RequestURI: "sip:bob@x", Destination: "x\x00:5060"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTarget(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseTarget() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidTarget) {
					t.Errorf("error %v is not ErrInvalidTarget", err)
				}
				return
			}
			if got.transport != tt.transport || got.dest != tt.dest {
				t.Errorf("transport %q dest %q, want %q %q", got.transport, got.dest, tt.transport, tt.dest)
			}
		})
	}
}

func TestCanonicalAOR(t *testing.T) {
	tests := []struct {
		in, want string
		code     int
	}{
		{in: "sip:bob@Convergo.Test:5060;transport=tcp", want: "sip:bob@convergo.test"},
		{in: "sips:bob@convergo.test", want: "sip:bob@convergo.test"},
		{in: "sip:+15551234@ims.example;user=phone", want: "sip:+15551234@ims.example"},
		{in: "tel:+15551234", code: 416},
		{in: "sip:convergo.test", code: 404},
	}
	for _, tt := range tests {
		var u sip.Uri
		if err := sip.ParseUri(tt.in, &u); err != nil {
			t.Fatalf("ParseUri(%q): %v", tt.in, err)
		}
		got, err := CanonicalAOR(u)
		if tt.code != 0 {
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Errorf("CanonicalAOR(%q) error = %v, want status %d", tt.in, err, tt.code)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalAOR(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRankAndUpstream(t *testing.T) {
	// Best first, by RFC 3261 §16.7 and protocols.md §2.4 rule 5.
	order := []int{603, 302, 486, 488, 404, 480, 500, 408}
	for i := 1; i < len(order); i++ {
		if rank(order[i-1]) >= rank(order[i]) {
			t.Errorf("rank(%d) = %d not better than rank(%d) = %d", order[i-1], rank(order[i-1]), order[i], rank(order[i]))
		}
	}
	for _, tt := range []struct{ in, want int }{{503, 500}, {401, 403}, {407, 403}, {486, 486}, {603, 603}} {
		if got, _ := upstream(tt.in, ""); got != tt.want {
			t.Errorf("upstream(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if _, reason := upstream(486, "Busy\r\nX: y"); reason != "Busy Here" {
		t.Errorf("reason with CRLF relayed: %q", reason)
	}
}

func TestOptionTags(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "x"})
	req.AppendHeader(sip.NewHeader("Supported", "100rel, timer,precondition, Replaces"))
	req.AppendHeader(sip.NewHeader("Require", "100rel, timer"))
	if got := filteredTags(req, "Supported"); got != "timer, replaces" {
		t.Errorf("Supported passed on = %q", got)
	}
	if got := unsupportedRequire(req); got != "100rel" {
		t.Errorf("unsupported Require = %q, want 100rel", got)
	}
}

// TestRegistry: the count cap refuses, age selection finds old calls
// (under a fake clock), close waits for the last call.
func TestRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRegistry(2)
		c1 := &call{created: time.Now()}
		if err := r.add(c1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Hour)
		c2 := &call{created: time.Now()}
		if err := r.add(c2); err != nil {
			t.Fatal(err)
		}
		if err := r.add(&call{}); !errors.Is(err, ErrTooManyCalls) {
			t.Fatalf("add beyond cap: %v, want ErrTooManyCalls", err)
		}
		time.Sleep(2 * time.Hour)
		old := r.olderThan(time.Now().Add(-4 * time.Hour))
		if len(old) != 1 || old[0] != c1 {
			t.Fatalf("olderThan(4h) = %v, want only the first call", old)
		}
		empty := r.close()
		if err := r.add(&call{}); !errors.Is(err, ErrShuttingDown) {
			t.Fatalf("add after close: %v", err)
		}
		r.remove(c1)
		select {
		case <-empty:
			t.Fatal("closed with a call left")
		default:
		}
		r.remove(c2)
		<-empty
		if r.remove(c2) {
			t.Error("second remove reported true")
		}
	})
}

func TestDialogIndex(t *testing.T) {
	x := newDialogIndex()
	c := &call{}
	l := &leg{}
	x.put(dialogKey("cid", "tag"), dialogRef{c: c, l: l})
	if ref, ok := x.get(dialogKey("cid", "tag")); !ok || ref.c != c || ref.l != l {
		t.Fatal("get after put failed")
	}
	if _, ok := x.get(dialogKey("cid", "other")); ok {
		t.Fatal("found a dialog by the wrong tag")
	}
	x.del(dialogKey("cid", "tag"))
	if x.len() != 0 {
		t.Fatal("del left an entry")
	}
}
