package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convergo/convergo/media/sdes"
	"github.com/convergo/convergo/sip/b2bua"
	"github.com/pion/rtcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var _ b2bua.Anchor = (*Relay)(nil)

func plainOffer(p *phone) string { return p.SDP("RTP/AVP", false, 0, "", "sendrecv") }

func plainAnswer(p *phone, _ []sdes.Crypto) string { return p.SDP("RTP/AVP", false, 0, "", "sendrecv") }

func savpOffer(suite string) func(*phone) string {
	return func(p *phone) string { return p.SDP("RTP/SAVP", true, 1, suite, "sendrecv") }
}

func savpAnswer(p *phone, cr []sdes.Crypto) string {
	return p.SDP("RTP/SAVP", true, cr[0].Tag, cr[0].Suite.Name, "sendrecv")
}

func TestRelayPlainRTPBothWays(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1111), newPhone(t, 2222)
	offerOut, answerOut := setupCall(t, r, "c1", "b1", caller, callee, plainOffer, plainAnswer)
	for _, b := range [][]byte{offerOut, answerOut} {
		if bytes.Contains(b, []byte("a=crypto")) || !bytes.Contains(b, []byte("a=rtpmap:101 telephone-event/8000")) {
			t.Fatalf("rewritten SDP lost codecs or gained crypto:\n%s", b)
		}
		if !bytes.Contains(b, []byte("o=- 1 2 IN IP4 127.0.0.1")) {
			t.Fatalf("o= version not bumped:\n%s", b)
		}
	}
	if caller.To.Port() == uint16(port(callee.RTP)) || callee.To.Port() == uint16(port(caller.RTP)) {
		t.Fatal("SDP still points at the device, not the relay")
	}
	exchange(t, caller, callee, 5)
	exchange(t, callee, caller, 5)

	// RTCP goes port+1 -> the peer's a=rtcp port.
	sr := &rtcp.SenderReport{SSRC: 1111}
	b, _ := sr.Marshal()
	if _, err := caller.RTCP.WriteToUDPAddrPort(b, caller.ToRTCP); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = callee.RTCP.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := callee.RTCP.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], b) {
		t.Fatalf("rtcp not relayed: %v", err)
	}
	if got := val(r.m.side[sideA].packets); got != 6 {
		t.Fatalf("side a packets = %v, want 6", got)
	}
}

func TestRelaySAVPToAVP(t *testing.T) {
	r := testRelay(t, func(c *Config) { c.SRTPPolicy = PolicyStrip })
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	var offerOut []byte
	offerOut, answerOut := setupCall(t, r, "c1", "b1", caller, callee, savpOffer("AES_CM_128_HMAC_SHA1_80"), plainAnswer)
	if !bytes.Contains(offerOut, []byte("RTP/AVP ")) || bytes.Contains(offerOut, []byte("crypto")) {
		t.Fatalf("strip policy should offer plain RTP:\n%s", offerOut)
	}
	if !bytes.Contains(answerOut, []byte("RTP/SAVP ")) || !bytes.Contains(answerOut, []byte("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")) {
		t.Fatalf("caller must get SAVP with tag 1 echoed:\n%s", answerOut)
	}
	if caller.RX == nil {
		t.Fatal("no relay key for the caller")
	}
	exchange(t, caller, callee, 5) // SRTP in, plain out
	exchange(t, callee, caller, 5) // plain in, SRTP out decryptable with the advertised key
}

func TestRelayForceSAVP(t *testing.T) {
	r := testRelay(t, func(c *Config) { c.SRTPPolicy = PolicyForce })
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	offerOut, answerOut := setupCall(t, r, "c1", "b1", caller, callee, plainOffer, savpAnswer)
	if !bytes.Contains(offerOut, []byte("RTP/SAVP ")) || !bytes.Contains(offerOut, []byte("a=crypto:2 AES_CM_128_HMAC_SHA1_32")) {
		t.Fatalf("force policy should offer SAVP:\n%s", offerOut)
	}
	if bytes.Contains(answerOut, []byte("crypto")) || !bytes.Contains(answerOut, []byte("RTP/AVP ")) {
		t.Fatalf("plain caller must get a plain answer:\n%s", answerOut)
	}
	exchange(t, caller, callee, 3)
	exchange(t, callee, caller, 3)
}

