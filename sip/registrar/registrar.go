package registrar

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// Binding sources (store.Binding.Source).
const (
	SourceDirect = "direct" // registered by the device itself
	SourceISC    = "isc"    // learned from a third-party REGISTER
)

// Listener is one bound SIP listener of this node.
type Listener struct {
	Transport string // udp, tcp, tls, ws, wss
	Addr      string // host:port as bound
}

// Deps are what New needs from the rest of convergo.
type Deps struct {
	// Bindings and Sweeper are the binding store (store.Bindings for both).
	Bindings Bindings
	Sweeper  Sweeper
	// Users resolves AORs to accounts (store.Users).
	Users Users
	// Auth authenticates direct-mode REGISTERs.
	Auth Authenticator
	// UA is the SIP user agent of this node (csip.Server.UA()): its
	// transport layer holds the flows, its client sends proxied requests.
	UA *sipgo.UserAgent
	// Node names this node among those sharing the store (cmd's node).
	// The stored identity is "Node/host:port" (just host:port when Node is
	// empty), so two nodes with one name on one machine still differ.
	Node string
	// Listeners returns the bound SIP listeners (csip.Server.Addrs); it is
	// called lazily, after the server is ready, when Config.NodeURI is empty.
	Listeners func() []Listener
	// SoleWriter says no other node writes these bindings (the embedded
	// store): Targets may then answer from memory, which every write
	// through this registrar keeps current. Leave it false for a store
	// shared between nodes (Redis).
	SoleWriter bool
}

// EventKind says what happened to a binding.
type EventKind int

// Event kinds.
const (
	// Added: a new binding (new key) was stored.
	Added EventKind = iota + 1
	// Refreshed: an existing binding was re-registered.
	Refreshed
	// Removed: a binding was unregistered, evicted, expired or its flow closed.
	Removed
)

// String returns "added", "refreshed" or "removed".
func (k EventKind) String() string {
	switch k {
	case Added:
		return "added"
	case Refreshed:
		return "refreshed"
	case Removed:
		return "removed"
	default:
		return "unknown"
	}
}

// Event is one binding change.
type Event struct {
	Kind    EventKind
	Binding store.Binding
}

// Registrar handles REGISTER, answers location queries and proxies
// requests over the flows registered on this node. Safe for concurrent use.
type Registrar struct {
	cfg       Config
	log       *zap.Logger
	bindings  Bindings
	sweeper   Sweeper
	cache     *cachedBindings // nil unless Deps.SoleWriter
	users     Users
	auth      Authenticator
	ua        *sipgo.UserAgent
	listeners func() []Listener
	metrics   *metrics
	now       func() time.Time

	nodeMu sync.Mutex
	node   string
	addr   *nodeAddr     // nil until known
	client *sipgo.Client // created with addr

	subMu   sync.Mutex
	subs    map[uint64]func(Event)
	nextSub uint64

	flowMu sync.Mutex
	flows  map[flowID]flow
}

// New builds a Registrar. reg receives the registrar metrics (nil: not
// registered).
func New(cfg Config, deps Deps, log *zap.Logger, reg prometheus.Registerer) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("registrar: config: %w", err)
	}
	cfg = cfg.WithDefaults()
	var missing []string
	for name, ok := range map[string]bool{
		"Bindings": deps.Bindings != nil, "Sweeper": deps.Sweeper != nil, "Users": deps.Users != nil,
		"Auth": deps.Auth != nil, "UA": deps.UA != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("registrar: missing dependencies: %s", strings.Join(missing, ", "))
	}
	if cfg.NodeURI == "" && deps.Listeners == nil {
		return nil, errors.New("registrar: need node_uri or Deps.Listeners to build the Path hop")
	}
	if log == nil {
		log = zap.NewNop()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("registrar: metrics: %w", err)
	}
	r := &Registrar{
		cfg:       cfg,
		log:       log.Named("registrar"),
		bindings:  deps.Bindings,
		sweeper:   deps.Sweeper,
		users:     deps.Users,
		auth:      deps.Auth,
		ua:        deps.UA,
		listeners: deps.Listeners,
		metrics:   m,
		now:       time.Now,
		node:      deps.Node,
		subs:      make(map[uint64]func(Event)),
		flows:     make(map[flowID]flow),
	}
	if deps.SoleWriter {
		r.cache = newCachedBindings(deps.Bindings, deps.Sweeper, targetCacheTTL, targetCacheMax)
		r.bindings, r.sweeper = r.cache, r.cache
	}
	if cfg.NodeURI != "" {
		a, _ := parseNodeURI(cfg.NodeURI) // validated
		r.setAddr(a)
	}
	return r, nil
}

