package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Handler is the shape of convergo's SIP handlers (csip.Handler has the
// same underlying type, so a Handler converts to it without an adapter).
type Handler = func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error

// Listener is one bound SIP listener: the b2bua sends each leg from the
// listener of the leg's transport and advertises it in Contact and Via.
// csip.Listener has the same fields.
type Listener struct {
	Transport string // udp, tcp, tls, ws, wss
	Addr      string // host:port as bound (real port, not :0)
}

// allowed is the Allow header of everything we send and answer: the
// methods registered by Handlers plus those the csip guard answers.
const allowed = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, NOTIFY, REFER, PRACK, OPTIONS"

// Server is convergo's call control: it owns every call (see doc.go).
// Handlers are safe for concurrent use; Bind is called once the listeners
// are up; Run sweeps old calls and hangs everything up when it ends.
type Server struct {
	cfg    Config
	ua     *sipgo.UserAgent
	loc    Locator
	cls    Classifier
	anchor Anchor
	log    *zap.Logger
	warn   *zap.Logger // sampled: for failures that could repeat per call
	m      *metrics

	calls    *registry
	index    *dialogIndex
	strays   strayAcks
	bound    atomic.Pointer[binding]
	answered atomic.Pointer[AnsweredFunc]

	// ctx is the lifetime of the calls: ended when Run has hung up every
	// call (or never, if Run is never called).
	ctx    context.Context
	cancel context.CancelFunc

	// late owns the goroutines that drain a BYE sent for a finished call
	// (lateRetransmission); shutdown closes it and waits for them.
	lateMu     sync.Mutex
	lateClosed bool
	late       sync.WaitGroup

	// runners are the goroutines that run call actors with queued events
	// (runq), started by Run and stopped after its shutdown. A call's
	// events run on a runner, whose stack has long grown to what the
	// actor needs, rather than on a goroutine started per event.
	runMu   sync.RWMutex
	runOpen bool
	runq    chan *call
	runners sync.WaitGroup

	hdrAllow   sip.Header
	hdrUA      sip.Header
	hdrServer  sip.Header
	retryAfter sip.Header
}

// AnsweredFunc is told of every answered call: the caller's AOR (the
// asserted identity when a trusted peer gave one, else From) and the
// callee's AOR. It runs on the call's goroutine and must not block.
type AnsweredFunc func(caller, callee string)

// OnAnswered installs fn (nil removes it). Safe to call at any time.
func (s *Server) OnAnswered(fn AnsweredFunc) {
	if fn == nil {
		s.answered.Store(nil)
		return
	}
	s.answered.Store(&fn)
}

// binding holds the per-transport clients and Contact headers built by
// Bind. Read-only once stored.
type binding struct {
	clients  map[string]*sipgo.Client // by UDP, TCP, TLS, WS, WSS
	contacts map[string]sip.Header
	self     map[string]bool // host:port we listen on or advertise
}

// New builds a Server. ua is the user agent of the csip.Server (UA());
// loc finds callees' devices; cls routes initial INVITEs (nil: Direct);
// anchor sees every SDP (nil: PassThrough); reg receives the metrics.
func New(cfg Config, ua *sipgo.UserAgent, loc Locator, cls Classifier, anchor Anchor,
	log *zap.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("b2bua: config: %w", err)
	}
	if ua == nil || loc == nil || log == nil || reg == nil {
		return nil, errors.New("b2bua: user agent, locator, logger and registerer are required")
	}
	if cls == nil {
		cls = Direct{}
	}
	if anchor == nil {
		anchor = PassThrough{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("b2bua: metrics: %w", err)
	}
	log = log.Named("b2bua")
	ctx, cancel := context.WithCancel(context.Background())
	retry := int(cfg.RetryAfter.Seconds())
	if retry < 1 {
		retry = 1
	}
	return &Server{
		cfg:    cfg,
		ua:     ua,
		loc:    loc,
		cls:    cls,
		anchor: anchor,
		log:    log,
		warn: log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, time.Second, 5, 0)
		})),
		m:          m,
		calls:      newRegistry(cfg.MaxCalls),
		index:      newDialogIndex(),
		ctx:        ctx,
		cancel:     cancel,
		hdrAllow:   sip.NewHeader("Allow", allowed),
		hdrUA:      sip.NewHeader("User-Agent", cfg.UserAgent),
		hdrServer:  sip.NewHeader("Server", cfg.UserAgent),
		retryAfter: sip.NewHeader("Retry-After", strconv.Itoa(retry)),
	}, nil
}

