package b2bua

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
)

// TestByeFromEachSide: a BYE from either leg is answered 200 and the
// other leg gets a BYE it answers 200.
func TestByeFromEachSide(t *testing.T) {
	t.Run("caller", func(t *testing.T) {
		e := newEnv(t, Config{})
		d, caller := e.agent("dev1"), e.agent("alice")
		e.devices(d)
		u := e.answered(caller)
		d.waitGot(sip.ACK, 1)
		if res := u.do(sip.BYE, ""); res.StatusCode != 200 {
			t.Fatalf("BYE answered %d", res.StatusCode)
		}
		d.waitGot(sip.BYE, 1)
		e.waitIdle()
	})
	t.Run("device", func(t *testing.T) {
		e := newEnv(t, Config{})
		d, caller := e.agent("dev1"), e.agent("alice")
		e.devices(d)
		u := e.answered(caller)
		d.waitGot(sip.ACK, 1)
		res, err := d.request(sip.BYE, "")
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("device BYE: %v %v", res, err)
		}
		bye := caller.waitGot(sip.BYE, 1)[0]
		if bye.CallID().Value() != u.inv.CallID().Value() || tagOf(bye.From().Params) != tagOf(u.remote.Params) {
			t.Errorf("BYE to caller not on its dialog: Call-ID %s From tag %s", bye.CallID().Value(), tagOf(bye.From().Params))
		}
		if bye.Recipient.String() != caller.contact().Address.String() {
			t.Errorf("BYE Request-URI %s, want the caller's Contact %s", bye.Recipient.String(), caller.contact().Address.String())
		}
		e.waitIdle()
		// The dialog is gone: another request gets 481.
		if res := u.do(sip.INFO, ""); res.StatusCode != 481 {
			t.Errorf("INFO after hang-up answered %d, want 481", res.StatusCode)
		}
	})
}

// TestReinviteCSeq: a re-INVITE crosses with the other leg's own CSeq and
// Call-ID, both ways, and its ACK follows.
func TestReinviteCSeq(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.answered(caller)
	d.waitGot(sip.ACK, 1)
	inv := d.got(sip.INVITE)[0]

	newSDP := strings.Replace(callerSDP, "4000", "4002", 1)
	res := u.do(sip.INVITE, newSDP) // CSeq 101 on the caller's leg
	if res.StatusCode != 200 || string(res.Body()) != deviceSDP {
		t.Fatalf("re-INVITE answered %d %q", res.StatusCode, res.Body())
	}
	u.ack(101, "")
	re := d.waitGot(sip.INVITE, 2)[1]
	if got, want := re.CSeq().SeqNo, inv.CSeq().SeqNo+1; got != want {
		t.Errorf("re-INVITE CSeq on the device leg = %d, want %d", got, want)
	}
	if re.CallID().Value() != inv.CallID().Value() || tagOf(re.To().Params) == "" {
		t.Errorf("re-INVITE not on the device's dialog: %s", re.CallID().Value())
	}
	if string(re.Body()) != newSDP {
		t.Errorf("re-INVITE body %q, want %q", re.Body(), newSDP)
	}
	acks := d.waitGot(sip.ACK, 2)
	if acks[1].CSeq().SeqNo != re.CSeq().SeqNo {
		t.Errorf("ACK CSeq %d, want %d", acks[1].CSeq().SeqNo, re.CSeq().SeqNo)
	}

	// From the device: the caller's leg uses our CSeq space toward it. Our
	// 2xx to the caller's re-INVITE may still wait for its ACK (sipgo may
	// hand us the ACK late): then 491, and the device retries (RFC 3261
	// §14.1).
	for i := 0; ; i++ {
		res, err := d.request(sip.INVITE, deviceSDP)
		if err == nil && res.StatusCode == 491 && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("device re-INVITE: %v %v", res, err)
		}
		break
	}
	got := caller.waitGot(sip.INVITE, 1)[0]
	if got.CSeq().SeqNo != 1 || got.CallID().Value() != u.inv.CallID().Value() {
		t.Errorf("re-INVITE to caller: CSeq %d Call-ID %s, want 1 and %s", got.CSeq().SeqNo, got.CallID().Value(), u.inv.CallID().Value())
	}
	u.do(sip.BYE, "")
	d.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestInDialogRelay: INFO and UPDATE cross with the other leg's CSeq and