func TestRelaySAVPToSAVPRekeyed(t *testing.T) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80",
		"AEAD_AES_128_GCM", "AEAD_AES_256_GCM"} {
		t.Run(suite, func(t *testing.T) {
			r := testRelay(t, nil)
			caller, callee := newPhone(t, 1), newPhone(t, 2)
			offerOut, answerOut := setupCall(t, r, "c1", "b1", caller, callee, savpOffer(suite), savpAnswer)
			_, toCallee := callee.Learn(offerOut)
			_, toCaller := caller.Learn(answerOut)
			if len(toCallee) != 1 || len(toCaller) != 1 {
				t.Fatalf("want one crypto line each way")
			}
			for _, k := range []sdes.Crypto{toCallee[0], toCaller[0]} {
				if sdes.SameKey(k, *caller.Own) || sdes.SameKey(k, *callee.Own) {
					t.Fatal("relay copied a device key across legs")
				}
			}
			if sdes.SameKey(toCallee[0], toCaller[0]) {
				t.Fatal("relay used one key for both legs")
			}
			exchange(t, caller, callee, 5)
			exchange(t, callee, caller, 5)
		})
	}
}

func TestForksGetOwnPortsAndKeys(t *testing.T) {
	r := testRelay(t, nil)
	caller := newPhone(t, 1)
	offer := []byte(savpOffer("AES_CM_128_HMAC_SHA1_80")(caller))
	o1, err := r.Offer(t.Context(), "c1", "b1", offer)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := r.Offer(t.Context(), "c1", "b2", offer)
	if err != nil {
		t.Fatal(err)
	}
	f1, f2 := newPhone(t, 2), newPhone(t, 3)
	_, k1 := f1.Learn(o1)
	_, k2 := f2.Learn(o2)
	if sdes.SameKey(k1[0], k2[0]) || f1.To == f2.To {
		t.Fatalf("forks share key or port: %v %v", f1.To, f2.To)
	}
	if got := r.ports.used(); got != 4 {
		t.Fatalf("port pairs in use = %d, want 4", got)
	}
	// b2 answers and wins, b1 is released.
	a2, err := r.Answer(t.Context(), "c1", "b2", []byte(savpAnswer(f2, k2)))
	if err != nil {
		t.Fatal(err)
	}
	caller.Learn(a2)
	r.Release("c1", "b1")
	if got := r.ports.used(); got != 2 {
		t.Fatalf("after releasing b1: %d pairs, want 2", got)
	}
	exchange(t, caller, f2, 3)
	exchange(t, f2, caller, 3)
	r.Release("c1", "")
	if got := r.ports.used(); got != 0 {
		t.Fatalf("after releasing the call: %d pairs, want 0", got)
	}
}

func TestLatching(t *testing.T) {
	const window = 800 * time.Millisecond
	r := testRelay(t, func(c *Config) { c.LatchWindow = window })
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	start := time.Now()
	setupCall(t, r, "c1", "b1", caller, callee, savpOffer("AES_CM_128_HMAC_SHA1_80"), savpAnswer)

	// The callee is behind NAT: it sends from another socket than its SDP said.
	nat := &phone{T: t, RTP: listen(t), TX: callee.TX, Own: callee.Own, RX: callee.RX, To: callee.To, SSRC: 2}
	nat.Send([]byte("hello from nat"))
	waitFor(t, "latch", func() bool { return val(r.m.side[sideB].latch) == 1 })
	caller.Send([]byte("to nat"))
	got, err := nat.Recv()
	if err != nil || string(got.Payload) != "to nat" {
		t.Fatalf("relay did not send to the latched address: %v", err)
	}
	if got, err := caller.Recv(); err != nil || string(got.Payload) != "hello from nat" {
		t.Fatalf("caller: %v", err)
	}

	// A forged packet (wrong key) from a third address inside the window
	// does not latch.
	forger := newPhone(t, 9)
	forger.To = callee.To
	forger.SDP("RTP/SAVP", true, 1, "AES_CM_128_HMAC_SHA1_80", "sendrecv")
	forger.Send([]byte("forged"))
	waitFor(t, "auth failure", func() bool { return val(r.m.side[sideB].authFail) == 1 })

	time.Sleep(time.Until(start.Add(window + 50*time.Millisecond)))
	// After the window even a correctly keyed packet from elsewhere is dropped.
	spoof := &phone{T: t, RTP: listen(t), TX: callee.TX, Own: callee.Own, To: callee.To, SSRC: 2, Seq: 100}
	spoof.Send([]byte("spoofed"))
	waitFor(t, "source drop", func() bool { return val(r.m.side[sideB].source) == 1 })
	nat.Seq = 200
	nat.Send([]byte("still nat"))
	if got, err := caller.Recv(); err != nil || string(got.Payload) != "still nat" {
		t.Fatalf("caller after window: %v %v", got, err)
	}
	if got := val(r.m.side[sideB].latch); got != 1 {
		t.Fatalf("latch events = %v, want 1", got)
	}
}

