package b2bua

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// dialog holds what a UA needs to send requests on one leg (RFC 3261
// §12.1): identifiers, remote target, route set and both CSeq spaces.
type dialog struct {
	callID       string
	local        sip.FromHeader // our side, From of the requests we send
	remote       sip.ToHeader   // their side, To of the requests we send
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	transport    string // UDP, TCP, TLS, WS, WSS
	dest         string // host:port to send to when the route set is empty
	localCSeq    uint32
	remoteCSeq   uint32
}

// request builds an in-dialog request. ACK and CANCEL take cseq as given;
// every other method takes the next local CSeq (cseq is ignored).
func (d *dialog) request(method sip.RequestMethod, cseq uint32, contact sip.Header) *sip.Request {
	req := sip.NewRequest(method, d.remoteTarget)
	for i := range d.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *d.routeSet[i].Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(&d.local))
	req.AppendHeader(sip.HeaderClone(&d.remote))
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	if method != sip.ACK && method != sip.CANCEL {
		d.localCSeq++
		cseq = d.localCSeq
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	switch method {
	case sip.INVITE, sip.UPDATE, sip.NOTIFY, sip.REFER, sip.SUBSCRIBE:
		// Target refresh requests and those that may establish
		// subscriptions carry Contact (RFC 3261 §12.2.1.1, RFC 6665).
		if contact != nil {
			req.AppendHeader(contact)
		}
	}
	req.SetTransport(d.transport)
	if len(d.routeSet) == 0 && d.dest != "" {
		req.SetDestination(d.dest)
	}
	return req
}

// learn takes the remote tag, target and route set of a dialog-creating
// response on a leg we are UAC of (RFC 3261 §12.1.2).
func (d *dialog) learn(res *sip.Response) {
	if to := res.To(); to != nil {
		d.remote = sip.ToHeader{DisplayName: to.DisplayName, Address: *to.Address.Clone(), Params: to.Params.Clone()}
	}
	if c := res.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	if rr := routeSet(res, "Record-Route", true); len(rr) > 0 || res.StatusCode >= 200 {
		d.routeSet = rr
	}
}

// legState is where a leg stands.
type legState uint8

const (
	legCalling   legState = iota // INVITE sent, no final response
	legConfirmed                 // 2xx received (B) or sent (A): a dialog
	legDone                      // failed, cancelled, or hung up
)

// leg is one side of a call: the A-leg (idx 0, we are UAS) or a fork
// (idx ≥ 1, we are UAC). Owned by the call's actor.
type leg struct {
	dialog
	name  string // "a", "b1", ...
	idx   int
	state legState

	// Either side: ACKs we owe and the hang-up.
	ackDeferred bool   // a 2xx not ACKed yet: the ACK waits for the other side's answer
	ackCSeq     uint32 // CSeq of the INVITE whose 2xx the next ACK acknowledges
	ack         *sip.Request
	byeSent     bool

	// Fork only.
	target      target
	invite      *sip.Request // the INVITE sent; read only after a provisional (it was sent)
	inviteCSeq  uint32
	provisional bool          // any 1xx received: CANCEL allowed (RFC 3261 §9.1)
	final       int           // final status, 0 while none
	cancelWant  bool          // we decided to cancel
	cancelSent  bool          // the CANCEL left
	cancelWhy   sip.Header    // Reason of the CANCEL, or nil
	cancelTimer *actorTimer   // 64·T1 after the CANCEL: give up on the fork
	kill        chan struct{} // closed to terminate the INVITE transaction
	killed      bool
	lastRSeq    uint32 // last reliable provisional PRACKed (RFC 3262)
	earlySDP    []byte // answer from a reliable provisional
	released    bool   // its media released
}

func forkName(i int) string { return "b" + strconv.Itoa(i) }

// ackFor builds the ACK of a 2xx on d (RFC 3261 §13.2.2.4): a new
// transaction to the remote target through the route set, with the CSeq
// number of the INVITE.
func ackFor(d *dialog, cseq uint32) *sip.Request {
	return d.request(sip.ACK, cseq, nil)
}
