package b2bua

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzTarget feeds stored-binding values to the B-leg builder: whatever
// parseTarget accepts must produce an INVITE that parses back with the
// same headers (no value may inject a header or a line).
func FuzzTarget(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/target-*.txt")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		p := strings.SplitN(string(b), "\n", 4)
		for len(p) < 4 {
			p = append(p, "")
		}
		f.Add(p[0], p[1], p[2], p[3])
	}
	f.Fuzz(func(t *testing.T, ruri, route, dest, transport string) {
		var routes []string
		if route != "" {
			routes = []string{route}
		}
		pt, err := parseTarget(Target{RequestURI: ruri, Route: routes, Destination: dest, Transport: transport})
		if err != nil {
			return
		}
		req := sip.NewRequest(sip.INVITE, pt.uri)
		for i := range pt.route {
			req.AppendHeader(&sip.RouteHeader{Address: pt.route[i]})
		}
		req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1"))
		req.AppendHeader(sip.NewHeader("From", "<sip:a@x>;tag=1"))
		req.AppendHeader(sip.NewHeader("To", "<sip:b@x>"))
		req.AppendHeader(sip.NewHeader("Call-ID", "c"))
		req.AppendHeader(sip.NewHeader("CSeq", "1 INVITE"))
		req.SetBody(nil)
		raw := req.String()
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatalf("built INVITE does not parse: %v\n%q", err, raw)
		}
		back := msg.(*sip.Request)
		if got, want := len(back.Headers()), len(req.Headers()); got != want {
			t.Fatalf("header count %d after re-parse, want %d\n%q", got, want, raw)
		}
		if strings.Count(raw, "\r\n") != len(req.Headers())+2 {
			t.Fatalf("extra line in %q", raw)
		}
	})
}

// FuzzCanonicalAOR: whatever CanonicalAOR returns is a clean sip URI that
// canonicalises to itself.
func FuzzCanonicalAOR(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/aor-*.txt")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSpace(string(b)))
	}
	f.Fuzz(func(t *testing.T, in string) {
		var u sip.Uri
		if err := sip.ParseUri(in, &u); err != nil {
			return
		}
		aor, err := CanonicalAOR(u)
		if err != nil {
			return
		}
		if hasControl(aor) || strings.ContainsAny(aor, " <>;?") {
			t.Fatalf("CanonicalAOR(%q) = %q: unsafe", in, aor)
		}
		var again sip.Uri
		if err := sip.ParseUri(aor, &again); err != nil {
			t.Fatalf("CanonicalAOR(%q) = %q does not parse: %v", in, aor, err)
		}
		if aor2, err := CanonicalAOR(again); err != nil || aor2 != aor {
			t.Fatalf("not idempotent: %q -> %q (%v)", aor, aor2, err)
		}
	})
}
