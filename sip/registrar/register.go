package registrar

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/convergo/convergo/store"
)

// OnRegister handles REGISTER; it has the csip.Handler shape. A request
// the isc middleware marked as trusted whose From differs from its To is a
// third-party REGISTER from the S-CSCF; any other is a device registering
// directly. Failures are returned for the request guard to answer.
func (r *Registrar) OnRegister(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
	if info, ok := isc.FromContext(ctx); ok && info.Trusted && onBehalf(req) {
		return r.thirdParty(ctx, req, tx, info)
	}
	result, err := r.register(ctx, req, tx)
	r.metrics.registrations.WithLabelValues(result).Inc()
	return err
}

// onBehalf reports whether a REGISTER is sent by someone else than the
// registering user, as a third-party REGISTER is (TS 24.229 §5.4.1.7: From
// is the S-CSCF, To the user). A device's own REGISTER has From = To; even
// from a trusted address it is authenticated like any other.
func onBehalf(req *sip.Request) bool {
	from, to := req.From(), req.To()
	return from != nil && to != nil && isc.CanonicalAOR(from.Address) != isc.CanonicalAOR(to.Address)
}

// change is one planned binding update of a REGISTER.
type change struct {
	spec    contactSpec
	expires time.Duration // 0: remove
	old     *store.Binding
}

func (r *Registrar) register(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (string, error) {
	aor, err := toAOR(req)
	if err != nil {
		return resultBad, err
	}
	// RFC 3261 §10.3 step 5: an AOR that is no user of ours is 404.
	if _, err := r.users.GetByIdentity(ctx, aor); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return resultNotFound, notFound(aor)
		}
		return resultError, internal(fmt.Errorf("registrar: look up %s: %w", aor, err))
	}
	src, _ := netip.ParseAddrPort(req.Source())
	id, err := r.auth.Authenticate(ctx, req, src)
	if err != nil {
		var sc interface{ SIPStatus() (int, string) }
		if errors.As(err, &sc) {
			if code, _ := sc.SIPStatus(); code == sip.StatusUnauthorized {
				return resultChallenged, err
			}
		}
		return resultAuthFailed, err
	}
	if canonicalAOR(id.AOR) != aor {
		return resultForbidden, &StatusError{Code: sip.StatusForbidden, Reason: "Forbidden (Not Your AOR)",
			Err: fmt.Errorf("%w: %s may not register %s", ErrForbidden, id.UserID, aor)}
	}

	now := r.now()
	hdrExpires := int64(-1)
	if h := sipmsg.Header(req, "Expires"); h != nil {
		if hdrExpires, err = parseDelta(h.Value()); err != nil {
			return resultBad, badRequest("Invalid Expires", err)
		}
	}
	current, err := r.bindings.List(ctx, aor)
	if err != nil {
		return resultError, internal(fmt.Errorf("registrar: list %s: %w", aor, err))
	}
	hdrs := sipmsg.Headers(req, "Contact")
	if len(hdrs) == 0 { // RFC 3261 §10.2.3: fetch
		return resultFetch, r.respondBindings(req, tx, current, now, hasOptionTag(sipmsg.Headers(req, "Supported"), "gruu"))
	}
	if len(hdrs) > r.cfg.MaxBindings {
		return resultBad, badRequest("Too Many Contacts", fmt.Errorf("%d contacts, at most %d", len(hdrs), r.cfg.MaxBindings))
	}
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo
	for _, h := range hdrs {
		if c, ok := h.(*sip.ContactHeader); ok && c.Address.Wildcard {
			if len(hdrs) != 1 {
				return resultBad, badRequest("Invalid Contact: * Must Be Alone", nil)
			}
			if hdrExpires != 0 {
				return resultBad, badRequest("Invalid Contact: * Needs Expires 0", nil)
			}
			return r.unregisterAll(ctx, req, tx, aor, current, now)
		}
	}

	changes, reason, err := r.plan(hdrs, current, hdrExpires, id, callID, cseq, now)
	if err != nil {
		return reason, err
	}
	addr, node, _, ok := r.self()
	if !ok {
		return resultError, internal(errors.New("registrar: node address unknown (listeners not bound)"))
	}
	reqPath := sipmsg.Values(sipmsg.Headers(req, "Path"))
	outbound := hasOptionTag(sipmsg.Headers(req, "Supported"), "outbound")

	var events []Event
	written := map[string]bool{}
	for _, ch := range changes {
		written[ch.spec.key] = true
		if ch.expires == 0 {
			if ch.old == nil {
				continue
			}
			if err := r.bindings.Delete(ctx, aor, ch.spec.key); err != nil && !errors.Is(err, store.ErrNotFound) {
				r.emitAll(events) // what was written before the failure
				return resultError, internal(fmt.Errorf("registrar: delete %s %s: %w", aor, ch.spec.key, err))
			}
			events = append(events, Event{Kind: Removed, Binding: *ch.old})
			continue
		}
		ob := outbound && ch.spec.regID > 0 // RFC 5626 §5.1: we are the edge proxy of this flow
		b := store.Binding{
			AOR: aor, Key: ch.spec.key, Contact: ch.spec.uri.String(), Instance: ch.spec.instance,
			RegID: ch.spec.regID, CallID: callID, CSeq: cseq, Expires: now.Add(ch.expires),
			Received: req.Source(), Transport: strings.ToLower(req.Transport()), Node: node,
			Path:   append([]string{flowURI(addr, aor, ch.spec.key, ob, true)}, reqPath...),
			Params: ch.spec.params, Source: SourceDirect,
		}
		kind := Added
		if ch.old != nil {
			kind = Refreshed
			b.Created = ch.old.Created
		} else {
			b.Created = now
		}
		if err := r.bindings.Put(ctx, b); err != nil {
			r.emitAll(events)
			return resultError, internal(fmt.Errorf("registrar: put %s %s: %w", aor, b.Key, err))
		}
		events = append(events, Event{Kind: kind, Binding: b})
	}
	live, err := r.bindings.List(ctx, aor)
	if err != nil {
		r.emitAll(events)
		return resultError, internal(fmt.Errorf("registrar: list %s: %w", aor, err))
	}
	live, evicted, err := r.evict(ctx, live, SourceDirect, written)
	events = append(events, evicted...)
	if err != nil {
		r.emitAll(events)
		return resultError, err
	}
	r.emitAll(events)

	res := r.bindingsResponse(req, live, now, hasOptionTag(sipmsg.Headers(req, "Supported"), "gruu"))
	// RFC 5626 §6 (Sprout's rule): Require: outbound when the UA supports it,
	// a contact has instance and reg-id and the first Path (ours) has ob.
	if outbound && slices.ContainsFunc(changes, func(c change) bool { return c.spec.regID > 0 && c.expires > 0 }) {
		res.AppendHeader(sip.NewHeader("Require", "outbound"))
	}
	if hasOptionTag(sipmsg.Headers(req, "Supported"), "path") { // RFC 3327 §5.3
		for _, p := range reqPath {
			res.AppendHeader(sip.NewHeader("Path", p))
		}
	}
	if err := tx.Respond(res); err != nil {
		return resultOK, fmt.Errorf("registrar: respond: %w", err)
	}
	return resultOK, nil
}

