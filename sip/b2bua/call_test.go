package b2bua

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
)

func header(m sip.Message, name string) string {
	if h := m.(interface{ GetHeader(string) sip.Header }).GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// TestForkAnswerElsewhere: device 2 answers, device 1 (ringing) gets a
// CANCEL with Reason "Call completed elsewhere"; the caller gets one 180
// and device 2's answer; BYE from the caller reaches device 2.
func TestForkAnswerElsewhere(t *testing.T) {
	e := newEnv(t, Config{T1: 50 * time.Millisecond})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(ringForever, nil)
	d2.handle(ringThenAnswer(100*time.Millisecond), nil)
	e.devices(d1, d2)

	u := e.call(caller, callerSDP)
	res, prov := u.finalResponse()
	if res.StatusCode != 200 {
		t.Fatalf("final = %d, want 200", res.StatusCode)
	}
	if u.trying.Load() == 0 {
		t.Error("no 100 Trying")
	}
	var codes []int
	for _, p := range prov {
		codes = append(codes, p.StatusCode)
	}
	if diff := cmp.Diff([]int{180}, codes); diff != "" {
		t.Errorf("provisionals upstream (-want +got):\n%s", diff)
	}
	if got := string(res.Body()); got != deviceSDP {
		t.Errorf("200 body = %q, want the device's SDP", got)
	}
	if tag := tagOf(res.To().Params); tag == "" || tag != tagOf(prov[0].To().Params) {
		t.Errorf("To tag of 200 %q differs from 180's %q", tag, tagOf(prov[0].To().Params))
	}
	if c := res.Contact(); c == nil || c.Address.HostPort() != e.udp {
		t.Errorf("Contact = %v, want our listener %s", c, e.udp)
	}
	u.ack(100, "")

	cancel := d1.waitGot(sip.CANCEL, 1)[0]
	if got, want := header(cancel, "Reason"), `SIP;cause=200;text="Call completed elsewhere"`; got != want {
		t.Errorf("CANCEL Reason = %q, want %q", got, want)
	}
	inv1, inv2 := d1.got(sip.INVITE)[0], d2.got(sip.INVITE)[0]
	if inv1.CallID().Value() == inv2.CallID().Value() || inv1.CallID().Value() == u.inv.CallID().Value() {
		t.Errorf("legs share a Call-ID: %s %s %s", inv1.CallID().Value(), inv2.CallID().Value(), u.inv.CallID().Value())
	}
	if tagOf(inv1.From().Params) == tagOf(inv2.From().Params) {
		t.Error("forks share a From tag")
	}
	if got := string(inv2.Body()); got != callerSDP {
		t.Errorf("fork INVITE body = %q, want the caller's SDP", got)
	}
	if h := header(inv2, "Supported"); strings.Contains(h, "100rel") {
		t.Errorf("fork INVITE Supported = %q: must not offer 100rel", h)
	}
	d2.waitGot(sip.ACK, 1)

	if res := u.do(sip.BYE, ""); res.StatusCode != 200 {
		t.Fatalf("BYE answered %d", res.StatusCode)
	}
	bye := d2.waitGot(sip.BYE, 1)[0]
	if bye.CallID().Value() != inv2.CallID().Value() {
		t.Errorf("BYE Call-ID %s, want the fork's %s", bye.CallID().Value(), inv2.CallID().Value())
	}
	e.waitIdle()
}

// TestSimultaneousAnswer: both devices answer at once; one is bridged,
// the other gets ACK then BYE, in that order.
func TestSimultaneousAnswer(t *testing.T) {
	e := newEnv(t, Config{T1: 50 * time.Millisecond})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	var wg sync.WaitGroup
	wg.Add(2)
	both := func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		wg.Done()
		wg.Wait() // answer together
		_ = u.respond(200, deviceSDP)
	}
	d1.handle(both, nil)
	d2.handle(both, nil)
	e.devices(d1, d2)

	u := e.answered(caller)
	var loser, winner *agent
	waitFor(t, "one device to get BYE", func() bool {
		switch {
		case len(d1.got(sip.BYE)) > 0:
			loser, winner = d1, d2
		case len(d2.got(sip.BYE)) > 0:
			loser, winner = d2, d1
		}
		return loser != nil
	})
	waitFor(t, "loser's requests", func() bool { return len(loser.wireMethods()) >= 3 })
	if diff := cmp.Diff([]string{"INVITE", "ACK", "BYE"}, loser.wireMethods()); diff != "" {
		t.Errorf("loser %s saw (-want +got):\n%s", loser.name, diff)
	}
	if got := header(loser.got(sip.BYE)[0], "Reason"); got != `SIP;cause=200;text="Call completed elsewhere"` {
		t.Errorf("loser BYE Reason = %q", got)
	}
	winner.waitGot(sip.ACK, 1)
	if n := len(winner.got(sip.BYE)); n != 0 {
		t.Fatalf("winner got %d BYEs before the caller hung up", n)
	}
	u.do(sip.BYE, "")
	winner.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestAllBusy: every device answers 486; so does the caller.
func TestAllBusy(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(reject(486), nil)
	d2.handle(reject(486), nil)
	e.devices(d1, d2)
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 486 {
		t.Fatalf("final = %d, want 486", res.StatusCode)
	}
	e.waitIdle()
}

// TestBestResponse: the caller gets the best failure by RFC 3261 §16.7.
func TestBestResponse(t *testing.T) {
	tests := []struct {
		name   string
		codes  []int
		wantAt int
	}{
		{"busy beats unavailable", []int{480, 486}, 486},
		{"4xx beats 5xx", []int{500, 404}, 404},
		{"503 becomes 500", []int{503, 503}, 500},
		{"408 is worst", []int{408, 500}, 500},
		{"challenge becomes 403", []int{401, 480}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			caller := e.agent("alice")
			var ds []*agent
			for i, code := range tt.codes {
				d := e.agent("dev" + string(rune('1'+i)))
				d.handle(reject(code), nil)
				ds = append(ds, d)
			}
			e.devices(ds...)
			res, _ := e.call(caller, callerSDP).finalResponse()
			if res.StatusCode != tt.wantAt {
				t.Fatalf("final = %d, want %d", res.StatusCode, tt.wantAt)
			}
			e.waitIdle()
		})
	}
}

