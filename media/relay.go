package media

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/convergo/convergo/media/sdes"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Relay anchors calls' media: it rewrites SDP to its own ports and keys
// and relays RTP/RTCP (SRTP/SRTCP) between the two sides of every pair.
// It satisfies the b2bua Anchor seam. Safe for concurrent use.
type Relay struct {
	cfg   Config
	log   *zap.Logger
	m     *metrics
	ports *ports
	adv   netip.Addr
	now   func() time.Time

	mu      sync.Mutex
	calls   map[string]*call
	running bool
	ready   chan struct{}  // closed once Run has started
	wg      sync.WaitGroup // every reader goroutine
	onIdle  IdleFunc
}

var _ interface {
	Offer(ctx context.Context, callID, leg string, sdp []byte) ([]byte, error)
	Answer(ctx context.Context, callID, leg string, sdp []byte) ([]byte, error)
	Release(callID, leg string)
} = (*Relay)(nil)

// New validates cfg (after WithDefaults) and builds a relay; nothing is
// bound until the first Offer, and Run must be running for Offers to work.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("media: config: %w", err)
	}
	r := &Relay{
		cfg:   cfg,
		log:   log.Named("media"),
		adv:   netip.MustParseAddr(cfg.Advertise).Unmap(),
		now:   time.Now,
		calls: make(map[string]*call),
		ready: make(chan struct{}),
	}
	r.ports = newPorts(netip.MustParseAddr(cfg.Address), cfg.PortMin, cfg.PortMax, cfg.Quarantine,
		func() time.Time { return r.now() })
	r.ports.sockBuf = cfg.SocketBuffer
	m, err := newMetrics(reg, r.ports.used)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// OnInactive sets the function called from Run's goroutine when an
// answered call carried no RTP either way for the inactivity period (again
// only if media resumed and stopped again). The b2bua ends the call there;
// a call still silent and unreleased at 4x the period is released here.
// Held calls (sendonly/recvonly/inactive, 0.0.0.0) are exempt. It may be
// set at any time; fn must not block.
func (r *Relay) OnInactive(fn IdleFunc) {
	r.mu.Lock()
	r.onIdle = fn
	r.mu.Unlock()
}

// Run serves until ctx ends, then releases every call and waits for all
// relay goroutines. It returns nil on a normal stop.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return fmt.Errorf("media: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	close(r.ready)

	tick := min(r.cfg.Inactivity/4, time.Second)
	t := time.NewTicker(max(tick, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.shutdown()
			return nil
		case <-t.C:
			r.checkIdle()
		}
	}
}

// Ready is closed once Run accepts Offers.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

func (r *Relay) shutdown() {
	r.mu.Lock()
	r.running = false
	calls := r.calls
	r.calls = make(map[string]*call)
	r.m.calls.Set(0)
	r.mu.Unlock()
	for _, c := range calls {
		r.releaseCall(c)
	}
	r.wg.Wait()
}

// Offer rewrites an offer on its way to leg's device (see b2bua.Anchor).
func (r *Relay) Offer(_ context.Context, callID, leg string, body []byte) ([]byte, error) {
	s, infos, err := parseSDP(body)
	if err != nil {
		return nil, err
	}
	c, err := r.getCall(callID, true)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, unavailable(ErrNotRunning)
	}
	p, from, created, err := c.pairFor(leg, true)
	if err != nil {
		return nil, err
	}
	if len(infos) < len(p.streams) {
		return nil, notAcceptable("offer has %d m-lines, session had %d", len(infos), len(p.streams))
	}
	to := 1 - from
	outs := make([]mediaOut, len(infos))
	pend := &pending{from: from, infos: infos, offered: make([][]sdes.Crypto, len(infos)),
		secure: make([]bool, len(infos))}
	for i, mi := range infos {
		if i == len(p.streams) {
			p.streams = append(p.streams, nil)
		}
		if !mi.rtp { // MSRP, T.38...: not ours to relay, crosses untouched
			outs[i] = mediaOut{port: mi.port}
			continue
		}
		if mi.port == 0 {
			outs[i] = mediaOut{port: 0, rewrite: true}
			continue
		}
		st := p.streams[i]
		if st == nil {
			if st, err = r.newStream(); err != nil {
				if created {
					r.releasePair(c, p)
				}
				return nil, err
			}
			p.streams[i] = st
		}
		secure, offered, err := st.offerKeys(to, mi, r.cfg.SRTPPolicy)
		if err != nil {
			return nil, err
		}
		pend.offered[i], pend.secure[i] = offered, secure
		outs[i] = mediaOut{port: st.ends[to].pp.port, secure: secure, mux: mi.mux, cryptos: offered, rewrite: true}
	}
	p.pend = pend
	out, err := rewriteSDP(s, r.adv, outs)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Answer rewrites leg's answer on its way back to the offerer and starts
