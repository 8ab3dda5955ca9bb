package b2bua

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/sip/sipmsg"
)

// reasonElsewhere goes on the CANCELs of the losing forks (RFC 3326), so
// devices show "answered elsewhere" rather than a missed call.
var reasonElsewhere = reasonHeader(200, "Call completed elsewhere")

// startFork builds the fork's INVITE and sends it from a goroutine that
// then watches its responses.
func (c *call) startFork(b *leg) {
	req, err := c.forkInvite(b)
	if err != nil {
		if ce := c.s.warn.Check(zap.WarnLevel, "b2bua fork not sent"); ce != nil {
			ce.Write(zap.String("call", c.id), zap.String("leg", b.name), zap.Error(err))
		}
		c.onForkEnd(b, err)
		return
	}
	c.spawn(func() { c.runFork(b, req) })
}

// runFork sends the INVITE and forwards its responses to the actor. It runs
// outside the actor: a TCP dial or a DNS lookup must not stall the call.
func (c *call) runFork(b *leg, req *sip.Request) {
	tx, err := c.s.request(b.transport, req)
	if err != nil {
		c.post(func() { c.onForkEnd(b, err) })
		return
	}
	// RFC 6026: 2xx after the first (retransmissions, or other dialogs
	// from a forking proxy downstream) only reach this hook.
	s, ref, idx := c.s, c.ref, b.idx-1 // never c: the hook outlives the call
	tx.OnRetransmission(func(res *sip.Response) {
		if !ref.post(func(c *call) { c.onForkRetransmission(c.legs[idx], res) }) {
			lateRetransmission(s, ref.late[idx], res)
		}
	})
	c.watch(tx, b.kill, func(res *sip.Response) { c.onForkResponse(b, res) }, func(err error) { c.onForkEnd(b, err) })
}

// forkInvite builds the INVITE of fork b: a new request with its own
// Call-ID, tags and CSeq space. Only chosen headers cross from the caller.
func (c *call) forkInvite(b *leg) (*sip.Request, error) {
	a := c.aReq
	req := sip.NewRequest(sip.INVITE, b.remoteTarget)
	for i := range b.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *b.routeSet[i].Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	if m := a.MaxForwards(); m != nil {
		mf = sip.MaxForwardsHeader(m.Val() - 1) // loops through us still run out (checkInvite refused ≤ 1)
	}
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(&b.local))
	req.AppendHeader(sip.HeaderClone(&b.remote))
	cid := sip.CallIDHeader(b.callID)
	req.AppendHeader(&cid)
	b.localCSeq = 1
	b.inviteCSeq = 1
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	if ct := c.contact(b.transport); ct != nil {
		req.AppendHeader(ct)
	}
	req.AppendHeader(c.s.hdrAllow)
	// No 100rel: reliable provisionals are handled per leg, never relayed.
	if v := filteredTags(a, "Supported"); v != "" {
		req.AppendHeader(sip.NewHeader("Supported", v))
	}
	copyHeaders(req, a, inviteCopied...)
	for _, v := range c.route.AssertedIdentity {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", v))
	}
	if v := c.route.ChargingVector; v != "" {
		req.AppendHeader(sip.NewHeader("P-Charging-Vector", v))
	}
	req.AppendHeader(c.s.hdrUA)
	if sdp := sdpBody(a); sdp != nil {
		out, err := c.s.anchor.Offer(c.s.ctx, c.id, b.name, sdp)
		if err != nil {
			return nil, fmt.Errorf("%w: offer %s: %w", errAnchor, b.name, err)
		}
		setBody(req, a, out, true)
	} else {
		setBody(req, a, a.Body(), false)
	}
	req.SetTransport(b.transport)
	if len(b.routeSet) == 0 && b.dest != "" {
		req.SetDestination(b.dest)
	}
	b.invite = req
	return req, nil
}

// onForkResponse handles a response to a fork's INVITE.
func (c *call) onForkResponse(b *leg, res *sip.Response) {
	if b.final != 0 {
		return
	}
	if res.StatusCode < 200 {
		c.onForkProvisional(b, res)
		return
	}
	b.final = res.StatusCode
	if b.cancelTimer != nil {
		b.cancelTimer.Stop()
		b.cancelTimer = nil
	}
	if res.StatusCode < 300 {
		c.onForkAnswer(b, res)
		return
	}
	b.state = legDone
	c.onForkFailure(b, failure{code: res.StatusCode, reason: res.Reason, res: res})
}