func TestMalformedDropped(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	setupCall(t, r, "c1", "b1", caller, callee, savpOffer("AES_CM_128_HMAC_SHA1_80"), savpAnswer)
	for _, junk := range [][]byte{{}, {0x80}, bytes.Repeat([]byte{0xff}, 40), []byte("INVITE sip:x SIP/2.0\r\n")} {
		if _, err := caller.RTP.WriteToUDPAddrPort(junk, caller.To); err != nil {
			t.Fatal(err)
		}
	}
	bad := caller.Packet([]byte("tampered"))
	bad[len(bad)-1] ^= 0xff
	if _, err := caller.RTP.WriteToUDPAddrPort(bad, caller.To); err != nil {
		t.Fatal(err)
	}
	good := caller.Packet([]byte("good"))
	for range 2 { // the second copy is a replay
		if _, err := caller.RTP.WriteToUDPAddrPort(good, caller.To); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := callee.Recv(); err != nil || string(got.Payload) != "good" {
		t.Fatalf("good packet after junk: %v", err)
	}
	m := r.m.side[sideA]
	t.Cleanup(func() { t.Log(val(m.malformed), val(m.authFail), val(m.replay)) })
	waitFor(t, "drop counters", func() bool {
		return val(m.malformed) == 4 && val(m.authFail) == 1 &&
			val(m.replay) == 1
	})
}

func TestPortExhaustion(t *testing.T) {
	r := testRelay(t, func(c *Config) { c.PortMax = c.PortMin + 3; c.Quarantine = time.Hour })
	caller := newPhone(t, 1)
	if _, err := r.Offer(t.Context(), "c1", "b1", []byte(plainOffer(caller))); err != nil {
		t.Fatal(err)
	}
	_, err := r.Offer(t.Context(), "c1", "b2", []byte(plainOffer(caller)))
	if code := sipStatus(err); code != 503 {
		t.Fatalf("second fork: %v (status %d), want 503", err, code)
	}
	r.Release("c1", "b1")
	_, err = r.Offer(t.Context(), "c2", "b1", []byte(plainOffer(caller)))
	if code := sipStatus(err); code != 503 {
		t.Fatalf("quarantined ports were reused: %v", err)
	}
}

func TestExhaustionLeavesNothingBehind(t *testing.T) {
	r := testRelay(t, func(c *Config) { c.PortMax = c.PortMin + 5; c.MaxCalls = 2 })
	caller := newPhone(t, 1)
	if _, err := r.Offer(t.Context(), "c1", "b1", []byte(plainOffer(caller))); err != nil {
		t.Fatal(err)
	}
	// b2 gets side A's pair, then fails on side B: A's pair must come back.
	if _, err := r.Offer(t.Context(), "c1", "b2", []byte(plainOffer(caller))); sipStatus(err) != 503 {
		t.Fatalf("b2: %v", err)
	}
	if got := r.ports.used(); got != 2 {
		t.Fatalf("pairs in use %d, want 2", got)
	}
	if _, err := r.Answer(t.Context(), "c1", "b2", []byte(plainOffer(caller))); sipStatus(err) != 500 {
		t.Fatalf("answer for the failed fork: %v", err)
	}
	r.Release("c1", "")
	if _, err := r.Offer(t.Context(), "c2", "b1", []byte("v=0")); sipStatus(err) != 488 {
		t.Fatal(err)
	}
	for _, id := range []string{"c3", "c4"} {
		r.getCall(id, true) //nolint:errcheck // fills max_calls
	}
	if _, err := r.Offer(t.Context(), "c5", "b1", []byte(plainOffer(caller))); !errors.Is(err, ErrTooManyCalls) || sipStatus(err) != 503 {
		t.Fatalf("max_calls: %v", err)
	}
}

func TestPortsQuarantine(t *testing.T) {
	now := time.Unix(1000, 0)
	lo := int(portBase.Add(8)) - 8
	p := newPorts(netipLoopback, lo, lo+3, 5*time.Second, func() time.Time { return now })
	a, err := p.alloc()
	if err != nil {
		t.Fatal(err)
	}
	if a.port%2 != 0 {
		t.Fatalf("odd rtp port %d", a.port)
	}
	b, err := p.alloc()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.alloc(); sipStatus(err) != 503 {
		t.Fatalf("exhausted: %v", err)
	}
	p.release(a)
	now = now.Add(4 * time.Second)
	if _, err := p.alloc(); sipStatus(err) != 503 {
		t.Fatal("reused inside quarantine")
	}
	now = now.Add(2 * time.Second)
	c, err := p.alloc()
	if err != nil || c.port != a.port {
		t.Fatalf("after quarantine: %v %v", c.port, err)
	}
	p.release(b)
	p.release(c)
}

func TestBadSDP(t *testing.T) {
	r := testRelay(t, nil)
	caller := newPhone(t, 1)
	good := plainOffer(caller)
	for name, body := range map[string]string{
		"garbage":           "hello",
		"no m-line":         "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",
		"hostname":          strings.Replace(good, "c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example.com", 1),
		"savp without key":  strings.Replace(good, "RTP/AVP", "RTP/SAVP", 1),
		"bad a=rtcp":        strings.Replace(good, "a=rtcp:", "a=rtcp:x", 1),
		"c after t (order)": "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.Offer(t.Context(), "c1", "b1", []byte(body))
			if code := sipStatus(err); code != 488 {
				t.Fatalf("status %d (%v), want 488", code, err)
			}
		})
	}
	// An answer with another m-line count is refused too.
	out, err := r.Offer(t.Context(), "c2", "b1", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	callee := newPhone(t, 2)
	callee.Learn(out)
	two := plainAnswer(callee, nil) + "m=video 5000 RTP/AVP 96\r\n"
	if _, err := r.Answer(t.Context(), "c2", "b1", []byte(two)); sipStatus(err) != 488 {
		t.Fatalf("m-line count mismatch: %v", err)
	}
	// SAVP offer answered with AVP is a 488.
	out, err = r.Offer(t.Context(), "c3", "b1", []byte(savpOffer("AES_CM_128_HMAC_SHA1_80")(caller)))
	if err != nil {
		t.Fatal(err)
	}
	callee.Learn(out)
	if _, err := r.Answer(t.Context(), "c3", "b1", []byte(plainAnswer(callee, nil))); sipStatus(err) != 488 {
		t.Fatalf("AVP answer to SAVP: %v", err)
	}
}

