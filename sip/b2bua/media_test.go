package b2bua

// Calls through the B2BUA with the real media relay as its Anchor: real
// sipgo user agents for signalling, real UDP sockets (mediatest.Phone) for
// RTP and SRTP.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/media"
	"github.com/convergo/convergo/media/mediatest"
	"github.com/convergo/convergo/media/sdes"
)

// mediaRanges hands each test relay its own ports above the kernel's
// ephemeral range (32768-60999), so nothing else binds them.
var mediaRanges atomic.Int32

const suite80 = "AES_CM_128_HMAC_SHA1_80"

// mediaEnv is an env whose Anchor is a running media.Relay; inactivity
// hangs the call up as cmd/convergo wires it.
func newMediaEnv(t *testing.T, mod func(*media.Config)) (*env, media.Config) {
	t.Helper()
	lo := 61000 + int(mediaRanges.Add(1)%60)*64
	mc := media.Config{Address: "127.0.0.1", PortMin: lo, PortMax: lo + 63, Quarantine: time.Millisecond}
	if mod != nil {
		mod(&mc)
	}
	r, err := media.New(mc, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	// Registered before the env's: the relay stops after the B2BUA.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay Run: %v", err)
		}
	})
	e := newEnvWith(t, Config{}, r, nil)
	r.OnInactive(func(id string) {
		e.b.Hangup(id, sip.NewHeader("Reason", `RELEASE_CAUSE;cause=2;text="RTP/RTCP time-out"`))
	})
	return e, mc
}

// answerWith rings, then answers 200 with sdp after delay.
func answerWith(sdp string, delay time.Duration) func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
	return func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		_ = u.respond(180, "")
		time.Sleep(delay)
		_ = u.respond(200, sdp)
	}
}

// answeredWith places a call with offer sdp, expects 200, ACKs it and
// returns the call and its 200.
func (e *env) answeredWith(caller *agent, sdp string) (*uac, *sip.Response) {
	e.t.Helper()
	u := e.call(caller, sdp)
	res, _ := u.finalResponse()
	if res.StatusCode != 200 {
		e.t.Fatalf("call answered %d", res.StatusCode)
	}
	u.ack(100, "")
	return u, res
}

// relayEnd checks that body names the relay (its address, a port of its
// range, not the other device's port) and returns that RTP address.
func relayEnd(t *testing.T, body []byte, mc media.Config, notPort int) netip.AddrPort {
	t.Helper()
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		t.Fatalf("SDP does not parse: %v\n%s", err, body)
	}
	port := s.MediaDescriptions[0].MediaName.Port.Value
	if s.ConnectionInformation.Address.Address != mc.Address || port < mc.PortMin || port > mc.PortMax || port == notPort {
		t.Fatalf("SDP does not name the relay (%s, ports %d-%d): c=%s m=%d\n%s", mc.Address, mc.PortMin, mc.PortMax,
			s.ConnectionInformation.Address.Address, port, body)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(mc.Address), uint16(port))
}

// portClosed reports whether nothing listens on addr any more: a datagram
// sent there draws an ICMP port unreachable.
func portClosed(t *testing.T, addr netip.AddrPort) bool {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte{0x80}); err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = c.Read(make([]byte, 64))
	return errors.Is(err, syscall.ECONNREFUSED)
}

