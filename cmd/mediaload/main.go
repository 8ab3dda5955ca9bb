package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Exit statuses (see doc.go).
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitTarget = 3
	exitShort  = 4
)

// maxCalls bounds -calls: SSRCs carry the call index in their low 20 bits.
const maxCalls = 1 << 20

// options are the tool's flags.
type options struct {
	Server       string        // SIP UDP address of convergo (host:port)
	Domain       string        // SIP domain of the callee's AOR
	AOR          string        // callee AOR; default sip:<User>@<Domain>
	User         string        // Digest user name of the callee account
	Password     string        // Digest password (flag or MEDIALOAD_PASSWORD)
	Instance     string        // +sip.instance of the callee device
	Listen       string        // local SIP UDP address (both ends)
	MediaAddr    string        // local IP of the two media sockets
	Calls        int           // calls to set up
	Rate         float64       // call setups (and BYEs) per second
	Duration     time.Duration // measured media window once all calls are up
	Drain        time.Duration // wait for in-flight packets after sending stops
	SetupTimeout time.Duration // per-call bound on INVITE to 200
	SRTP         bool          // caller offers RTP/SAVP with SDES
	ServerPID    int           // convergo's pid, for CPU and RSS (0: not measured)
	Metrics      string        // convergo /metrics URL, for relay counters (optional)
	SocketBuffer int           // SO_RCVBUF/SO_SNDBUF asked for the media sockets
	JSON         bool          // print the report as JSON
	LogLevel     string        // zap level of the tool's own log
	CPUProfile   string        // write the tool's own CPU profile here
}

func defaultOptions() options {
	return options{
		Domain:       "convergo.local",
		Instance:     "urn:uuid:6d656469-616c-4f61-8400-000000000001",
		Listen:       "127.0.0.1:0",
		MediaAddr:    "127.0.0.1",
		Calls:        1000,
		Rate:         200,
		Duration:     20 * time.Second,
		Drain:        time.Second,
		SetupTimeout: 32 * time.Second,
		SocketBuffer: 8 << 20,
		LogLevel:     "warn",
	}
}

// validate reports every problem, each starting with its flag.
func (o options) validate() error {
	var errs []error
	if _, err := netip.ParseAddrPort(o.Server); err != nil {
		errs = append(errs, fmt.Errorf("-server %q: want ip:port of convergo's SIP UDP listener", o.Server))
	}
	if _, err := netip.ParseAddrPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("-listen %q: want ip:port", o.Listen))
	}
	if a, err := netip.ParseAddr(o.MediaAddr); err != nil || a.IsUnspecified() {
		errs = append(errs, fmt.Errorf("-media-addr %q: want a specific IP address", o.MediaAddr))
	}
	if o.User == "" || o.Password == "" {
		errs = append(errs, errors.New("-user and -password (or MEDIALOAD_PASSWORD): the callee account is required"))
	}
	if o.Domain == "" || strings.ContainsAny(o.Domain, " \t\r\n<>@;") {
		errs = append(errs, fmt.Errorf("-domain %q: want a host name", o.Domain))
	}
	if !strings.HasPrefix(o.Instance, "urn:") || strings.ContainsAny(o.Instance, " \t\r\n<>\"") {
		errs = append(errs, fmt.Errorf("-instance %q: want a URN (urn:uuid:...)", o.Instance))
	}
	if o.Calls < 1 || o.Calls > maxCalls {
		errs = append(errs, fmt.Errorf("-calls %d: want 1..%d", o.Calls, maxCalls))
	}
	if o.Rate <= 0 || o.Rate > 100000 {
		errs = append(errs, fmt.Errorf("-rate %g: want 0 < rate <= 100000", o.Rate))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration %s: must be positive", o.Duration))
	}
	if o.Drain < 0 || o.SetupTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-drain %s / -setup-timeout %s: must not be negative / must be positive", o.Drain, o.SetupTimeout))
	}
	if o.ServerPID < 0 {
		errs = append(errs, fmt.Errorf("-server-pid %d: must not be negative", o.ServerPID))
	}
	if o.SocketBuffer < 0 {
		errs = append(errs, fmt.Errorf("-socket-buffer %d: must not be negative", o.SocketBuffer))
	}
	if _, err := zapcore.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("-log-level %q: want debug, info, warn or error", o.LogLevel))
	}
	return errors.Join(errs...)
}

// aor returns the callee AOR.
func (o options) aor() string {
	if o.AOR != "" {
		return o.AOR
	}
	return "sip:" + o.User + "@" + o.Domain
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("mediaload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Server, "server", "", "convergo SIP UDP address, ip:port (required)")
	fs.StringVar(&o.Domain, "domain", o.Domain, "SIP domain of the callee (convergo's sip.domain)")
	fs.StringVar(&o.AOR, "aor", "", "callee AOR (default sip:<user>@<domain>)")
	fs.StringVar(&o.User, "user", "", "callee account for Digest (required)")
	fs.StringVar(&o.Password, "password", "", "callee password (default $MEDIALOAD_PASSWORD)")
	fs.StringVar(&o.Instance, "instance", o.Instance, "+sip.instance of the callee device (stable: a rerun replaces the binding)")
	fs.StringVar(&o.Listen, "listen", o.Listen, "local SIP UDP address of both ends")
	fs.StringVar(&o.MediaAddr, "media-addr", o.MediaAddr, "local IP of the caller and callee media sockets")
	fs.IntVar(&o.Calls, "calls", o.Calls, "concurrent calls to set up")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "call setups per second (BYEs go at the same rate)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "measured media window once every call is up")
	fs.DurationVar(&o.Drain, "drain", o.Drain, "wait for packets in flight after sending stops")
	fs.DurationVar(&o.SetupTimeout, "setup-timeout", o.SetupTimeout, "bound on one call's INVITE until 200")
	fs.BoolVar(&o.SRTP, "srtp", false, "caller offers RTP/SAVP AES_CM_128_HMAC_SHA1_80 (SDES)")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "convergo's pid: report its CPU and RSS over the window")
	fs.StringVar(&o.Metrics, "metrics", "", "convergo /metrics URL: report relay counters over the window")
	fs.IntVar(&o.SocketBuffer, "socket-buffer", o.SocketBuffer, "receive/send buffer of the media sockets, bytes (capped by net.core.rmem_max/wmem_max)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level of the tool (debug, info, warn, error)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.Password == "" {
		o.Password = getenv("MEDIALOAD_PASSWORD")
	}
	if err := o.validate(); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	return o, nil
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	ec := zap.NewDevelopmentEncoderConfig()
	ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.AddSync(w), lvl)
	return zap.New(core).Named("mediaload"), nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run parses flags, runs the load and prints the report; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseFlags(args, stderr, getenv)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "mediaload:", err)
		}
		return exitUsage
	}
	log, err := newLogger(o.LogLevel, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mediaload:", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "mediaload: cpuprofile:", err)
			return exitError
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	rep, err := runLoad(ctx, o, log)
	if err != nil {
		fmt.Fprintln(stderr, "mediaload:", err)
		return exitError
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "mediaload:", err)
			return exitError
		}
	} else {
		rep.WriteText(stdout)
	}
	switch {
	case !rep.Clean():
		return exitTarget
	case rep.Starved():
		return exitShort
	}
	return exitOK
}
