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
// at its non-2xx final (sipgo has ACKed it) and leaves the INVITE and the
// final here, by branch, for as long as sipgo would have kept the
// transaction (Timer D, sip.transaction_wait); the csip.Server hands us
// the strays, and the ACK is built again only for one that comes (most
// finals are never retransmitted).
type strayAcks struct {
	mu sync.Mutex
	m  map[string]strayAck
	q  []strayKey // insertion order, so expiry order: every entry lives as long
}

type strayAck struct {
	inv   *sip.Request
	res   *sip.Response
	until time.Time
}

type strayKey struct {
	branch string
	until  time.Time
}

// put keeps the INVITE of branch and its final until until, and drops
// what expired.
func (s *strayAcks) put(branch string, inv *sip.Request, res *sip.Response, now, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if s.m == nil {
		s.m = make(map[string]strayAck)
	}
	s.m[branch] = strayAck{inv: inv, res: res, until: until}
	s.q = append(s.q, strayKey{branch: branch, until: until})
}

// get returns the live INVITE of branch and its final.
func (s *strayAcks) get(branch string, now time.Time) (*sip.Request, *sip.Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[branch]
	if !ok || !now.Before(e.until) {
		return nil, nil, false
	}
	return e.inv, e.res, true
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
	if inv, final, ok := s.strays.get(branch, time.Now()); ok {
		// The ACK repeats the one sent for the first copy of the final
		// (RFC 3261 §17.1.1.3): same branch, To tag from that final.
		_ = s.write(inv.Transport(), sipmsg.AckNon2xx(inv, final)) // best effort, like the transaction's own re-ACK
	}
}

// keepAck hands inv and its non-2xx final res to the stray handler.
func (s *Server) keepAck(inv *sip.Request, res *sip.Response) {
	branch, _ := inv.Via().Params.Get("branch")
	now := time.Now()
	s.strays.put(branch, inv, res, now, now.Add(sip.Timer_D))
}
