package sip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the SIP access layer's configuration (yaml block "sip").
// Zero values mean the defaults documented on each field.
type Config struct {
	// Listen lists "transport:host:port" entries; transport is udp, tcp,
	// tls, ws or wss. Default ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"].
	Listen []string `yaml:"listen"`
	// Domain is the SIP domain served in direct mode. Default "convergo.local".
	Domain string `yaml:"domain"`
	// Hostname is written in Via/Contact of requests we originate. Default:
	// the host of the first listen entry.
	Hostname string `yaml:"hostname"`
	// TLSCert and TLSKey are PEM files, required when a tls or wss listener is configured.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// UserAgent is sent in Server/User-Agent headers. Default "convergo".
	UserAgent string `yaml:"user_agent"`
	// MaxInflight caps requests being handled at once; beyond it new
	// requests get 503 with Retry-After. Default 4096.
	MaxInflight int `yaml:"max_inflight"`
	// MaxCallRate caps new INVITE dialogs (an INVITE without a To tag)
	// admitted per second, in bursts of a quarter second; beyond it they
	// get 503 with Retry-After before any work is done. Set it below what
	// the server carries (make bench-sip) so that a flood is refused
	// instead of turning into retransmission storms. Default 0 (no cap).
	MaxCallRate int `yaml:"max_call_rate"`
	// MaxBodyBytes caps a request body; larger bodies get 413. Default 65536.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// SocketBuffer is the UDP receive/send buffer size in bytes. Default 4 MiB.
	// Run as root it is granted in full (SO_RCVBUFFORCE); otherwise the
	// kernel caps it at net.core.rmem_max/wmem_max and a warning at start
	// says what was granted.
	SocketBuffer int `yaml:"socket_buffer"`
	// DrainTimeout bounds how long shutdown waits for in-flight handlers. Default 5s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// RetryAfter is the Retry-After sent with 503 while overloaded or draining. Default 5s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// SendTimeout bounds each write on a TCP, TLS, WS or WSS connection a
	// peer opened to us: a peer that stops reading gets its write failed
	// (a transport error for that transaction) instead of blocking it for
	// good. Default 10s, Kamailio's tcp_send_timeout.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// TransactionWait is how long a finished transaction stays to absorb
	// retransmissions (Timers D, J, L, M; see SetTransactionWait). Default
	// 5s, like Kamailio's tm wait timer; 32s is RFC 3261's value for UDP and
	// costs about 12 KB of memory per call/s per second of wait. 1s to 32s.
	// Process-wide: read once at start.
	TransactionWait time.Duration `yaml:"transaction_wait"`
}

// Listener is one parsed listen entry.
type Listener struct {
	Transport string // udp, tcp, tls, ws, wss
	Addr      string // host:port
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.Listen) == 0 {
		c.Listen = []string{"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"}
	}
	if c.Domain == "" {
		c.Domain = "convergo.local"
	}
	if c.Hostname == "" {
		if l, err := ParseListen(c.Listen[0]); err == nil {
			c.Hostname, _, _ = net.SplitHostPort(l.Addr)
		}
	}
	if c.UserAgent == "" {
		c.UserAgent = "convergo"
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 4096
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 65536
	}
	if c.SocketBuffer == 0 {
		c.SocketBuffer = 4 << 20
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.TransactionWait == 0 {
		c.TransactionWait = DefaultTransactionWait
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 10 * time.Second
	}
	return c
}

// Validate reports every problem of c, each prefixed by its key.
func (c Config) Validate() error {
	var errs []error
	secure := false
	for i, s := range c.Listen {
		l, err := ParseListen(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen[%d]: %q: %w", i, s, err))
			continue
		}
		if l.Transport == "tls" || l.Transport == "wss" {
			secure = true
		}
	}
	if secure && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert: tls/wss listeners need tls_cert and tls_key"))
	}
	for key, f := range map[string]string{"tls_cert": c.TLSCert, "tls_key": c.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if strings.ContainsAny(c.Domain, " \r\n\t;<>\"") {
		errs = append(errs, fmt.Errorf("domain: %q: not a valid host", c.Domain))
	}
	if strings.ContainsAny(c.UserAgent, "\r\n") {
		errs = append(errs, errors.New("user_agent: must not contain CR or LF"))
	}
	for key, v := range map[string]int{"max_inflight": c.MaxInflight, "max_call_rate": c.MaxCallRate, "max_body_bytes": c.MaxBodyBytes, "socket_buffer": c.SocketBuffer} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d: must not be negative", key, v))
		}
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain_timeout: %s: must not be negative", c.DrainTimeout))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry_after: %s: must not be negative", c.RetryAfter))
	}
	if c.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("send_timeout: %s: must not be negative", c.SendTimeout))
	}
	if c.TransactionWait != 0 && (c.TransactionWait < time.Second || c.TransactionWait > 32*time.Second) {
		errs = append(errs, fmt.Errorf("transaction_wait: %s: must be between 1s and 32s", c.TransactionWait))
	}
	return errors.Join(errs...)
}

// ParseListen parses "transport:host:port". IPv6 hosts are bracketed:
// "udp:[::1]:5060".
func ParseListen(s string) (Listener, error) {
	tr, addr, ok := strings.Cut(s, ":")
	if !ok {
		return Listener{}, errors.New("want transport:host:port")
	}
	tr = strings.ToLower(tr)
	switch tr {
	case "udp", "tcp", "tls", "ws", "wss":
	default:
		return Listener{}, fmt.Errorf("unknown transport %q (udp, tcp, tls, ws, wss)", tr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(addr, ":") {
			return Listener{}, errors.New("missing port")
		}
		return Listener{}, errors.New("want transport:host:port")
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /\\[]") {
		return Listener{}, fmt.Errorf("invalid host %q", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return Listener{}, errors.New("invalid port")
	}
	return Listener{Transport: tr, Addr: net.JoinHostPort(host, port)}, nil
}
