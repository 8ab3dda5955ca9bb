package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convergo/convergo/internal/testcert"
	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testTransactionWait is this package's sipgo transaction wait, set before
// any test runs (sipgo's timers are unsynchronised package variables).
const testTransactionWait = time.Second

func TestMain(m *testing.M) {
	SetTransactionWait(testTransactionWait)
	goleak.VerifyTestMain(m)
}

// startServer runs a Server on loopback ephemeral ports until the test ends.
func startServer(t *testing.T, cfg Config, register func(s *Server)) *Server {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}
	}
	s, err := New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if register != nil {
		register(s)
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
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready")
	}
	return s
}

func addrOf(t *testing.T, s *Server, transport string) string {
	t.Helper()
	for _, l := range s.Addrs() {
		if l.Transport == transport {
			return l.Addr
		}
	}
	t.Fatalf("no %s listener", transport)
	return ""
}

// request builds a raw SIP request; hdrs replace or (with "-Name") remove defaults.
func request(method, body string, hdrs ...string) string {
	def := []string{
		"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-" + fmt.Sprint(time.Now().UnixNano()),
		"Max-Forwards: 70",
		"From: <sip:alice@convergo.local>;tag=a1",
		"To: <sip:bob@convergo.local>",
		"Call-ID: test-" + fmt.Sprint(time.Now().UnixNano()),
		"CSeq: 1 " + method,
	}
	for _, h := range hdrs {
		if strings.HasPrefix(h, "-") {
			name := h[1:] + ":"
			def = filter(def, func(d string) bool { return !strings.HasPrefix(d, name) })
			continue
		}
		name := h[:strings.Index(h, ":")+1]
		def = filter(def, func(d string) bool { return !strings.HasPrefix(d, name) })
		def = append(def, h)
	}
	return method + " sip:bob@convergo.local SIP/2.0\r\n" + strings.Join(def, "\r\n") +
		fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
}

func filter(in []string, keep func(string) bool) []string {
	var out []string
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// exchangeUDP sends raw and returns the first final response, or nil if
// none arrives within wait.
func exchangeUDP(t *testing.T, addr, raw string, wait time.Duration) *sip.Response {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
		msg, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatalf("parse response: %v\n%s", err, buf[:n])
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			t.Fatalf("got a request, want a response:\n%s", buf[:n])
		}
		if res.StatusCode >= 200 {
			return res
		}
	}
}

func TestGuardResponses(t *testing.T) {
	s := startServer(t, Config{MaxBodyBytes: 100}, func(s *Server) {
		_ = s.Handle(sip.MESSAGE, func(_ context.Context, req *sip.Request, tx sip.ServerTransaction) error {
			return tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
		_ = s.Handle(sip.INFO, func(context.Context, *sip.Request, sip.ServerTransaction) error {
			panic("boom")
		})
		_ = s.Handle(sip.SUBSCRIBE, func(context.Context, *sip.Request, sip.ServerTransaction) error {
			return &StatusError{Code: 489, Reason: "Bad Event", Headers: []sip.Header{sip.NewHeader("Allow-Events", "reg")}}
		})
		_ = s.Handle(sip.NOTIFY, func(context.Context, *sip.Request, sip.ServerTransaction) error {
			return errors.New("plain failure")
		})
	})
	addr := addrOf(t, s, "udp")
	tests := []struct {
		name       string
		raw        string
		wantCode   int
		wantReason string
		wantHeader map[string]string
	}{
		{"options", request("OPTIONS", ""), 200, "OK", map[string]string{"Allow": "ACK, CANCEL, INFO, MESSAGE, NOTIFY, OPTIONS, SUBSCRIBE"}},
		{"options with max-forwards 0", request("OPTIONS", "", "Max-Forwards: 0"), 200, "OK", nil},
		{"handled", request("MESSAGE", "hi", "Content-Type: text/plain"), 200, "OK", nil},
		{"unknown method", request("FOO", ""), 405, "Method Not Allowed", map[string]string{"Allow": "ACK, CANCEL, INFO, MESSAGE, NOTIFY, OPTIONS, SUBSCRIBE"}},
		{"known but unhandled method", request("PUBLISH", ""), 405, "Method Not Allowed", nil},
		{"missing call-id", request("MESSAGE", "", "-Call-ID"), 400, "Missing Mandatory Header", nil},
		{"missing from", request("MESSAGE", "", "-From"), 400, "Missing Mandatory Header", nil},
		{"cseq method mismatch", request("MESSAGE", "", "CSeq: 1 INVITE"), 400, "CSeq Method Mismatch", nil},
		{"loop", request("MESSAGE", "", "Max-Forwards: 0"), 483, "Too Many Hops", nil},
		{"body too large", request("MESSAGE", strings.Repeat("x", 101), "Content-Type: text/plain"), 413, "Request Entity Too Large", nil},
		{"panic becomes 500", request("INFO", ""), 500, "Server Internal Error", nil},
		{"status error", request("SUBSCRIBE", "", "Event: reg"), 489, "Bad Event", map[string]string{"Allow-Events": "reg"}},
		{"plain error is 500", request("NOTIFY", ""), 500, "Server Internal Error", nil},
		{"stray cancel", request("CANCEL", ""), 481, "Call/Transaction Does Not Exist", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := exchangeUDP(t, addr, tt.raw, 3*time.Second)
			if res == nil {
				t.Fatal("no response")
			}
			if res.StatusCode != tt.wantCode || res.Reason != tt.wantReason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.wantCode, tt.wantReason)
			}
			for k, v := range tt.wantHeader {
				if h := res.GetHeader(k); h == nil || h.Value() != v {
					t.Fatalf("header %s = %v, want %q", k, h, v)
				}
			}
		})
	}
}

