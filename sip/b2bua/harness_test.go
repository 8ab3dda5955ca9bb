package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// testRequestTimeout replaces sipgo's 64·T1 (32 s) request timeouts
// (Timers B and F) so that a leg that stops answering times out within a
// test; no device in these tests takes longer than a few milliseconds.
const testRequestTimeout = 2 * time.Second

// TestMain runs the tests with the production transaction wait and
// shorter request timeouts, set before any SIP traffic (sipgo's timers
// are unsynchronised package variables).
func TestMain(m *testing.M) {
	csip.SetTransactionWait(csip.DefaultTransactionWait)
	sip.Timer_B, sip.Timer_F = testRequestTimeout, testRequestTimeout
	goleak.VerifyTestMain(m)
}

const (
	callerSDP = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	deviceSDP = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
	calleeAOR = "sip:bob@convergo.test"
)

// mapLocator is the edge of the system under test: AOR → targets.
type mapLocator struct {
	mu  sync.Mutex
	m   map[string][]Target
	err error
}

func (l *mapLocator) Targets(_ context.Context, aor string) ([]Target, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return l.m[aor], nil
}

func (l *mapLocator) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

func (l *mapLocator) set(aor string, ts ...Target) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[aor] = ts
}

// env is a csip.Server on loopback running the b2bua's handlers.
type env struct {
	t       testing.TB
	sip     *csip.Server
	b       *Server
	loc     *mapLocator
	udp     string
	addrs   map[string]string // transport -> listener address
	reg     *prometheus.Registry
	mu      sync.Mutex
	closers []func()
	quiet   []func()
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil, nil)
}

func newEnvWith(t testing.TB, cfg Config, anchor Anchor, cls Classifier) *env {
	t.Helper()
	return newEnvSIP(t, csip.Config{Listen: []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}}, cfg, anchor, cls)
}

