package isc

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
)

// parseRequest builds a request from header lines (CRLF added).
func parseRequest(t *testing.T, ruri string, hdrs ...string) *sip.Request {
	t.Helper()
	raw := "INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP scscf1.ims.example.net:6060;branch=z9hG4bK-s1\r\n" +
		"From: <sip:+15551230001@ims.example.net>;tag=a1\r\n" +
		"To: <sip:+15551230002@ims.example.net;user=phone>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\n" +
		strings.Join(hdrs, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return m.(*sip.Request)
}

func TestClassify(t *testing.T) {
	const (
		ruri   = "sip:+15551230002@ims.example.net;user=phone"
		asURI  = "sip:rcs-as.ims.example.net"
		odi    = "<sip:odi_Zk3Q9@scscf1.ims.example.net:6060;transport=tcp;lr;service=scscf>"
		pcv    = `icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=023551024";orig-ioi=ims.example.net`
		icid   = "AyretyU0dm+6O2IrT5tAFrbHLso=023551024"
		callee = "sip:+15551230002@ims.example.net"
		caller = "sip:+15551230001@ims.example.net"
	)
	tests := []struct {
		name  string
		asURI string
		hdrs  []string
		want  Info
	}{
		{
			name: "sprout terminating with P-Served-User",
			hdrs: []string{
				"Route: <sip:rcs-as.ims.example.net;lr>, " + odi,
				"P-Asserted-Identity: <sip:+15551230001@ims.example.net>, <tel:+15551230001>",
				"P-Served-User: <sip:+15551230002@ims.example.net>;sescase=term;regstate=reg",
				"P-Charging-Vector: " + pcv,
			},
			want: Info{Case: Terminating, ServedUser: callee, ReturnRoute: []string{odi}, ICID: icid,
				ChargingVector: pcv, AssertedIdentity: []string{caller, "tel:+15551230001"}},
		},
		{
			name: "p-served-user originating wins over route",
			hdrs: []string{
				"Route: <sip:rcs-as.ims.example.net;lr>",
				"P-Served-User: <sip:alice@ims.example.net>;sescase=orig;regstate=reg",
			},
			want: Info{Case: Originating, ServedUser: "sip:alice@ims.example.net"},
		},
		{
			name: "p-served-user unregistered terminating",
			hdrs: []string{"P-Served-User: <sip:bob@IMS.example.net:5060>;sescase=term;regstate=unreg"},
			want: Info{Case: Terminating, ServedUser: "sip:bob@ims.example.net", Unregistered: true},
		},
		{
			name: "p-served-user orig-cdiv is originating",
			hdrs: []string{"P-Served-User: <sip:bob@ims.example.net>;orig-cdiv"},
			want: Info{Case: Originating, ServedUser: "sip:bob@ims.example.net"},
		},
		{
			name: "orig parameter on our route, served user from first SIP PAI",
			hdrs: []string{
				"Route: <sip:rcs-as.ims.example.net;lr;orig>, " + odi,
				"P-Asserted-Identity: <tel:+15551230001>, <sip:+15551230001@ims.example.net;user=phone>",
			},
			want: Info{Case: Originating, ServedUser: caller, ReturnRoute: []string{odi},
				AssertedIdentity: []string{"tel:+15551230001", "sip:+15551230001@ims.example.net;user=phone"}},
		},
		{
			name: "sprout odi route carries orig",
			hdrs: []string{
				"Route: <sip:rcs-as.ims.example.net;lr>",
				"Route: <sip:odi_abc@sprout.ims.example.net:5054;transport=tcp;lr;service=scscf;orig>",
				"P-Asserted-Identity: <sip:+15551230001@ims.example.net>",
			},
			want: Info{Case: Originating, ServedUser: caller, AssertedIdentity: []string{caller},
				ReturnRoute: []string{"<sip:odi_abc@sprout.ims.example.net:5054;transport=tcp;lr;service=scscf;orig>"}},
		},
		{
			name: "kamailio iscmark originating, no PAI falls back to From",
			hdrs: []string{"Route: <sip:rcs-as.ims.example.net;lr>, <sip:iscmark@scscf.ims.example.net:6060;lr;s=1;h=0;d=0;a=736970>"},
			want: Info{Case: Originating, ServedUser: caller,
				ReturnRoute: []string{"<sip:iscmark@scscf.ims.example.net:6060;lr;s=1;h=0;d=0;a=736970>"}},
		},
		{
			name: "kamailio iscmark terminating unregistered",
			hdrs: []string{"Route: <sip:rcs-as.ims.example.net;lr>, <sip:iscmark@scscf.ims.example.net:6060;lr;s=2;h=0;d=2;a=736970>"},
			want: Info{Case: Terminating, ServedUser: callee, Unregistered: true,
				ReturnRoute: []string{"<sip:iscmark@scscf.ims.example.net:6060;lr;s=2;h=0;d=2;a=736970>"}},
		},
		{
			name: "kamailio example orig user part",
			hdrs: []string{"Route: <sip:orig@scscf.ims.example.net:6060;lr>", "P-Asserted-Identity: <sip:+15551230001@ims.example.net>"},
			want: Info{Case: Originating, ServedUser: caller, AssertedIdentity: []string{caller}},
		},
		{
			name: "no marker is terminating, served user from request uri",
			hdrs: []string{"Route: <sip:rcs-as.ims.example.net;lr>, " + odi},
			want: Info{Case: Terminating, ServedUser: callee, ReturnRoute: []string{odi}},
		},
		{
			name:  "as uri configured picks our entry below a foreign one",
			asURI: asURI,
			hdrs:  []string{"Route: <sip:other-as.ims.example.net;lr>, <sip:rcs-as.ims.example.net:5060;lr>, " + odi},
			want:  Info{Case: Terminating, ServedUser: callee, ReturnRoute: []string{odi}},
		},
		{
			name:  "as uri configured but absent keeps every route",
			asURI: asURI,
			hdrs:  []string{"Route: " + odi},
			want:  Info{Case: Terminating, ServedUser: callee, ReturnRoute: []string{odi}},
		},
		{
			name: "no route at all",
			want: Info{Case: Terminating, ServedUser: callee},
		},
		{
			name: "tel p-served-user",
			hdrs: []string{"P-Served-User: <tel:+15551230002;phone-context=ims.example.net>;sescase=term"},
			want: Info{Case: Terminating, ServedUser: "tel:+15551230002"},
		},
		{
			name: "unquoted icid",
			hdrs: []string{"P-Charging-Vector: orig-ioi=x; icid-value=abc123"},
			want: Info{Case: Terminating, ServedUser: callee, ICID: "abc123", ChargingVector: "orig-ioi=x; icid-value=abc123"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(Config{TrustedPeers: []string{"192.0.2.0/24"}, ASURI: tt.asURI}, zap.NewNop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := tr.classify(parseRequest(t, ruri, tt.hdrs...))
			want := tt.want
			want.Trusted = true
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("classify mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCaseString(t *testing.T) {
	for c, want := range map[Case]string{Unknown: "unknown", Originating: "originating", Terminating: "terminating", Case(9): "unknown"} {
		if got := c.String(); got != want {
			t.Errorf("Case(%d).String() = %q, want %q", c, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{TrustedPeers: []string{"10.0.0.1", "10.1.0.0/16", "2001:db8::/32", "::ffff:10.0.0.2"}, ASURI: "sip:as.example.net;lr"}).Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	err := Config{TrustedPeers: []string{"10.0.0.1", "scscf.example.net", "10.0.0.0/99"}, ASURI: "http://x"}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{
		`trusted_peers[1]: "scscf.example.net": not an IP address or CIDR prefix`,
		`trusted_peers[2]: "10.0.0.0/99"`,
		`as_uri: "http://x": scheme must be sip or sips`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, missing %q", err, want)
		}
	}
}

func TestTrusted(t *testing.T) {
	tr, err := New(Config{TrustedPeers: []string{"192.0.2.7", "198.51.100.0/24", "2001:db8::/64"}}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"192.0.2.7": true, "192.0.2.8": false, "198.51.100.200": true, "::ffff:198.51.100.1": true,
		"2001:db8::5": true, "2001:db8:0:1::5": false, "127.0.0.1": false,
	}
	for addr, want := range tests {
		if got := tr.Trusted(mustAddr(t, addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
}