// TestDecline: a 603 from one device ends the fork (the other is cancelled
// with the 603 as Reason); with decline_per_device it fails that device
// only and the other may still answer.
func TestDecline(t *testing.T) {
	t.Run("global", func(t *testing.T) {
		e := newEnv(t, Config{})
		d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
		d2.handle(ringForever, nil)
		d1.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
			time.Sleep(100 * time.Millisecond) // let device 2 ring first
			_ = newUAS(a, req, tx).respond(603, "")
		}, nil)
		e.devices(d1, d2)
		res, _ := e.call(caller, callerSDP).finalResponse()
		if res.StatusCode != 603 {
			t.Fatalf("final = %d, want 603", res.StatusCode)
		}
		cancel := d2.waitGot(sip.CANCEL, 1)[0]
		if got := header(cancel, "Reason"); got != `SIP;cause=603;text="Decline"` {
			t.Errorf("CANCEL Reason = %q", got)
		}
		e.waitIdle()
	})
	t.Run("per device", func(t *testing.T) {
		e := newEnv(t, Config{DeclinePerDevice: true})
		d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
		d1.handle(reject(603), nil)
		d2.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
			u := newUAS(a, req, tx)
			_ = u.respond(180, "")
			time.Sleep(150 * time.Millisecond) // device 1 declines meanwhile
			_ = u.respond(200, deviceSDP)
		}, nil)
		e.devices(d1, d2)
		u := e.answered(caller)
		u.do(sip.BYE, "")
		d2.waitGot(sip.BYE, 1)
		if n := len(d2.got(sip.CANCEL)); n != 0 {
			t.Errorf("device 2 got %d CANCELs", n)
		}
		e.waitIdle()
	})
}

// TestCallerCancel: the caller's CANCEL cancels every fork; the caller
// gets 200 for the CANCEL and 487 for the INVITE.
func TestCallerCancel(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(ringForever, nil)
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	u := e.call(caller, callerSDP)
	if res := u.next(); res.StatusCode != 180 {
		t.Fatalf("first response %d, want 180", res.StatusCode)
	}
	d1.waitGot(sip.INVITE, 1)
	d2.waitGot(sip.INVITE, 1)
	waitFor(t, "both devices ringing", func() bool { return true })
	if res := u.cancel(); res.StatusCode != 200 {
		t.Fatalf("CANCEL answered %d", res.StatusCode)
	}
	res, _ := u.finalResponse()
	if res.StatusCode != 487 {
		t.Fatalf("final = %d, want 487", res.StatusCode)
	}
	d1.waitGot(sip.CANCEL, 1)
	d2.waitGot(sip.CANCEL, 1)
	e.waitIdle()
}

// TestRingTimeout: nobody answers within ring_timeout: every fork is
// cancelled and the caller gets 408.
func TestRingTimeout(t *testing.T) {
	e := newEnv(t, Config{RingTimeout: 300 * time.Millisecond})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(ringForever, nil)
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 408 {
		t.Fatalf("final = %d, want 408", res.StatusCode)
	}
	d1.waitGot(sip.CANCEL, 1)
	d2.waitGot(sip.CANCEL, 1)
	e.waitIdle()
}

// TestRingTimeoutBestHeld: a busy device's 486 outranks the 408 of the
// ring timeout.
func TestRingTimeoutBestHeld(t *testing.T) {
	e := newEnv(t, Config{RingTimeout: 300 * time.Millisecond})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d1.handle(reject(486), nil)
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 486 {
		t.Fatalf("final = %d, want 486", res.StatusCode)
	}
	d2.waitGot(sip.CANCEL, 1)
	e.waitIdle()
}