// plan validates every Contact and decides each binding's fate before
// anything is written (a rejected REGISTER leaves no state behind).
func (r *Registrar) plan(hdrs []sip.Header, current []store.Binding, hdrExpires int64, id Identity,
	callID string, cseq uint32, now time.Time) ([]change, string, error) {
	var changes []change
	index := map[string]int{}
	for _, h := range hdrs {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, resultBad, badRequest("Invalid Contact", nil)
		}
		spec, err := parseContact(ch)
		if err != nil {
			return nil, resultBad, err
		}
		exp, err := r.grant(spec.expires, hdrExpires, id, now)
		if err != nil {
			return nil, resultTooBrief, err
		}
		c := change{spec: spec, expires: exp}
		if i, dup := index[spec.key]; dup {
			// The same instance twice, one of them expires=0 (an old socket):
			// the live one wins (Flexisip); otherwise the last one does.
			if exp == 0 && changes[i].expires > 0 {
				continue
			}
			changes[i] = c
			continue
		}
		index[spec.key] = len(changes)
		changes = append(changes, c)
	}
	for i := range changes {
		for j := range current {
			if current[j].Key != changes[i].spec.key {
				continue
			}
			old := current[j]
			if old.CallID == callID && cseq <= old.CSeq {
				return nil, resultBad, badRequest("Replayed CSeq", fmt.Errorf("cseq %d not above %d for call-id %q", cseq, old.CSeq, callID))
			}
			changes[i].old = &old
		}
	}
	return changes, "", nil
}

// grant returns the expiry to grant a contact: its expires parameter, else
// the Expires header, else the default (RFC 3261 §10.3 step 7); 0 means
// remove. A non-zero request below MinExpires is 423; the result is capped
// at MaxExpires and at the credential's lifetime (RFC 8898 §2.3).
func (r *Registrar) grant(contactExpires, hdrExpires int64, id Identity, now time.Time) (time.Duration, error) {
	secs := contactExpires
	if secs < 0 {
		secs = hdrExpires
	}
	if secs == 0 {
		return 0, nil
	}
	d := time.Duration(secs) * time.Second
	switch {
	case secs < 0:
		d = r.cfg.DefaultExpires
	case secs > int64(r.cfg.MaxExpires/time.Second):
		d = r.cfg.MaxExpires
	}
	if d < r.cfg.MinExpires {
		minSecs := strconv.FormatInt(int64(r.cfg.MinExpires/time.Second), 10)
		return 0, &StatusError{Code: sip.StatusIntervalToBrief, Reason: "Interval Too Brief",
			Headers: []sip.Header{sip.NewHeader("Min-Expires", minSecs)},
			Err:     fmt.Errorf("expires %d below %s", secs, minSecs)}
	}
	if !id.Expires.IsZero() {
		left := id.Expires.Sub(now).Truncate(time.Second)
		if left < time.Second {
			left = time.Second
		}
		d = min(d, left)
	}
	return d, nil
}

