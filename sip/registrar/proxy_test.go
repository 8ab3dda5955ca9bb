package registrar

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
)

// listenTCP makes u serve a TCP listener on 127.0.0.1 (a peer that can be
// called back, e.g. node B's call control).
func (d *ua) listenTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.srv.ServeTCP(ln) })
	t.Cleanup(func() {
		_ = ln.Close()
		d.close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// registeredDevice registers a TCP device for a fresh user and returns it
// with its binding.
func registeredDevice(t *testing.T, n *node, user string) (*ua, store.Binding) {
	t.Helper()
	aor := n.addUser(user)
	d := newUA(t, "TCP")
	res := d.register(n.addr("tcp"), aor, user, auth.DigestMD5, contactLine("sip:"+user+"@10.255.0.9:5999;transport=tcp", inst1, 1, ""))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	bs := n.list(aor)
	if len(bs) != 1 {
		t.Fatalf("bindings = %+v", bs)
	}
	return d, bs[0]
}

// inviteVia sends an INVITE through route from peer and returns its transaction.
func inviteVia(t *testing.T, peer *ua, b store.Binding, route []string, contact string) (*sip.Request, sip.ClientTransaction) {
	t.Helper()
	inv := newRequest(t, sip.INVITE, b.Contact, b.AOR, route)
	for _, h := range parseHeaderLine(t, "Contact: <sip:peer@"+contact+";transport=tcp>") {
		inv.AppendHeader(h)
	}
	inv.SetTransport("TCP")
	tx, err := peer.cli.TransactionRequest(t.Context(), inv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Terminate)
	return inv, tx
}

func nextResponse(t *testing.T, tx sip.ClientTransaction) *sip.Response {
	t.Helper()
	select {
	case res := <-tx.Responses():
		return res
	case <-tx.Done():
		t.Fatalf("transaction ended: %v", tx.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("no response")
	}
	return nil
}

// trustLoopback lists 127.0.0.1 as a trusted peer: the test's "other
// node" sends from there (devices too, but they register themselves, so
// From = To keeps them in direct mode).
var trustLoopback = []string{"127.0.0.1"}

func TestInterceptProxiesDialogOverFlow(t *testing.T) {
	n := startNode(t, nodeOpts{trusted: trustLoopback})
	dev, b := registeredDevice(t, n, "kim")
	dev.answer = func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		ok := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\n"))
		ok.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "kim", Host: "10.255.0.9", Port: 5999,
			UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}})
		_ = tx.Respond(ok)
	}
	peer := newUA(t, "TCP")
	peerAddr := peer.listenTCP(t)

	// A request from "another node": Route = the Path our node stored.
	inv, tx := inviteVia(t, peer, b, b.Path[:1], peerAddr)
	var final *sip.Response
	for final == nil {
		res := nextResponse(t, tx)
		switch {
		case res.StatusCode == 180:
			if len(res.GetHeaders("Via")) != 1 {
				t.Errorf("180 carries %d Via, want only the peer's", len(res.GetHeaders("Via")))
			}
		case res.StatusCode >= 200:
			final = res
		}
	}
	if final.StatusCode != 200 {
		t.Fatalf("INVITE: %d", final.StatusCode)
	}
	got := recv(t, dev.inbox, sip.INVITE)
	if got.Route() != nil {
		t.Errorf("device got Route %s; the node must pop its own entry", got.Route().Value())
	}
	if mf := got.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards at the device = %v, want 69", mf)
	}
	if vias := got.GetHeaders("Via"); len(vias) != 2 {
		t.Errorf("device got %d Via, want the node's and the peer's", len(vias))
	}
	rr := final.RecordRoute()
	if rr == nil || !strings.Contains(rr.Value(), n.addr("tcp")) || !strings.HasPrefix(rr.Address.User, tokenPrefix) {
		t.Fatalf("200 Record-Route = %v, want the node's flow URI", rr)
	}

	// ACK and BYE follow the record-routed path back over the flow.
	routeSet := []string{rr.Value()}
	ack := newRequest(t, sip.ACK, "sip:kim@10.255.0.9:5999;transport=tcp", b.AOR, routeSet)
	copyDialog(ack, inv, final, sip.ACK)
	ack.SetTransport("TCP")
	if err := peer.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	recv(t, dev.inbox, sip.ACK)

	// The device sends a request in the dialog: it arrives over the flow and
	// goes onward to the peer's Contact.
	msg := newRequest(t, sip.MESSAGE, "sip:peer@"+peerAddr+";transport=tcp", "sip:peer@"+domain, routeSet)
	msg.SetTransport("TCP")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := dev.cli.Do(ctx, msg)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("in-dialog MESSAGE from the device: %v, %v", res, err)
	}
	if m := recv(t, peer.inbox, sip.MESSAGE); m.Source() == "" {
		t.Fatal("no source")
	}

	bye := newRequest(t, sip.BYE, "sip:kim@10.255.0.9:5999;transport=tcp", b.AOR, routeSet)
	copyDialog(bye, inv, final, sip.BYE)
	bye.CSeq().SeqNo = 2
	bye.SetTransport("TCP")
	ctx2, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	if res, err := peer.cli.Do(ctx2, bye); err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE: %v, %v", res, err)
	}
	recv(t, dev.inbox, sip.BYE)
}