// relaying (see b2bua.Anchor). It may be called again for the same offer
// (183 then 200).
func (r *Relay) Answer(_ context.Context, callID, leg string, body []byte) ([]byte, error) {
	s, infos, err := parseSDP(body)
	if err != nil {
		return nil, err
	}
	c, err := r.getCall(callID, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, _, _, err := c.pairFor(leg, false)
	if err != nil {
		return nil, err
	}
	pend := p.pend
	if pend == nil || (leg == "a") != (pend.from == sideB) {
		return nil, &StatusError{Code: 500, Reason: "Server Internal Error", Err: fmt.Errorf("%w: %s", ErrUnknownLeg, leg)}
	}
	if len(infos) != len(pend.infos) {
		return nil, notAcceptable("answer has %d m-lines, offer had %d", len(infos), len(pend.infos))
	}
	if err := checkAnswer(pend, infos); err != nil {
		return nil, err // nothing changed yet
	}
	off, ans := pend.from, 1-pend.from
	outs := make([]mediaOut, len(infos))
	now := r.now()
	for i, ai := range infos {
		oi := pend.infos[i]
		st := p.streams[i]
		if !oi.rtp {
			outs[i] = mediaOut{port: ai.port}
			continue
		}
		if st == nil || ai.port == 0 || !ai.rtp {
			outs[i] = mediaOut{port: 0, rewrite: true}
			if st != nil {
				st.stop()
			}
			continue
		}
		if err := st.answerKeys(off, ans, oi, ai, pend.offered[i], pend.secure[i]); err != nil {
			return nil, err
		}
		st.ends[off].mux.Store(oi.mux)
		st.ends[ans].mux.Store(oi.mux && ai.mux)
		st.ends[off].setPeer(oi.peer(), now, r.cfg.LatchWindow)
		st.ends[ans].setPeer(ai.peer(), now, r.cfg.LatchWindow)
		st.hold.Store(oi.onHold() || ai.onHold())
		if err := st.publish(); err != nil {
			return nil, err
		}
		var cr []sdes.Crypto
		if l := st.local[off]; l != nil {
			cr = []sdes.Crypto{*l}
		}
		outs[i] = mediaOut{port: st.ends[off].pp.port, secure: oi.secure, mux: oi.mux, cryptos: cr, rewrite: true}
	}
	if !p.answered {
		p.answered, p.answeredAt = true, now
	}
	c.active = p.leg
	r.log.Debug("media anchored", zap.String("call", callID), zap.String("leg", p.leg), zap.Int("streams", len(outs)))
	out, err := rewriteSDP(s, r.adv, outs)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Release frees leg's ports and keys; leg "" frees the whole call.
func (r *Relay) Release(callID, leg string) {
	r.mu.Lock()
	c := r.calls[callID]
	if c != nil && leg == "" {
		delete(r.calls, callID)
		r.m.calls.Dec()
	}
	r.mu.Unlock()
	if c == nil {
		return
	}
	r.log.Debug("media released", zap.String("call", callID), zap.String("leg", leg))
	if leg == "" {
		r.releaseCall(c)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pairs[leg]; p != nil {
		r.releasePair(c, p)
	}
}

func (r *Relay) getCall(id string, create bool) (*call, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return nil, unavailable(ErrNotRunning)
	}
	c := r.calls[id]
	if c != nil {
		return c, nil
	}
	if !create {
		return nil, &StatusError{Code: 500, Reason: "Server Internal Error", Err: fmt.Errorf("%w: call %s", ErrUnknownLeg, id)}
	}
	if len(r.calls) >= r.cfg.MaxCalls {
		return nil, unavailable(ErrTooManyCalls)
	}
	c = &call{id: id, created: r.now(), pairs: make(map[string]*pair)}
	r.calls[id] = c
	r.m.calls.Inc()
	return c, nil
}

func (r *Relay) releaseCall(c *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, p := range c.pairs {
		r.releasePair(c, p)
	}
	a, b := &c.totals[sideA], &c.totals[sideB]
	r.log.Info("media call ended", zap.String("call", c.id),
		zap.Uint64("a_packets", a.packets), zap.Uint64("a_bytes", a.bytes), zap.Uint64("a_drops", a.drops),
		zap.Uint64("a_srtp_failures", a.srtpFail), zap.Uint64("a_latches", a.latch),
		zap.Uint64("b_packets", b.packets), zap.Uint64("b_bytes", b.bytes), zap.Uint64("b_drops", b.drops),
		zap.Uint64("b_srtp_failures", b.srtpFail), zap.Uint64("b_latches", b.latch))
}

func (r *Relay) releasePair(c *call, p *pair) {
	for _, st := range p.streams {
		if st == nil {
			continue
		}
		for _, e := range st.ends {
			c.totals[e.side].add(&e.n)
			r.ports.release(e.pp)
		}
	}
	p.streams = nil
	delete(c.pairs, p.leg)
	if c.active == p.leg {
		c.active = ""
	}
}

// newStream binds both sides' ports and starts their four readers.
func (r *Relay) newStream() (*stream, error) {
	st := &stream{}
	for side := range st.ends {
		pp, err := r.ports.alloc()
		if err != nil {
			if side == sideB {
				r.ports.release(st.ends[sideA].pp)
			}
			return nil, err
		}
		st.ends[side] = &endpoint{side: side, pp: pp, m: r.m.side[side]}
	}
	st.ends[sideA].other, st.ends[sideB].other = st.ends[sideB], st.ends[sideA]
	for _, e := range st.ends {
		e.fw[0] = newForwarder(e, e.pp.rtp, false)
		e.fw[1] = newForwarder(e, e.pp.rtcp, true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		for _, e := range st.ends {
			r.ports.release(e.pp)
		}
		return nil, unavailable(ErrNotRunning)
	}
	for _, e := range st.ends {
		for _, f := range e.fw {
			r.wg.Go(f.run)
		}
	}
	return st, nil
}

// checkIdle reports answered calls without RTP for cfg.Inactivity.
func (r *Relay) checkIdle() {
	now := r.now()
	r.mu.Lock()
	calls := make([]*call, 0, len(r.calls))
	for _, c := range r.calls {
		calls = append(calls, c)
	}
	fn := r.onIdle
	r.mu.Unlock()
	for _, c := range calls {
		if c.stale(now) {
			r.log.Warn("unanswered call expired", zap.String("call", c.id))
			r.Release(c.id, "")
			continue
		}
		report, expire := c.idle(now, r.cfg.Inactivity)
		if expire {
			r.log.Warn("idle call expired", zap.String("call", c.id))
			r.Release(c.id, "")
			continue
		}
		if report {
			r.m.idle.Inc()
			r.log.Info("media inactive", zap.String("call", c.id), zap.Duration("after", r.cfg.Inactivity))
			if fn != nil {
				fn(c.id)
			}
		}
	}
}

// checkAnswer refuses an answer that breaks our offer before any state
// is touched: SAVP answered as AVP, or no a=crypto matching ours.
func checkAnswer(pend *pending, infos []mediaInfo) error {
	for i, ai := range infos {
		if !pend.infos[i].rtp || !ai.rtp || ai.port == 0 || !pend.secure[i] {
			continue
		}
		if !ai.secure {
			return notAcceptable("m-line %d: RTP/AVP answer to an RTP/SAVP offer", i)
		}
		if !matchesOffered(ai.cryptos, pend.offered[i]) {
			return notAcceptable("m-line %d: no a=crypto matching an offered tag and suite", i)
		}
	}
	return nil
}

func matchesOffered(answer, offered []sdes.Crypto) bool {
	for _, c := range answer {
		for _, o := range offered {
			if o.Tag == c.Tag && o.Suite.Name == c.Suite.Name {
				return true
			}
		}
	}
	return false
}
