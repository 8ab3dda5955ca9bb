package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
)

// Handler handles one request. It responds on tx itself when it succeeds;
// when it returns an error the guard answers with the status the error
// carries (see StatusError) or 500. A handler of an INVITE or MESSAGE
// must not return before its final response is sent (sipgo terminates the
// transaction when the handler returns). ctx ends when the transaction
// terminates or when the server stops after the drain period.
type Handler func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error

// Server owns the SIP user agent and its listeners. Register handlers with
// Handle before Run; Run serves until its ctx ends.
type Server struct {
	cfg     Config
	log     *zap.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	metrics *metrics

	mu       sync.Mutex
	handlers map[sip.RequestMethod]Handler
	accept   []string
	bound    []Listener

	inflight chan struct{}
	calls    *rateGate      // new INVITE dialogs; nil: no cap
	holds    sync.WaitGroup // users of the UA that Run must outlast (Hold)
	started  atomic.Bool
	draining atomic.Bool
	ready    chan struct{}
	stray    atomic.Pointer[func(*sip.Response)]
}

// New builds a Server from cfg (defaults applied). reg receives the SIP
// metrics; it must not be nil.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Server, error) {
	s := &Server{}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sip: config: %w", err)
	}
	log = log.Named("sip")
	slogger := sipgoLogger(log)
	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("sip: load tls key pair: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(cfg.Hostname),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger),
			// RFC 3261 §18.1.2: a response matching no transaction is
			// dropped. sipgo's default logs each one through the global
			// slog logger: a per-packet log line.
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) {
				m.strays.Inc()
				if f := s.stray.Load(); f != nil {
					(*f)(res)
				}
			})),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)),
	}
	if tlsConf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConf))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, fmt.Errorf("sip: new user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip: new server: %w", err)
	}
	s.cfg, s.log, s.ua, s.srv, s.metrics = cfg, log, ua, srv, m
	s.handlers = make(map[sip.RequestMethod]Handler)
	s.inflight = make(chan struct{}, cfg.MaxInflight)
	s.calls = newRateGate(cfg.MaxCallRate)
	s.ready = make(chan struct{})
	return s, nil
}

// OnStrayResponse installs f for responses that match no client
// transaction (a retransmission after the transaction ended, or a
// response to nothing we sent); they are counted and otherwise dropped
// (RFC 3261 §18.1.2). f runs on sipgo's goroutine for the message and
// must not block. Safe to call at any time; nil removes it.
func (s *Server) OnStrayResponse(f func(*sip.Response)) {
	if f == nil {
		s.stray.Store(nil)
		return
	}
	s.stray.Store(&f)
}

// sipgoLogger bridges sipgo's slog output to zap at warn level and above,
// sampled so that a flood of bad packets cannot flood the log.
func sipgoLogger(log *zap.Logger) *slog.Logger {
	core := zapcore.NewSamplerWithOptions(log.Named("sipgo").Core(), time.Second, 5, 0)
	return slog.New(zapslog.NewHandler(core, zapslog.WithName("sipgo"))).With()
}

// UA returns the user agent, for packages that send requests (client side).
func (s *Server) UA() *sipgo.UserAgent { return s.ua }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Handle registers h for method. It must be called before Run.
func (s *Server) Handle(method sip.RequestMethod, h Handler) error {
	if s.started.Load() {
		return ErrDraining
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[method] = h
	return nil
}

// Accept adds body types to the Accept header of OPTIONS answers.
func (s *Server) Accept(types ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range types {
		if !slices.Contains(s.accept, t) {
			s.accept = append(s.accept, t)
		}
	}
}

// Hold tells Run that a component sends through the user agent (the B2BUA
// hanging up calls, the registrar's proxy) and keeps it open until the
// returned release is called: Run closes the user agent only after every
// hold is released, or after DrainTimeout more, so that no late request
// opens a socket on a closed agent. Call Hold before Run's ctx ends.
func (s *Server) Hold() (release func()) {
	s.holds.Add(1)
	var once sync.Once
	return func() { once.Do(s.holds.Done) }
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound listeners (with real ports when :0 was configured).
// It is empty before Ready is closed.
func (s *Server) Addrs() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bound)
}