// cryptoOf returns the first a=crypto of the first m-line of body.
func cryptoOf(t *testing.T, body []byte) sdes.Crypto {
	t.Helper()
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	for _, a := range s.MediaDescriptions[0].Attributes {
		if a.Key == "crypto" {
			c, err := sdes.Parse(a.Value)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("no a=crypto in\n%s", body)
	return sdes.Crypto{}
}

// TestMediaRelayedCall: an RTP call is anchored on the relay (neither
// device sees the other's address), packets cross both ways, and BYE frees
// the relay's ports.
func TestMediaRelayedCall(t *testing.T) {
	e, mc := newMediaEnv(t, nil)
	d, caller := e.agent("dev1"), e.agent("alice")
	pc, pd := mediatest.NewPhone(t, 1), mediatest.NewPhone(t, 2)
	d.handle(answerWith(pd.SDP("RTP/AVP", false, 0, "", "sendrecv"), 0), nil)
	e.devices(d)

	u, res := e.answeredWith(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv"))
	offer := d.waitGot(sip.INVITE, 1)[0].Body()
	toDevice := relayEnd(t, offer, mc, mediatest.Port(pc.RTP))
	toCaller := relayEnd(t, res.Body(), mc, mediatest.Port(pd.RTP))
	pd.Learn(offer)
	pc.Learn(res.Body())
	mediatest.Exchange(t, pc, pd, 5)
	mediatest.Exchange(t, pd, pc, 5)

	if res := u.do(sip.BYE, ""); res.StatusCode != 200 {
		t.Fatalf("BYE answered %d", res.StatusCode)
	}
	d.waitGot(sip.BYE, 1)
	e.waitIdle()
	waitFor(t, "relay ports released", func() bool { return portClosed(t, toDevice) && portClosed(t, toCaller) })
}

// TestMediaForkKeys: a SAVP caller forked to two devices: each fork gets its
// own relay port and its own key (never the caller's); the winner's media
// is re-keyed both ways (SAVP<->SAVP) and the loser's ports are released.
func TestMediaForkKeys(t *testing.T) {
	e, mc := newMediaEnv(t, nil)
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	pc, p2 := mediatest.NewPhone(t, 1), mediatest.NewPhone(t, 2)
	d1.handle(ringForever, nil)
	d2.handle(answerWith(p2.SDP("RTP/SAVP", true, 1, suite80, "sendrecv"), 100*time.Millisecond), nil)
	e.devices(d1, d2)

	u, res := e.answeredWith(caller, pc.SDP("RTP/SAVP", true, 1, suite80, "sendrecv"))
	o1, o2 := d1.waitGot(sip.INVITE, 1)[0].Body(), d2.waitGot(sip.INVITE, 1)[0].Body()
	k1, k2 := cryptoOf(t, o1), cryptoOf(t, o2)
	switch {
	case sdes.SameKey(k1, k2):
		t.Error("both forks were offered the same key")
	case sdes.SameKey(k1, *pc.Own) || sdes.SameKey(k2, *pc.Own):
		t.Error("a fork was offered the caller's key")
	}
	a1, a2 := relayEnd(t, o1, mc, 0), relayEnd(t, o2, mc, 0)
	if a1 == a2 {
		t.Errorf("both forks were offered relay port %s", a1)
	}
	ka := cryptoOf(t, res.Body())
	if sdes.SameKey(ka, *p2.Own) || sdes.SameKey(ka, k2) {
		t.Error("the caller got the device's key or the device leg's key")
	}
	p2.Learn(o2)
	pc.Learn(res.Body())
	mediatest.Exchange(t, pc, p2, 5)
	mediatest.Exchange(t, p2, pc, 5)

	d1.waitGot(sip.CANCEL, 1)
	waitFor(t, "losing fork's port released", func() bool { return portClosed(t, a1) })
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestMediaBridge: with srtp_policy force a plain-RTP caller reaches the
// device over SRTP; each side decrypts or reads what the other sent,
// decrypting with the key the relay advertised to it.
func TestMediaBridge(t *testing.T) {
	e, mc := newMediaEnv(t, func(c *media.Config) { c.SRTPPolicy = media.PolicyForce })
	d, caller := e.agent("dev1"), e.agent("alice")
	pc, pd := mediatest.NewPhone(t, 1), mediatest.NewPhone(t, 2)
	d.handle(answerWith(pd.SDP("RTP/SAVP", true, 1, suite80, "sendrecv"), 0), nil)
	e.devices(d)

	u, res := e.answeredWith(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv"))
	offer := d.waitGot(sip.INVITE, 1)[0].Body()
	relayEnd(t, offer, mc, 0)
	if proto, cr := pd.Learn(offer); proto != "RTP/SAVP" || len(cr) == 0 {
		t.Fatalf("device offered %s with %d keys, want RTP/SAVP with a key", proto, len(cr))
	}
	if proto, cr := pc.Learn(res.Body()); proto != "RTP/AVP" || len(cr) != 0 {
		t.Fatalf("caller answered %s with %d keys, want plain RTP/AVP", proto, len(cr))
	}
	mediatest.Exchange(t, pc, pd, 5) // RTP in, SRTP out
	mediatest.Exchange(t, pd, pc, 5) // SRTP in, RTP out
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestMediaReinviteMoves: the device moves its media with a re-INVITE; the
// relay sends to the new address at once and the caller's SDP keeps the
// relay's port.
func TestMediaReinviteMoves(t *testing.T) {
	e, mc := newMediaEnv(t, nil)
	d, caller := e.agent("dev1"), e.agent("alice")
	pc, pd, moved := mediatest.NewPhone(t, 1), mediatest.NewPhone(t, 2), mediatest.NewPhone(t, 2)
	d.handle(answerWith(pd.SDP("RTP/AVP", false, 0, "", "sendrecv"), 0), nil)
	callerSDP := pc.SDP("RTP/AVP", false, 0, "", "sendrecv")
	caller.handle(nil, func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if req.IsInvite() {
			res.AppendHeader(a.contact())
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			res.SetBody([]byte(callerSDP))
		}
		_ = tx.Respond(res)
	})
	e.devices(d)

	u, res := e.answeredWith(caller, callerSDP)
	offer := d.waitGot(sip.INVITE, 1)[0].Body()
	pd.Learn(offer)
	pc.Learn(res.Body())
	mediatest.Exchange(t, pc, pd, 2)

	// The device re-INVITEs from a new socket (a 491 may come while our 2xx
	// to the caller still waits for its ACK: retry, RFC 3261 §14.1).
	moveSDP := strings.Replace(moved.SDP("RTP/AVP", false, 0, "", "sendrecv"), "o=- 1 1", "o=- 1 2", 1)
	var re *sip.Response
	for i := 0; ; i++ {
		r, err := d.request(sip.INVITE, moveSDP)
		if err == nil && r.StatusCode == 491 && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("device re-INVITE: %v %v", r, err)
		}
		re = r
		break
	}
	relayEnd(t, re.Body(), mc, mediatest.Port(pc.RTP))
	got := caller.waitGot(sip.INVITE, 1)[0].Body()
	if a, b := relayEnd(t, got, mc, 0), relayEnd(t, res.Body(), mc, 0); a != b {
		t.Errorf("re-INVITE moved the caller's relay port: %s, was %s", a, b)
	}
	moved.Learn(re.Body())
	mediatest.Exchange(t, pc, moved, 3)
	mediatest.Exchange(t, moved, pc, 3)
	if _, err := pd.RecvWithin(100 * time.Millisecond); err == nil {
		t.Error("the old address still gets packets after the re-INVITE")
	}
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestMediaInactivityBye: an answered call with no RTP either way is hung
// up by the relay's inactivity timer: both legs get a BYE carrying
// Reason RELEASE_CAUSE 2 (TS 24.229), and nothing is left behind.
func TestMediaInactivityBye(t *testing.T) {
	e, _ := newMediaEnv(t, func(c *media.Config) { c.Inactivity = 300 * time.Millisecond })
	d, caller := e.agent("dev1"), e.agent("alice")
	pc, pd := mediatest.NewPhone(t, 1), mediatest.NewPhone(t, 2)
	d.handle(answerWith(pd.SDP("RTP/AVP", false, 0, "", "sendrecv"), 0), nil)
	e.devices(d)
	e.answeredWith(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv"))
	for _, a := range []*agent{caller, d} {
		bye := a.waitGot(sip.BYE, 1)[0]
		if r := header(bye, "Reason"); !strings.HasPrefix(r, "RELEASE_CAUSE;cause=2") {
			t.Errorf("BYE to %s: Reason %q, want RELEASE_CAUSE;cause=2", a.name, r)
		}
	}
	e.waitIdle()
}

// TestMediaRefusals: what the relay cannot anchor is refused with the
// relay's status, and the call leaves nothing behind.
func TestMediaRefusals(t *testing.T) {
	t.Run("garbage SDP is 488 with a Warning", func(t *testing.T) {
		e, _ := newMediaEnv(t, nil)
		d, caller := e.agent("dev1"), e.agent("alice")
		e.devices(d)
		res, _ := e.call(caller, "v=0\r\nthis is not SDP\r\n").finalResponse()
		if res.StatusCode != 488 || !strings.HasPrefix(header(res, "Warning"), `399 convergo "`) {
			t.Fatalf("garbage SDP: %d Warning=%q, want 488 with a Warning", res.StatusCode, header(res, "Warning"))
		}
		if n := len(d.got(sip.INVITE)); n != 0 {
			t.Errorf("the device got %d INVITEs", n)
		}
		e.waitIdle()
	})
	t.Run("port exhaustion is 503 with Retry-After", func(t *testing.T) {
		// Two port pairs: one ringing call (caller side + device side) holds them all.
		e, mc := newMediaEnv(t, func(c *media.Config) { c.PortMax, c.Quarantine = c.PortMin+3, time.Nanosecond })
		d, caller := e.agent("dev1"), e.agent("alice")
		pc := mediatest.NewPhone(t, 1)
		d.handle(ringForever, nil)
		e.devices(d)
		first := e.call(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv"))
		if res := first.next(); res.StatusCode != 180 {
			t.Fatalf("first call: %d, want 180", res.StatusCode)
		}
		res, _ := e.call(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv")).finalResponse()
		if res.StatusCode != 503 || header(res, "Retry-After") == "" {
			t.Fatalf("second call: %d Retry-After=%q, want 503 with Retry-After", res.StatusCode, header(res, "Retry-After"))
		}
		if n := len(d.got(sip.INVITE)); n != 1 {
			t.Errorf("the device got %d INVITEs, want only the first call's", n)
		}
		first.cancel()
		if res, _ := first.finalResponse(); res.StatusCode != 487 {
			t.Fatalf("first call final %d, want 487", res.StatusCode)
		}
		e.waitIdle()
		// The ports came back: a new call rings again.
		again := e.call(caller, pc.SDP("RTP/AVP", false, 0, "", "sendrecv"))
		if res := again.next(); res.StatusCode != 180 {
			t.Fatalf("call after release: %d, want 180 (ports %d-%d)", res.StatusCode, mc.PortMin, mc.PortMax)
		}
		again.cancel()
		again.finalResponse()
		e.waitIdle()
	})
}
