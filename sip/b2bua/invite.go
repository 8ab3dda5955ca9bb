package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// OnInvite handles an INVITE. One with a To tag is a re-INVITE (see
// OnInDialog). An initial INVITE is classified, its callee located, and a
// call created that forks one B-leg per target; the handler returns once
// the caller has its final response (sipgo ends the server transaction
// when a handler returns). A CANCEL from the caller is consumed by sipgo,
// which answers 200 and 487 itself and tells us through tx.OnCancel; we
// then cancel every fork. Refusals (no target 480, limit 503, unknown user
// as the Locator says) leave no state behind.
func (s *Server) OnInvite(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
	if tagOf(req.To().Params) != "" {
		return s.OnInDialog(ctx, req, tx)
	}
	b := s.bound.Load()
	if b == nil {
		s.m.results[resultRejected].Inc()
		return &StatusError{Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable",
			Headers: []sip.Header{s.retryAfter}, Err: ErrNotBound}
	}
	if err := s.checkInvite(req, b); err != nil {
		s.m.results[resultRejected].Inc()
		return err
	}

	// 100 Trying at once (RFC 3261 §17.2.1): the S-CSCF's liveness timer
	// wants it within ~2s, and sipgo's own 200ms timer can fire while we
	// send a 180, putting its 100 after the 180 (SIPp counts that as an
	// unexpected message).
	trying := sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil)
	trying.AppendHeader(s.hdrServer)
	_ = tx.Respond(trying) // a lost 100 is harmless: sipgo retransmits the INVITE's answer

	// Register for CANCEL first: it may arrive while we look up the callee.
	// The callbacks hold only ref: sipgo keeps tx for 64·T1 after our 2xx.
	var (
		ref       = new(callRef)
		cancelReq atomic.Pointer[sip.Request]
	)
	if !tx.OnCancel(func(r *sip.Request) {
		cancelReq.Store(r)
		ref.post(func(c *call) { c.onCallerCancel(r) })
	}) {
		return nil // already cancelled; sipgo answered 487
	}

	route, targets, err := s.route(ctx, req, b)
	if err != nil {
		s.m.results[resultRejected].Inc()
		return err
	}
	if cancelReq.Load() != nil {
		s.m.results[resultCancelled].Inc()
		return nil
	}
	c := newCall(s, req, tx, route, targets)
	c.ref = ref
	if err := s.calls.add(c); err != nil {
		s.m.results[resultRejected].Inc()
		return &StatusError{Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable",
			Headers: []sip.Header{s.retryAfter}, Err: err}
	}
	s.m.active.Inc()
	s.m.forks.Observe(float64(len(c.legs)))
	s.index.put(dialogKey(c.a.callID, tagOf(c.a.local.Params)), dialogRef{c: c, l: c.a})
	for _, l := range c.legs {
		s.index.put(dialogKey(l.callID, tagOf(l.local.Params)), dialogRef{c: c, l: l})
	}
	ref.c.Store(c)
	if r := cancelReq.Load(); r != nil {
		c.post(func() { c.onCallerCancel(r) })
	}
	tx.OnTerminate(func(string, error) { ref.post((*call).onATerminated) })
	c.post(c.start)
	select {
	case <-c.aDone:
	case <-ctx.Done():
		c.post(c.abortA)
		<-c.aDone
	}
	if c.aFailed && c.a.transport == "UDP" {
		// The ACK to a non-2xx belongs to the INVITE transaction (RFC 3261
		// §17.2.1). Take it here: unread, sipgo parks a goroutine per ACK
		// until Timer I (5s), which adds up at high call rates.
		t := time.NewTimer(64 * s.cfg.T1)
		select {
		case <-tx.Acks():
		case <-tx.Done():
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// checkInvite refuses initial INVITEs we cannot serve.
func (s *Server) checkInvite(req *sip.Request, b *binding) error {
	if req.Contact() == nil {
		return &StatusError{Code: sip.StatusBadRequest, Reason: "Missing Contact", Err: ErrBadRequest}
	}
	if b.client(req.Transport()) == nil || b.contacts[req.Transport()] == nil {
		return &StatusError{Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable",
			Err: fmt.Errorf("%w: no %s listener bound", ErrNotBound, req.Transport())}
	}
	// RFC 3261 §8.2.2.3: an extension we do not support is refused with 420.
	if t := unsupportedRequire(req); t != "" {
		return &StatusError{Code: sip.StatusBadExtension, Reason: "Bad Extension",
			Headers: []sip.Header{sip.NewHeader("Unsupported", t)}, Err: ErrBadRequest}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 1 {
		return &StatusError{Code: sip.StatusTooManyHops, Reason: "Too Many Hops", Err: ErrBadRequest}
	}
	return nil
}

// route classifies req and returns the validated targets to fork to.
func (s *Server) route(ctx context.Context, req *sip.Request, b *binding) (Route, []target, error) {
	route, err := s.cls.Classify(ctx, req)
	if err != nil {
		return route, nil, passStatus("classify", err)
	}
	route.AssertedIdentity = cleanValues(route.AssertedIdentity)
	if hasControl(route.ChargingVector) {
		route.ChargingVector = ""
	}
	if route.Kind == Continue {
		t, err := parseTarget(Target{RequestURI: req.Recipient.String(), Route: route.ReturnRoute, Source: "isc"})
		if err != nil || b.client(t.transport) == nil {
			return route, nil, &StatusError{Code: sip.StatusInternalServerError, Reason: "Server Internal Error",
				Err: fmt.Errorf("b2bua: return route: %w", err)}
		}
		return route, []target{t}, nil
	}
	if route.CalleeAOR == "" {
		return route, nil, &StatusError{Code: sip.StatusNotFound, Reason: "Not Found", Err: ErrBadRequest}
	}
	list, err := s.loc.Targets(ctx, route.CalleeAOR)
	if err != nil {
		return route, nil, passStatus("locate "+route.CalleeAOR, err)
	}
	targets := make([]target, 0, min(len(list), s.cfg.MaxForks))
	for _, t := range list {
		if len(targets) == s.cfg.MaxForks {
			break
		}
		pt, err := parseTarget(t)
		switch {
		case err != nil:
		case b.client(pt.transport) == nil:
			err = fmt.Errorf("%w: no %s listener bound", ErrInvalidTarget, pt.transport)
		case b.isSelf(pt):
			err = fmt.Errorf("%w: points at this server", ErrInvalidTarget)
		}
		if err != nil {
			if ce := s.warn.Check(zap.WarnLevel, "b2bua target skipped"); ce != nil {
				ce.Write(zap.String("aor", t.AOR), zap.String("key", t.Key), zap.Error(err))
			}
			continue
		}
		targets = append(targets, pt)
	}
	if len(targets) == 0 {
		return route, nil, &StatusError{Code: sip.StatusTemporarilyUnavailable, Reason: "Temporarily Unavailable", Err: ErrNoTargets}
	}
	return route, targets, nil
}

// passStatus keeps an error that carries its SIP status and wraps others
// (the guard answers those 500).
func passStatus(what string, err error) error {
	var sc statusCarrier
	if errors.As(err, &sc) {
		return err
	}
	return fmt.Errorf("b2bua: %s: %w", what, err)
}

// cleanValues drops empty values and values that could inject lines.
func cleanValues(in []string) []string {
	out := in[:0:0]
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" && !hasControl(v) {
			out = append(out, v)
		}
	}
	return out
}

// newCall builds the call and its legs; nothing is sent yet.
func newCall(s *Server, req *sip.Request, tx sip.ServerTransaction, route Route, targets []target) *call {
	from, to := req.From(), req.To()
	c := &call{
		s:       s,
		id:      newTag(),
		created: time.Now(),
		stopped: make(chan struct{}),
		aReq:    req,
		aTx:     tx,
		hasBody: len(req.Body()) > 0,
		aDone:   make(chan struct{}),
		route:   route,
	}
	a := &leg{name: "a"}
	a.callID = req.CallID().Value()
	a.local = sip.FromHeader{DisplayName: to.DisplayName, Address: *to.Address.Clone(),
		Params: sip.HeaderParams{{K: "tag", V: newTag()}}}
	a.remote = sip.ToHeader{DisplayName: from.DisplayName, Address: *from.Address.Clone(), Params: from.Params.Clone()}
	a.remoteTarget = *req.Contact().Address.Clone()
	a.routeSet = routeSet(req, "Record-Route", false) // UAS: in order (RFC 3261 §12.1.1)
	a.transport = req.Transport()
	if len(a.routeSet) == 0 {
		a.dest = req.Source() // the flow the caller used: NAT and TCP reuse
	}
	a.remoteCSeq = req.CSeq().SeqNo
	c.a = a
	c.legs = make([]*leg, len(targets))
	for i, t := range targets {
		b := &leg{name: forkName(i + 1), idx: i + 1, target: t, kill: make(chan struct{})}
		b.callID = newCallID()
		b.local = sip.FromHeader{DisplayName: from.DisplayName, Address: *from.Address.Clone(),
			Params: sip.HeaderParams{{K: "tag", V: newTag()}}}
		b.remote = sip.ToHeader{DisplayName: to.DisplayName, Address: *to.Address.Clone()}
		b.remoteTarget = t.uri
		b.routeSet = t.route
		b.transport = t.transport
		b.dest = t.dest
		c.legs[i] = b
	}
	return c
}

// respondA answers the caller's INVITE. Every response carries our one To
// tag (sipgo would make a new one per response) and, from 101 on, our
// Contact.
func (c *call) respondA(code int, reason string, body []byte, sdp bool, src sip.Message, hdrs ...sip.Header) (*sip.Response, error) {
	res := sip.NewResponseFromRequest(c.aReq, code, reason, nil)
	res.To().Params.Add("tag", tagOf(c.a.local.Params))
	if code > 100 && code < 300 {
		if ct := c.contact(c.a.transport); ct != nil {
			res.AppendHeader(ct)
		}
	}
	if code >= 200 && code < 300 {
		res.AppendHeader(c.s.hdrAllow)
	}
	res.AppendHeader(c.s.hdrServer)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	setBody(res, src, body, sdp)
	return res, c.aTx.Respond(res)
}

// failWith relays a fork's failure to the caller, mapped by upstream.
func (c *call) failWith(f failure) {
	if f.own {
		var hdrs []sip.Header
		if f.code == sip.StatusServiceUnavailable {
			hdrs = append(hdrs, c.s.retryAfter)
		}
		if f.warn != "" {
			hdrs = append(hdrs, sip.NewHeader("Warning", `399 convergo "`+f.warn+`"`))
		}
		c.failA(f.code, f.reason, nil, hdrs...)
		return
	}
	code, reason := upstream(f.code, f.reason)
	c.failA(code, reason, f.res)
}

// failA gives the caller a final failure and ends the fork: forks still
// pending are cancelled. src, if not nil, is the response relayed.
func (c *call) failA(code int, reason string, src *sip.Response, hdrs ...sip.Header) {
	if c.state != stateRinging {
		return
	}
	if reason == "" || hasControl(reason) {
		reason = defaultReason(code)
	}
	res := sip.NewResponseFromRequest(c.aReq, code, reason, nil)
	res.To().Params.Add("tag", tagOf(c.a.local.Params))
	res.AppendHeader(c.s.hdrServer)
	if src != nil {
		copyHeaders(res, src, responseCopied...)
		if code >= 300 && code < 400 {
			for _, h := range sipmsg.Headers(src, "Contact") {
				if ch, ok := h.(*sip.ContactHeader); ok && !hasControl(ch.Value()) {
					res.AppendHeader(ch.Clone())
				}
			}
		}
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = c.aTx.Respond(res) // a lost caller cannot be answered; the call ends either way
	c.aFailed = true
	c.state = stateEnded
	c.a.state = legDone
	c.stopRing()
	for _, b := range c.legs {
		c.cancelFork(b, nil)
	}
	c.closeA()
}

// start forks the call.
func (c *call) start() {
	if c.state != stateRinging {
		return // cancelled before it started
	}
	c.ring = c.after(c.s.cfg.RingTimeout, c.onRingTimeout)
	for _, b := range c.legs {
		c.startFork(b)
	}
}

// onCallerCancel runs when the caller's CANCEL matched the INVITE: sipgo
// has answered 200 and 487; we cancel every fork, passing the caller's
// Reason on (e.g. "Call completed elsewhere" from an upstream fork).
func (c *call) onCallerCancel(r *sip.Request) {
	if c.state != stateRinging {
		return
	}
	var why sip.Header
	if r != nil {
		if h := sipmsg.Header(r, "Reason"); h != nil && !hasControl(h.Value()) {
			why = sip.NewHeader("Reason", h.Value())
		}
	}
	c.state = stateEnded
	c.a.state = legDone
	c.aFailed = true // sipgo sent the 487
	c.stopRing()
	for _, b := range c.legs {
		c.cancelFork(b, why)
	}
	c.outcome(resultCancelled)
	c.closeA()
}

// onATerminated runs when the caller's INVITE transaction ends; before a
// final response that means the caller is gone (transport error).
func (c *call) onATerminated() {
	if c.state != stateRinging {
		return
	}
	c.state = stateEnded
	c.a.state = legDone
	c.stopRing()
	for _, b := range c.legs {
		c.cancelFork(b, nil)
	}
	c.outcome(resultFailed)
	c.closeA()
}

// abortA runs when the INVITE handler's context ends (server stopping).
func (c *call) abortA() {
	if c.state == stateRinging {
		c.failA(sip.StatusServiceUnavailable, "Service Unavailable", nil, c.s.retryAfter)
		c.outcome(resultFailed)
	}
	c.closeA()
}

// onRingTimeout cancels every fork and answers 408, or the best failure
// held if it ranks better (RFC 3261 §16.7 step 6).
func (c *call) onRingTimeout() {
	c.ring = nil
	if c.state != stateRinging {
		return
	}
	for _, b := range c.legs {
		c.cancelFork(b, nil)
	}
	c.outcome(resultTimeout)
	if c.best.code != 0 && rank(c.best.code) < rank(sip.StatusRequestTimeout) {
		c.failWith(c.best)
		return
	}
	c.failA(sip.StatusRequestTimeout, "Request Timeout", nil)
}