// their answers come back; a 481 from the other leg ends the call.
func TestInDialogRelay(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.answered(caller)
	d.waitGot(sip.ACK, 1)
	inv := d.got(sip.INVITE)[0]
	if res := u.do(sip.INFO, ""); res.StatusCode != 200 {
		t.Fatalf("INFO answered %d", res.StatusCode)
	}
	info := d.waitGot(sip.INFO, 1)[0]
	if info.CSeq().SeqNo != inv.CSeq().SeqNo+1 || info.CallID().Value() != inv.CallID().Value() {
		t.Errorf("INFO CSeq %d Call-ID %s", info.CSeq().SeqNo, info.CallID().Value())
	}
	d.handle(nil, func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	if res := u.do(sip.UPDATE, ""); res.StatusCode != 481 {
		t.Fatalf("UPDATE answered %d, want the device's 481", res.StatusCode)
	}
	caller.waitGot(sip.BYE, 1) // the call is over for the caller too
	e.waitIdle()
}

// TestAckRetransmission: the caller withholds its ACK and sees our 200
// again (RFC 3261 §13.3.1.4); once it ACKs, the call stays up.
func TestAckRetransmission(t *testing.T) {
	e := newEnv(t, Config{T1: 40 * time.Millisecond})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.call(caller, callerSDP)
	res, _ := u.finalResponse()
	if res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	waitFor(t, "a retransmitted 200", func() bool { return u.retx.Load() >= 2 })
	u.ack(100, "")
	time.Sleep(200 * time.Millisecond) // > 2·T2-capped interval: retransmissions stopped
	n := u.retx.Load()
	time.Sleep(200 * time.Millisecond)
	if got := u.retx.Load(); got != n {
		t.Errorf("200 still retransmitted after ACK: %d then %d", n, got)
	}
	if len(d.got(sip.BYE)) != 0 {
		t.Fatal("call ended after the late ACK")
	}
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestAckTimeout: no ACK within 64·T1 ends the call with BYE on both legs.
func TestAckTimeout(t *testing.T) {
	e := newEnv(t, Config{T1: 10 * time.Millisecond, T2: 40 * time.Millisecond})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.call(caller, callerSDP)
	if res, _ := u.finalResponse(); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	d.waitGot(sip.BYE, 1)
	caller.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestInstantAnswer: device 2 answers 200 at once while device 1 has sent
// nothing yet; device 1 is still cancelled, once its provisional arrives
// (RFC 3261 §9.1).
func TestInstantAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		time.Sleep(150 * time.Millisecond) // device 2 has answered by now
		_ = u.respond(180, "")
		u.waitCancelOrDone(5 * time.Second)
	}, nil)
	e.devices(d1, d2) // device 2 answers 200 at once (default)
	u := e.call(caller, callerSDP)
	res, prov := u.finalResponse()
	if res.StatusCode != 200 || len(prov) != 0 {
		t.Fatalf("final %d after %d provisionals, want 200 and none", res.StatusCode, len(prov))
	}
	u.ack(100, "")
	c := d1.waitGot(sip.CANCEL, 1)[0]
	if got := header(c, "Reason"); got != `SIP;cause=200;text="Call completed elsewhere"` {
		t.Errorf("CANCEL Reason %q", got)
	}
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestReliableProvisional: a device that insists on 100rel gets its PRACK
// from us; the caller sees a plain 180.
func TestReliableProvisional(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		_ = u.respond(180, "", sip.NewHeader("Require", "100rel"), sip.NewHeader("RSeq", "1"))
		deadline := time.Now().Add(5 * time.Second)
		for len(a.got(sip.PRACK)) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = u.respond(200, deviceSDP)
	}, nil)
	e.devices(d)
	u := e.call(caller, callerSDP)
	res, prov := u.finalResponse()
	if res.StatusCode != 200 || len(prov) != 1 || prov[0].StatusCode != 180 {
		t.Fatalf("responses: %d after %v", res.StatusCode, prov)
	}
	if header(prov[0], "Require") != "" || header(prov[0], "RSeq") != "" {
		t.Errorf("180 to the caller is reliable: Require %q RSeq %q", header(prov[0], "Require"), header(prov[0], "RSeq"))
	}
	prack := d.got(sip.PRACK)[0]
	inv := d.got(sip.INVITE)[0]
	if got, want := header(prack, "RAck"), "1 1 INVITE"; got != want {
		t.Errorf("RAck %q, want %q", got, want)
	}
	if prack.CallID().Value() != inv.CallID().Value() || prack.CSeq().SeqNo != 2 {
		t.Errorf("PRACK Call-ID %s CSeq %d", prack.CallID().Value(), prack.CSeq().SeqNo)
	}
	u.ack(100, "")
	u.do(sip.BYE, "")
	bye := d.waitGot(sip.BYE, 1)[0]
	if bye.CSeq().SeqNo != 3 {
		t.Errorf("BYE CSeq %d, want 3 (INVITE 1, PRACK 2)", bye.CSeq().SeqNo)
	}
	e.waitIdle()
}