// newEnvSIP is newEnvWith on the listeners of sc.
func newEnvSIP(t testing.TB, sc csip.Config, cfg Config, anchor Anchor, cls Classifier) *env {
	t.Helper()
	sc.DrainTimeout = time.Second
	srv, err := csip.New(sc, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("csip.New: %v", err)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}
	e := &env{t: t, sip: srv, loc: &mapLocator{m: map[string][]Target{}}, reg: prometheus.NewRegistry()}
	e.b, err = New(cfg, srv.UA(), e.loc, cls, anchor, zap.NewNop(), e.reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.OnStrayResponse(e.b.OnStrayResponse)
	for m, h := range e.b.Handlers() {
		if err := srv.Handle(m, h); err != nil {
			t.Fatalf("Handle %s: %v", m, err)
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- srv.Run(sctx) }()
	select {
	case <-srv.Ready():
	case err := <-sdone:
		t.Fatalf("csip Run: %v", err)
	}
	var ls []Listener
	e.addrs = map[string]string{}
	for _, l := range srv.Addrs() {
		ls = append(ls, Listener{Transport: l.Transport, Addr: l.Addr})
		if l.Transport == "udp" {
			e.udp = l.Addr
		}
		e.addrs[l.Transport] = l.Addr
	}
	if err := e.b.Bind(ls); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	bctx, bcancel := context.WithCancel(context.Background())
	bdone := make(chan error, 1)
	go func() { bdone <- e.b.Run(bctx) }()
	t.Cleanup(func() {
		// Let in-flight messages (a caller's ACK to a final response) land
		// first: sipgo handles a datagram read just before its listener
		// closes after the user agent is closed, and opens a socket that
		// leaks.
		e.mu.Lock()
		quiet := e.quiet
		e.mu.Unlock()
		for _, q := range quiet {
			q()
		}
		bcancel()
		if err := <-bdone; err != nil {
			t.Errorf("b2bua Run: %v", err)
		}
		scancel()
		if err := <-sdone; err != nil {
			t.Errorf("csip Run: %v", err)
		}
		e.mu.Lock()
		closers := e.closers
		e.mu.Unlock()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	})
	return e
}

// waitIdle waits until the b2bua holds no call and no dialog: nothing is
// left behind.
func (e *env) waitIdle() {
	e.t.Helper()
	waitFor(e.t, "b2bua idle", func() bool { return e.b.Active() == 0 && e.b.index.len() == 0 })
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agent is a real sipgo user agent with its own UDP listener: a device
// (UAS) or the caller.
type agent struct {
	t    testing.TB
	name string
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	addr string
	// transport is set for agents on a connection (tcp, tls, ws): their
	// Contact carries it.
	transport string
	wpc       *wirePC // UDP agents: their socket

	mu   sync.Mutex
	reqs []*sip.Request // every request received (handler order)
	wire []string       // methods of the requests received, in socket order
	// quietRecord turns recording off (benchmarks); set before traffic.
	quietRecord bool

	// onInvite handles initial INVITEs (devices); nil answers 200 at once.
	// inDialog answers in-dialog requests other than ACK; nil answers 200
	// (with an SDP for INVITE). Both are guarded by mu.
	onInvite func(a *agent, req *sip.Request, tx sip.ServerTransaction)
	inDialog func(a *agent, req *sip.Request, tx sip.ServerTransaction)

	dlgMu  sync.Mutex
	dialog *agentDialog // the last dialog we took part in (device side)
}

// agentDialog is what a device needs to send requests on its dialog.
type agentDialog struct {
	callID string
	local  sip.FromHeader
	remote sip.ToHeader
	target sip.Uri
	cseq   uint32
}

func (e *env) agent(name string) *agent {
	e.t.Helper()
	return e.newAgent(name, false)
}

// newAgent starts an agent; quiet ones record nothing (benchmarks).
func (e *env) newAgent(name string, quiet bool) *agent {
	e.t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name))
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		e.t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_, port, _ := net.SplitHostPort(addr)
	var p int
	_, _ = fmt.Sscan(port, &p)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(p), sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agent{t: e.t, name: name, ua: ua, srv: srv, cli: cli, addr: addr, quietRecord: quiet}
	srv.OnInvite(a.handleInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { a.record(req) })
	for _, m := range []sip.RequestMethod{sip.BYE, sip.PRACK, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.REFER} {
		srv.OnRequest(m, a.handleInDialog)
	}
	done := make(chan struct{})
	wpc := &wirePC{PacketConn: pc, a: a}
	a.wpc = wpc
	go func() { defer close(done); _ = srv.ServeUDP(wpc) }()
	// The client sends from the listener socket: wait until sipgo has it.
	waitFor(e.t, name+" listening", func() bool {
		c, err := ua.TransportLayer().GetConnection("udp", addr)
		if err == nil {
			_, _ = c.TryClose()
		}
		return err == nil
	})
	e.mu.Lock()
	e.quiet = append(e.quiet, wpc.quiesce)
	e.closers = append(e.closers, func() {
		wpc.quiesce()
		_ = pc.Close()
		<-done
		_ = ua.Close()
	})
	e.mu.Unlock()
	return a
}

// wirePC records the method of every request read from the socket, in
// order: sipgo handles each message on its own goroutine, so handler order
// is not wire order.
type wirePC struct {
	net.PacketConn
	a    *agent
	last atomic.Int64 // unix nanos of the last datagram read
	deaf atomic.Bool  // drop every datagram read: the device is unreachable
	// dropAcks drops this many ACKs read (a lossy path); finals counts the
	// final responses (status ≥ 300) written, retransmissions included.
	dropAcks atomic.Int32
	finals   atomic.Int32
}

// quiesce waits until nothing was read or written for 100ms (at most 2s):
// sipgo handles each datagram on a goroutine nobody waits for, and one that
// runs after the listener closed opens a fresh socket that leaks.
func (w *wirePC) quiesce() {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && time.Since(time.Unix(0, w.last.Load())) < 100*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
}

// dropAck takes one from dropAcks, if any is left.
func (w *wirePC) dropAck() bool {
	for {
		n := w.dropAcks.Load()
		if n <= 0 {
			return false
		}
		if w.dropAcks.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (w *wirePC) WriteTo(b []byte, addr net.Addr) (int, error) {
	w.last.Store(time.Now().UnixNano())
	if len(b) > 12 && string(b[:8]) == "SIP/2.0 " && b[8] >= '3' {
		w.finals.Add(1)
	}
	return w.PacketConn.WriteTo(b, addr)
}

func (w *wirePC) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := w.PacketConn.ReadFrom(b)
	w.last.Store(time.Now().UnixNano())
	for err == nil && (w.deaf.Load() || (n > 4 && string(b[:4]) == "ACK " && w.dropAck())) {
		n, addr, err = w.PacketConn.ReadFrom(b)
		w.last.Store(time.Now().UnixNano())
	}
	if err == nil && n > 0 && !w.a.quietRecord && !strings.HasPrefix(string(b[:min(n, 8)]), "SIP/2.0") {
		if i := strings.IndexByte(string(b[:min(n, 16)]), ' '); i > 0 {
			w.a.mu.Lock()
			w.a.wire = append(w.a.wire, string(b[:i]))
			w.a.mu.Unlock()
		}
	}
	return n, addr, err
}

// wireMethods returns the methods received, in socket order.
func (a *agent) wireMethods() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.wire...)
}