// onForkProvisional relays ringing upstream once, early media from one
// fork at most, and PRACKs reliable provisionals itself (RFC 3262).
func (c *call) onForkProvisional(b *leg, res *sip.Response) {
	b.provisional = true
	if b.cancelWant {
		if !b.cancelSent {
			c.sendCancel(b) // RFC 3261 §9.1: the CANCEL waited for a provisional
		}
		return
	}
	if res.StatusCode == 100 {
		return
	}
	if tagOf(res.To().Params) != "" {
		b.learn(res) // early dialog
	}
	sdp := sdpBody(res)
	if hasTag(res, "Require", "100rel") {
		rseq := rseqOf(res)
		if rseq == 0 || (b.lastRSeq != 0 && rseq <= b.lastRSeq) {
			return // malformed, or a retransmission: discarded (RFC 3262 §4)
		}
		b.lastRSeq = rseq
		c.sendPrack(b)
		if sdp != nil {
			b.earlySDP = sdp // an answer in a reliable provisional is final
		}
	}
	if c.state != stateRinging {
		return
	}
	// An SDP in a provisional is an answer only if the caller made the
	// offer; relayed unreliably it is a preview (RFC 3261 §13.3.1.1).
	if sdp != nil && c.early == nil && c.hasBody {
		out, err := c.s.anchor.Answer(c.s.ctx, c.id, b.name, sdp)
		if err == nil {
			c.early = b
			c.ringing = true
			_, _ = c.respondA(res.StatusCode, defaultReason(res.StatusCode), out, true, res)
			return
		}
		if ce := c.s.warn.Check(zap.WarnLevel, "b2bua anchor early answer failed"); ce != nil {
			ce.Write(zap.String("call", c.id), zap.String("leg", b.name), zap.Error(err))
		}
	}
	if !c.ringing {
		c.ringing = true
		_, _ = c.respondA(sip.StatusRinging, "Ringing", nil, false, nil)
	}
}