// Bind tells the Server which listeners are bound; call it once the
// csip.Server is Ready, with its Addrs(). Until then INVITEs get 503. B-legs
// over UDP leave from the UDP listener's socket (sipgo's
// WithClientConnectionAddr; never used for TCP, see LIBRARIES §1.1). Each
// leg's Contact is <sip:ContactHost-or-listener-host:port;transport=x>.
func (s *Server) Bind(listeners []Listener) error {
	b := &binding{clients: make(map[string]*sipgo.Client), contacts: make(map[string]sip.Header), self: make(map[string]bool)}
	for _, l := range listeners {
		tp := transportName(l.Transport)
		if tp == "" {
			return fmt.Errorf("b2bua: bind %q: unknown transport %q", l.Addr, l.Transport)
		}
		if _, dup := b.clients[tp]; dup {
			continue // the first listener of a transport is the one we advertise
		}
		host, portStr, err := net.SplitHostPort(l.Addr)
		if err != nil {
			return fmt.Errorf("b2bua: bind %q: %w", l.Addr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("b2bua: bind %q: bad port", l.Addr)
		}
		adv := s.cfg.ContactHost
		if adv == "" {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				return fmt.Errorf("b2bua: bind %q: listener has no specific address; set contact_host", l.Addr)
			}
			adv = host
		}
		opts := []sipgo.ClientOption{sipgo.WithClientHostname(adv), sipgo.WithClientPort(port)}
		if tp == "UDP" {
			opts = append(opts, sipgo.WithClientConnectionAddr(l.Addr))
		}
		cli, err := sipgo.NewClient(s.ua, opts...)
		if err != nil {
			return fmt.Errorf("b2bua: client for %s %s: %w", l.Transport, l.Addr, err)
		}
		b.clients[tp] = cli
		b.self[net.JoinHostPort(host, portStr)] = true
		b.self[net.JoinHostPort(strings.Trim(adv, "[]"), portStr)] = true
		u := sip.Uri{Scheme: "sip", Host: strings.Trim(adv, "[]"), Port: port}
		switch tp {
		case "UDP":
		case "TLS":
			u.Scheme = "sips"
		case "WSS": // RFC 7118 §5.2: sips with transport=ws
			u.Scheme = "sips"
			u.UriParams = sip.HeaderParams{{K: "transport", V: "ws"}}
		default:
			u.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(tp)}}
		}
		b.contacts[tp] = &sip.ContactHeader{Address: u}
	}
	if len(b.clients) == 0 {
		return errors.New("b2bua: bind: no listener")
	}
	s.bound.Store(b)
	return nil
}

// Handlers returns the handler of every method the b2bua serves, to
// register on the csip.Server (behind isc.Middleware) before it runs:
// INVITE (initial and re-INVITE), ACK, BYE, and the in-dialog methods
// UPDATE, INFO, NOTIFY, REFER and PRACK. CANCEL of an INVITE is consumed by
// sipgo's transaction layer (see OnInvite).
func (s *Server) Handlers() map[sip.RequestMethod]Handler {
	return map[sip.RequestMethod]Handler{
		sip.INVITE: s.OnInvite,
		sip.ACK:    s.OnAck,
		sip.BYE:    s.OnBye,
		sip.UPDATE: s.OnInDialog,
		sip.INFO:   s.OnInDialog,
		sip.NOTIFY: s.OnInDialog,
		sip.REFER:  s.OnInDialog,
		sip.PRACK:  s.OnInDialog,
	}
}

// Active returns the number of calls held.
func (s *Server) Active() int { return s.calls.len() }

// Hangup ends the answered call whose internal id is id (the callID the
// Anchor sees) as if the server hung up: BYE on both legs, each carrying
// reason when it is not nil (e.g. the media relay's inactivity timeout
// sends Reason: RELEASE_CAUSE;cause=2, TS 24.229 §7.2A.18). A call still
// ringing or already ending is left as it is. Hangup reports whether the
// call was held; it never blocks (the call's actor does the work), so it
// is safe from the media relay's callbacks.
func (s *Server) Hangup(id string, reason sip.Header) bool {
	c := s.calls.get(id)
	if c == nil {
		return false
	}
	c.post(func() {
		if c.state == stateAnswered {
			c.hangup(nil, reason)
		}
	})
	return true
}

// Run ends calls older than MaxAge (with BYE) until ctx ends; then it
// refuses new calls (503), hangs up every call (BYE, or CANCEL and 503 while
// ringing), waits up to ShutdownTimeout for them to finish, drops what is
// left, and returns. Run must end before the csip.Server closes its user
// agent, or the BYEs cannot leave.
func (s *Server) Run(ctx context.Context) error {
	s.startRunners()
	defer s.stopRunners()
	every := s.cfg.MaxAge / 4
	if every > time.Minute {
		every = time.Minute
	}
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			for _, c := range s.calls.olderThan(time.Now().Add(-s.cfg.MaxAge)) {
				c.post(c.expire)
			}
			s.strays.sweep(time.Now())
		case <-ctx.Done():
			s.shutdown()
			return nil
		}
	}
}

// runnersPerCPU: events block only briefly (a send), so a few runners
// per CPU keep the CPUs busy.
const runnersPerCPU = 4

