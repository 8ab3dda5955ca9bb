package b2bua

import (
	"context"
	"time"

	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// OnAck handles an ACK to one of our 2xx (an ACK to a non-2xx is absorbed
// by sipgo's INVITE transaction). ACKs are never answered; one for an
// unknown dialog is dropped.
func (s *Server) OnAck(_ context.Context, req *sip.Request, _ sip.ServerTransaction) error {
	if ref, ok := s.lookup(req); ok {
		ref.c.post(func() { ref.c.onAck(ref.l, req) })
	}
	return nil
}

// OnBye handles a BYE: answered 200 at once, the other leg gets a BYE,
// the call ends. Unknown dialogs get 481.
func (s *Server) OnBye(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
	return s.OnInDialog(ctx, req, tx)
}

// OnInDialog handles a request inside a dialog (re-INVITE, UPDATE, INFO,
// NOTIFY, REFER, PRACK, BYE): it is relayed to the other leg of the call
// with that leg's own CSeq, and the answer relayed back. The handler
// returns once the request is answered. Requests matching no dialog get
// 481 Call/Transaction Does Not Exist (RFC 3261 §12.2.2).
func (s *Server) OnInDialog(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
	ref, ok := s.lookup(req)
	if !ok {
		return &StatusError{Code: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist", Err: ErrUnknownDialog}
	}
	in := &inbound{l: ref.l, req: req, tx: tx, done: make(chan struct{})}
	ref.c.post(func() { ref.c.onRequest(in) })
	select {
	case <-in.done:
	case <-ctx.Done():
	}
	return nil
}

// lookup finds the leg a request belongs to: Call-ID plus our tag, which is
// the To tag of whatever the peer sends us.
func (s *Server) lookup(req *sip.Request) (dialogRef, bool) {
	tag := tagOf(req.To().Params)
	if tag == "" {
		return dialogRef{}, false
	}
	return s.index.get(dialogKey(req.CallID().Value(), tag))
}

// inbound is an in-dialog request waiting for its answer.
type inbound struct {
	l        *leg
	req      *sip.Request
	tx       sip.ServerTransaction
	done     chan struct{} // closed once answered: the handler returns
	answered bool
}

// reply answers in once.
func (c *call) reply(in *inbound, res *sip.Response) {
	if in.answered {
		return
	}
	in.answered = true
	_ = in.tx.Respond(res) // a lost requester retransmits or gives up
	close(in.done)
}

// replyCode answers in with a bare status.
func (c *call) replyCode(in *inbound, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(in.req, code, reason, nil)
	res.AppendHeader(c.s.hdrServer)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	c.reply(in, res)
}

// relayResponse answers in with what the other leg answered (res), body
// already processed.
func (c *call) relayResponse(in *inbound, res *sip.Response, body []byte, sdp bool) *sip.Response {
	code, reason := res.StatusCode, res.Reason
	if hasControl(reason) || reason == "" {
		reason = defaultReason(code)
	}
	out := sip.NewResponseFromRequest(in.req, code, reason, nil)
	if code >= 200 && code < 300 && (in.req.Method == sip.INVITE || in.req.Method == sip.UPDATE) {
		if ct := c.contact(in.l.transport); ct != nil {
			out.AppendHeader(ct)
		}
		out.AppendHeader(c.s.hdrAllow)
	}
	out.AppendHeader(c.s.hdrServer)
	copyHeaders(out, res, responseCopied...)
	copyTags(out, res)
	setBody(out, res, body, sdp)
	c.reply(in, out)
	return out
}

// onRequest handles an in-dialog request from leg in.l.
func (c *call) onRequest(in *inbound) {
	l, req := in.l, in.req
	if req.Method == sip.BYE && tagOf(req.From().Params) == tagOf(l.remote.Params) &&
		(l.byeSent || (c.state == stateEnded && l.state == legConfirmed)) {
		// BYE glare, or a BYE from a leg we were about to hang up: the
		// dialog ends either way (RFC 3261 §15.1.2).
		c.replyCode(in, sip.StatusOK, "OK")
		l.state = legDone
		if p := c.pend; p != nil && p.leg == l {
			c.clearPend()
		}
		if l == c.a {
			c.byeA = false
		}
		return
	}
	if c.state == stateEnded || l.state == legDone || tagOf(req.From().Params) != tagOf(l.remote.Params) ||
		tagOf(l.remote.Params) == "" {
		c.replyCode(in, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	// RFC 3261 §12.2.2: a CSeq not above the last one is out of order.
	seq := req.CSeq().SeqNo
	if l.remoteCSeq != 0 && seq <= l.remoteCSeq {
		c.replyCode(in, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	l.remoteCSeq = seq
	switch req.Method {
	case sip.BYE:
		c.replyCode(in, sip.StatusOK, "OK")
		var why sip.Header
		if h := sipmsg.Header(req, "Reason"); h != nil && !hasControl(h.Value()) {
			why = sip.NewHeader("Reason", h.Value())
		}
		if c.state == stateRinging {
			if l == c.a { // the caller hung up on its early dialog: like a CANCEL
				c.failA(sip.StatusRequestTerminated, "Request Terminated", nil)
				c.outcome(resultCancelled)
			}
			return // a fork's BYE on an early dialog: its INVITE will fail
		}
		c.hangup(l, why)
	case sip.INVITE:
		c.onReinvite(in)
	case sip.PRACK:
		// We never send reliable provisionals (RFC 3262 §3), so no PRACK
		// can match one.
		c.replyCode(in, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	default:
		c.relay(in)
	}
}

// peer returns the leg bridged with l: the winner and the caller once
// answered; while ringing the caller and the one early-media fork.
func (c *call) peer(l *leg) *leg {
	switch c.state {
	case stateAnswered:
		if l == c.a {
			return c.winner
		}
		if l == c.winner {
			return c.a
		}
	case stateRinging:
		if l == c.a {
			return c.early
		}
		if l == c.early && c.early != nil {
			return c.a
		}
	}
	return nil
}

// anchorLeg names l for the Anchor.
func anchorLeg(l *leg) string { return l.name }

// relay passes a non-INVITE in-dialog request to the peer leg and its
// final answer back.
func (c *call) relay(in *inbound) {
	peer := c.peer(in.l)
	if peer == nil {
		if in.req.Method == sip.UPDATE {
			// RFC 3311 §5.2: our offer (the INVITE) on this leg is still
			// unanswered as far as this fork goes.
			c.replyCode(in, sip.StatusRequestPending, "Request Pending")
			return
		}
		c.replyCode(in, sip.StatusForbidden, "Not Connected")
		return
	}
	method := in.req.Method
	body := in.req.Body()
	sdp := sdpBody(in.req)
	if sdp != nil && method == sip.UPDATE {
		var err error
		if body, err = c.s.anchor.Offer(c.s.ctx, c.id, anchorLeg(peer), sdp); err != nil {
			c.replyCode(in, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
	}
	if method == sip.UPDATE {
		if ct := in.req.Contact(); ct != nil {
			in.l.remoteTarget = *ct.Address.Clone() // target refresh (RFC 3311 §5.2)
		}
	}
	out := peer.request(method, 0, c.contact(peer.transport))
	copyHeaders(out, in.req, requestCopied...)
	copyTags(out, in.req)
	out.AppendHeader(c.s.hdrUA)
	setBody(out, in.req, body, sdp != nil && method == sip.UPDATE)
	c.send(peer.transport, out,
		func(res *sip.Response) { c.onRelayResponse(in, peer, res) },
		func(err error) { c.onRelayFailed(in, err) })
}

// onRelayResponse relays the peer's final answer to a relayed request.
func (c *call) onRelayResponse(in *inbound, peer *leg, res *sip.Response) {
	if res.StatusCode < 200 {
		return
	}
	body, sdp := res.Body(), sdpBody(res)
	isSDP := false
	if sdp != nil && in.req.Method == sip.UPDATE && res.IsSuccess() {
		var err error
		if body, err = c.s.anchor.Answer(c.s.ctx, c.id, anchorLeg(peer), sdp); err != nil {
			c.replyCode(in, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		isSDP = true
		if ct := res.Contact(); ct != nil {
			peer.remoteTarget = *ct.Address.Clone()
		}
	}
	c.relayResponse(in, res, body, isSDP)
	if res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout {
		// RFC 5057 §5.1: the peer's dialog is gone; so is the call.
		c.hangup(peer, nil)
	}
}

// onRelayFailed handles a relayed request that got no answer: the peer
// stopped answering, which ends the call.
func (c *call) onRelayFailed(in *inbound, err error) {
	c.replyCode(in, sip.StatusRequestTimeout, "Request Timeout")
	if ce := c.s.warn.Check(zap.InfoLevel, "b2bua peer stopped answering"); ce != nil {
		ce.Write(zap.String("call", c.id), zap.String("method", string(in.req.Method)), zap.Error(err))
	}
	c.hangup(nil, nil)
}

// reinvite is a re-INVITE being relayed from one leg to the other.
type reinvite struct {
	in    *inbound
	from  *leg
	to    *leg
	offer bool   // the re-INVITE carried a body (an offer)
	cseq  uint32 // its CSeq on the other leg
}

// onReinvite relays a re-INVITE. One at a time per call: another while one
// is in progress, or before the caller ACKed our 2xx, gets 491 (RFC 3261
// §14.2).
func (c *call) onReinvite(in *inbound) {
	if p := c.pend; p != nil && p.leg == in.l && p.deferred == nil && in.req.CSeq().SeqNo > p.cseq {
		// The requester got our 2xx and ACKed it before sending this
		// re-INVITE (RFC 3261 §14.1); sipgo runs each message on its own
		// goroutine, so the ACK may reach us second. It carries no answer
		// we need: take the re-INVITE as the ACK.
		c.acked(in.l, p, nil)
	}
	if c.state != stateAnswered || c.pend != nil || c.reinv != nil {
		c.replyCode(in, sip.StatusRequestPending, "Request Pending")
		return
	}
	peer := c.peer(in.l)
	if peer == nil {
		c.replyCode(in, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if ct := in.req.Contact(); ct != nil {
		in.l.remoteTarget = *ct.Address.Clone() // target refresh (RFC 3261 §12.2.2)
	}
	body, sdp := in.req.Body(), sdpBody(in.req)
	if sdp != nil {
		var err error
		if body, err = c.s.anchor.Offer(c.s.ctx, c.id, anchorLeg(peer), sdp); err != nil {
			c.replyCode(in, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
	}
	out := peer.request(sip.INVITE, 0, c.contact(peer.transport))
	out.AppendHeader(c.s.hdrAllow)
	copyHeaders(out, in.req, requestCopied...)
	copyTags(out, in.req)
	out.AppendHeader(c.s.hdrUA)
	setBody(out, in.req, body, sdp != nil)
	ri := &reinvite{in: in, from: in.l, to: peer, offer: len(in.req.Body()) > 0, cseq: peer.localCSeq}
	c.reinv = ri
	tx := c.send(peer.transport, out,
		func(res *sip.Response) { c.onReinviteResponse(ri, res) },
		func(err error) { c.onReinviteFailed(ri, err) })
	if tx != nil {
		ref, to := c.ref, ri.to
		tx.OnRetransmission(func(res *sip.Response) {
			ref.post(func(c *call) {
				if l := to; res.IsSuccess() && l.ack != nil && l.ack.CSeq().SeqNo == res.CSeq().SeqNo {
					c.write(l.transport, l.ack)
				}
			})
		})
	}
}

// onReinviteResponse relays the answer to a re-INVITE.
func (c *call) onReinviteResponse(ri *reinvite, res *sip.Response) {
	if res.StatusCode < 200 {
		return
	}
	to := ri.to
	if c.reinv != ri {
		// The call ended meanwhile and ri was answered 487; a 2xx still
		// needs its ACK (the leg has its BYE already).
		if res.IsSuccess() {
			c.write(to.transport, ackFor(&to.dialog, ri.cseq))
		}
		return
	}
	if !res.IsSuccess() {
		c.reinv = nil
		c.relayResponse(ri.in, res, res.Body(), false)
		if res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout {
			c.hangup(to, nil)
		}
		return
	}
	if ct := res.Contact(); ct != nil {
		to.remoteTarget = *ct.Address.Clone()
	}
	body, sdp := res.Body(), sdpBody(res)
	var err error
	to.ackCSeq = ri.cseq
	if ri.offer {
		c.sendAck(to, nil, nil, false)
		if sdp != nil {
			body, err = c.s.anchor.Answer(c.s.ctx, c.id, anchorLeg(to), sdp)
		}
	} else {
		to.ackDeferred = true // the offer is in this 2xx; the answer comes in ri.from's ACK
		if sdp != nil {
			body, err = c.s.anchor.Offer(c.s.ctx, c.id, anchorLeg(ri.from), sdp)
		}
	}
	c.reinv = nil
	if err != nil {
		c.replyCode(ri.in, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		c.hangup(nil, nil)
		return
	}
	out := c.relayResponse(ri.in, res, body, sdp != nil)
	p := &pending2xx{leg: ri.from, tx: ri.in.tx, res: out, cseq: ri.in.req.CSeq().SeqNo, reinvite: true}
	if to.ackDeferred {
		p.deferred = to
	}
	c.startPend(p)
}

// onReinviteFailed handles a re-INVITE the other leg never answered.
func (c *call) onReinviteFailed(ri *reinvite, err error) {
	if c.reinv != ri {
		return
	}
	c.reinv = nil
	c.onRelayFailed(ri.in, err)
}

// pending2xx is a 2xx we sent to an INVITE, waiting for its ACK: over UDP
// we retransmit it, T1 doubling to T2 (RFC 3261 §13.3.1.4; sipgo's
// transaction does not, per RFC 6026), for at most 64·T1.
type pending2xx struct {
	leg      *leg
	tx       sip.ServerTransaction
	res      *sip.Response
	cseq     uint32
	deferred *leg // the leg whose 2xx is ACKed with this ACK's answer
	reinvite bool
	interval time.Duration
	retrans  *actorTimer
	timeout  *actorTimer
}

func (c *call) startPend(p *pending2xx) {
	c.pend = p
	if p.leg.transport == "UDP" {
		p.interval = c.s.cfg.T1
		p.retrans = c.after(p.interval, func() { c.retransmit(p) })
	}
	p.timeout = c.after(64*c.s.cfg.T1, func() { c.ackTimeout(p) })
}

func (c *call) retransmit(p *pending2xx) {
	if c.pend != p {
		return
	}
	_ = p.tx.Respond(p.res) // sipgo passes 2xx retransmissions in Accepted state to the transport
	p.interval = min(2*p.interval, c.s.cfg.T2)
	p.retrans = c.after(p.interval, func() { c.retransmit(p) })
}

// clearPend stops waiting for an ACK.
func (c *call) clearPend() {
	if p := c.pend; p != nil {
		if p.retrans != nil {
			p.retrans.Stop()
		}
		if p.timeout != nil {
			p.timeout.Stop()
		}
		c.pend = nil
	}
}

// ackTimeout: no ACK within 64·T1. The dialog is confirmed but the session
// SHOULD be terminated with BYE (RFC 3261 §13.3.1.4).
func (c *call) ackTimeout(p *pending2xx) {
	if c.pend != p {
		return
	}
	c.clearPend()
	c.byeA = false
	c.hangup(nil, c.byeWhy)
}

// onAck handles an ACK from leg l.
func (c *call) onAck(l *leg, req *sip.Request) {
	p := c.pend
	if p == nil || p.leg != l || req.CSeq().SeqNo != p.cseq {
		return // a retransmission, or an ACK we do not wait for
	}
	c.acked(l, p, req)
}

// acked ends the wait for an ACK from l; req, if not nil, may carry the
// answer the deferred leg's ACK needs.
func (c *call) acked(l *leg, p *pending2xx, req *sip.Request) {
	c.clearPend()
	if d := p.deferred; d != nil && d.ackDeferred && !d.byeSent && req != nil {
		body, sdp := req.Body(), sdpBody(req)
		if sdp != nil {
			var err error
			if body, err = c.s.anchor.Answer(c.s.ctx, c.id, anchorLeg(l), sdp); err != nil {
				c.sendAck(d, nil, nil, false)
				c.hangup(nil, nil)
				return
			}
		}
		c.sendAck(d, body, req, sdp != nil)
	}
	if c.byeA && l == c.a {
		c.byeA = false
		c.byeLeg(c.a, c.byeWhy)
	}
}

// hangup ends a bridged call: every confirmed leg but from gets a BYE
// (the caller only once it ACKed our 2xx, RFC 3261 §15). A re-INVITE in
// progress is answered 487.
func (c *call) hangup(from *leg, why sip.Header) {
	if from != nil {
		from.state = legDone
		if p := c.pend; p != nil && p.leg == from {
			c.clearPend() // its BYE says it has our 2xx
		}
	}
	if c.state != stateEnded {
		c.state = stateEnded
		c.stopRing()
		if ri := c.reinv; ri != nil {
			c.reinv = nil
			c.replyCode(ri.in, sip.StatusRequestTerminated, "Request Terminated")
		}
	}
	for _, l := range []*leg{c.a, c.winner} {
		if l == nil || l == from || l.state != legConfirmed || l.byeSent {
			continue
		}
		if p := c.pend; p != nil && p.leg == l && !p.reinvite {
			c.byeA = true
			c.byeWhy = why
			continue
		}
		c.byeLeg(l, why)
	}
}

// byeLeg sends BYE on l, after the ACK it still owes.
func (c *call) byeLeg(l *leg, why sip.Header) {
	if l.byeSent {
		return
	}
	l.byeSent = true
	l.state = legDone
	if p := c.pend; p != nil && p.leg == l {
		c.clearPend() // no point waiting for its ACK any more
	}
	if l.ackDeferred {
		c.sendAck(l, nil, nil, false)
	}
	req := l.request(sip.BYE, 0, nil)
	if why != nil {
		req.AppendHeader(why)
	}
	req.AppendHeader(c.s.hdrUA)
	c.send(l.transport, req, nil, nil)
}