// rseqOf returns the RSeq of a reliable provisional, 0 if absent or bad.
func rseqOf(res *sip.Response) uint32 {
	h := sipmsg.Header(res, "RSeq")
	if h == nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// sendPrack acknowledges a reliable provisional on the fork's early dialog.
func (c *call) sendPrack(b *leg) {
	req := b.request(sip.PRACK, 0, nil)
	req.AppendHeader(sip.NewHeader("RAck", strconv.FormatUint(uint64(b.lastRSeq), 10)+" "+
		strconv.FormatUint(uint64(b.inviteCSeq), 10)+" INVITE"))
	req.AppendHeader(c.s.hdrUA)
	c.send(b.transport, req, nil, nil)
}

// onForkAnswer handles a fork's 2xx: the first one wins the call, any
// later one is ACKed then BYEd.
func (c *call) onForkAnswer(b *leg, res *sip.Response) {
	b.learn(res)
	b.state = legConfirmed
	b.ackCSeq = b.inviteCSeq
	sdp := sdpBody(res)
	body := res.Body()
	if len(body) == 0 && b.earlySDP != nil {
		sdp, body = b.earlySDP, b.earlySDP
	}
	if c.state != stateRinging || c.winner != nil {
		// Glare with our CANCEL, or another fork won: ACK, then BYE, in
		// that order on the same path (a BYE before the ACK is refused).
		why := b.cancelWhy
		if c.winner != nil {
			why = reasonElsewhere
		}
		b.ackDeferred = true
		c.byeLeg(b, why)
		c.releaseFork(b)
		return
	}
	c.winner = b
	var err error
	if c.hasBody {
		// The relay takes the answer before the device has our ACK: a
		// device may send media as soon as it has it (or its own 2xx).
		if sdp != nil {
			body, err = c.s.anchor.Answer(c.s.ctx, c.id, b.name, sdp)
		}
		c.sendAck(b, nil, nil, false)
	} else {
		// Delayed offer: the 2xx holds the offer, the caller's ACK will
		// hold the answer, which this ACK must carry.
		b.ackDeferred = true
		if sdp != nil {
			body, err = c.s.anchor.Offer(c.s.ctx, c.id, "a", sdp)
		}
	}
	for _, o := range c.legs {
		if o != b {
			c.cancelFork(o, reasonElsewhere)
			c.releaseFork(o)
		}
	}
	if err != nil {
		if ce := c.s.warn.Check(zap.WarnLevel, "b2bua anchor answer failed"); ce != nil {
			ce.Write(zap.String("call", c.id), zap.String("leg", b.name), zap.Error(err))
		}
		c.byeLeg(b, nil)
		c.failA(sip.StatusInternalServerError, "Server Internal Error", nil)
		c.outcome(resultFailed)
		return
	}
	var hdrs []sip.Header
	for _, name := range []string{"Session-Expires", "Min-SE"} {
		if h := sipmsg.Header(res, name); h != nil && !hasControl(h.Value()) {
			hdrs = append(hdrs, sip.HeaderClone(h))
		}
	}
	for _, name := range []string{"Supported", "Require"} {
		if v := filteredTags(res, name); v != "" {
			hdrs = append(hdrs, sip.NewHeader(name, v))
		}
	}
	out, err := c.respondA(sip.StatusOK, "OK", body, sdp != nil, res, hdrs...)
	c.stopRing()
	if err != nil {
		// A CANCEL crossed our 200: the caller's transaction is gone.
		c.state = stateEnded
		c.a.state = legDone
		c.byeLeg(b, nil)
		c.outcome(resultCancelled)
		c.closeA()
		return
	}
	c.state = stateAnswered
	c.a.state = legConfirmed
	p := &pending2xx{leg: c.a, tx: c.aTx, res: out, cseq: c.aReq.CSeq().SeqNo}
	if b.ackDeferred {
		p.deferred = b
	}
	c.startPend(p)
	c.outcome(resultAnswered)
	c.s.m.setup.Observe(time.Since(c.created).Seconds())
	c.closeA()
	if fn := c.s.answered.Load(); fn != nil {
		if caller, callee := c.parties(); caller != "" && callee != "" {
			(*fn)(caller, callee)
		}
	}
}

// parties returns the caller's and the callee's AOR for observers.
func (c *call) parties() (caller, callee string) {
	if len(c.route.AssertedIdentity) > 0 {
		caller = strings.Trim(c.route.AssertedIdentity[0], "<> ")
	} else if aor, err := CanonicalAOR(c.aReq.From().Address); err == nil {
		caller = aor
	}
	if c.route.Kind == Terminating && c.route.CalleeAOR != "" {
		callee = c.route.CalleeAOR
	} else if aor, err := CanonicalAOR(c.aReq.To().Address); err == nil {
		callee = aor
	}
	return caller, callee
}

// sendAck ACKs the 2xx a leg holds (CSeq l.ackCSeq), with body if any.
// The ACK is kept to answer 2xx retransmissions.
func (c *call) sendAck(l *leg, body []byte, src sip.Message, sdp bool) {
	ack := ackFor(&l.dialog, l.ackCSeq)
	if src != nil {
		setBody(ack, src, body, sdp)
	}
	l.ackDeferred = false
	l.ack = ack
	c.write(l.transport, ack)
}

// onForkRetransmission handles a 2xx after the first on a fork's INVITE:
// our ACK was lost (same To tag: send it again), or a forking proxy
// downstream made a second dialog (ACK and BYE that one).
func (c *call) onForkRetransmission(b *leg, res *sip.Response) {
	if !res.IsSuccess() {
		return
	}
	if tagOf(res.To().Params) == tagOf(b.remote.Params) {
		if b.ack != nil && b.ack.CSeq().SeqNo == res.CSeq().SeqNo {
			c.write(b.transport, b.ack)
		}
		return
	}
	d := b.dialog
	d.learn(res)
	c.write(d.transport, ackFor(&d, b.inviteCSeq))
	bye := d.request(sip.BYE, 0, nil)
	bye.AppendHeader(c.s.hdrUA)
	c.send(d.transport, bye, nil, nil)
}

// lateRetransmission answers a 2xx that reaches a fork's INVITE transaction
// after its call finished, as onForkRetransmission would: our ACK again for
// the same dialog, ACK and BYE for another one (built from the 2xx).
func lateRetransmission(s *Server, l lateLeg, res *sip.Response) {
	if !res.IsSuccess() || res.CallID() == nil || res.From() == nil || res.CSeq() == nil {
		return
	}
	if l.ack != nil {
		if tagOf(res.To().Params) == tagOf(l.ack.To().Params) {
			if l.ack.CSeq().SeqNo == res.CSeq().SeqNo {
				_ = s.write(l.transport, l.ack) // a lost ACK is retransmitted for again
			}
			return
		}
	}
	from := res.From()
	d := dialog{callID: res.CallID().Value(), transport: l.transport, dest: l.dest,
		local:     sip.FromHeader{DisplayName: from.DisplayName, Address: *from.Address.Clone(), Params: from.Params.Clone()},
		localCSeq: res.CSeq().SeqNo}
	d.learn(res)
	_ = s.write(d.transport, ackFor(&d, res.CSeq().SeqNo))
	bye := d.request(sip.BYE, 0, nil)
	bye.AppendHeader(s.hdrUA)
	if tx, err := s.request(d.transport, bye); err == nil {
		drain := func() { // until its final answer, its timeout or shutdown
			for {
				select {
				case r := <-tx.Responses():
					if r.StatusCode >= 200 {
						tx.Terminate()
						return
					}
				case <-tx.Done():
					return
				case <-s.ctx.Done():
					tx.Terminate()
					return
				}
			}
		}
		if !s.goLate(drain) {
			tx.Terminate()
		}
	}
}

// onForkFailure handles a fork's final failure.
func (c *call) onForkFailure(b *leg, f failure) {
	c.releaseFork(b)
	if c.state != stateRinging {
		return
	}
	if b.cancelWant {
		return // our own CANCEL's 487 is no candidate
	}
	c.consider(f)
	if f.code >= 600 && !c.s.cfg.DeclinePerDevice {
		// RFC 3261 §16.7 step 10: a 6xx ends the fork.
		why := reasonHeader(f.code, f.reason)
		for _, o := range c.legs {
			c.cancelFork(o, why)
		}
		c.outcome(resultFailed)
		c.failWith(f)
		return
	}
	for _, o := range c.legs {
		if o.final == 0 {
			return
		}
	}
	c.outcome(resultFailed)
	c.failWith(c.best)
}

// onForkEnd handles a fork that ended without a final response: never
// sent, timed out, unreachable, or abandoned after our CANCEL.
func (c *call) onForkEnd(b *leg, err error) {
	if b.final != 0 {
		return
	}
	f := failure{code: sip.StatusTemporarilyUnavailable, reason: "Temporarily Unavailable"}
	switch {
	case errors.Is(err, sip.ErrTransactionTimeout):
		f = failure{code: sip.StatusRequestTimeout, reason: "Request Timeout"}
	case errors.Is(err, errAnchor):
		f = anchorFailure(err)
	}
	b.final = f.code
	b.state = legDone
	c.onForkFailure(b, f)
}

// anchorFailure is the failure a media Anchor error stands for: its own
// SIP status when it has one (488 for SDP the relay cannot anchor, 503
// when it is out of ports), else 500; the cause goes into a Warning.
func anchorFailure(err error) failure {
	f := failure{code: sip.StatusInternalServerError, reason: "Server Internal Error", own: true}
	var se interface{ SIPStatus() (int, string) }
	if errors.As(err, &se) {
		if code, reason := se.SIPStatus(); code >= 400 && code < 700 {
			f.code, f.reason = code, reason
		}
	}
	if f.code == 488 || f.code == 415 {
		f.warn = warnText(err)
	}
	return f
}

// warnText makes err's message safe for a Warning header's quoted text:
// printable ASCII without quotes or backslashes, at most 200 bytes.
func warnText(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "media: "); i >= 0 {
		msg = msg[i+len("media: "):]
	}
	b := make([]byte, 0, min(len(msg), 200))
	for i := 0; i < len(msg) && len(b) < 200; i++ {
		if ch := msg[i]; ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' {
			b = append(b, ch)
		}
	}
	return string(b)
}

