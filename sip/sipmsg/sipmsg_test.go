package sipmsg

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
)

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"<sip:a@x;lr>, <sip:b@y;lr>", []string{"<sip:a@x;lr>", "<sip:b@y;lr>"}},
		{`"Doe, John" <sip:j@x>, <sip:k@y>`, []string{`"Doe, John" <sip:j@x>`, "<sip:k@y>"}},
		{`<sip:a@x;p="1,2">,,  <sip:b@y>`, []string{`<sip:a@x;p="1,2">`, "<sip:b@y>"}},
		{`"esc \" ,q" <sip:a@x>`, []string{`"esc \" ,q" <sip:a@x>`}},
		{"path, outbound ,gruu", []string{"path", "outbound", "gruu"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, SplitList(tt.in)); diff != "" {
			t.Errorf("SplitList(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// sentInvite is an INVITE as sent through two proxies to 192.0.2.2.
func sentInvite(t *testing.T) *sip.Request {
	t.Helper()
	raw := "INVITE sip:bob@192.0.2.7:5070 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv1\r\n" +
		"Route: <sip:p1@192.0.2.2;lr>\r\nRoute: <sip:p2@192.0.2.3;lr>\r\n" +
		"From: <sip:alice@x>;tag=a1\r\nTo: <sip:bob@x>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n" +
		"Max-Forwards: 69\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	inv := msg.(*sip.Request)
	inv.SetDestination("192.0.2.2:5060")
	return inv
}

func TestCancel(t *testing.T) {
	inv := sentInvite(t)
	c := Cancel(inv, sip.NewHeader("Reason", `SIP;cause=200;text="Call completed elsewhere"`))
	checks := []struct{ name, got, want string }{
		{"request line", c.StartLine(), "CANCEL sip:bob@192.0.2.7:5070 SIP/2.0"},
		{"via (same branch)", c.Via().Value(), inv.Via().Value()},
		{"cseq", c.CSeq().Value(), "7 CANCEL"},
		{"to has no tag added", c.To().Value(), inv.To().Value()},
		{"reason", c.GetHeader("Reason").Value(), `SIP;cause=200;text="Call completed elsewhere"`},
		{"destination", c.Destination(), "192.0.2.2:5060"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if n := len(c.GetHeaders("Route")); n != 2 {
		t.Errorf("routes = %d, want 2", n)
	}
	if len(c.Body()) != 0 {
		t.Errorf("CANCEL has a body")
	}
	c.Recipient.Host = "changed"
	if inv.Recipient.Host == "changed" {
		t.Errorf("CANCEL shares the INVITE's Request-URI")
	}
}

func TestHeaderLookup(t *testing.T) {
	raw := "INVITE sip:bob@x SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n" +
		"P-Asserted-Identity: <sip:a@x>\r\nSubject: hi\r\n" +
		"p-asserted-identity: <tel:+15551234>\r\nRoute: <sip:p1;lr>\r\nRoute: <sip:p2;lr>\r\n" +
		"Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	tests := []struct {
		name string
		want []string
	}{
		{"P-Asserted-Identity", []string{"<sip:a@x>", "<tel:+15551234>"}},
		{"P-ASSERTED-IDENTITY", []string{"<sip:a@x>", "<tel:+15551234>"}},
		{"route", []string{"<sip:p1;lr>", "<sip:p2;lr>"}},
		{"Subject", []string{"hi"}},
		{"Call-ID", []string{"c"}},
		{"P-Served-User", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, h := range Headers(req, tt.name) {
			got = append(got, h.Value())
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Headers(%q) (-want +got):\n%s", tt.name, diff)
		}
		// sipgo's own lookup agrees.
		if diff := cmp.Diff(len(req.GetHeaders(tt.name)), len(got)); diff != "" {
			t.Errorf("Headers(%q) count differs from GetHeaders: %s", tt.name, diff)
		}
		h := Header(req, tt.name)
		switch {
		case tt.want == nil && h != nil:
			t.Errorf("Header(%q) = %v, want nil", tt.name, h)
		case tt.want != nil && (h == nil || h.Value() != tt.want[0]):
			t.Errorf("Header(%q) = %v, want %q", tt.name, h, tt.want[0])
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Header(req, "P-Served-User") }); n != 0 {
		t.Errorf("Header allocates %v times per lookup, want 0", n)
	}
}

func TestAckNon2xx(t *testing.T) {
	inv := sentInvite(t)
	res := sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
	res.To().Params.Add("tag", "b9")
	a := AckNon2xx(inv, res)
	checks := []struct{ name, got, want string }{
		{"request line", a.StartLine(), "ACK sip:bob@192.0.2.7:5070 SIP/2.0"},
		{"via (same branch)", a.Via().Value(), inv.Via().Value()},
		{"cseq", a.CSeq().Value(), "7 ACK"},
		{"to carries the response's tag", a.To().Value(), "<sip:bob@x>;tag=b9"},
		{"from", a.From().Value(), inv.From().Value()},
		{"route", Header(a, "Route").Value(), "<sip:p1@192.0.2.2;lr>"},
		{"destination", a.Destination(), "192.0.2.2:5060"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if n := len(Headers(a, "Route")); n != 2 {
		t.Errorf("routes = %d, want 2", n)
	}
	if len(a.Body()) != 0 || len(Headers(a, "Via")) != 1 {
		t.Errorf("ACK has a body or more than the top Via")
	}
}