// TestRejections: refusals before forking leave nothing behind.
func TestRejections(t *testing.T) {
	t.Run("no binding", func(t *testing.T) {
		e := newEnv(t, Config{})
		caller := e.agent("alice")
		res, _ := e.call(caller, callerSDP).finalResponse()
		if res.StatusCode != 480 {
			t.Fatalf("final = %d, want 480", res.StatusCode)
		}
		e.waitIdle()
	})
	t.Run("unknown user", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.loc.fail(statusErr{code: 404})
		res, _ := e.call(e.agent("alice"), callerSDP).finalResponse()
		if res.StatusCode != 404 {
			t.Fatalf("final = %d, want 404", res.StatusCode)
		}
		e.waitIdle()
	})
	t.Run("bad stored target", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.loc.set(calleeAOR, Target{RequestURI: "sip:bob@127.0.0.1\r\nX-Injected: 1", Destination: "127.0.0.1:1"},
			Target{RequestURI: "sip:bob@127.0.0.1", Route: []string{"<sip:a;lr>\r\nX: y"}})
		res, _ := e.call(e.agent("alice"), callerSDP).finalResponse()
		if res.StatusCode != 480 {
			t.Fatalf("final = %d, want 480", res.StatusCode)
		}
		e.waitIdle()
	})
	t.Run("unsupported require", func(t *testing.T) {
		e := newEnv(t, Config{})
		d := e.agent("dev1")
		e.devices(d)
		res, _ := e.call(e.agent("alice"), callerSDP, sip.NewHeader("Require", "foo")).finalResponse()
		if res.StatusCode != 420 || header(res, "Unsupported") != "foo" {
			t.Fatalf("final = %d Unsupported=%q, want 420 foo", res.StatusCode, header(res, "Unsupported"))
		}
		if n := len(d.got(sip.INVITE)); n != 0 {
			t.Errorf("device got %d INVITEs", n)
		}
		e.waitIdle()
	})
	t.Run("unknown dialog", func(t *testing.T) {
		e := newEnv(t, Config{})
		caller := e.agent("alice")
		u := &uac{a: caller, cli: caller.cli, inv: sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bob", Host: "convergo.test"}), cseq: 1}
		u.inv.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "convergo.test"}, Params: sip.HeaderParams{{K: "tag", V: "x1"}}})
		cid := sip.CallIDHeader("no-such-call")
		u.inv.AppendHeader(&cid)
		u.remote = &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "convergo.test"}, Params: sip.HeaderParams{{K: "tag", V: "nope"}}}
		host, port := splitAddr(t, e.udp)
		u.target = sip.Uri{Scheme: "sip", Host: host, Port: port}
		for _, m := range []sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE} {
			if res := u.do(m, ""); res.StatusCode != 481 {
				t.Errorf("%s for unknown dialog answered %d, want 481", m, res.StatusCode)
			}
		}
		e.waitIdle()
	})
}

// TestCallLimit: beyond max_calls new INVITEs get 503 with Retry-After.
func TestCallLimit(t *testing.T) {
	e := newEnv(t, Config{MaxCalls: 1, RetryAfter: 7 * time.Second})
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(ringForever, nil)
	e.devices(d)
	first := e.call(caller, callerSDP)
	if res := first.next(); res.StatusCode != 180 {
		t.Fatalf("first call: %d, want 180", res.StatusCode)
	}
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 503 || header(res, "Retry-After") != "7" {
		t.Fatalf("second call: %d Retry-After=%q, want 503 and 7", res.StatusCode, header(res, "Retry-After"))
	}
	first.cancel()
	if res, _ := first.finalResponse(); res.StatusCode != 487 {
		t.Fatalf("first call final %d, want 487", res.StatusCode)
	}
	e.waitIdle()
}

// TestRetransmittedFinalReACKedAtOnce: our ACK to a device's 486 is lost;
// the device retransmits the 486 and gets the ACK again at once (RFC 3261
// §17.1.1.2), from strayAcks since the transaction ended at the first 486.
// (sipgo's own transaction would wait T2, 4 s, the device meanwhile
// retransmitting three more times.) Nothing is held once it expires.
func TestRetransmittedFinalReACKedAtOnce(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(reject(486), nil)
	d.wpc.dropAcks.Store(1)
	e.devices(d)
	res, _ := e.call(caller, callerSDP).finalResponse()
	if res.StatusCode != 486 {
		t.Fatalf("final = %d, want 486", res.StatusCode)
	}
	waitFor(t, "an ACK through to the device", func() bool { return slices.Contains(d.wireMethods(), "ACK") })
	if n := d.wpc.finals.Load(); n != 2 {
		t.Errorf("device sent its 486 %d times before an ACK got through, want 2 (the first ACK was lost)", n)
	}
	if e.b.strays.len() != 1 {
		t.Errorf("%d ACKs kept for retransmissions, want 1", e.b.strays.len())
	}
	e.b.strays.sweep(time.Now().Add(sip.Timer_D))
	if e.b.strays.len() != 0 {
		t.Errorf("%d ACKs kept after Timer D, want 0", e.b.strays.len())
	}
	e.waitIdle()
}