// device registers a as a binding of the callee.
func (e *env) devices(ds ...*agent) {
	var ts []Target
	for _, d := range ds {
		ts = append(ts, Target{AOR: calleeAOR, Key: d.name, RequestURI: "sip:bob@" + d.addr, Destination: d.addr, Transport: "udp"})
	}
	e.loc.set(calleeAOR, ts...)
}

// handle sets the INVITE and in-dialog behaviour (nil keeps the default).
func (a *agent) handle(onInvite, inDialog func(a *agent, req *sip.Request, tx sip.ServerTransaction)) {
	a.mu.Lock()
	a.onInvite, a.inDialog = onInvite, inDialog
	a.mu.Unlock()
}

func (a *agent) record(req *sip.Request) {
	if a.quietRecord {
		return
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
}

// got returns the requests of method received so far.
func (a *agent) got(method sip.RequestMethod) []*sip.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*sip.Request
	for _, r := range a.reqs {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// waitGot waits until a received n requests of method and returns them.
func (a *agent) waitGot(method sip.RequestMethod, n int) []*sip.Request {
	a.t.Helper()
	waitFor(a.t, fmt.Sprintf("%s to receive %d %s", a.name, n, method), func() bool { return len(a.got(method)) >= n })
	return a.got(method)
}

func (a *agent) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To().Params) != "" {
		a.handleInDialog(req, tx)
		return
	}
	a.record(req)
	tx.OnCancel(func(r *sip.Request) { a.record(r) })
	a.mu.Lock()
	h := a.onInvite
	a.mu.Unlock()
	if h != nil {
		h(a, req, tx)
		return
	}
	uas := newUAS(a, req, tx)
	uas.respond(200, deviceSDP)
}

func (a *agent) handleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	a.record(req)
	a.mu.Lock()
	h := a.inDialog
	a.mu.Unlock()
	if h != nil {
		h(a, req, tx)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if req.IsInvite() {
		res.AppendHeader(a.contact())
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(deviceSDP))
	}
	_ = tx.Respond(res)
}

func (a *agent) contact() *sip.ContactHeader {
	host, port, _ := net.SplitHostPort(a.addr)
	var p int
	_, _ = fmt.Sscan(port, &p)
	u := sip.Uri{Scheme: "sip", User: a.name, Host: host, Port: p}
	if a.transport != "" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: a.transport}}
	}
	return &sip.ContactHeader{Address: u}
}

// uas answers one INVITE with a single To tag (sipgo would make a new one
// per response).
type uas struct {
	a   *agent
	req *sip.Request // tagged clone
	tx  sip.ServerTransaction
}

func newUAS(a *agent, req *sip.Request, tx sip.ServerTransaction) *uas {
	r := req.Clone()
	r.To().Params.Add("tag", sip.GenerateTagN(8))
	u := &uas{a: a, req: r, tx: tx}
	a.dlgMu.Lock()
	a.dialog = &agentDialog{
		callID: r.CallID().Value(),
		local:  r.To().AsFrom(),
		remote: r.From().AsTo(),
		target: r.Contact().Address,
	}
	a.dlgMu.Unlock()
	return u
}

