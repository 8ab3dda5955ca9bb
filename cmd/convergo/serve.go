package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/media"
	csip "github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/b2bua"
	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/sip/registrar"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
	"github.com/convergo/convergo/store/redis"
)

// boundAddrs are the addresses serve actually listens on (ports resolved).
type boundAddrs struct {
	HTTP  string
	Admin string
	SIP   []csip.Listener
}

// newLogger builds the process logger from the log block.
func newLogger(c LogConfig, e env) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var enc zapcore.Encoder
	if c.Format == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(e.stderr), level)
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(e.stderr))), nil
}

// openStore opens the configured backend.
func openStore(ctx context.Context, c StoreConfig, log *zap.Logger) (store.Store, error) {
	switch c.Backend {
	case "redis":
		return redis.Open(ctx, c.Redis, log)
	default:
		return bolt.Open(c.Bolt, log)
	}
}

// newRegistry returns a registry with the Go runtime and process collectors
// and the build info gauge.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "convergo_build_info", Help: "Build information; always 1.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(build)
	return reg
}

// serve runs the server until ctx ends, then shuts down within
// cfg.ShutdownGrace: SIP stops admitting and drains, HTTP finishes its
// requests, then the store is closed.
func serve(ctx context.Context, cfg Config, e env) error {
	log, err := newLogger(cfg.Log, e)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("node", cfg.Node))
	rt := cfg.Runtime.settings(lookupEnv(e.environ), memoryAvailable(os.ReadFile))
	rt.apply()
	log.Info("garbage collector", zap.Int("gc_percent", rt.GCPercent), zap.Int64("memory_limit_mib", rt.MemoryLimit>>20))
	reg := newRegistry()

	st, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", zap.Error(err))
		}
	}()

	authSvc, err := auth.New(cfg.Auth, st.Users(), st.Tokens(), log, reg)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}

	// SIP drains within the grace period, leaving time for the rest.
	sipCfg := cfg.SIP
	if maxDrain := cfg.ShutdownGrace * 3 / 4; sipCfg.DrainTimeout > maxDrain {
		sipCfg.DrainTimeout = maxDrain
	}
	sipSrv, err := csip.New(sipCfg, log, reg)
	if err != nil {
		return err
	}

	trust, err := isc.New(cfg.ISC, log, reg)
	if err != nil {
		return fmt.Errorf("isc: %w", err)
	}
	rg, err := registrar.New(cfg.Registrar, registrar.Deps{
		Bindings: st.Bindings(), Sweeper: st.Bindings(), Users: st.Users(),
		Auth: sipAuth{authSvc.SIP()}, UA: sipSrv.UA(), Node: cfg.Node, Listeners: listeners(sipSrv),
		// The embedded store is this process's alone (bbolt locks the file).
		SoleWriter: cfg.Store.Backend == "bolt",
	}, log, reg)
	if err != nil {
		return fmt.Errorf("registrar: %w", err)
	}
	if err := sipSrv.Handle(sip.REGISTER, trust.Middleware(rg.OnRegister)); err != nil {
		return err
	}
	// The media relay anchors every call's SDP (media.mode: relay); in
	// passthrough mode the B2BUA's default Anchor leaves SDP untouched.
	var relay *media.Relay
	var anchor b2bua.Anchor
	if cfg.Media.Mode == media.ModeRelay {
		if relay, err = media.New(cfg.Media, log, reg); err != nil {
			return fmt.Errorf("media: %w", err)
		}
		anchor = relay
	}
	calls, err := b2bua.New(cfg.B2BUA, sipSrv.UA(), locator{rg}, classifier{domain: cfg.SIP.Domain, self: selfHosts(sipSrv)}, anchor, log, reg)
	if err != nil {
		return fmt.Errorf("b2bua: %w", err)
	}
	if relay != nil {
		relay.OnInactive(func(id string) { calls.Hangup(id, rtpTimeout()) })
	}
	for m, h := range calls.Handlers() {
		if m == sip.INVITE {
			h = callerAuth(authSvc.SIP(), h)
		}
		// Requests routed to a flow this node holds are proxied there first.
		if err := sipSrv.Handle(m, trust.Middleware(rg.Intercept(h))); err != nil {
			return err
		}
	}

	var ready atomic.Bool
	api := newAPI(log, reg, st, &ready)
	authSvc.Routes(api.mux)
	ab, err := addressbook.New(cfg.Addressbook, addressbook.Deps{
		Contacts: st.Contacts(), Events: st.Events(), Auth: abAuth{authSvc}, Passwords: abAuth{authSvc},
		Users: directory{st.Users()},
	}, log, reg)
	if err != nil {
		return fmt.Errorf("addressbook: %w", err)
	}
	ab.Routes(api.mux)
	calllog, err := newCallLog(st.Users(), ab, log, reg)
	if err != nil {
		return fmt.Errorf("call log: %w", err)
	}
	calls.OnAnswered(calllog.answered)
	sipSrv.OnStrayResponse(calls.OnStrayResponse)

	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
	}
	httpSrv := &http.Server{Handler: api, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ErrorLog: zap.NewStdLog(log.Named("http"))}
	servers := []*http.Server{httpSrv}
	listeners := []net.Listener{httpLn}
	bound := boundAddrs{HTTP: httpLn.Addr().String()}
	if cfg.HTTP.AdminListen != "" {
		adminLn, err := net.Listen("tcp", cfg.HTTP.AdminListen)
		if err != nil {
			_ = httpLn.Close()
			return fmt.Errorf("admin listen %s: %w", cfg.HTTP.AdminListen, err)
		}
		servers = append(servers, &http.Server{Handler: adminMux(), ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout})
		listeners = append(listeners, adminLn)
		bound.Admin = adminLn.Addr().String()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return st.Run(gctx) })
	g.Go(func() error { return sipSrv.Run(gctx) })
	// The registrar and the B2BUA send through the SIP user agent until
	// their Run returns; the SIP server closes it only after that.
	rgHold, callsHold := sipSrv.Hold(), sipSrv.Hold()
	g.Go(func() error { defer rgHold(); return rg.Run(gctx) })
	g.Go(func() error { return calllog.Run(gctx) })
	// The relay outlives the B2BUA: its shutdown BYEs and Releases come
	// first, then the relay closes whatever is left.
	mctx, mcancel := context.WithCancel(context.WithoutCancel(gctx))
	defer mcancel()
	relayReady := closedChan()
	if relay != nil {
		relayReady = relay.Ready()
		g.Go(func() error { return relay.Run(mctx) })
	}
	g.Go(func() error {
		defer callsHold()
		defer mcancel()
		for _, ready := range []<-chan struct{}{sipSrv.Ready(), relayReady} {
			select {
			case <-ready:
			case <-gctx.Done():
				return nil
			}
		}
		var ls []b2bua.Listener
		for _, l := range sipSrv.Addrs() {
			ls = append(ls, b2bua.Listener{Transport: l.Transport, Addr: l.Addr})
		}
		if err := calls.Bind(ls); err != nil {
			return fmt.Errorf("b2bua: %w", err)
		}
		return calls.Run(gctx)
	})
	for i, srv := range servers {
		g.Go(func() error {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http serve: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		ready.Store(false)
		// The drain gets its own deadline: gctx is already cancelled.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownGrace)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		return errors.Join(errs...)
	})
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-sipSrv.Ready():
		}
		pctx, cancel := context.WithTimeout(gctx, 5*time.Second)
		defer cancel()
		if err := st.Ping(pctx); err != nil {
			return fmt.Errorf("store not answering: %w", err)
		}
		ready.Store(true)
		bound.SIP = sipSrv.Addrs()
		log.Info("convergo ready", zap.String("version", version), zap.String("http", bound.HTTP),
			zap.Any("sip", bound.SIP), zap.String("store", cfg.Store.Backend))
		if e.onReady != nil {
			e.onReady(bound)
		}
		return nil
	})

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("grace", cfg.ShutdownGrace))
		t := time.NewTimer(cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case err = <-done:
		case <-t.C:
			return fmt.Errorf("shutdown exceeded %s grace period", cfg.ShutdownGrace)
		}
	}
	if err != nil {
		return err
	}
	log.Info("convergo stopped")
	return nil
}

// rtpTimeout is the Reason of the BYEs sent when the relay saw no media
// (3GPP TS 24.229 §7.2A.18, RELEASE_CAUSE 2).
func rtpTimeout() sip.Header {
	return sip.NewHeader("Reason", `RELEASE_CAUSE;cause=2;text="RTP/RTCP time-out"`)
}

// closedChan returns a closed channel: a readiness that is always met.
func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
