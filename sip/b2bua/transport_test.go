package b2bua

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/internal/testcert"
	csip "github.com/convergo/convergo/sip"
)

// flowAgent is a device that opens a connection to the b2bua's listener of
// transport tp (as a phone registering over TCP, TLS or WebSocket would)
// and then receives its calls over that connection.
func (e *env) flowAgent(name, tp string, pool *x509.CertPool) *agent {
	e.t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name),
		sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		e.t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agent{t: e.t, name: name, ua: ua, srv: srv, cli: cli, transport: tp}
	srv.OnInvite(a.handleInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { a.record(req) })
	for _, m := range []sip.RequestMethod{sip.BYE, sip.PRACK, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.REFER} {
		srv.OnRequest(m, a.handleInDialog)
	}
	e.mu.Lock()
	e.closers = append(e.closers, func() { _ = ua.Close() })
	e.mu.Unlock()

	// The connection: an OPTIONS to the b2bua's listener (csip answers it).
	server := e.addrs[tp]
	scheme := "sip"
	if tp == "tls" || tp == "wss" {
		scheme = "sips"
	}
	var ruri sip.Uri
	if err := sip.ParseUri(scheme+":"+server+";transport="+tp, &ruri); err != nil {
		e.t.Fatal(err)
	}
	req := sip.NewRequest(sip.OPTIONS, ruri)
	req.SetTransport(tp)
	req.SetDestination(server)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		e.t.Fatalf("%s: OPTIONS over %s: %v %v", name, tp, res, err)
	}
	conn, err := ua.TransportLayer().GetConnection(tp, server)
	if err != nil {
		e.t.Fatalf("%s: no %s connection to %s: %v", name, tp, server, err)
	}
	a.addr = conn.LocalAddr().String()
	_, _ = conn.TryClose() // GetConnection took a reference
	return a
}

// TestStreamBLegs: devices connected over TCP, TLS and WebSocket get their
// B-leg INVITE over the connection they opened (no new connection to their
// ephemeral port), answer, and the call is bridged and hung up over it.
func TestStreamBLegs(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	for _, tp := range []string{"tcp", "tls", "ws"} {
		t.Run(tp, func(t *testing.T) {
			e := newEnvSIP(t, csip.Config{
				Listen:  []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0", "ws:127.0.0.1:0"},
				TLSCert: certFile, TLSKey: keyFile,
			}, Config{}, nil, nil)
			d := e.flowAgent("dev1", tp, pool)
			caller := e.agent("alice")
			e.loc.set(calleeAOR, Target{AOR: calleeAOR, Key: "dev1", RequestURI: d.contact().Address.String(),
				Destination: d.addr, Transport: tp})
			u := e.answered(caller)
			inv := d.waitGot(sip.INVITE, 1)[0]
			if got := inv.Via().Transport; !strings.EqualFold(got, tp) {
				t.Errorf("INVITE arrived with Via transport %s, want %s", got, tp)
			}
			d.waitGot(sip.ACK, 1)
			if res := u.do(sip.BYE, ""); res.StatusCode != 200 {
				t.Fatalf("BYE answered %d", res.StatusCode)
			}
			d.waitGot(sip.BYE, 1)
			e.waitIdle()
		})
	}
}

// TestGoneLegEndsCall: a device whose connection is gone cannot take an
// in-dialog request: the caller's INFO gets 408 and the call is hung up
// (the caller gets a BYE), leaving nothing behind.
func TestGoneLegEndsCall(t *testing.T) {
	e := newEnv(t, Config{})
	d := e.flowAgent("dev1", "tcp", nil)
	caller := e.agent("alice")
	e.loc.set(calleeAOR, Target{AOR: calleeAOR, Key: "dev1", RequestURI: d.contact().Address.String(),
		Destination: d.addr, Transport: "tcp"})
	u := e.answered(caller)
	d.waitGot(sip.ACK, 1)
	if err := d.ua.Close(); err != nil { // the phone is gone, its connection with it
		t.Fatal(err)
	}
	// Once the b2bua has seen the connection close, a request to the device
	// needs a new connection, which is refused. (Before, a write may still
	// land in the dying socket and the request times out after 64·T1.)
	waitFor(t, "connection dropped", func() bool {
		c, err := e.sip.UA().TransportLayer().GetConnection("tcp", d.addr)
		if err == nil {
			_, _ = c.TryClose()
		}
		return err != nil
	})
	if res := u.do(sip.INFO, ""); res.StatusCode != 408 {
		t.Errorf("INFO to a gone device answered %d, want 408", res.StatusCode)
	}
	caller.waitGot(sip.BYE, 1)
	e.waitIdle()
}