// cancelFork cancels fork b unless it has a final response. Without a
// provisional yet, the CANCEL waits for one (RFC 3261 §9.1); if none ever
// comes, the INVITE transaction's Timer B ends the fork.
func (c *call) cancelFork(b *leg, why sip.Header) {
	if b.final != 0 || b.cancelWant {
		return
	}
	b.cancelWant = true
	b.cancelWhy = why
	if b.provisional {
		c.sendCancel(b)
	}
}

// sendCancel sends the CANCEL and gives the fork 64·T1 to answer it.
func (c *call) sendCancel(b *leg) {
	b.cancelSent = true
	req := sipmsg.Cancel(b.invite, b.cancelWhy)
	c.send(b.transport, req, nil, nil)
	b.cancelTimer = c.after(64*c.s.cfg.T1, func() { c.abandon(b) })
}

// abandon terminates a fork's INVITE transaction that never answered our
// CANCEL (after a 1xx sipgo runs no timer on it).
func (c *call) abandon(b *leg) {
	b.cancelTimer = nil
	if b.final == 0 && !b.killed {
		b.killed = true
		close(b.kill)
	}
}

// releaseFork frees the media a fork holds, once.
func (c *call) releaseFork(b *leg) {
	if !b.released {
		b.released = true
		c.s.anchor.Release(c.id, b.name)
	}
}
