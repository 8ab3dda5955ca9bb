package sip

import (
	"sync"
	"time"
)

// rateGate admits at most rate new dialogs per second, with bursts of a
// quarter second's worth: overload control at the door (as Kamailio's
// pike/ratelimit do; RFC 7339 is the negotiated form). Refusing a call
// with 503 costs a few µs; admitting more than the server can carry makes
// every call slow, the callers retransmit, and the retransmissions take the
// rest of the CPU. A nil gate admits everything. Safe for concurrent use.
type rateGate struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newRateGate(perSecond int) *rateGate {
	if perSecond <= 0 {
		return nil
	}
	burst := max(float64(perSecond)/4, 1)
	return &rateGate{rate: float64(perSecond), burst: burst, tokens: burst}
}

// allow takes a token at now, if there is one.
func (g *rateGate) allow(now time.Time) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.last.IsZero() {
		g.tokens = min(g.burst, g.tokens+now.Sub(g.last).Seconds()*g.rate)
	}
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