// TestDelayedOffer: an INVITE without SDP; the device's offer reaches the
// caller in the 200 and the caller's answer reaches the device in the ACK.
func TestDelayedOffer(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.call(caller, "")
	res, _ := u.finalResponse()
	if res.StatusCode != 200 || string(res.Body()) != deviceSDP {
		t.Fatalf("final %d body %q", res.StatusCode, res.Body())
	}
	if n := len(d.got(sip.ACK)); n != 0 {
		t.Fatalf("device ACKed before the caller answered")
	}
	u.ack(100, callerSDP)
	ack := d.waitGot(sip.ACK, 1)[0]
	if string(ack.Body()) != callerSDP {
		t.Errorf("device ACK body %q, want the caller's answer", ack.Body())
	}
	u.do(sip.BYE, "")
	e.waitIdle()
}

// recordingAnchor records every SDP crossing and marks what it returns.
type recordingAnchor struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingAnchor) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recordingAnchor) Offer(_ context.Context, _, leg string, sdp []byte) ([]byte, error) {
	r.add("offer " + leg)
	return append([]byte(nil), append(sdp, "a=anchored:"+leg+"\r\n"...)...), nil
}

func (r *recordingAnchor) Answer(_ context.Context, _, leg string, sdp []byte) ([]byte, error) {
	r.add("answer " + leg)
	return append([]byte(nil), append(sdp, "a=anchored:"+leg+"\r\n"...)...), nil
}

func (r *recordingAnchor) Release(_, leg string) { r.add("release " + leg) }

func (r *recordingAnchor) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// TestAnchorSeam: every SDP crossing goes through the Anchor, losers are
// released when the call is decided and the call when it ends.
func TestAnchorSeam(t *testing.T) {
	ra := &recordingAnchor{}
	e := newEnvWith(t, Config{}, ra, nil)
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(ringForever, nil)
	d2.handle(ringThenAnswer(50*time.Millisecond), nil)
	e.devices(d1, d2)
	u := e.answered(caller)
	if got := string(u.final.Body()); !strings.HasSuffix(got, "a=anchored:b2\r\n") {
		t.Errorf("200 to caller not anchored: %q", got)
	}
	if got := string(d2.got(sip.INVITE)[0].Body()); !strings.HasSuffix(got, "a=anchored:b2\r\n") {
		t.Errorf("fork offer not anchored: %q", got)
	}
	d2.waitGot(sip.ACK, 1)
	u.do(sip.INVITE, callerSDP)
	u.ack(101, "")
	u.do(sip.BYE, "")
	e.waitIdle()
	want := []string{"offer b1", "offer b2", "answer b2", "release b1", "offer b2", "answer b2", "release "}
	if diff := cmp.Diff(want, ra.seen()); diff != "" {
		t.Errorf("anchor calls (-want +got):\n%s", diff)
	}
}

