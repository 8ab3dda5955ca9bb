package media

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// SRTP policies for the offer sent to devices.
const (
	// PolicyPass mirrors the caller: SRTP towards the device only if the
	// caller offered it.
	PolicyPass = "pass"
	// PolicyForce offers RTP/SAVP to devices even when the caller is plain RTP.
	PolicyForce = "force"
	// PolicyStrip offers plain RTP/AVP to devices; the relay terminates the
	// caller's SRTP.
	PolicyStrip = "strip"
)

// Modes of the media block.
const (
	// ModeRelay anchors every call's media on the relay (the default).
	ModeRelay = "relay"
	// ModePassthrough lets SDP cross the B2BUA untouched: devices send
	// media to each other. No relay is built.
	ModePassthrough = "passthrough"
)

// Config is the media relay's configuration block ("media").
type Config struct {
	// Mode is relay (anchor media here) or passthrough (SDP untouched; the
	// devices exchange media directly and see each other's addresses).
	Mode string `yaml:"mode"`
	// Address is the local IP the relay binds its UDP sockets on.
	Address string `yaml:"address"`
	// Advertise is the IP written into SDP c=/o= lines; defaults to Address.
	// Set it when the relay sits behind a 1:1 NAT.
	Advertise string `yaml:"advertise"`
	// PortMin is the lowest UDP port used for RTP (rounded up to even).
	PortMin int `yaml:"port_min"`
	// PortMax is the highest UDP port used (RTCP of the last pair included).
	PortMax int `yaml:"port_max"`
	// Quarantine is how long a released port pair rests before reuse, so
	// late packets of an old call do not reach a new one.
	Quarantine time.Duration `yaml:"quarantine"`
	// LatchWindow is how long after an answer the relay may learn a peer's
	// real source address (symmetric RTP behind NAT).
	LatchWindow time.Duration `yaml:"latch_window"`
	// Inactivity is how long an answered call may carry no RTP in either
	// direction before it is reported idle; calls on hold are exempt.
	Inactivity time.Duration `yaml:"inactivity"`
	// SRTPPolicy decides the profile offered to devices: pass, force or strip.
	SRTPPolicy string `yaml:"srtp_policy"`
	// MaxCalls caps the number of anchored calls.
	MaxCalls int `yaml:"max_calls"`
	// SocketBuffer is the receive and send buffer asked for each relay
	// socket, in bytes (the kernel caps it at net.core.rmem_max/wmem_max).
	SocketBuffer int `yaml:"socket_buffer"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeRelay
	}
	if c.Address == "" {
		c.Address = "127.0.0.1"
	}
	if c.Advertise == "" {
		c.Advertise = c.Address
	}
	if c.PortMin == 0 {
		c.PortMin = 30000
	}
	if c.PortMax == 0 {
		c.PortMax = 39999
	}
	if c.Quarantine == 0 {
		c.Quarantine = 5 * time.Second
	}
	if c.LatchWindow == 0 {
		c.LatchWindow = 5 * time.Second
	}
	if c.Inactivity == 0 {
		c.Inactivity = 60 * time.Second
	}
	if c.SRTPPolicy == "" {
		c.SRTPPolicy = PolicyPass
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = 10000
	}
	if c.SocketBuffer == 0 {
		c.SocketBuffer = 512 << 10
	}
	return c
}

// Validate reports every problem in c, each prefixed with its key.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeRelay, ModePassthrough:
	default:
		errs = append(errs, fmt.Errorf("mode: %q: must be relay or passthrough", c.Mode))
	}
	if _, err := netip.ParseAddr(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("address: %q: must be an IP address", c.Address))
	}
	if a, err := netip.ParseAddr(c.Advertise); err != nil || a.IsUnspecified() {
		errs = append(errs, fmt.Errorf("advertise: %q: must be a specific IP address", c.Advertise))
	}
	if c.PortMin < 1024 || c.PortMin > 65534 {
		errs = append(errs, fmt.Errorf("port_min: %d: must be in 1024..65534", c.PortMin))
	}
	if c.PortMax > 65535 || c.PortMax < c.PortMin+1 {
		errs = append(errs, fmt.Errorf("port_max: %d: must be in port_min+1..65535", c.PortMax))
	}
	if c.Quarantine < 0 {
		errs = append(errs, fmt.Errorf("quarantine: %s: must not be negative", c.Quarantine))
	}
	if c.LatchWindow <= 0 {
		errs = append(errs, fmt.Errorf("latch_window: %s: must be positive", c.LatchWindow))
	}
	if c.Inactivity <= 0 {
		errs = append(errs, fmt.Errorf("inactivity: %s: must be positive", c.Inactivity))
	}
	switch c.SRTPPolicy {
	case PolicyPass, PolicyForce, PolicyStrip:
	default:
		errs = append(errs, fmt.Errorf("srtp_policy: %q: must be pass, force or strip", c.SRTPPolicy))
	}
	if c.SocketBuffer < 4096 {
		errs = append(errs, fmt.Errorf("socket_buffer: %d: must be at least 4096 bytes", c.SocketBuffer))
	}
	if c.MaxCalls < 1 {
		errs = append(errs, fmt.Errorf("max_calls: %d: must be positive", c.MaxCalls))
	}
	return errors.Join(errs...)
}
