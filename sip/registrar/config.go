package registrar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Config is the registrar block of the configuration. The zero value of
// every field means its default.
type Config struct {
	// MinExpires is the shortest registration granted; a shorter non-zero
	// request gets 423 Interval Too Brief with Min-Expires. Default 60s.
	MinExpires time.Duration `yaml:"min_expires"`
	// MaxExpires caps every direct registration. Default 24h.
	MaxExpires time.Duration `yaml:"max_expires"`
	// DefaultExpires applies when neither the Contact nor the request
	// carries an expiry. Default 1h.
	DefaultExpires time.Duration `yaml:"default_expires"`
	// MaxBindings caps the bindings of one AOR; registering more evicts
	// the oldest. It also caps the Contacts of one REGISTER (400 beyond).
	// Default 10.
	MaxBindings int `yaml:"max_bindings"`
	// SweepInterval is how often Run removes expired bindings and bindings
	// whose TCP/TLS/WS flow closed, emitting Removed. Keep it shorter than
	// the store's own sweep, which drops expired bindings silently. Default 5s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// NodeURI is how other convergo nodes (and record-routed dialogs) reach
	// this node, e.g. "sip:10.0.0.5:5060;transport=tcp"; it becomes the
	// Path hop of every binding accepted here. Default: built from the
	// first TCP listener (else the first listener) of the sip block, with
	// the sip hostname when that listener is a wildcard address.
	NodeURI string `yaml:"node_uri"`
	// ProxyTimeout bounds a request proxied over a flow when the device
	// keeps ringing (RFC 3261 §16.8 Timer C): then the branch is cancelled
	// and 408 is relayed. Default 3m.
	ProxyTimeout time.Duration `yaml:"proxy_timeout"`
	// MaxFlows caps the connection-oriented flows this node watches for
	// closure (Run); beyond it, closed flows are still left out by Targets
	// but their bindings only go when they expire. Default 100000.
	MaxFlows int `yaml:"max_flows"`
}

// Defaults of Config.
const (
	DefaultMinExpires     = 60 * time.Second
	DefaultMaxExpires     = 24 * time.Hour
	DefaultDefaultExpires = time.Hour
	DefaultMaxBindings    = 10
	DefaultSweepInterval  = 5 * time.Second
	DefaultProxyTimeout   = 3 * time.Minute
	DefaultMaxFlows       = 100000
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MinExpires == 0 {
		c.MinExpires = DefaultMinExpires
	}
	if c.MaxExpires == 0 {
		c.MaxExpires = DefaultMaxExpires
	}
	if c.DefaultExpires == 0 {
		c.DefaultExpires = DefaultDefaultExpires
	}
	if c.MaxBindings == 0 {
		c.MaxBindings = DefaultMaxBindings
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.ProxyTimeout == 0 {
		c.ProxyTimeout = DefaultProxyTimeout
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	return c
}

// Validate reports every problem of c at once, each prefixed by its key
// relative to the registrar block. Zero values are valid (defaults).
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"min_expires", c.MinExpires}, {"max_expires", c.MaxExpires}, {"default_expires", c.DefaultExpires},
		{"sweep_interval", c.SweepInterval}, {"proxy_timeout", c.ProxyTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s: must be positive", d.key, d.v))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"min_expires", c.MinExpires}, {"max_expires", c.MaxExpires}, {"default_expires", c.DefaultExpires}} {
		if d.v > 0 && d.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s: %s: must be whole seconds", d.key, d.v))
		}
	}
	if c.MaxBindings < 0 {
		errs = append(errs, fmt.Errorf("max_bindings: %d: must be positive", c.MaxBindings))
	}
	if c.MaxFlows < 0 {
		errs = append(errs, fmt.Errorf("max_flows: %d: must be positive", c.MaxFlows))
	}
	d := c.WithDefaults()
	if d.MinExpires > 0 && d.MaxExpires > 0 && d.MinExpires > d.MaxExpires {
		errs = append(errs, fmt.Errorf("min_expires: %s: must not exceed max_expires (%s)", d.MinExpires, d.MaxExpires))
	}
	if d.DefaultExpires > 0 && (d.DefaultExpires < d.MinExpires || d.DefaultExpires > d.MaxExpires) {
		errs = append(errs, fmt.Errorf("default_expires: %s: must lie within min_expires (%s) and max_expires (%s)",
			d.DefaultExpires, d.MinExpires, d.MaxExpires))
	}
	if c.NodeURI != "" {
		if _, err := parseNodeURI(c.NodeURI); err != nil {
			errs = append(errs, fmt.Errorf("node_uri: %q: %w", c.NodeURI, err))
		}
	}
	return errors.Join(errs...)
}

// nodeAddr is where this node is reached: the Path and Record-Route host.
type nodeAddr struct {
	host      string // as written in URIs ([v6] bracketed)
	port      int
	transport string // lower case: udp, tcp, tls, ws, wss
}

func parseNodeURI(s string) (nodeAddr, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return nodeAddr{}, fmt.Errorf("not a SIP URI: %w", err)
	}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return nodeAddr{}, errors.New("scheme must be sip or sips")
	}
	if u.Host == "" || u.User != "" {
		return nodeAddr{}, errors.New("want sip:host[:port][;transport=x] without a user part")
	}
	tr := "udp"
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tr = strings.ToLower(v)
	}
	switch tr {
	case "udp", "tcp", "tls", "ws", "wss":
	default:
		return nodeAddr{}, fmt.Errorf("unknown transport %q", tr)
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if tr == "tls" || tr == "wss" {
			port = 5061
		}
	}
	return nodeAddr{host: u.Host, port: port, transport: tr}, nil
}