// TestMaxAge: Run ends a call older than max_age with BYE on both legs.
func TestMaxAge(t *testing.T) {
	e := newEnv(t, Config{MaxAge: 300 * time.Millisecond})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	e.answered(caller)
	d.waitGot(sip.BYE, 1)
	caller.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestShutdown: when Run's context ends, live calls get BYE and ringing
// ones CANCEL (and 503 to the caller); new INVITEs are refused.
func TestShutdown(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	e.devices(d1)
	e.answered(caller)
	d1.waitGot(sip.ACK, 1)
	d2.handle(ringForever, nil)
	e.devices(d2)
	ringing := e.call(caller, callerSDP)
	if res := ringing.next(); res.StatusCode != 180 {
		t.Fatalf("second call: %d", res.StatusCode)
	}
	e.b.shutdown()
	d1.waitGot(sip.BYE, 1)
	caller.waitGot(sip.BYE, 1)
	d2.waitGot(sip.CANCEL, 1)
	if res, _ := ringing.finalResponse(); res.StatusCode != 503 {
		t.Errorf("ringing call ended %d, want 503", res.StatusCode)
	}
	if e.b.Active() != 0 {
		t.Errorf("%d calls left after shutdown", e.b.Active())
	}
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 503 {
		t.Errorf("INVITE after shutdown answered %d, want 503", res.StatusCode)
	}
}

// TestTCPCaller: a caller on TCP gets its responses and the device's BYE
// over its own connection; the device stays on UDP.
func TestTCPCaller(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	var tcpAddr string
	for _, l := range e.sip.Addrs() {
		if l.Transport == "tcp" {
			tcpAddr = l.Addr
		}
	}
	cli, err := sipgo.NewClient(caller.ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	u := e.callVia(caller, cli, "TCP", calleeAOR, tcpAddr, callerSDP)
	res, _ := u.finalResponse()
	if res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	if tp, _ := res.Contact().Address.UriParams.Get("transport"); tp != "tcp" {
		t.Errorf("Contact %s, want our TCP listener", res.Contact().Address.String())
	}
	u.ack(100, "")
	d.waitGot(sip.ACK, 1)
	if res, err := d.request(sip.BYE, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("device BYE: %v %v", res, err)
	}
	bye := caller.waitGot(sip.BYE, 1)[0]
	if bye.Transport() != "TCP" {
		t.Errorf("BYE to the caller came over %s, want TCP", bye.Transport())
	}
	e.waitIdle()
}

// TestByeBeforeAck: the device hangs up before the caller ACKed our 200;
// the caller's BYE waits for that ACK (RFC 3261 §15).
func TestByeBeforeAck(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.call(caller, callerSDP)
	if res, _ := u.finalResponse(); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	d.waitGot(sip.ACK, 1)
	if res, err := d.request(sip.BYE, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("device BYE: %v %v", res, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(caller.got(sip.BYE)); n != 0 {
		t.Fatalf("caller got BYE before its ACK")
	}
	u.ack(100, "")
	caller.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestSecond2xxFromForkingProxy: a device that is really a forking proxy
// sends two 2xx with different To tags (two dialogs, RFC 3261 §13.2.2.4).
// The first to arrive is bridged to the caller (sipgo may hand us the two
// datagrams in either order); the other dialog is ACKed, then BYEd, and
// the call carries on on the first.
func TestSecond2xxFromForkingProxy(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = newUAS(a, req, tx).respond(200, deviceSDP)
		r := req.Clone()
		r.To().Params.Add("tag", "second-branch")
		res := sip.NewResponseFromRequest(r, 200, "OK", nil)
		res.AppendHeader(a.contact())
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(deviceSDP))
		_ = tx.Respond(res)
	}, nil)
	e.devices(d)
	u := e.answered(caller)
	byed := tagOf(d.waitGot(sip.BYE, 1)[0].To().Params)
	acks := map[string]bool{}
	for _, a := range d.waitGot(sip.ACK, 2) {
		acks[tagOf(a.To().Params)] = true
	}
	if len(acks) != 2 || !acks[byed] || !acks["second-branch"] {
		t.Fatalf("ACKs for dialogs %v, want both (one of them second-branch), BYE to %q", acks, byed)
	}
	wire := d.wireMethods()
	if i, j := slices.Index(wire, "ACK"), slices.Index(wire, "BYE"); i < 0 || j < i {
		t.Errorf("wire order %v: want an ACK before the BYE", wire)
	}
	// The caller's call is still up, on the other dialog.
	if res := u.do(sip.INFO, ""); res.StatusCode != 200 {
		t.Fatalf("INFO on the surviving call answered %d", res.StatusCode)
	}
	if got := tagOf(d.waitGot(sip.INFO, 1)[0].To().Params); got == byed || !acks[got] {
		t.Errorf("INFO went to dialog %q; the BYEd one is %q", got, byed)
	}
	u.do(sip.BYE, "")
	d.waitGot(sip.BYE, 2)
	e.waitIdle()
}

// TestEarlyUpdate: while ringing, an UPDATE from the fork whose early
// media reaches the caller is relayed to the caller; one from another
// fork is answered 491 (its early dialog is bridged to nobody), and the
// call still completes.
func TestEarlyUpdate(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	answer := make(chan struct{})
	d1.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		_ = u.respond(183, deviceSDP)
		<-answer
		_ = u.respond(200, deviceSDP)
	}, nil)
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	u := e.call(caller, callerSDP)
	// d2's 180 may come first; d1's 183 with SDP always follows.
	if res := u.next(); res.StatusCode == 180 {
		if res = u.next(); res.StatusCode != 183 {
			t.Fatalf("provisional %d after 180, want 183 with d1's early media", res.StatusCode)
		}
	} else if res.StatusCode != 183 {
		t.Fatalf("first provisional %d, want 180 or 183", res.StatusCode)
	}
	waitFor(t, "dev2 ringing", func() bool {
		d2.dlgMu.Lock()
		defer d2.dlgMu.Unlock()
		return d2.dialog != nil
	})
	// Until d2's 180 has reached the b2bua its early dialog is unknown (481).
	for i := 0; ; i++ {
		res, err := d2.request(sip.UPDATE, deviceSDP)
		if err == nil && res.StatusCode == 481 && i < 50 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil || res.StatusCode != 491 {
			t.Errorf("UPDATE from the fork without early media: %v %v, want 491", res, err)
		}
		break
	}
	res, err := d1.request(sip.UPDATE, deviceSDP)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("UPDATE from the early-media fork: %v %v, want 200 from the caller", res, err)
	}
	if n := len(caller.waitGot(sip.UPDATE, 1)); n != 1 {
		t.Errorf("caller got %d UPDATEs, want 1", n)
	}
	close(answer)
	final, _ := u.finalResponse()
	if final.StatusCode != 200 {
		t.Fatalf("call answered %d", final.StatusCode)
	}
	u.ack(100, "")
	d2.waitGot(sip.CANCEL, 1)
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestFinishedCallIsCollectable: once a call has finished nothing keeps it
// alive, although sipgo holds its transactions (and their callbacks) for
// 64·T1 more: those callbacks hold a callRef, not the call. A regression
// here multiplies the live heap by the call rate times 32 s.
func TestFinishedCallIsCollectable(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	u := e.call(caller, callerSDP)
	var wp weak.Pointer[call]
	waitFor(t, "call registered", func() bool {
		all := e.b.calls.all()
		if len(all) == 1 {
			wp = weak.Make(all[0])
		}
		return len(all) == 1
	})
	if res, _ := u.finalResponse(); res.StatusCode != 200 {
		t.Fatalf("call answered %d", res.StatusCode)
	}
	u.ack(100, "")
	d2.waitGot(sip.CANCEL, 1)
	u.do(sip.BYE, "")
	e.waitIdle()
	waitFor(t, "finished call collected", func() bool {
		runtime.GC()
		return wp.Value() == nil
	})
}

