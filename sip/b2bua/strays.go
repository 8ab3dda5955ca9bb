package b2bua

import (
	"sync"
	"time"

	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo/sip"
)

// strayAcks answers retransmissions of a fork's non-2xx final response
// (a 487 after our CANCEL, a 486) once its INVITE transaction is gone.
// RFC 3261 §17.1.1.2 wants each one re-ACKed at once; sipgo's transaction
// waits T2 (4 s) before re-sending an ACK it already sent, holding its
// lock, and the device retransmits meanwhile: past saturation that turned
// a late ACK into a storm. So the watcher ends a UDP INVITE transaction
// at its non-2xx final (sipgo has ACKed it) and leaves the ACK here, by
// branch, for as long as sipgo would have kept the transaction (Timer D,
// sip.transaction_wait); the csip.Server hands us the strays.
type strayAcks struct {
	mu sync.Mutex
	m  map[string]strayAck
	q  []strayKey // insertion order, so expiry order: every entry lives as long
}

type strayAck struct {
	ack   *sip.Request
	tp    string
	until time.Time
}

type strayKey struct {
	branch string
	until  time.Time
}

// put keeps ack for branch until until and drops what expired.
func (s *strayAcks) put(branch string, ack *sip.Request, tp string, now, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if s.m == nil {
		s.m = make(map[string]strayAck)
	}
	s.m[branch] = strayAck{ack: ack, tp: tp, until: until}
	s.q = append(s.q, strayKey{branch: branch, until: until})
}

// get returns the live ACK of branch.
func (s *strayAcks) get(branch string, now time.Time) (*sip.Request, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[branch]
	if !ok || !now.Before(e.until) {
		return nil, "", false
	}
	return e.ack, e.tp, true
}

// expire drops the entries whose time is up; s.mu is held.
func (s *strayAcks) expire(now time.Time) {
	n := 0
	for n < len(s.q) && !now.Before(s.q[n].until) {
		k := s.q[n]
		if e, ok := s.m[k.branch]; ok && !e.until.After(k.until) {
			delete(s.m, k.branch)
		}
		s.q[n] = strayKey{}
		n++
	}
	s.q = s.q[n:]
	if len(s.q) == 0 {
		s.q = nil // let the backing array go
	}
}

// sweep drops expired entries (Run calls it while no put does).
func (s *strayAcks) sweep(now time.Time) {
	s.mu.Lock()
	s.expire(now)
	s.mu.Unlock()
}

// len is the number of ACKs held.
func (s *strayAcks) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// OnStrayResponse takes a response that matched no client transaction
// (csip.Server.OnStrayResponse): a retransmitted non-2xx final to one of
// our forks' INVITEs gets its ACK again. Anything else is dropped (RFC
// 3261 §18.1.2).
func (s *Server) OnStrayResponse(res *sip.Response) {
	if res.StatusCode < 300 || res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE || res.Via() == nil {
		return
	}
	branch, _ := res.Via().Params.Get("branch")
	if ack, tp, ok := s.strays.get(branch, time.Now()); ok {
		_ = s.write(tp, ack) // best effort, like the transaction's own re-ACK
	}
}

// keepAck hands the ACK of inv's non-2xx final res to the stray handler.
func (s *Server) keepAck(inv *sip.Request, res *sip.Response) {
	branch, _ := inv.Via().Params.Get("branch")
	now := time.Now()
	s.strays.put(branch, sipmsg.AckNon2xx(inv, res), inv.Transport(), now, now.Add(sip.Timer_D))
}
