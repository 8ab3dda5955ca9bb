package isc

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	csip "github.com/convergo/convergo/sip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startServer runs a csip.Server on 127.0.0.1 with MESSAGE and ACK behind
// the middleware; seen receives what the handler got.
func startServer(t *testing.T, tr *Trust, seen chan<- seenRequest) string {
	t.Helper()
	s, err := csip.New(csip.Config{Listen: []string{"udp:127.0.0.1:0"}}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		info, ok := FromContext(ctx)
		var names []string
		for _, h := range req.Headers() {
			names = append(names, strings.ToLower(h.Name()))
		}
		seen <- seenRequest{method: req.Method, info: info, hasInfo: ok, headers: names}
		if req.IsAck() {
			return nil
		}
		return tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.ACK} {
		if err := s.Handle(m, tr.Middleware(h)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return s.Addrs()[0].Addr
}

type seenRequest struct {
	method  sip.RequestMethod
	info    Info
	hasInfo bool
	headers []string
}

// send writes raw from a UDP socket bound to from (e.g. 127.0.0.2) and
// returns the final response, or nil after wait.
func send(t *testing.T, from, to, raw string, wait time.Duration) *sip.Response {
	t.Helper()
	laddr, err := net.ResolveUDPAddr("udp", from+":0")
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw = strings.ReplaceAll(raw, "LOCAL", c.LocalAddr().String())
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
	}
}

var seq int64
var seqMu sync.Mutex

func message(method string, hdrs ...string) string {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	return fmt.Sprintf("%s sip:bob@ims.example.net SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bK-isc%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.net>;tag=a%d\r\nTo: <sip:bob@ims.example.net>\r\n"+
		"Call-ID: isc-%d\r\nCSeq: 1 %s\r\n%sContent-Length: 0\r\n\r\n",
		method, n, n, n, method, headerBlock(hdrs))
}

func headerBlock(hdrs []string) string {
	if len(hdrs) == 0 {
		return ""
	}
	return strings.Join(hdrs, "\r\n") + "\r\n"
}

func TestMiddleware(t *testing.T) {
	tr, err := New(Config{TrustedPeers: []string{"127.0.0.2"}}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan seenRequest, 4)
	addr := startServer(t, tr, seen)
	pHeaders := []string{
		"P-Served-User: <sip:bob@ims.example.net>;sescase=term;regstate=reg",
		"p-charging-vector: icid-value=\"abc\";orig-ioi=ims.example.net", // lower case on the wire
		"P-Charging-Function-Addresses: ccf=pri-ccf.ims.example.net",
		"P-Asserted-Service: urn:urn-7:3gpp-service.ims.icsi.oma.cpm.msg",
		"P-Access-Network-Info: 3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=0010100010019B01",
		"P-Visited-Network-ID: \"visited.example.net\"",
		"P-Served-User: <sip:carol@ims.example.net>", // a second occurrence
		"Subject: kept",
	}
	stripped := []string{"p-served-user", "p-charging-vector", "p-charging-function-addresses",
		"p-asserted-service", "p-access-network-info", "p-visited-network-id"}

	t.Run("untrusted P-Asserted-Identity is refused", func(t *testing.T) {
		res := send(t, "127.0.0.1", addr, message("MESSAGE", "P-Asserted-Identity: <sip:alice@ims.example.net>"), 3*time.Second)
		if res == nil || res.StatusCode != 403 || !strings.Contains(res.Reason, "untrusted P-Asserted-Identity") {
			t.Fatalf("got %v, want 403 naming the untrusted P-Asserted-Identity", res)
		}
		select {
		case s := <-seen:
			t.Fatalf("handler ran for a refused request: %+v", s)
		default:
		}
	})
	t.Run("untrusted P-headers are stripped", func(t *testing.T) {
		res := send(t, "127.0.0.1", addr, message("MESSAGE", pHeaders...), 3*time.Second)
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("got %v, want 200", res)
		}
		s := <-seen
		for _, h := range stripped {
			if containsString(s.headers, h) {
				t.Errorf("handler saw %s; want it stripped (headers %v)", h, s.headers)
			}
		}
		if !containsString(s.headers, "subject") {
			t.Errorf("handler lost Subject: %v", s.headers)
		}
		if !s.hasInfo || s.info.Trusted || s.info.Case != Unknown {
			t.Errorf("info = %+v (present %v), want untrusted Unknown", s.info, s.hasInfo)
		}
	})
	t.Run("untrusted ACK with P-Asserted-Identity is stripped, not answered", func(t *testing.T) {
		res := send(t, "127.0.0.1", addr, message("ACK", "P-Asserted-Identity: <sip:alice@ims.example.net>"), 500*time.Millisecond)
		if res != nil {
			t.Fatalf("ACK answered with %d", res.StatusCode)
		}
		s := <-seen
		if s.method != sip.ACK || containsString(s.headers, "p-asserted-identity") {
			t.Fatalf("handler saw %s with headers %v; want ACK without P-Asserted-Identity", s.method, s.headers)
		}
	})
	t.Run("trusted keeps headers and is classified", func(t *testing.T) {
		hdrs := append([]string{"P-Asserted-Identity: <sip:alice@ims.example.net>"}, pHeaders...)
		res := send(t, "127.0.0.2", addr, message("MESSAGE", hdrs...), 3*time.Second)
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("got %v, want 200", res)
		}
		s := <-seen
		for _, h := range append(stripped, "p-asserted-identity") {
			if !containsString(s.headers, h) {
				t.Errorf("trusted request lost %s: %v", h, s.headers)
			}
		}
		want := Info{Trusted: true, Case: Terminating, ServedUser: "sip:bob@ims.example.net", ICID: "abc",
			ChargingVector: `icid-value="abc";orig-ioi=ims.example.net`, AssertedIdentity: []string{"sip:alice@ims.example.net"}}
		if diff := cmp.Diff(want, s.info); diff != "" {
			t.Errorf("info mismatch (-want +got):\n%s", diff)
		}
	})
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
