package registrar

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/convergo/convergo/auth"
	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	domain   = "convergo.test"
	password = "correct horse battery staple"
)

// authAdapter is the adapter cmd/convergo uses: *auth.SIPAuth behind the
// registrar's Authenticator, failures carried as StatusError.
type authAdapter struct{ a *auth.SIPAuth }

func (x authAdapter) Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (Identity, error) {
	p, err := x.a.Authenticate(ctx, req, src)
	if err != nil {
		var se *auth.SIPError
		if errors.As(err, &se) {
			return Identity{}, &StatusError{Code: se.Code, Reason: se.Reason, Headers: se.Headers, Err: err}
		}
		return Identity{}, err
	}
	return Identity{UserID: p.User.ID, AOR: p.User.Identity, Device: p.Device, Expires: p.Expires}, nil
}

// node is one convergo node under test: csip.Server + isc + registrar.
type node struct {
	t      *testing.T
	name   string
	acfg   auth.Config
	st     store.Store
	srv    *csip.Server
	reg    *Registrar
	auth   *auth.Service
	events chan Event
	// fallback receives requests that Intercept passes on (not for a flow).
	fallback chan *sip.Request
}

type nodeOpts struct {
	cfg      Config
	store    store.Store // nil: a fresh bolt file
	trusted  []string
	name     string
	authCfg  auth.Config
	handlers map[sip.RequestMethod]Handler // behind Intercept instead of the fallback recorder
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(bolt.Config{Path: filepath.Join(t.TempDir(), "convergo.db")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func startNode(t *testing.T, o nodeOpts) *node {
	t.Helper()
	st, sole := o.store, false
	if st == nil {
		st, sole = openBolt(t), true // this node's own file, as in production
	}
	acfg := o.authCfg
	if acfg.AutoKeyFile == "" {
		acfg.AutoKeyFile = filepath.Join(t.TempDir(), "jwt.pem")
	}
	acfg.Argon2 = auth.Argon2Config{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	acfg.RateLimit.MaxFailures = 1000
	as, err := auth.New(acfg, st.Users(), st.Tokens(), zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := csip.New(csip.Config{Listen: []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}, Domain: domain},
		zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	trust, err := isc.New(isc.Config{TrustedPeers: o.trusted}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.cfg
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 50 * time.Millisecond
	}
	reg, err := New(cfg, Deps{
		Bindings: st.Bindings(), Sweeper: st.Bindings(), Users: st.Users(), Auth: authAdapter{as.SIP()},
		UA: srv.UA(), Node: o.name, SoleWriter: sole,
		Listeners: func() []Listener {
			var out []Listener
			for _, l := range srv.Addrs() {
				out = append(out, Listener{Transport: l.Transport, Addr: l.Addr})
			}
			return out
		},
	}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: o.name, acfg: acfg, st: st, srv: srv, reg: reg, auth: as,
		events: make(chan Event, 64), fallback: make(chan *sip.Request, 16)}
	unsubscribe := reg.Subscribe(func(ev Event) {
		select {
		case n.events <- ev:
		default:
			t.Errorf("event channel full, dropped %v", ev.Kind)
		}
	})
	t.Cleanup(unsubscribe)
	fallback := func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		n.fallback <- req
		if req.IsAck() {
			return nil
		}
		return tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Here", nil))
	}
	if err := srv.Handle(sip.REGISTER, trust.Middleware(reg.OnRegister)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.MESSAGE, sip.OPTIONS, sip.INFO, sip.NOTIFY, sip.SUBSCRIBE, sip.UPDATE} {
		h := Handler(fallback)
		if custom, ok := o.handlers[m]; ok {
			h = custom
		}
		if err := srv.Handle(m, trust.Middleware(reg.Intercept(h))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- srv.Run(ctx) })
	wg.Go(func() { errs <- reg.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("run: %v", err)
			}
		}
	})
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready")
	}
	return n
}

func (n *node) addr(transport string) string {
	for _, l := range n.srv.Addrs() {
		if l.Transport == transport {
			return l.Addr
		}
	}
	n.t.Fatalf("no %s listener", transport)
	return ""
}

// addUser creates an account with the test password.
func (n *node) addUser(id string) string {
	n.t.Helper()
	return n.addUserPassword(id, password)
}

// addUserPassword creates an account sip:id@domain with a Digest password.
func (n *node) addUserPassword(id, pass string) string {
	n.t.Helper()
	u := store.User{ID: id, Identity: "sip:" + id + "@" + domain, Created: time.Now(), Updated: time.Now()}
	if err := auth.SetPassword(&u, pass, n.acfg); err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.st.Users().Create(n.t.Context(), u); err != nil {
		n.t.Fatal(err)
	}
	return u.Identity
}

func (n *node) list(aor string) []store.Binding {
	n.t.Helper()
	bs, err := n.st.Bindings().List(n.t.Context(), aor)
	if err != nil {
		n.t.Fatal(err)
	}
	return bs
}

// nextEvent waits for the next binding event.
func (n *node) nextEvent(wait time.Duration) (Event, bool) {
	select {
	case ev := <-n.events:
		return ev, true
	case <-time.After(wait):
		return Event{}, false
	}
}

// drainEvents returns the events already delivered.
func (n *node) drainEvents() []Event {
	var out []Event
	for {
		select {
		case ev := <-n.events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// ua is a SIP device or peer: a sipgo user agent with a client and a
// server that records requests arriving on its connections.
type ua struct {
	t         *testing.T
	ua        *sipgo.UserAgent
	cli       *sipgo.Client
	srv       *sipgo.Server
	transport string // UDP or TCP
	inbox     chan *sip.Request
	// answer decides the response of an incoming INVITE (default 200).
	answer func(req *sip.Request, tx sip.ServerTransaction)
	callID string
	cseq   atomic.Uint32
	closed sync.Once
}

func newUA(t *testing.T, transport string) *ua {
	t.Helper()
	u, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(u, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(u)
	if err != nil {
		t.Fatal(err)
	}
	d := &ua{t: t, ua: u, cli: cli, srv: srv, transport: transport, inbox: make(chan *sip.Request, 16), callID: rand.Text()}
	record := func(req *sip.Request, tx sip.ServerTransaction) {
		d.inbox <- req
		if req.IsAck() {
			return
		}
		if req.IsInvite() && d.answer != nil {
			d.answer(req, tx)
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.MESSAGE, sip.OPTIONS, sip.NOTIFY} {
		srv.OnRequest(m, record)
	}
	t.Cleanup(d.close)
	return d
}

func (d *ua) close() { d.closed.Do(func() { _ = d.ua.Close() }) }

// register sends a REGISTER for aor to dst and answers a 401 with Digest
// (alg) once. hdrs are extra header lines ("Contact: ...", "Expires: 60").
func (d *ua) register(dst, aor, user, alg string, hdrs ...string) *sip.Response {
	d.t.Helper()
	res := d.send(dst, d.registerReq(aor, hdrs...))
	if res.StatusCode != sip.StatusUnauthorized {
		return res
	}
	req := d.registerReq(aor, hdrs...)
	req.AppendHeader(sip.NewHeader("Authorization", digestAuthorization(d.t, res, alg, user, password, "REGISTER", req.Recipient.String())))
	return d.send(dst, req)
}

func (d *ua) registerReq(aor string, hdrs ...string) *sip.Request {
	d.t.Helper()
	var to sip.Uri
	if err := sip.ParseUri(aor, &to); err != nil {
		d.t.Fatal(err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to})
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq.Add(1), MethodName: sip.REGISTER})
	for _, h := range hdrs {
		name, value, _ := strings.Cut(h, ":")
		if strings.EqualFold(name, "Contact") {
			parsed := parseHeaderLine(d.t, "Contact: "+strings.TrimSpace(value))
			for _, p := range parsed {
				req.AppendHeader(p)
			}
			continue
		}
		req.AppendHeader(sip.NewHeader(name, strings.TrimSpace(value)))
	}
	return req
}

// parseHeaderLine parses one header line with sipgo's parser (so that
// Contact becomes a *sip.ContactHeader, one per comma-separated value).
func parseHeaderLine(t *testing.T, line string) []sip.Header {
	t.Helper()
	raw := "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp\r\n" + line + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	name, _, _ := strings.Cut(line, ":")
	return m.(*sip.Request).GetHeaders(name)
}

// send runs one transaction to dst over the UA's transport and returns
// the final response.
func (d *ua) send(dst string, req *sip.Request) *sip.Response {
	d.t.Helper()
	req.SetDestination(dst)
	req.SetTransport(d.transport)
	ctx, cancel := context.WithTimeout(d.t.Context(), 10*time.Second)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		d.t.Fatalf("%s to %s: %v", req.Method, dst, err)
	}
	return res
}

// digestAuthorization answers the Digest challenge of res using alg.
func digestAuthorization(t *testing.T, res *sip.Response, alg, user, pass, method, uri string) string {
	t.Helper()
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := auth.ParseAuthorization(h.Value())
		if err != nil || !c.Is("Digest") {
			continue
		}
		if a, _ := c.Param("algorithm"); !strings.EqualFold(a, alg) {
			continue
		}
		realm, _ := c.Param("realm")
		nonce, _ := c.Param("nonce")
		newHash := md5.New
		if alg == auth.DigestSHA256 {
			newHash = sha256.New
		}
		ha1 := hexOf(newHash, user, realm, pass)
		ha2 := hexOf(newHash, method, uri)
		cnonce, nc := "0a4f113b", "00000001"
		resp := hexOf(newHash, ha1, nonce, nc, cnonce, "auth", ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s", response="%s"`,
			user, realm, nonce, uri, alg, nc, cnonce, resp)
	}
	t.Fatalf("no %s Digest challenge in %d response", alg, res.StatusCode)
	return ""
}

func hexOf(newHash func() hash.Hash, parts ...string) string {
	h := newHash()
	h.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(h.Sum(nil))
}

// contacts returns the Contact headers of a response.
func contacts(res *sip.Response) []*sip.ContactHeader {
	var out []*sip.ContactHeader
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			out = append(out, c)
		}
	}
	return out
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