// copyDialog gives req the dialog identifiers of inv and its 2xx.
func copyDialog(req, inv *sip.Request, res *sip.Response, method sip.RequestMethod) {
	req.ReplaceHeader(sip.HeaderClone(inv.From()))
	req.ReplaceHeader(sip.HeaderClone(res.To()))
	req.ReplaceHeader(sip.HeaderClone(inv.CallID()))
	req.ReplaceHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
}

func TestInterceptCancel(t *testing.T) {
	n := startNode(t, nodeOpts{trusted: trustLoopback})
	dev, b := registeredDevice(t, n, "lou")
	cancelled := make(chan struct{})
	dev.answer = func(req *sip.Request, tx sip.ServerTransaction) {
		tx.OnCancel(func(*sip.Request) { close(cancelled) })
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		select {
		case <-cancelled:
		case <-tx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	peer := newUA(t, "TCP")
	inv, tx := inviteVia(t, peer, b, b.Path[:1], "127.0.0.1:9")
	for res := nextResponse(t, tx); res.StatusCode != 180; res = nextResponse(t, tx) {
		if res.StatusCode >= 200 {
			t.Fatalf("final %d before CANCEL", res.StatusCode)
		}
	}
	cancel := sip.NewRequest(sip.CANCEL, inv.Recipient)
	cancel.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range inv.GetHeaders("Route") {
		cancel.AppendHeader(sip.HeaderClone(h))
	}
	cancel.AppendHeader(sip.HeaderClone(inv.From()))
	cancel.AppendHeader(sip.HeaderClone(inv.To()))
	cancel.AppendHeader(sip.HeaderClone(inv.CallID()))
	cancel.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	cancel.AppendHeader(&mf)
	cancel.SetTransport("TCP")
	cancel.SetDestination(inv.Destination())
	ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
	defer stop()
	if res, err := peer.cli.Do(ctx, cancel); err != nil || res.StatusCode != 200 {
		t.Fatalf("CANCEL: %v, %v", res, err)
	}
	if res := nextResponse(t, tx); res.StatusCode != 487 {
		t.Fatalf("INVITE final = %d, want 487", res.StatusCode)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the device never saw the CANCEL")
	}
}

func TestInterceptFlowFailed(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{SweepInterval: time.Hour}, trusted: trustLoopback}) // no sweep: Intercept must notice itself
	dev, b := registeredDevice(t, n, "mia")
	addr, _, _, _ := n.reg.self()
	peer := newUA(t, "TCP")
	send := func(route string) *sip.Response {
		req := newRequest(t, sip.MESSAGE, b.Contact, b.AOR, []string{route})
		req.SetTransport("TCP")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		res, err := peer.cli.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// A token for a binding nobody registered.
	if res := send(flowURI(addr, b.AOR, "urn:uuid:none", false, true)); res.StatusCode != 430 || res.Reason != "Flow Failed" {
		t.Fatalf("unknown flow: %d %q, want 430 Flow Failed", res.StatusCode, res.Reason)
	}
	// A Route to this node without a token is not ours to proxy.
	if res := send("<sip:" + n.addr("tcp") + ";transport=tcp;lr>"); res.StatusCode != 404 {
		t.Fatalf("plain route: %d, want the fallback's 404", res.StatusCode)
	}
	recv(t, n.fallback, sip.MESSAGE)
	// A stranger (127.0.0.2 is not trusted) may not use the flow route to
	// reach the device past call control.
	raw := "MESSAGE " + b.Contact + " SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bK-stranger\r\n" +
		"Route: " + b.Path[0] + "\r\nMax-Forwards: 70\r\nFrom: <sip:spam@example.org>;tag=s\r\nTo: <" + b.AOR + ">\r\n" +
		"Call-ID: stranger\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
	if res := sendFrom(t, "127.0.0.2", n.addr("udp"), raw); res.StatusCode != 403 {
		t.Fatalf("untrusted flow route: %d %q, want 403", res.StatusCode, res.Reason)
	}
	select {
	case req := <-dev.inbox:
		t.Fatalf("the device received %s from a stranger", req.Method)
	case <-time.After(100 * time.Millisecond):
	}
	// The device's connection closes: 430 at once.
	dev.close()
	eventually(t, 5*time.Second, "flow closed", func() bool { return !n.reg.flowAlive(b.Transport, b.Received) })
	if res := send(b.Path[0]); res.StatusCode != 430 {
		t.Fatalf("closed flow: %d %q, want 430", res.StatusCode, res.Reason)
	}
}

func TestFlowToken(t *testing.T) {
	for _, tc := range []struct{ aor, key string }{
		{"sip:alice@example.net", inst1 + ";reg-id=1"},
		{"sip:b@x", "sip:b@192.0.2.1:5060;transport=tcp"},
	} {
		tok := flowToken(tc.aor, tc.key)
		if strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Errorf("token %q has characters outside the URI user unreserved set", tok)
		}
		aor, key, ok := parseFlowToken(tok)
		if !ok || aor != tc.aor || key != tc.key {
			t.Errorf("parseFlowToken(%q) = %q, %q, %v", tok, aor, key, ok)
		}
	}
	for _, bad := range []string{"", "cvg-", "cvg-!!!", "alice", tokenPrefix + "YQ"} {
		if _, _, ok := parseFlowToken(bad); ok {
			t.Errorf("parseFlowToken(%q) accepted", bad)
		}
	}
}

// TestInterceptTimerC: a device that rings for ever is cancelled after
// ProxyTimeout and the caller gets 408.
func TestInterceptTimerC(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{ProxyTimeout: 300 * time.Millisecond}, trusted: trustLoopback})
	dev, b := registeredDevice(t, n, "otto")
	cancelled := make(chan struct{})
	dev.answer = func(req *sip.Request, tx sip.ServerTransaction) {
		tx.OnCancel(func(*sip.Request) { close(cancelled) })
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		select {
		case <-cancelled:
		case <-tx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	peer := newUA(t, "TCP")
	_, tx := inviteVia(t, peer, b, b.Path[:1], "127.0.0.1:9")
	var final *sip.Response
	for final == nil {
		if res := nextResponse(t, tx); res.StatusCode >= 200 {
			final = res
		}
	}
	if final.StatusCode != 408 {
		t.Fatalf("final = %d %s, want 408 after the proxy timeout", final.StatusCode, final.Reason)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the ringing device was never cancelled")
	}
}