// unregisterAll handles Contact: * with Expires: 0 (RFC 3261 §10.2.2):
// every direct binding of aor goes, unless one of them has the request's
// Call-ID with a CSeq not below the request's (then nothing goes).
func (r *Registrar) unregisterAll(ctx context.Context, req *sip.Request, tx sip.ServerTransaction,
	aor string, current []store.Binding, now time.Time) (string, error) {
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo
	var gone []store.Binding
	for _, b := range current {
		if b.Source == SourceISC {
			continue // owned by the S-CSCF
		}
		if b.CallID == callID && cseq <= b.CSeq {
			return resultBad, badRequest("Replayed CSeq", fmt.Errorf("cseq %d not above %d", cseq, b.CSeq))
		}
		gone = append(gone, b)
	}
	var events []Event
	for _, b := range gone {
		if err := r.bindings.Delete(ctx, aor, b.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.emitAll(events)
			return resultError, internal(fmt.Errorf("registrar: delete %s %s: %w", aor, b.Key, err))
		}
		events = append(events, Event{Kind: Removed, Binding: b})
	}
	r.emitAll(events)
	live, err := r.bindings.List(ctx, aor)
	if err != nil {
		return resultError, internal(fmt.Errorf("registrar: list %s: %w", aor, err))
	}
	return resultOK, r.respondBindings(req, tx, live, now, hasOptionTag(sipmsg.Headers(req, "Supported"), "gruu"))
}

// evict removes the oldest bindings of source beyond MaxBindings, sparing
// the keys just written while others can go. It returns what is left.
func (r *Registrar) evict(ctx context.Context, live []store.Binding, source string, fresh map[string]bool) ([]store.Binding, []Event, error) {
	var mine []store.Binding
	for _, b := range live {
		if b.Source == source || (source == SourceDirect && b.Source == "") {
			mine = append(mine, b)
		}
	}
	excess := len(mine) - r.cfg.MaxBindings
	if excess <= 0 {
		return live, nil, nil
	}
	// List is oldest first: older untouched bindings go before fresh ones.
	victims := make([]store.Binding, 0, excess)
	for pass := 0; pass < 2 && len(victims) < excess; pass++ {
		for _, b := range mine {
			if len(victims) == excess {
				break
			}
			if fresh[b.Key] == (pass == 1) && !slices.ContainsFunc(victims, func(v store.Binding) bool { return v.Key == b.Key }) {
				victims = append(victims, b)
			}
		}
	}
	var events []Event
	gone := map[string]bool{}
	for _, v := range victims {
		if err := r.bindings.Delete(ctx, v.AOR, v.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return live, events, internal(fmt.Errorf("registrar: evict %s %s: %w", v.AOR, v.Key, err))
		}
		gone[v.Key] = true
		events = append(events, Event{Kind: Removed, Binding: v})
		r.log.Info("binding evicted", zap.String("aor", v.AOR), zap.String("key", v.Key), zap.Int("max_bindings", r.cfg.MaxBindings))
	}
	left := slices.DeleteFunc(slices.Clone(live), func(b store.Binding) bool { return gone[b.Key] })
	return left, events, nil
}

func (r *Registrar) emitAll(events []Event) {
	for _, ev := range events {
		r.emit(ev)
	}
}

// respondBindings answers 200 listing the live bindings.
func (r *Registrar) respondBindings(req *sip.Request, tx sip.ServerTransaction, live []store.Binding, now time.Time, gruu bool) error {
	if err := tx.Respond(r.bindingsResponse(req, live, now, gruu)); err != nil {
		return fmt.Errorf("registrar: respond: %w", err)
	}
	return nil
}

// bindingsResponse is the 200 to a REGISTER: every live binding with its
// remaining expiry (RFC 3261 §10.3 step 8) and a Date.
func (r *Registrar) bindingsResponse(req *sip.Request, live []store.Binding, now time.Time, gruu bool) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, b := range live {
		left := int64(b.Expires.Sub(now).Round(time.Second) / time.Second)
		if left <= 0 {
			continue
		}
		res.AppendHeader(contactHeader(b, left, gruu))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http.TimeFormat)))
	return res
}

// toAOR returns the canonical AOR of the To header of a REGISTER.
func toAOR(req *sip.Request) (string, error) {
	to := req.To()
	if to == nil {
		return "", badRequest("Missing To", nil)
	}
	u := to.Address
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return "", badRequest("Invalid To URI", fmt.Errorf("to scheme %q", u.Scheme))
	}
	if u.Host == "" {
		return "", badRequest("Invalid To URI", errors.New("to without host"))
	}
	return isc.CanonicalAOR(u), nil
}

// canonicalAOR canonicalises an AOR given as a string; unparsable input is
// returned as is.
func canonicalAOR(s string) string {
	var u sip.Uri
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if err := sip.ParseUri(s, &u); err != nil {
		return s
	}
	return isc.CanonicalAOR(u)
}
