package isc

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Config is the isc block of the configuration. The zero value is valid:
// no trusted peer (pure direct mode) and the top Route taken as our own.
type Config struct {
	// TrustedPeers are the IP addresses or CIDR prefixes of the trust
	// domain: S-CSCFs, I-CSCFs and, when several nodes share one Redis, the
	// other convergo nodes (node-to-node hops carry P-headers). Requests
	// from them may carry P-Asserted-Identity, P-Served-User and
	// P-Charging-Vector; third-party REGISTERs are accepted only from them.
	// Default: none.
	TrustedPeers []string `yaml:"trusted_peers"`
	// ASURI is this application server's URI as the S-CSCF routes to it
	// (the server name of the iFC), e.g. "sip:as.convergo.local". The first
	// Route entry matching it (scheme-insensitive host, port and user) is
	// our own; the ones after it are the return route. Default: the top
	// Route entry is taken as our own.
	ASURI string `yaml:"as_uri"`
}

// WithDefaults returns c unchanged: every field's zero value is its
// default. It exists so that cmd/convergo treats every block alike.
func (c Config) WithDefaults() Config { return c }

// Validate reports every problem of c at once, each prefixed by its key
// relative to the isc block.
func (c Config) Validate() error {
	var errs []error
	for i, p := range c.TrustedPeers {
		if _, err := parsePeer(p); err != nil {
			errs = append(errs, fmt.Errorf("trusted_peers[%d]: %q: %w", i, p, err))
		}
	}
	if c.ASURI != "" {
		if _, err := parseASURI(c.ASURI); err != nil {
			errs = append(errs, fmt.Errorf("as_uri: %q: %w", c.ASURI, err))
		}
	}
	return errors.Join(errs...)
}

// parsePeer turns "192.0.2.1", "2001:db8::1" or "192.0.2.0/24" into a prefix.
func parsePeer(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseASURI(s string) (sip.Uri, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return sip.Uri{}, fmt.Errorf("not a SIP URI: %w", err)
	}
	if sch := strings.ToLower(u.Scheme); sch != "sip" && sch != "sips" {
		return sip.Uri{}, errors.New("scheme must be sip or sips")
	}
	if u.Host == "" {
		return sip.Uri{}, errors.New("missing host")
	}
	return u, nil
}