func TestInactivity(t *testing.T) {
	var mu sync.Mutex
	var idle []string
	r := testRelay(t, func(c *Config) { c.Inactivity = 150 * time.Millisecond })
	r.OnInactive(func(id string) { mu.Lock(); idle = append(idle, id); mu.Unlock() })

	caller, callee := newPhone(t, 1), newPhone(t, 2)
	setupCall(t, r, "silent", "b1", caller, callee, plainOffer, plainAnswer)
	held := func(p *phone) string { return p.SDP("RTP/AVP", false, 0, "", "sendonly") }
	heldAns := func(p *phone, _ []sdes.Crypto) string { return p.SDP("RTP/AVP", false, 0, "", "recvonly") }
	setupCall(t, r, "held", "b1", newPhone(t, 3), newPhone(t, 4), held, heldAns)

	waitFor(t, "idle report", func() bool { mu.Lock(); defer mu.Unlock(); return len(idle) > 0 })
	time.Sleep(300 * time.Millisecond) // several more checks
	mu.Lock()
	if len(idle) != 1 || idle[0] != "silent" {
		t.Fatalf("idle reports = %v, want [silent] once", idle)
	}
	mu.Unlock()
	// Nobody released the silent call: it expires after 4x the timeout.
	waitFor(t, "idle call expiry", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, silent := r.calls["silent"]
		_, held := r.calls["held"]
		return !silent && held
	})
}

