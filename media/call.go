package media

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convergo/convergo/media/sdes"
)

// maxPairs caps the forks of one call.
const maxPairs = 32

// unnamed names the pair a delayed offer (Offer on leg "a" first) creates.
const unnamed = "*"

// staleAfter expires calls that never got an answer (the b2bua should
// have released them long before: INVITE timer C is 3 minutes).
const staleAfter = 10 * time.Minute

// call is one anchored call: one pair per fork, each pair the caller's
// side (A) and that fork's side (B) of every m-line.
type call struct {
	id      string
	created time.Time

	mu       sync.Mutex // serialises Offer/Answer/Release of the call
	pairs    map[string]*pair
	active   string // fork that answered last: target of leg "a"
	closed   bool
	reported bool
	totals   [2]sideTotals // counts of released streams, per side
}

// sideTotals sums the sideCounts of one side of a call's streams. A
// stream's counts are taken when its ports are released: its readers stop
// once the sockets close, but one may still count the packet it was
// relaying, which is then not in the call's log line.
type sideTotals struct {
	packets, bytes, drops, srtpFail, latch uint64
}

func (t *sideTotals) add(n *sideCounts) {
	t.packets += n.packets.Load()
	t.bytes += n.bytes.Load()
	t.drops += n.drops.Load()
	t.srtpFail += n.srtpFail.Load()
	t.latch += n.latch.Load()
}

type pair struct {
	leg        string
	streams    []*stream // per m-line; nil for m-lines not anchored
	pend       *pending
	answered   bool
	answeredAt time.Time
}

// pending is the last offer seen on a pair, kept for its answer(s).
type pending struct {
	from    int
	infos   []mediaInfo
	offered [][]sdes.Crypto // our lines towards the answerer, per m-line
	secure  []bool          // SAVP offered towards the answerer
}

// pairFor finds the pair leg names and the offerer's side in it.
func (c *call) pairFor(leg string, create bool) (*pair, int, bool, error) {
	if leg == "a" {
		if p := c.pairs[c.active]; p != nil {
			return p, sideB, false, nil
		}
		if len(c.pairs) == 1 {
			for _, p := range c.pairs {
				return p, sideB, false, nil
			}
		}
		if !create || len(c.pairs) > 0 {
			return nil, 0, false, &StatusError{Code: 500, Reason: "Server Internal Error",
				Err: fmt.Errorf("%w: no answered fork for leg a", ErrUnknownLeg)}
		}
		// Delayed offer: the winning fork offers first; its name is
		// learnt from its next Offer/Answer.
		p := &pair{leg: unnamed}
		c.pairs[unnamed] = p
		return p, sideB, true, nil
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(leg, "b")); err != nil || !strings.HasPrefix(leg, "b") || n < 1 {
		return nil, 0, false, &StatusError{Code: 500, Reason: "Server Internal Error",
			Err: fmt.Errorf("%w: bad leg name %q", ErrUnknownLeg, leg)}
	}
	if p := c.pairs[leg]; p != nil {
		return p, sideA, false, nil
	}
	if p := c.pairs[unnamed]; p != nil {
		delete(c.pairs, unnamed)
		p.leg = leg
		c.pairs[leg] = p
		if c.active == unnamed {
			c.active = leg
		}
		return p, sideA, false, nil
	}
	if !create {
		return nil, 0, false, &StatusError{Code: 500, Reason: "Server Internal Error",
			Err: fmt.Errorf("%w: %s", ErrUnknownLeg, leg)}
	}
	if len(c.pairs) >= maxPairs {
		return nil, 0, false, unavailable(fmt.Errorf("media: more than %d forks", maxPairs))
	}
	p := &pair{leg: leg}
	c.pairs[leg] = p
	return p, sideA, true, nil
}

// idle reports (report, once) whether the answered pair saw no RTP either
// way for d, and (expire) whether it stayed silent for 3*d after that
// report without being released. Pairs with a held stream are exempt.
func (c *call) idle(now time.Time, d time.Duration) (report, expire bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pairs[c.active]
	if p == nil || !p.answered {
		return false, false
	}
	last := p.answeredAt.UnixNano()
	for _, st := range p.streams {
		if st == nil {
			continue
		}
		if st.hold.Load() {
			c.reported = false
			return false, false
		}
		for _, e := range st.ends {
			last = max(last, e.lastRX.Load())
		}
	}
	silent := now.UnixNano() - last
	if silent < int64(d) {
		c.reported = false // media came back: a later silence is reported again
		return false, false
	}
	if c.reported {
		return false, silent >= int64(4*d)
	}
	c.reported = true
	return true, false
}

// setPeer records the device's SDP address; a new address drops what was
// latched and reopens the latch window.
func (e *endpoint) setPeer(p *peer, now time.Time, window time.Duration) {
	old := e.sdpPeer.Load()
	if old != nil && !p.rtp.IsValid() {
		return // hold with 0.0.0.0 keeps what we learnt (RFC 3264 §8.4 style)
	}
	if old != nil && *old == *p && e.windowEnd.Load() != 0 {
		return
	}
	e.sdpPeer.Store(p)
	e.latchRTP.Store(nil)
	e.latchRTCP.Store(nil)
	e.windowEnd.Store(now.Add(window).UnixNano())
}

// stale reports a call that was never answered within staleAfter.
func (c *call) stale(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pairs {
		if p.answered {
			return false
		}
	}
	return now.Sub(c.created) > staleAfter
}
