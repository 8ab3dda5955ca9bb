package isc

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// trustOnlyHeaders are accepted only from the trust domain; from anyone
// else they are removed (RFC 3325 §5, RFC 5502 §6, RFC 7315 §4, TS 24.229
// §4.4). P-Asserted-Identity is refused rather than stripped: see Middleware.
var trustOnlyHeaders = []string{
	"P-Served-User",
	"P-Charging-Vector",
	"P-Charging-Function-Addresses",
	"P-Asserted-Service",
	"P-Access-Network-Info",
	"P-Visited-Network-ID",
}

// Trust decides whether a request comes from the trust domain and applies
// the resulting header policy. It is immutable after New and safe for
// concurrent use.
type Trust struct {
	peers   []netip.Prefix
	as      *sip.Uri // nil: the top Route is our own
	log     *zap.Logger
	metrics *metrics
}

// New validates cfg and builds a Trust. reg receives the isc metrics (nil:
// not registered).
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Trust, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("isc: config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	t := &Trust{log: log.Named("isc")}
	for _, p := range cfg.TrustedPeers {
		prefix, _ := parsePeer(p) // validated above
		t.peers = append(t.peers, prefix)
	}
	if cfg.ASURI != "" {
		u, _ := parseASURI(cfg.ASURI) // validated above
		t.as = &u
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("isc: metrics: %w", err)
	}
	t.metrics = m
	return t, nil
}

// Trusted reports whether addr belongs to the trust domain.
func (t *Trust) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t.peers {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// sourceAddr is the network source of a received request: the socket peer
// address sipgo records (never a Via value an attacker could write).
func sourceAddr(req *sip.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Middleware wraps next with the trust policy. A request from an untrusted
// source that carries P-Asserted-Identity gets 403 (an ACK, which cannot be
// answered, has the header stripped instead); the other trust-domain
// P-headers are stripped from it. next receives a clone when headers were
// stripped, and a context carrying the request's Info (see FromContext).
func (t *Trust) Middleware(next Handler) Handler {
	return func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		src, ok := sourceAddr(req)
		trusted := ok && t.Trusted(src)
		if trusted {
			t.metrics.trusted.Inc()
			return next(WithInfo(ctx, t.classify(req)), req, tx)
		}
		t.metrics.untrusted.Inc()
		if sipmsg.Header(req, "P-Asserted-Identity") != nil && !req.IsAck() {
			t.metrics.refused.Inc()
			return &StatusError{Code: sip.StatusForbidden, Reason: "Forbidden (untrusted P-Asserted-Identity)",
				Err: fmt.Errorf("%w: %s", ErrUntrustedIdentity, src)}
		}
		if hasAny(req, trustOnlyHeaders) || sipmsg.Header(req, "P-Asserted-Identity") != nil {
			// sipgo's transaction still reads the original (100 Trying,
			// retransmission matching): strip from a copy.
			req = req.Clone()
			n := removeAll(req, "P-Asserted-Identity")
			for _, name := range trustOnlyHeaders {
				n += removeAll(req, name)
			}
			t.metrics.stripped.Add(float64(n))
		}
		return next(WithInfo(ctx, Info{}), req, tx)
	}
}

func hasAny(req *sip.Request, names []string) bool {
	for _, n := range names {
		if sipmsg.Header(req, n) != nil {
			return true
		}
	}
	return false
}

// removeAll removes every header called name, whatever its case on the
// wire (sipgo's RemoveHeader matches the wire spelling and one header at a
// time), and returns how many it removed.
func removeAll(req *sip.Request, name string) int {
	n := 0
	for {
		h := sipmsg.Header(req, name)
		if h == nil || !req.RemoveHeader(h.Name()) {
			return n
		}
		n++
	}
}