func TestRunStopsEverything(t *testing.T) {
	lo := int(portBase.Add(16)) - 16
	r, err := New(Config{Address: "127.0.0.1", PortMin: lo, PortMax: lo + 15}, nopLog(), newReg())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Offer(t.Context(), "c", "b1", []byte(plainOffer(newPhone(t, 1)))); sipStatus(err) != 503 {
		t.Fatalf("offer before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "running", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.running })
	if _, err := r.Offer(t.Context(), "c", "b1", []byte(plainOffer(newPhone(t, 1)))); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.ports.used() != 0 {
		t.Fatal("ports still in use after Run ended")
	}
}

var _ = net.IPv4

func TestAnswerWithWrongTagRefused(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	out, err := r.Offer(t.Context(), "c1", "b1", []byte(savpOffer("AES_CM_128_HMAC_SHA1_80")(caller)))
	if err != nil {
		t.Fatal(err)
	}
	callee.Learn(out)
	wrongTag := callee.SDP("RTP/SAVP", true, 7, "AES_CM_128_HMAC_SHA1_80", "sendrecv")
	if _, err := r.Answer(t.Context(), "c1", "b1", []byte(wrongTag)); sipStatus(err) != 488 {
		t.Fatalf("wrong tag: %v", err)
	}
	wrongSuite := callee.SDP("RTP/SAVP", true, 1, "AEAD_AES_128_GCM", "sendrecv")
	if _, err := r.Answer(t.Context(), "c1", "b1", []byte(wrongSuite)); sipStatus(err) != 488 {
		t.Fatalf("wrong suite: %v", err)
	}
	// A correct answer still works afterwards: the refused ones left no state.
	ok := callee.SDP("RTP/SAVP", true, 1, "AES_CM_128_HMAC_SHA1_80", "sendrecv")
	ans, err := r.Answer(t.Context(), "c1", "b1", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	caller.Learn(ans)
	exchange(t, caller, callee, 2)
	exchange(t, callee, caller, 2)
}

// TestCallEndLogged: a call's per-side counters are logged once, when the
// call is released (forks included), and never per packet.
func TestCallEndLogged(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	r := testRelayLog(t, nil, zap.New(core))
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	setupCall(t, r, "c1", "b1", caller, callee, plainOffer, plainAnswer)
	exchange(t, caller, callee, 5)
	exchange(t, callee, caller, 3)
	// A stray source is dropped and counted on the caller's side.
	stray := listen(t)
	if _, err := stray.WriteToUDPAddrPort(caller.Packet([]byte("stray")), caller.To); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stray dropped", func() bool { return val(r.m.side[sideA].source) == 1 })
	if n := logs.Len(); n > 2 {
		t.Fatalf("%d log entries before the call ended: %v", n, logs.All())
	}
	r.Release("c1", "")
	r.Release("c1", "")
	ended := logs.FilterMessage("media call ended").All()
	if len(ended) != 1 {
		t.Fatalf("%d call-end entries, want 1", len(ended))
	}
	f := ended[0].ContextMap()
	want := map[string]uint64{"a_packets": 5, "b_packets": 3, "a_drops": 1, "b_drops": 0, "a_srtp_failures": 0, "a_bytes": 5 * 12}
	for k, v := range want {
		got, _ := f[k].(uint64)
		if k == "a_bytes" {
			if got < v {
				t.Errorf("%s = %d, want at least %d", k, got, v)
			}
			continue
		}
		if got != v {
			t.Errorf("%s = %v, want %d", k, f[k], v)
		}
	}
}

// TestSocketBuffers: relay sockets ask for socket_buffer (the kernel caps
// it at rmem_max/wmem_max and reports twice what it grants).
func TestSocketBuffers(t *testing.T) {
	r := testRelay(t, func(c *Config) { c.SocketBuffer = 1 << 20 })
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	setupCall(t, r, "c1", "b1", caller, callee, plainOffer, plainAnswer)
	r.mu.Lock()
	c := r.calls["c1"]
	r.mu.Unlock()
	c.mu.Lock()
	conn := c.pairs["b1"].streams[0].ends[sideA].pp.rtp
	c.mu.Unlock()
	for _, o := range []struct {
		opt  int
		proc string
	}{{syscall.SO_RCVBUF, "/proc/sys/net/core/rmem_max"}, {syscall.SO_SNDBUF, "/proc/sys/net/core/wmem_max"}} {
		b, err := os.ReadFile(o.proc)
		if err != nil {
			t.Skipf("no %s: %v", o.proc, err) // not Linux
		}
		limit, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		want := 2 * min(1<<20, limit)
		raw, err := conn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var serr error
		if err := raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, o.opt) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		if got < want {
			t.Errorf("%s: socket buffer %d, want %d", o.proc, got, want)
		}
	}
}
