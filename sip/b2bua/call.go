package b2bua

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// callState is where a call stands as a whole.
type callState uint8

const (
	stateRinging  callState = iota // the caller has no final response yet
	stateAnswered                  // 200 sent to the caller: A and the winner are bridged
	stateEnded                     // no dialog left; waiting for stragglers (loser finals, BYE answers)
)

// call is one A-leg and its forks. Its state is owned by an actor: events
// (responses, in-dialog requests, CANCEL, timers) are closures queued with
// post and run one at a time by at most one goroutine, one of the Server's
// runners (see dispatch), until the queue is empty. So no two events ever
// race on the call's fields, and an idle call holds no goroutine. Network
// sends happen inside events (in order, which keeps ACK before BYE on the
// wire); waiting for responses happens in watcher goroutines (spawn) that
// post back.
type call struct {
	s       *Server
	ref     *callRef // what sipgo callbacks hold; cleared when the call finishes
	id      string   // internal id: Anchor key and logs
	created time.Time
	stopped chan struct{} // closed by kill: watchers terminate their transactions

	qmu     sync.Mutex
	q       []func()
	running bool

	// Owned by the actor from here on.
	state   callState
	a       *leg
	aReq    *sip.Request // the caller's INVITE; never mutated
	aTx     sip.ServerTransaction
	hasBody bool          // the caller's INVITE carries the offer (else delayed offer)
	aDone   chan struct{} // closed once the caller has its final response
	aClosed bool
	aFailed bool // that final response is not a 2xx (read by OnInvite after aDone)
	route   Route
	legs    []*leg
	winner  *leg
	early   *leg // the one fork whose early media reaches the caller
	ringing bool // a provisional went upstream
	best    failure
	ring    *actorTimer
	pend    *pending2xx // our 2xx waiting for its ACK
	reinv   *reinvite   // the re-INVITE in progress, if any
	byeA    bool        // BYE the caller once it ACKs our 2xx (RFC 3261 §15)
	byeWhy  sip.Header
	pending int // watcher goroutines still running
	done    bool
	killed  bool
	result  string
}

// callRef is all that a sipgo transaction callback (OnCancel, OnTerminate,
// OnRetransmission) holds of a call. sipgo keeps a UDP transaction for
// 64·T1 after its final response (Timers L and M even after Terminate),
// so a callback holding the call would pin all of it (requests, legs,
// responses) for 32 s after the call ended. maybeFinish clears c; what a
// late 2xx retransmission still needs (the ACK to resend) moves to late.
type callRef struct {
	c    atomic.Pointer[call]
	late []lateLeg // by fork index - 1; written before c is cleared
}

// lateLeg is what a fork's INVITE transaction needs once its call is gone:
// the ACK to resend to a retransmitted 2xx, and where a 2xx of another
// dialog (a forking proxy downstream) gets its ACK and BYE.
type lateLeg struct {
	ack       *sip.Request
	transport string
	dest      string
}

// post runs f in the call's actor, unless the call has finished.
func (r *callRef) post(f func(c *call)) bool {
	c := r.c.Load()
	if c == nil {
		return false
	}
	c.post(func() { f(c) })
	return true
}

// post queues f to run in the call's actor. It never blocks, so it is safe
// from sipgo callbacks and timers.
func (c *call) post(f func()) {
	c.qmu.Lock()
	c.q = append(c.q, f)
	if c.running {
		c.qmu.Unlock()
		return
	}
	c.running = true
	c.qmu.Unlock()
	c.s.dispatch(c)
}

// drain runs queued events until the queue is empty.
func (c *call) drain() {
	for {
		c.qmu.Lock()
		if len(c.q) == 0 {
			c.q = nil
			c.running = false
			c.qmu.Unlock()
			return
		}
		f := c.q[0]
		c.q[0] = nil
		c.q = c.q[1:]
		c.qmu.Unlock()
		c.run(f)
	}
}

// run runs one event and finishes the call when nothing is left to wait
// for. A panic ends the call instead of the process.
func (c *call) run(f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("b2bua call panic", zap.String("call", c.id), zap.Any("panic", r), zap.Stack("stack"))
			func() {
				defer func() { _ = recover() }()
				c.kill()
			}()
		}
	}()
	f()
	c.maybeFinish()
}

// after runs f in the actor after d.
func (c *call) after(d time.Duration, f func()) *actorTimer {
	at := &actorTimer{c: c, f: f}
	at.t = time.AfterFunc(d, at.fire)
	return at
}

// actorTimer is a timer whose function runs in its call's actor. Stop
// drops the call as well as stopping the timer: the Go runtime keeps a
// stopped timer (and so its function) in its heap until it would have
// fired or is swept, so a ring timer of 60 s would otherwise pin the
// whole finished call.
type actorTimer struct {
	t  *time.Timer
	mu sync.Mutex
	c  *call
	f  func()
}

func (at *actorTimer) fire() {
	at.mu.Lock()
	c, f := at.c, at.f
	at.mu.Unlock()
	if c != nil {
		c.post(f)
	}
}

// Stop stops the timer; f will not run unless it was already queued.
func (at *actorTimer) Stop() {
	at.mu.Lock()
	at.c, at.f = nil, nil
	at.mu.Unlock()
	at.t.Stop()
}

// spawn runs f on a goroutine owned by the call: the call does not finish
// (and Run does not return) before f has returned.
func (c *call) spawn(f func()) {
	c.pending++
	go func() {
		defer c.post(c.release)
		f()
	}()
}

func (c *call) release() { c.pending-- }