// self returns this node's address, name and SIP client, computing them
// from the listeners on first use. ok is false before the listeners are
// bound.
func (r *Registrar) self() (addr nodeAddr, node string, client *sipgo.Client, ok bool) {
	r.nodeMu.Lock()
	if r.addr != nil {
		defer r.nodeMu.Unlock()
		return *r.addr, r.node, r.client, true
	}
	r.nodeMu.Unlock()
	a, ok := r.addrFromListeners()
	if !ok {
		return nodeAddr{}, "", nil, false
	}
	r.setAddr(a)
	return r.self()
}

func (r *Registrar) setAddr(a nodeAddr) {
	cli, err := sipgo.NewClient(r.ua, sipgo.WithClientHostname(strings.Trim(a.host, "[]")))
	if err != nil { // NewClient fails only on a bad option
		r.log.Error("sip client", zap.Error(err))
		return
	}
	r.nodeMu.Lock()
	defer r.nodeMu.Unlock()
	if r.addr != nil {
		return
	}
	r.addr = &a
	r.client = cli
	// The node address makes the identity unique even when two nodes share
	// a host name (cmd's default node name).
	hostport := net.JoinHostPort(strings.Trim(a.host, "[]"), strconv.Itoa(a.port))
	if r.node == "" {
		r.node = hostport
	} else {
		r.node += "/" + hostport
	}
	if ip, err := netip.ParseAddr(strings.Trim(a.host, "[]")); err == nil && ip.IsUnspecified() {
		r.log.Warn("node address is a wildcard: other nodes cannot reach this one; set registrar.node_uri or sip.hostname",
			zap.String("node_uri", hostport))
	}
}

// addrFromListeners picks the node address: the first TCP listener, else
// the first listener; a wildcard host is replaced by the UA hostname.
func (r *Registrar) addrFromListeners() (nodeAddr, bool) {
	if r.listeners == nil {
		return nodeAddr{}, false
	}
	ls := r.listeners()
	if len(ls) == 0 {
		return nodeAddr{}, false
	}
	pick := ls[0]
	for _, l := range ls {
		if strings.EqualFold(l.Transport, "tcp") {
			pick = l
			break
		}
	}
	host, port, err := net.SplitHostPort(pick.Addr)
	if err != nil {
		return nodeAddr{}, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nodeAddr{}, false
	}
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
		host = r.ua.Hostname()
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		host = "[" + host + "]"
	}
	return nodeAddr{host: host, port: p, transport: strings.ToLower(pick.Transport)}, true
}

// Subscribe registers fn for binding events and returns a function that
// removes it. fn runs synchronously on the goroutine that changed the
// binding (a REGISTER handler or Run) and must not block: hand slow work
// (delivering pending messages) to a goroutine or queue of your own.
func (r *Registrar) Subscribe(fn func(Event)) (cancel func()) {
	r.subMu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	r.subMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.subMu.Lock()
			delete(r.subs, id)
			r.subMu.Unlock()
		})
	}
}

// emit records ev in metrics and flow tracking, then calls the subscribers
// outside any lock.
func (r *Registrar) emit(ev Event) {
	r.metrics.events.WithLabelValues(ev.Kind.String()).Inc()
	switch ev.Kind {
	case Added:
		r.metrics.bindings.Inc()
	case Removed:
		r.metrics.bindings.Dec()
	}
	r.trackFlow(ev)
	r.subMu.Lock()
	fns := make([]func(Event), 0, len(r.subs))
	for _, fn := range r.subs {
		fns = append(fns, fn)
	}
	r.subMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}
