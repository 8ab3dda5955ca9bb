package registrar

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// tokenPrefix starts the user part of every flow URI this package writes,
// so that a Route to this node without a token is never taken for one.
const tokenPrefix = "cvg-"

// flowToken names a binding in a URI user part: base64url (unreserved
// characters only, RFC 3261 §25.1) of "aor NUL key". It carries no secret:
// the owning node looks the binding up in the store before using it, so a
// forged token reaches only flows that are registered anyway.
func flowToken(aor, key string) string {
	return tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(aor+"\x00"+key))
}

// parseFlowToken reverses flowToken.
func parseFlowToken(user string) (aor, key string, ok bool) {
	enc, found := strings.CutPrefix(user, tokenPrefix)
	if !found {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	aor, key, ok = strings.Cut(string(raw), "\x00")
	if !ok || aor == "" || key == "" {
		return "", "", false
	}
	return aor, key, true
}

// flowURI is this node's Path / Record-Route entry for a binding, in <>.
// ob marks an RFC 5626 flow (RFC 5626 §5.1).
func flowURI(a nodeAddr, aor, key string, ob bool, lr bool) string {
	var b strings.Builder
	b.WriteString("<sip:")
	b.WriteString(flowToken(aor, key))
	b.WriteString("@")
	b.WriteString(a.host)
	b.WriteString(":")
	b.WriteString(strconv.Itoa(a.port))
	b.WriteString(";transport=")
	b.WriteString(a.transport)
	if lr {
		b.WriteString(";lr")
	}
	if ob {
		b.WriteString(";ob")
	}
	b.WriteString(">")
	return b.String()
}

// ownFlowRoute reports whether u is one of this node's flow URIs and
// returns the binding it names.
func (r *Registrar) ownFlowRoute(u sip.Uri) (aor, key string, ok bool) {
	if !strings.HasPrefix(u.User, tokenPrefix) {
		return "", "", false
	}
	addr, _, _, known := r.self()
	if !known || !strings.EqualFold(strings.Trim(u.Host, "[]"), strings.Trim(addr.host, "[]")) {
		return "", "", false
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if strings.EqualFold(u.Scheme, "sips") {
			port = 5061
		}
	}
	if port != addr.port {
		return "", "", false
	}
	return parseFlowToken(u.User)
}

// connectionOriented reports whether transport keeps a connection whose
// loss ends the flow.
func connectionOriented(transport string) bool {
	switch strings.ToLower(transport) {
	case "tcp", "tls", "ws", "wss":
		return true
	}
	return false
}

// flowAlive reports whether sipgo still holds the connection a binding was
// registered on. UDP flows are always alive.
func (r *Registrar) flowAlive(transport, received string) bool {
	if !connectionOriented(transport) {
		return true
	}
	pool := r.ua.TransportLayer().Pool(transport)
	if pool == nil {
		return false
	}
	c := pool.Get(received) // takes a reference
	if c == nil {
		return false
	}
	_, _ = c.TryClose() // gives it back; the reader's reference keeps it open
	return true
}

type flowID struct{ aor, key string }

type flow struct {
	transport string
	received  string
	expires   time.Time
}

// trackFlow keeps the set of connection-oriented flows registered on this
// node, for Run to notice when they close. Bounded by MaxFlows.
func (r *Registrar) trackFlow(ev Event) {
	b := ev.Binding
	if b.Source != SourceDirect || !connectionOriented(b.Transport) {
		return
	}
	_, node, _, ok := r.self()
	if !ok || b.Node != node {
		return
	}
	id := flowID{b.AOR, b.Key}
	r.flowMu.Lock()
	defer r.flowMu.Unlock()
	switch ev.Kind {
	case Added, Refreshed:
		if _, known := r.flows[id]; !known && len(r.flows) >= r.cfg.MaxFlows {
			return
		}
		r.flows[id] = flow{transport: b.Transport, received: b.Received, expires: b.Expires}
	case Removed:
		if f, known := r.flows[id]; known && f.received == b.Received {
			delete(r.flows, id)
		}
	}
}

// Run sweeps every SweepInterval until ctx ends: it removes expired
// bindings (store Sweep, each reported once across nodes) and the bindings
// of this node whose connection closed, emitting Removed for each. It
// returns nil when ctx ends.
func (r *Registrar) Run(ctx context.Context) error {
	tick := time.NewTicker(r.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.sweep(ctx)
		}
	}
}

func (r *Registrar) sweep(ctx context.Context) {
	now := r.now()
	expired, err := r.sweeper.Sweep(ctx, now)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("binding sweep failed", zap.Error(err))
	}
	for _, b := range expired {
		r.emit(Event{Kind: Removed, Binding: b})
	}
	r.sweepFlows(ctx, now)
}

// sweepFlows removes the bindings whose connection closed, after checking
// in the store that the binding still names this node and that connection
// (the device may have registered again elsewhere).
func (r *Registrar) sweepFlows(ctx context.Context, now time.Time) {
	type entry struct {
		id flowID
		f  flow
	}
	var all []entry
	r.flowMu.Lock()
	for id, f := range r.flows {
		if !f.expires.After(now) {
			delete(r.flows, id)
			continue
		}
		all = append(all, entry{id, f})
	}
	r.flowMu.Unlock()
	var dead []entry
	for _, e := range all {
		if !r.flowAlive(e.f.transport, e.f.received) {
			dead = append(dead, e)
		}
	}
	_, node, _, _ := r.self()
	for _, d := range dead {
		if ctx.Err() != nil {
			return
		}
		b, found, err := r.binding(ctx, d.id.aor, d.id.key)
		if err != nil {
			r.log.Warn("flow check failed", zap.String("aor", d.id.aor), zap.Error(err))
			continue
		}
		if !found || b.Node != node || b.Received != d.f.received {
			r.forgetFlow(d.id, d.f.received)
			continue
		}
		if err := r.bindings.Delete(ctx, b.AOR, b.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("flow binding removal failed", zap.String("aor", b.AOR), zap.Error(err))
			continue
		}
		r.log.Debug("flow closed, binding removed", zap.String("aor", b.AOR), zap.String("key", b.Key),
			zap.String("received", b.Received), zap.String("transport", b.Transport))
		r.emit(Event{Kind: Removed, Binding: b})
	}
}

func (r *Registrar) forgetFlow(id flowID, received string) {
	r.flowMu.Lock()
	defer r.flowMu.Unlock()
	if f, ok := r.flows[id]; ok && f.received == received {
		delete(r.flows, id)
	}
}

// binding returns the live binding (aor, key).
func (r *Registrar) binding(ctx context.Context, aor, key string) (store.Binding, bool, error) {
	bs, err := r.bindings.List(ctx, aor)
	if err != nil {
		return store.Binding{}, false, err
	}
	for _, b := range bs {
		if b.Key == key {
			return b, true, nil
		}
	}
	return store.Binding{}, false, nil
}