func (u *uas) respond(code int, sdp string, hdrs ...sip.Header) error {
	res := sip.NewResponseFromRequest(u.req, code, defaultReason(code), nil)
	if code > 100 && code < 300 {
		res.AppendHeader(u.a.contact())
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if sdp != "" {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(sdp))
	}
	return u.tx.Respond(res)
}

// cancelled reports whether the device got a CANCEL for this INVITE.
func (u *uas) waitCancelOrDone(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		for _, r := range u.a.got(sip.CANCEL) {
			if r.CallID().Value() == u.req.CallID().Value() {
				return
			}
		}
		select {
		case <-u.tx.Done():
			return
		case <-t.C:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ringForever answers 180 and waits for the CANCEL (sipgo answers 487).
func ringForever(a *agent, req *sip.Request, tx sip.ServerTransaction) {
	u := newUAS(a, req, tx)
	_ = u.respond(180, "")
	u.waitCancelOrDone(10 * time.Second)
}

// ringThenAnswer answers 180, then 200 after d.
func ringThenAnswer(d time.Duration) func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
	return func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		_ = u.respond(180, "")
		time.Sleep(d)
		_ = u.respond(200, deviceSDP)
	}
}

// reject answers code at once.
func reject(code int) func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
	return func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = newUAS(a, req, tx).respond(code, "")
	}
}

// request sends an in-dialog request from a device on its last dialog.
func (a *agent) request(method sip.RequestMethod, body string) (*sip.Response, error) {
	a.dlgMu.Lock()
	d := a.dialog
	d.cseq++
	req := sip.NewRequest(method, d.target)
	req.AppendHeader(sip.HeaderClone(&d.local))
	req.AppendHeader(sip.HeaderClone(&d.remote))
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	a.dlgMu.Unlock()
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(a.contact())
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := a.cli.Do(ctx, req)
	if err == nil && method == sip.INVITE && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, res.Contact().Address)
		ack.AppendHeader(sip.HeaderClone(req.From()))
		ack.AppendHeader(sip.HeaderClone(res.To()))
		ack.AppendHeader(sip.HeaderClone(req.CallID()))
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
		mf := sip.MaxForwardsHeader(70)
		ack.AppendHeader(&mf)
		err = a.cli.WriteRequest(ack)
	}
	return res, err
}

// uac is one call placed by the caller agent.
type uac struct {
	a      *agent
	cli    *sipgo.Client
	inv    *sip.Request
	tx     sip.ClientTransaction
	resps  chan *sip.Response
	final  *sip.Response
	retx   atomic.Int32 // 2xx retransmissions seen
	trying atomic.Int32 // 100 Trying seen (not passed on)
	cseq   uint32
	remote *sip.ToHeader
	target sip.Uri
}

// call sends an INVITE for the callee to the b2bua.
func (e *env) call(a *agent, sdp string, hdrs ...sip.Header) *uac {
	e.t.Helper()
	return e.callTo(a, calleeAOR, e.udp, sdp, hdrs...)
}

func (e *env) callTo(a *agent, ruri, dest, sdp string, hdrs ...sip.Header) *uac {
	e.t.Helper()
	return e.callVia(a, a.cli, "", ruri, dest, sdp, hdrs...)
}

