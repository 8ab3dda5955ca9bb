package b2bua

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the call control configuration (yaml block "b2bua"). Zero
// values mean the defaults documented on each field; New applies them.
type Config struct {
	// RingTimeout bounds how long a call may ring before every fork is
	// cancelled and the caller gets 408 (or the best failure held so far).
	// Default 60s.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// DeclinePerDevice makes a 6xx from one device fail only that fork
	// instead of ending the whole call (RFC 3261 §16.7 ends it; Flexisip's
	// fork-no-global-decline does this). Default false.
	DeclinePerDevice bool `yaml:"decline_per_device"`
	// MaxCalls caps the calls held at once (ringing, connected, or waiting
	// for a loser's final response); beyond it new INVITEs get 503 with
	// Retry-After. Default 10000.
	MaxCalls int `yaml:"max_calls"`
	// MaxAge ends calls older than this with BYE, a backstop for a lost BYE.
	// Default 4h.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxForks caps the B-legs of one call; extra targets are ignored.
	// Default 16.
	MaxForks int `yaml:"max_forks"`
	// RetryAfter is the Retry-After of the 503 sent when MaxCalls is reached
	// or while shutting down. Default 5s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// ContactHost is the host written in Contact and Via of every leg.
	// Default: the host of the listener the leg uses; required when a
	// listener is bound to an unspecified address (0.0.0.0, ::).
	ContactHost string `yaml:"contact_host"`
	// UserAgent is sent as User-Agent on requests and Server on responses
	// this package originates; the caller's own User-Agent never crosses to
	// a B-leg. Default "convergo".
	UserAgent string `yaml:"user_agent"`
	// T1 is the RFC 3261 round-trip estimate driving the 2xx retransmission
	// this package does itself (§13.3.1.4) and its 64·T1 bounds (ACK wait,
	// CANCEL answer wait). sipgo's own transaction timers are not changed.
	// Default 500ms.
	T1 time.Duration `yaml:"t1"`
	// T2 caps the 2xx retransmission interval. Default 4s.
	T2 time.Duration `yaml:"t2"`
	// DialTimeout bounds opening a connection (TCP, TLS, WS) or resolving a
	// name for a request we send. Default 3s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ShutdownTimeout bounds how long Run waits, once its context ends, for
	// calls to finish after it sent BYE/CANCEL; then the rest is dropped.
	// Default 5s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.RingTimeout == 0 {
		c.RingTimeout = 60 * time.Second
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = 10000
	}
	if c.MaxAge == 0 {
		c.MaxAge = 4 * time.Hour
	}
	if c.MaxForks == 0 {
		c.MaxForks = 16
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "convergo"
	}
	if c.T1 == 0 {
		c.T1 = 500 * time.Millisecond
	}
	if c.T2 == 0 {
		c.T2 = 4 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	return c
}

// Validate reports every problem of c, each prefixed by its key.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"ring_timeout", c.RingTimeout}, {"max_age", c.MaxAge}, {"retry_after", c.RetryAfter},
		{"t1", c.T1}, {"t2", c.T2}, {"dial_timeout", c.DialTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s: must not be negative", d.key, d.v))
		}
	}
	if c.T1 > 0 && c.T2 > 0 && c.T2 < c.T1 {
		errs = append(errs, fmt.Errorf("t2: %s: must not be below t1 (%s)", c.T2, c.T1))
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max_calls", c.MaxCalls}, {"max_forks", c.MaxForks}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d: must be positive", n.key, n.v))
		}
	}
	if c.ContactHost != "" {
		h := strings.Trim(c.ContactHost, "[]")
		if hasControl(c.ContactHost) || strings.ContainsAny(h, " \t;<>\"/,@:") && net.ParseIP(h) == nil {
			errs = append(errs, fmt.Errorf("contact_host: %q: not a host name or IP address", c.ContactHost))
		}
	}
	if hasControl(c.UserAgent) {
		errs = append(errs, errors.New("user_agent: must not contain control characters"))
	}
	return errors.Join(errs...)
}