// allow returns the methods for Allow headers (RFC 3261 §20.5), sorted.
func (s *Server) allow() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{"ACK": true, "CANCEL": true, "OPTIONS": true}
	for m := range s.handlers {
		set[string(m)] = true
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Run binds the listeners and serves until ctx ends, then drains: new
// requests get 503 while in-flight handlers get up to DrainTimeout to
// finish; then the listeners and the user agent are closed. Run returns
// after every goroutine it started has exited.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sip: Run called twice")
	}
	defer func() { _ = s.ua.Close() }()

	// Handler contexts outlive ctx by the drain period.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	s.register(hctx)

	closers, serves, err := s.listen(ctx)
	if err != nil {
		for _, c := range closers {
			_ = c()
		}
		return err
	}
	g := new(errgroup.Group)
	for _, serve := range serves {
		g.Go(serve)
	}
	// Ready only once sipgo has every UDP listener in its pool: a client
	// bound to a listener's address (the B2BUA's) would otherwise try to
	// bind that address itself and fail.
	s.awaitPooled(ctx)
	close(s.ready)
	s.log.Info("sip listening", zap.Any("listen", s.Addrs()))
	<-ctx.Done()
	s.draining.Store(true)
	s.drain()
	hcancel()
	for _, c := range closers {
		_ = c()
	}
	err = g.Wait()
	s.waitHolds()
	s.log.Info("sip stopped")
	return err
}

// waitHolds waits for every Hold to be released, at most DrainTimeout.
func (s *Server) waitHolds() {
	done := make(chan struct{})
	go func() { s.holds.Wait(); close(done) }()
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("sip closing with components still sending")
	}
}

// awaitPooled waits (briefly) until sipgo's UDP pool holds each bound UDP listener.
func (s *Server) awaitPooled(ctx context.Context) {
	pool := s.ua.TransportLayer().Pool("udp")
	deadline := time.Now().Add(2 * time.Second)
	for _, l := range s.Addrs() {
		for l.Transport == "udp" && pool != nil && pool.Get(l.Addr) == nil && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// drain waits until no handler is in flight or DrainTimeout passes.
func (s *Server) drain() {
	deadline := time.NewTimer(s.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(s.inflight) > 0 {
		select {
		case <-deadline.C:
			s.log.Warn("sip drain timed out", zap.Int("inflight", len(s.inflight)))
			return
		case <-tick.C:
		}
	}
}

// listen binds every configured listener and returns their closers and
// serve functions. Serve functions return nil once their listener is closed.
func (s *Server) listen(ctx context.Context) ([]func() error, []func() error, error) {
	var closers, serves []func() error
	lc := net.ListenConfig{}
	for _, entry := range s.cfg.Listen {
		l, err := ParseListen(entry)
		if err != nil {
			return closers, nil, fmt.Errorf("sip: listen %q: %w", entry, err)
		}
		switch l.Transport {
		case "udp":
			pc, err := lc.ListenPacket(ctx, "udp", l.Addr)
			if err != nil {
				return closers, nil, fmt.Errorf("sip: listen udp %s: %w", l.Addr, err)
			}
			if uc, ok := pc.(*net.UDPConn); ok {
				// Best effort: a smaller buffer only means drops under bursts.
				r, w := setSocketBuffers(uc, s.cfg.SocketBuffer)
				lvl := zap.InfoLevel
				if r > 0 && (r < s.cfg.SocketBuffer || w < s.cfg.SocketBuffer) {
					lvl = zap.WarnLevel // not root and net.core.rmem_max/wmem_max lower
				}
				if ce := s.log.Check(lvl, "sip udp socket buffers"); ce != nil {
					ce.Write(zap.String("addr", pc.LocalAddr().String()), zap.Int("asked", s.cfg.SocketBuffer),
						zap.Int("read", r), zap.Int("write", w))
				}
			}
			closers = append(closers, pc.Close)
			s.addBound(l.Transport, pc.LocalAddr().String())
			serves = append(serves, func() error { return ignoreClosed(s.srv.ServeUDP(pc)) })
		default:
			ln, err := lc.Listen(ctx, "tcp", l.Addr)
			if err != nil {
				return closers, nil, fmt.Errorf("sip: listen %s %s: %w", l.Transport, l.Addr, err)
			}
			closers = append(closers, ln.Close)
			s.addBound(l.Transport, ln.Addr().String())
			ln = sendTimeoutListener{Listener: ln, d: s.cfg.SendTimeout} // under TLS: bounds its writes too
			var serve func(net.Listener) error
			switch l.Transport {
			case "tcp":
				serve = s.srv.ServeTCP
			case "ws":
				serve = s.srv.ServeWS
			case "tls":
				ln = tls.NewListener(ln, s.tlsConfig())
				serve = s.srv.ServeTLS
			case "wss":
				ln = tls.NewListener(ln, s.tlsConfig())
				serve = s.srv.ServeWSS
			}
			serves = append(serves, func() error { return ignoreClosed(serve(ln)) })
		}
	}
	return closers, serves, nil
}

func (s *Server) tlsConfig() *tls.Config {
	// New validated that the pair loads; load again for an independent config.
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func (s *Server) addBound(transport, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bound = append(s.bound, Listener{Transport: transport, Addr: addr})
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("sip: serve: %w", err)
}