// callVia places a call with client cli over transport tp ("" = UDP).
func (e *env) callVia(a *agent, cli *sipgo.Client, tp, ruri, dest, sdp string, hdrs ...sip.Header) *uac {
	e.t.Helper()
	var uri sip.Uri
	if err := sip.ParseUri(ruri, &uri); err != nil {
		e.t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(&sip.FromHeader{DisplayName: "Alice", Address: sip.Uri{Scheme: "sip", User: "alice", Host: "convergo.test"},
		Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uri.User, Host: uri.Host}})
	cid := sip.CallIDHeader("caller-" + sip.GenerateTagN(12))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 100, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(a.contact())
	req.AppendHeader(sip.NewHeader("Supported", "100rel, timer"))
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if sdp != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(sdp))
	}
	req.SetDestination(dest)
	if tp != "" {
		req.SetTransport(tp)
	}
	u := &uac{a: a, cli: cli, inv: req, resps: make(chan *sip.Response, 32), cseq: 100}
	tx, err := cli.TransactionRequest(context.Background(), req)
	if err != nil {
		e.t.Fatalf("send INVITE: %v", err)
	}
	u.tx = tx
	tx.OnRetransmission(func(res *sip.Response) {
		if res.IsSuccess() {
			u.retx.Add(1)
		}
	})
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if res.StatusCode == 100 {
					u.trying.Add(1) // hop by hop; tests look at the rest
					continue
				}
				u.resps <- res
				if res.StatusCode >= 200 {
					return
				}
			case <-tx.Done():
				close(u.resps)
				return
			}
		}
	}()
	return u
}

// next returns the next response to the INVITE.
func (u *uac) next() *sip.Response {
	u.a.t.Helper()
	select {
	case res, ok := <-u.resps:
		if !ok {
			u.a.t.Fatalf("INVITE transaction ended: %v", u.tx.Err())
		}
		return res
	case <-time.After(5 * time.Second):
		u.a.t.Fatal("no response to INVITE")
	}
	return nil
}

// finalResponse skips provisionals and returns the final response; it
// returns the provisionals seen too.
func (u *uac) finalResponse() (*sip.Response, []*sip.Response) {
	u.a.t.Helper()
	var prov []*sip.Response
	for {
		res := u.next()
		if res.StatusCode >= 200 {
			u.final = res
			if res.IsSuccess() {
				u.remote = sip.HeaderClone(res.To()).(*sip.ToHeader)
				u.target = res.Contact().Address
			}
			return res, prov
		}
		prov = append(prov, res)
	}
}

// ack ACKs the 2xx (CSeq of the INVITE being acknowledged).
func (u *uac) ack(cseq uint32, body string) {
	u.a.t.Helper()
	req := u.inDialog(sip.ACK, cseq, body)
	if err := u.cli.WriteRequest(req); err != nil {
		u.a.t.Fatalf("send ACK: %v", err)
	}
}

// inDialog builds a request on the caller's dialog.
func (u *uac) inDialog(method sip.RequestMethod, cseq uint32, body string) *sip.Request {
	req := sip.NewRequest(method, u.target)
	req.AppendHeader(sip.HeaderClone(u.inv.From()))
	req.AppendHeader(sip.HeaderClone(u.remote))
	req.AppendHeader(sip.HeaderClone(u.inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(u.a.contact())
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(body))
	}
	return req
}

// do sends an in-dialog request with the next CSeq and waits for its final
// response.
func (u *uac) do(method sip.RequestMethod, body string) *sip.Response {
	u.a.t.Helper()
	u.cseq++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := u.cli.Do(ctx, u.inDialog(method, u.cseq, body))
	if err != nil {
		u.a.t.Fatalf("%s: %v", method, err)
	}
	return res
}

// cancel sends a CANCEL for the INVITE and returns its response.
func (u *uac) cancel() *sip.Response {
	u.a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := u.cli.Do(ctx, sipmsg.Cancel(u.inv, nil))
	if err != nil {
		u.a.t.Fatalf("CANCEL: %v", err)
	}
	return res
}

// answered places a call that device d answers, ACKs it and returns it.
func (e *env) answered(caller *agent) *uac {
	e.t.Helper()
	u := e.call(caller, callerSDP)
	res, _ := u.finalResponse()
	if res.StatusCode != 200 {
		e.t.Fatalf("call answered %d, want 200", res.StatusCode)
	}
	u.ack(100, "")
	return u
}

// statusErr is a Locator error carrying its SIP status.
type statusErr struct{ code int }

func (e statusErr) Error() string            { return fmt.Sprintf("status %d", e.code) }
func (e statusErr) SIPStatus() (int, string) { return e.code, "Not Found" }

var _ = errors.New

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var p int
	_, _ = fmt.Sscan(port, &p)
	return host, p
}
