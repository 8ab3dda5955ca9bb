package registrar

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/auth"
)

// sendFromNode sends req from the node's own user agent (as call control
// or messaging would) to a target and returns the final response.
func sendFromNode(t *testing.T, n *node, tg Target, method sip.RequestMethod) (*sip.Response, error) {
	t.Helper()
	cli := newNodeClient(t, n)
	req := newRequest(t, method, tg.RequestURI, tg.AOR, tg.Route)
	if tg.Destination != "" {
		req.SetDestination(tg.Destination)
	}
	req.SetTransport(strings.ToUpper(tg.Transport))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return cli.Do(ctx, req)
}

// newNodeClient is a client on the node's own user agent.
func newNodeClient(t *testing.T, n *node) *sipgo.Client {
	t.Helper()
	cli, err := sipgo.NewClient(n.srv.UA(), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// newRequest builds an out-of-dialog request with a preloaded route set.
func newRequest(t *testing.T, method sip.RequestMethod, ruri, to string, route []string) *sip.Request {
	t.Helper()
	var u, toURI sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		t.Fatal(err)
	}
	if err := sip.ParseUri(to, &toURI); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(method, u)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "node", Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: toURI})
	cid := sip.CallIDHeader(sip.GenerateTagN(16))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	for _, r := range route {
		for _, h := range parseHeaderLine(t, "Route: "+r) {
			req.AppendHeader(h)
		}
	}
	if method == sip.MESSAGE {
		req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		req.SetBody([]byte("hello"))
	}
	return req
}

func recv(t *testing.T, inbox <-chan *sip.Request, method sip.RequestMethod) *sip.Request {
	t.Helper()
	select {
	case req := <-inbox:
		if req.Method != method {
			t.Fatalf("got %s, want %s", req.Method, method)
		}
		return req
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s arrived", method)
		return nil
	}
}

func TestFlowTCPReusedThenClosed(t *testing.T) {
	n := startNode(t, nodeOpts{})
	aor := n.addUser("ivan")
	d := newUA(t, "TCP")
	res := d.register(n.addr("tcp"), aor, "ivan", auth.DigestMD5,
		contactLine("sip:ivan@10.255.0.1:5999;transport=tcp;ob", inst1, 1, ""), "Supported: outbound")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	n.drainEvents()

	targets, err := n.reg.Targets(t.Context(), aor)
	if err != nil || len(targets) != 1 {
		t.Fatalf("Targets = %+v, %v", targets, err)
	}
	tg := targets[0]
	if tg.Transport != "tcp" || tg.Destination == "" || len(tg.Route) != 0 {
		t.Fatalf("target = %+v, want the TCP flow as destination", tg)
	}
	// The contact (10.255.0.1:5999) is unreachable: the MESSAGE arrives
	// only because sipgo sends it over the connection the device opened.
	res, err = sendFromNode(t, n, tg, sip.MESSAGE)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE over the flow: %v, %v", res, err)
	}
	got := recv(t, d.inbox, sip.MESSAGE)
	if got.Source() != n.addr("tcp") || got.Transport() != "TCP" {
		t.Fatalf("MESSAGE came from %s over %s, want the listener %s over the registered TCP connection",
			got.Source(), got.Transport(), n.addr("tcp"))
	}

	// The device goes away: its flow is no longer a target, and Run removes
	// the binding with a Removed event.
	d.close()
	eventually(t, 5*time.Second, "closed flow left out of Targets", func() bool {
		ts, err := n.reg.Targets(t.Context(), aor)
		return err == nil && len(ts) == 0
	})
	ev, ok := n.nextEvent(5 * time.Second)
	if !ok || ev.Kind != Removed || ev.Binding.Instance != inst1 {
		t.Fatalf("event = %+v, %v; want Removed for the closed flow", ev, ok)
	}
	if bs := n.list(aor); len(bs) != 0 {
		t.Fatalf("binding of the closed flow still stored: %+v", bs)
	}
}

func TestFlowUDPBindingReachedAtReceivedAddress(t *testing.T) {
	n := startNode(t, nodeOpts{})
	aor := n.addUser("judy")
	d := newUA(t, "UDP")
	// The Contact names an address nobody listens on (a NATed device).
	if res := d.register(n.addr("udp"), aor, "judy", auth.DigestMD5, contactLine("sip:judy@10.255.0.2:5060", inst2, 0, "")); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	targets, err := n.reg.Targets(t.Context(), aor)
	if err != nil || len(targets) != 1 || targets[0].Transport != "udp" {
		t.Fatalf("Targets = %+v, %v", targets, err)
	}
	res, err := sendFromNode(t, n, targets[0], sip.MESSAGE)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %v, %v", res, err)
	}
	if got := recv(t, d.inbox, sip.MESSAGE); got.Source() != n.addr("udp") {
		t.Fatalf("MESSAGE came from %s, want the UDP listener %s (NAT pinhole)", got.Source(), n.addr("udp"))
	}
}

func TestKeepAlives(t *testing.T) {
	n := startNode(t, nodeOpts{})
	// RFC 5626 §3.5.1: CRLFCRLF on TCP gets a CRLF pong.
	c, err := net.Dial("tcp", n.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 16)
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "\r\n" {
		t.Fatalf("pong = %q, %v; want CRLF", buf[:k], err)
	}
	// The connection still carries SIP after the ping.
	if _, err := c.Write([]byte(optionsRaw("TCP", c.LocalAddr().String()))); err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 4096)
	if k, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:k]), "SIP/2.0 ") {
		t.Fatalf("OPTIONS after ping: %q, %v", buf[:k], err)
	}

	// UDP keep-alives are absorbed and do not disturb the socket.
	u, err := net.Dial("udp", n.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, ka := range []string{"\r\n\r\n", "\r\n"} {
		if _, err := u.Write([]byte(ka)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.Write([]byte(optionsRaw("UDP", u.LocalAddr().String()))); err != nil {
		t.Fatal(err)
	}
	_ = u.SetReadDeadline(time.Now().Add(3 * time.Second))
	rb := make([]byte, 4096)
	k, err := u.Read(rb)
	if err != nil || !strings.HasPrefix(string(rb[:k]), "SIP/2.0 ") || !strings.Contains(string(rb[:k]), "CSeq: 1 OPTIONS") {
		t.Fatalf("OPTIONS after UDP keep-alives: %q, %v (the keep-alive itself must get no answer)", rb[:k], err)
	}
}

func optionsRaw(transport, local string) string {
	return "OPTIONS sip:" + domain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " " + local + ";rport;branch=z9hG4bK-ka" + sip.GenerateTagN(6) + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:ka@" + domain + ">;tag=k1\r\nTo: <sip:" + domain + ">\r\n" +
		"Call-ID: ka-" + sip.GenerateTagN(8) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
}