// send sends req as a client transaction on transport tp and feeds its
// responses to onRes and, if it ends without a final response, its error
// to onEnd; both run in the actor and may be nil.
func (c *call) send(tp string, req *sip.Request, onRes func(*sip.Response), onEnd func(error)) sip.ClientTransaction {
	tx, err := c.s.request(tp, req)
	if err != nil {
		if onEnd != nil {
			onEnd(err)
		}
		return nil
	}
	c.spawn(func() { c.watch(tx, nil, onRes, onEnd) })
	return tx
}

// watch reads tx's responses (sipgo's channel is unbuffered: someone must
// read it for the transaction's whole life) until the final one, and posts
// them. kill (may be nil) or the call's stop terminate tx.
func (c *call) watch(tx sip.ClientTransaction, kill <-chan struct{}, onRes func(*sip.Response), onEnd func(error)) {
	for {
		select {
		case res := <-tx.Responses():
			if onRes != nil {
				c.post(func() { onRes(res) })
			}
			if res.StatusCode >= 200 {
				origin := tx.(interface{ Origin() *sip.Request }).Origin()
				if origin.IsInvite() && res.StatusCode >= 300 && origin.Transport() == "UDP" {
					// sipgo has sent the ACK; retransmissions of this final
					// are re-ACKed by strayAcks, at once.
					c.s.keepAck(origin, res)
					tx.Terminate()
				}
				if !origin.IsInvite() {
					// Timer K only absorbs retransmitted finals (RFC 3261
					// §17.1.2.2), which the transaction layer drops as
					// strays just the same; sipgo would hold the request
					// and its answer 32 s (it uses Timer D, not T4).
					tx.Terminate()
				}
				return
			}
		case <-tx.Done():
			if onEnd != nil {
				err := tx.Err()
				c.post(func() { onEnd(err) })
			}
			return
		case <-kill:
			tx.Terminate()
			if onEnd != nil {
				c.post(func() { onEnd(errAbandoned) })
			}
			return
		case <-c.stopped:
			tx.Terminate()
			if onEnd != nil {
				c.post(func() { onEnd(ErrShuttingDown) })
			}
			return
		}
	}
}

// write sends req statelessly (ACK).
func (c *call) write(tp string, req *sip.Request) {
	if err := c.s.write(tp, req); err != nil {
		if ce := c.s.warn.Check(zap.WarnLevel, "b2bua send failed"); ce != nil {
			ce.Write(zap.String("call", c.id), zap.String("method", string(req.Method)), zap.Error(err))
		}
	}
}

// contact returns our Contact for transport tp.
func (c *call) contact(tp string) sip.Header {
	if b := c.s.bound.Load(); b != nil {
		return b.contacts[tp]
	}
	return nil
}

// outcome counts the call's result once.
func (c *call) outcome(result string) {
	if c.result != "" {
		return
	}
	c.result = result
	c.s.m.results[result].Inc()
}

// closeA releases the INVITE handler, which waits for the caller's final
// response before it returns.
func (c *call) closeA() {
	if !c.aClosed {
		c.aClosed = true
		close(c.aDone)
	}
}

func (c *call) stopRing() {
	if c.ring != nil {
		c.ring.Stop()
		c.ring = nil
	}
}

// maybeFinish ends the call's life once it has no dialog and nothing to
// wait for: it leaves the registry and the dialog index and frees media.
func (c *call) maybeFinish() {
	if c.done || c.state != stateEnded || c.pending > 0 || c.pend != nil || c.byeA {
		return
	}
	c.done = true
	late := make([]lateLeg, len(c.legs))
	for i, b := range c.legs {
		late[i] = lateLeg{ack: b.ack, transport: b.transport, dest: b.dest}
	}
	c.ref.late = late
	c.ref.c.Store(nil)
	c.stopRing()
	for _, b := range c.legs {
		if b.cancelTimer != nil {
			b.cancelTimer.Stop()
		}
		c.s.index.del(dialogKey(b.callID, tagOf(b.local.Params)))
	}
	c.s.index.del(dialogKey(c.a.callID, tagOf(c.a.local.Params)))
	// Media first: a call out of the registry holds nothing.
	c.s.anchor.Release(c.id, "")
	if c.s.calls.remove(c) {
		c.s.m.active.Dec()
	}
	if ce := c.s.log.Check(zap.DebugLevel, "call ended"); ce != nil {
		ce.Write(zap.String("call", c.id), zap.String("call_id", c.a.callID), zap.String("result", c.result),
			zap.Int("forks", len(c.legs)), zap.Duration("age", time.Since(c.created)))
	}
}

// stop hangs the call up because the Server is shutting down.
func (c *call) stop() {
	switch c.state {
	case stateRinging:
		for _, b := range c.legs {
			c.cancelFork(b, nil)
		}
		c.failA(sip.StatusServiceUnavailable, "Service Unavailable", nil, c.s.retryAfter)
	case stateAnswered:
		c.hangup(nil, nil)
	}
}

// expire ends a call older than MaxAge.
func (c *call) expire() {
	switch c.state {
	case stateRinging:
		c.onRingTimeout()
	case stateAnswered:
		c.hangup(nil, nil)
	default:
		c.kill()
	}
}

// kill drops the call: every watcher terminates its transaction, nothing
// more is awaited. Used when shutdown or MaxAge finds the call stuck.
func (c *call) kill() {
	if c.killed {
		return
	}
	c.killed = true
	close(c.stopped)
	if c.state == stateRinging {
		c.failA(sip.StatusServiceUnavailable, "Service Unavailable", nil, c.s.retryAfter)
	}
	c.state = stateEnded
	c.clearPend()
	c.byeA = false
	c.closeA()
}