func TestAckIsNeverAnswered(t *testing.T) {
	s := startServer(t, Config{}, nil)
	raw := request("ACK", "", "CSeq: 1 ACK")
	if res := exchangeUDP(t, addrOf(t, s, "udp"), raw, 500*time.Millisecond); res != nil {
		t.Fatalf("ACK got a response: %d", res.StatusCode)
	}
	// A malformed ACK is dropped too, not answered.
	raw = request("ACK", "", "-Call-ID")
	if res := exchangeUDP(t, addrOf(t, s, "udp"), raw, 500*time.Millisecond); res != nil {
		t.Fatalf("malformed ACK got a response: %d", res.StatusCode)
	}
}

func TestOverloadAnswers503(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := startServer(t, Config{MaxInflight: 1, RetryAfter: 7 * time.Second}, func(s *Server) {
		_ = s.Handle(sip.MESSAGE, func(_ context.Context, req *sip.Request, tx sip.ServerTransaction) error {
			entered <- struct{}{}
			<-release
			return tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	addr := addrOf(t, s, "udp")
	var wg sync.WaitGroup
	first := make(chan *sip.Response, 1)
	wg.Go(func() { first <- exchangeUDP(t, addr, request("MESSAGE", ""), 5*time.Second) })
	<-entered
	res := exchangeUDP(t, addr, request("MESSAGE", ""), 3*time.Second)
	close(release)
	wg.Wait()
	if res == nil || res.StatusCode != 503 || res.Reason != "Service Unavailable" {
		t.Fatalf("second request: got %v, want 503 Service Unavailable", res)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "7" {
		t.Fatalf("Retry-After = %v, want 7", h)
	}
	if r := <-first; r == nil || r.StatusCode != 200 {
		t.Fatalf("first request: got %v, want 200", r)
	}
}

func TestShutdownDrainsInflight(t *testing.T) {
	cfg := Config{Listen: []string{"udp:127.0.0.1:0"}, DrainTimeout: 5 * time.Second}
	s, err := New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	_ = s.Handle(sip.MESSAGE, func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	addr := addrOf(t, s, "udp")
	got := make(chan *sip.Response, 1)
	go func() { got <- exchangeUDP(t, addr, request("MESSAGE", ""), 5*time.Second) }()
	<-entered
	cancel() // shutdown begins while the MESSAGE is in flight
	// New requests are refused once Run has seen the cancel.
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := exchangeUDP(t, addr, request("OPTIONS", ""), time.Second)
		if res != nil && res.StatusCode == 503 {
			break
		}
		if res == nil || res.StatusCode != 200 || time.Now().After(deadline) {
			t.Fatalf("request during drain: got %v, want 503", res)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if res := <-got; res == nil || res.StatusCode != 200 {
		t.Fatalf("in-flight request: got %v, want 200 after drain", res)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after drain")
	}
}

func TestTCPOptions(t *testing.T) {
	s := startServer(t, Config{}, nil)
	c, err := net.Dial("tcp", addrOf(t, s, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := strings.Replace(request("OPTIONS", ""), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 OK\r\n") {
		t.Fatalf("got %q, want 200 OK", buf[:n])
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in      string
		want    Listener
		wantErr string
	}{
		{in: "udp:127.0.0.1:5060", want: Listener{"udp", "127.0.0.1:5060"}},
		{in: "TLS:0.0.0.0:5061", want: Listener{"tls", "0.0.0.0:5061"}},
		{in: "ws:[::1]:8088", want: Listener{"ws", "[::1]:8088"}},
		{in: "udp:abc", wantErr: "missing port"},
		{in: "udp:127.0.0.1:99999", wantErr: "invalid port"},
		{in: "sctp:127.0.0.1:5060", wantErr: `unknown transport "sctp"`},
		{in: "127.0.0.1", wantErr: "want transport:host:port"},
	}
	for _, tt := range tests {
		got, err := ParseListen(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseListen(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseListen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{Listen: []string{"udp:127.0.0.1:5060", "udp:abc", "tls:0.0.0.0:5061"}, MaxInflight: -1}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	err = errors.Join(err, Config{TransactionWait: 40 * time.Second, SendTimeout: -time.Second}.Validate())
	for _, want := range []string{`listen[1]: "udp:abc": missing port`, "tls_cert:", "max_inflight: -1",
		"transaction_wait: 40s: must be between 1s and 32s", "send_timeout: -1s: must not be negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, missing %q", err, want)
		}
	}
}

// selfSigned writes a throwaway certificate for 127.0.0.1 and returns its files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	certFile, keyFile, _ = testcert.Write(t)
	return certFile, keyFile
}

// TestStreamTransports sends OPTIONS over TLS, WS and WSS listeners.
func TestStreamTransports(t *testing.T) {
	cert, key := selfSigned(t)
	s := startServer(t, Config{
		Listen:  []string{"tls:127.0.0.1:0", "ws:127.0.0.1:0", "wss:127.0.0.1:0"},
		TLSCert: cert, TLSKey: key,
	}, nil)
	tlsConf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // throwaway self-signed test certificate
	read := func(t *testing.T, c net.Conn, raw string, viaTransport string) string {
		t.Helper()
		raw = strings.Replace(raw, "SIP/2.0/UDP", "SIP/2.0/"+viaTransport, 1)
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if viaTransport == "WS" || viaTransport == "WSS" {
			if err := wsutil.WriteClientText(c, []byte(raw)); err != nil {
				t.Fatal(err)
			}
			msg, err := wsutil.ReadServerText(c)
			if err != nil {
				t.Fatal(err)
			}
			return string(msg)
		}
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	t.Run("tls", func(t *testing.T) {
		c, err := tls.Dial("tcp", addrOf(t, s, "tls"), tlsConf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := read(t, c, request("OPTIONS", ""), "TLS"); !strings.HasPrefix(got, "SIP/2.0 200 OK\r\n") {
			t.Fatalf("got %q, want 200 OK", got)
		}
	})
	for _, tr := range []string{"ws", "wss"} {
		t.Run(tr, func(t *testing.T) {
			d := ws.Dialer{Protocols: []string{"sip"}, TLSConfig: tlsConf, Timeout: 3 * time.Second}
			c, _, _, err := d.Dial(t.Context(), tr+"://"+addrOf(t, s, tr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := read(t, c, request("OPTIONS", ""), strings.ToUpper(tr)); !strings.HasPrefix(got, "SIP/2.0 200 OK\r\n") {
				t.Fatalf("got %q, want 200 OK", got)
			}
		})
	}
}

// TestRunWaitsForHolds: the user agent stays open until the components
// that send through it (Hold) have finished.
func TestRunWaitsForHolds(t *testing.T) {
	s, err := New(Config{Listen: []string{"udp:127.0.0.1:0"}, DrainTimeout: 10 * time.Second}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	release := s.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a component still held the user agent", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	release() // idempotent
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the hold was released")
	}
}

func TestCallRateCapAnswers503(t *testing.T) {
	s := startServer(t, Config{MaxCallRate: 4, RetryAfter: 3 * time.Second}, func(s *Server) {
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.MESSAGE} {
			_ = s.Handle(m, func(_ context.Context, req *sip.Request, tx sip.ServerTransaction) error {
				return &StatusError{Code: sip.StatusNotFound, Reason: "Not Found"}
			})
		}
	})
	addr := addrOf(t, s, "udp")
	// A burst of a quarter second's worth (1 at 4/s) passes, then the gate shuts.
	if res := exchangeUDP(t, addr, request("INVITE", ""), 3*time.Second); res == nil || res.StatusCode != 404 {
		t.Fatalf("first INVITE: got %v, want 404 from the handler", res)
	}
	res := exchangeUDP(t, addr, request("INVITE", ""), 3*time.Second)
	if res == nil || res.StatusCode != 503 {
		t.Fatalf("second INVITE: got %v, want 503", res)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "3" {
		t.Fatalf("Retry-After = %v, want 3", h)
	}
	// In-dialog requests and other methods are not counted.
	if res := exchangeUDP(t, addr, request("INVITE", "", "To: <sip:bob@convergo.local>;tag=b1"), 3*time.Second); res == nil || res.StatusCode != 404 {
		t.Fatalf("re-INVITE: got %v, want 404 from the handler", res)
	}
	if res := exchangeUDP(t, addr, request("MESSAGE", ""), 3*time.Second); res == nil || res.StatusCode != 404 {
		t.Fatalf("MESSAGE: got %v, want 404 from the handler", res)
	}
}

func TestRateGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := newRateGate(8) // burst 2
	got := []bool{g.allow(t0), g.allow(t0), g.allow(t0), g.allow(t0.Add(125 * time.Millisecond)), g.allow(t0.Add(125 * time.Millisecond))}
	want := []bool{true, true, false, true, false}
	if !slices.Equal(got, want) {
		t.Fatalf("allow = %v, want %v", got, want)
	}
	if g := newRateGate(0); !g.allow(t0) {
		t.Fatal("a zero rate must not cap")
	}
}

// TestTransactionWait: a finished transaction absorbs a retransmitted
// request (the handler runs once, the last response is resent) until
// SetTransactionWait's wait has passed; then the same request is new.
func TestTransactionWait(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	s := startServer(t, Config{}, func(s *Server) {
		_ = s.Handle(sip.MESSAGE, func(_ context.Context, req *sip.Request, tx sip.ServerTransaction) error {
			mu.Lock()
			runs++
			mu.Unlock()
			return tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	c, err := net.Dial("udp", addrOf(t, s, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := request("MESSAGE", "hi", "Content-Type: text/plain")
	send := func(t *testing.T) int {
		t.Helper()
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
			t.Fatalf("got %q, want 200", buf[:n])
		}
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
	if got := send(t); got != 1 {
		t.Fatalf("first MESSAGE: handler ran %d times, want 1", got)
	}
	if got := send(t); got != 1 {
		t.Fatalf("retransmission within the wait: handler ran %d times, want 1 (the transaction answers)", got)
	}
	time.Sleep(testTransactionWait + 500*time.Millisecond)
	if got := send(t); got != 2 {
		t.Fatalf("same request after the wait: handler ran %d times, want 2 (the transaction is gone)", got)
	}
}

// TestUDPSocketBuffers: the UDP listener asks for socket_buffer beyond
// net.core.rmem_max. Root is granted all of it (SO_RCVBUFFORCE); anyone
// else gets the kernel's cap and a warning saying so.
func TestUDPSocketBuffers(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no /proc/sys/net/core/rmem_max: %v", err) // not Linux
	}
	limit, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	ask := 2*limit + 4096
	core, logs := observer.New(zap.InfoLevel)
	s, err := New(Config{Listen: []string{"udp:127.0.0.1:0"}, SocketBuffer: ask}.WithDefaults(), zap.New(core), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Ready()
	entries := logs.FilterMessage("sip udp socket buffers").All()
	if len(entries) != 1 {
		t.Fatalf("%d socket buffer log entries, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	read, write := int(f["read"].(int64)), int(f["write"].(int64))
	if os.Geteuid() == 0 {
		if read < ask || write < ask || entries[0].Level != zap.InfoLevel {
			t.Errorf("as root: granted read %d write %d (%s), want ≥ %d", read, write, entries[0].Level, ask)
		}
	} else if read > limit || entries[0].Level != zap.WarnLevel {
		t.Errorf("not root: granted read %d (%s), want ≤ rmem_max %d and a warning", read, entries[0].Level, limit)
	}
}