func (s *Server) startRunners() {
	n := runnersPerCPU * runtime.GOMAXPROCS(0)
	s.runMu.Lock()
	s.runq = make(chan *call, 64*n)
	s.runOpen = true
	s.runMu.Unlock()
	for range n {
		s.runners.Go(func() {
			for c := range s.runq {
				c.drain()
			}
		})
	}
}

// stopRunners stops queueing to the runners (calls then start their own
// goroutine again) and waits for them to finish what was queued.
func (s *Server) stopRunners() {
	s.runMu.Lock()
	s.runOpen = false
	close(s.runq)
	s.runMu.Unlock()
	s.runners.Wait()
}

// dispatch runs c's queue on a runner, or on a new goroutine when there
// are none (before Run, after it) or all are busy with a full queue.
func (s *Server) dispatch(c *call) {
	s.runMu.RLock()
	if s.runOpen {
		select {
		case s.runq <- c:
			s.runMu.RUnlock()
			return
		default:
		}
	}
	s.runMu.RUnlock()
	go c.drain()
}

// shutdown hangs up every call and waits, bounded, for them to finish.
func (s *Server) shutdown() {
	empty := s.calls.close()
	for _, c := range s.calls.all() {
		c.post(c.stop)
	}
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-empty:
	case <-t.C:
		left := s.calls.all()
		s.log.Warn("b2bua shutdown timed out", zap.Int("calls", len(left)))
		for _, c := range left {
			c.post(c.kill)
		}
		t.Reset(time.Second)
		select {
		case <-empty:
		case <-t.C:
		}
	}
	s.lateMu.Lock()
	s.lateClosed = true
	s.lateMu.Unlock()
	s.cancel()
	s.late.Wait()
}

// goLate runs f on a goroutine owned by the Server (waited for by
// shutdown, which also ends s.ctx); it reports false once shutting down.
func (s *Server) goLate(f func()) bool {
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	if s.lateClosed {
		return false
	}
	s.late.Go(f)
	return true
}

// client returns the client of a transport, nil if none is bound.
func (b *binding) client(tp string) *sipgo.Client { return b.clients[tp] }

// isSelf reports whether t would be sent straight back to us: a binding
// whose contact is our own address would make every call to that user fork
// into new calls to itself (one per fork, Max-Forwards deep). Targets
// reached through a Route are not checked (an S-CSCF may route back to us
// on purpose).
func (b *binding) isSelf(t target) bool {
	if len(t.route) > 0 {
		return false
	}
	dest := t.dest
	if dest == "" {
		port := t.uri.Port
		if port == 0 {
			port = 5060
			if t.transport == "TLS" || t.transport == "WSS" {
				port = 5061
			}
		}
		dest = net.JoinHostPort(strings.Trim(t.uri.Host, "[]"), strconv.Itoa(port))
	}
	if b.self[dest] {
		return true
	}
	// A listener on an unspecified address answers on every local address.
	if host, port, err := net.SplitHostPort(dest); err == nil {
		if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
			return b.self[net.JoinHostPort("0.0.0.0", port)] || b.self[net.JoinHostPort("::", port)]
		}
	}
	return false
}

// dialCtx bounds connection set-up and name resolution of one request.
// A UDP request to an IP address needs neither, and gets no deadline: a
// timer per request was ~1% of the CPU at thousands of calls/s.
func (s *Server) dialCtx(tp string, req *sip.Request) (context.Context, context.CancelFunc) {
	if tp == "UDP" {
		if host, _, err := net.SplitHostPort(req.Destination()); err == nil {
			if _, err := netip.ParseAddr(host); err == nil {
				return s.ctx, func() {}
			}
		}
	}
	return context.WithTimeout(s.ctx, s.cfg.DialTimeout)
}

// request starts a client transaction for req on transport tp.
func (s *Server) request(tp string, req *sip.Request) (sip.ClientTransaction, error) {
	b := s.bound.Load()
	if b == nil {
		return nil, ErrNotBound
	}
	cli := b.clients[tp]
	if cli == nil {
		return nil, fmt.Errorf("b2bua: send %s: no %s listener bound", req.Method, tp)
	}
	ctx, cancel := s.dialCtx(tp, req)
	defer cancel()
	tx, err := cli.TransactionRequest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("b2bua: send %s: %w", req.Method, err)
	}
	return tx, nil
}

// write sends req statelessly on transport tp (an ACK to a 2xx).
func (s *Server) write(tp string, req *sip.Request) error {
	b := s.bound.Load()
	if b == nil {
		return ErrNotBound
	}
	cli := b.clients[tp]
	if cli == nil {
		return fmt.Errorf("b2bua: send %s: no %s listener bound", req.Method, tp)
	}
	if err := cli.WriteRequest(req); err != nil {
		return fmt.Errorf("b2bua: send %s: %w", req.Method, err)
	}
	return nil
}