// TestLate2xxAfterCallEnded: a 2xx of another dialog that reaches a fork's
// INVITE transaction after the call has finished (sipgo keeps it 64·T1) is
// still ACKed and BYEd, from what the finished call left behind.
func TestLate2xxAfterCallEnded(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	late := make(chan struct{})
	d.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = newUAS(a, req, tx).respond(200, deviceSDP)
		<-late
		r := req.Clone()
		r.To().Params.Add("tag", "late-branch")
		res := sip.NewResponseFromRequest(r, 200, "OK", nil)
		res.AppendHeader(a.contact())
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(deviceSDP))
		_ = tx.Respond(res)
	}, nil)
	e.devices(d)
	u := e.answered(caller)
	d.waitGot(sip.ACK, 1)
	u.do(sip.BYE, "")
	d.waitGot(sip.BYE, 1)
	e.waitIdle()
	close(late)
	waitFor(t, "late dialog ACKed and BYEd", func() bool {
		var acked, byed bool
		for _, r := range d.got(sip.ACK) {
			acked = acked || tagOf(r.To().Params) == "late-branch"
		}
		for _, r := range d.got(sip.BYE) {
			byed = byed || tagOf(r.To().Params) == "late-branch"
		}
		return acked && byed
	})
}

// TestSilentLegEndsCall: a device that stops answering altogether (it
// drops everything it receives, as behind a dead network path: nothing
// comes back, not even an error) makes the re-INVITE relayed to it time
// out (Timer B). The caller's re-INVITE gets
// 408 and the call is hung up: BYE to the caller, the BYE to the device
// given up after Timer F, nothing left behind.
func TestSilentLegEndsCall(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	e.devices(d)
	u := e.answered(caller)
	d.waitGot(sip.ACK, 1)
	d.wpc.deaf.Store(true)
	start := time.Now()
	if res := u.do(sip.INVITE, callerSDP); res.StatusCode != 408 {
		t.Fatalf("re-INVITE to a silent device answered %d, want 408", res.StatusCode)
	}
	if waited := time.Since(start); waited < testRequestTimeout/2 {
		t.Fatalf("408 after %s: before the transaction could time out (%s)", waited, testRequestTimeout)
	}
	caller.waitGot(sip.BYE, 1)
	waitFor(t, "the BYE to the silent device given up", func() bool { return e.b.Active() == 0 })
	e.waitIdle()
}
