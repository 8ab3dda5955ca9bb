package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/rtp"

	"github.com/convergo/convergo/media/sdes"
)

// startMedia runs m's receivers and sender until the test ends.
func startMedia(t *testing.T, m *media) {
	t.Helper()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() { m.runReceiver(caller) })
	wg.Go(func() { m.runReceiver(callee) })
	wg.Go(func() { m.runSender(done) })
	t.Cleanup(func() { close(done); m.close(); wg.Wait() })
}

// TestMediaDirect wires each call's caller and callee legs to each other's
// shared socket (no relay): the SSRC demultiplexing must credit every
// packet to its own call and direction, plain and SRTP alike.
func TestMediaDirect(t *testing.T) {
	m, err := newMedia(netip.MustParseAddr("127.0.0.1"), 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	startMedia(t, m)
	suite, _ := sdes.LookupSuite(sdesSuite)
	// Call 1 is SRTP both ways (each side decrypts the other's key); 0 and 2 plain.
	k1, _ := sdes.Generate(1, suite)
	k2, _ := sdes.Generate(1, suite)
	ctx := func(k sdes.Crypto) *srtpCtx { c, err := k.Context(); must(t, err); return c }
	m.legs[1][caller].dec.Store(ctx(k2))
	m.legs[1][callee].dec.Store(ctx(k1))
	m.sending.Store(true)
	for i := range 3 {
		var encA, encB *srtpCtx
		if i == 1 {
			encA, encB = ctx(k1), ctx(k2)
		}
		m.legs[i][caller].start(m.addrs[callee], m.ssrc(caller, i), encA)
		m.legs[i][callee].start(m.addrs[caller], m.ssrc(callee, i), encB)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, recv := m.totals()
		if recv[caller] >= 3*5 && recv[callee] >= 3*5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %v after 10 s, want at least 5 per leg", recv)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.sending.Store(false)
	drain(m, 2*time.Second)
	for i := range 3 {
		for s := range 2 {
			l := &m.legs[i][s]
			peer := &m.legs[i][1-s]
			if l.recv.Load() == 0 || l.recv.Load() != peer.sent.Load() {
				t.Errorf("call %d %s received %d, its peer sent %d", i, sideNames[s], l.recv.Load(), peer.sent.Load())
			}
			if n := l.authFail.Load() + l.replay.Load() + l.badPkt.Load(); n != 0 {
				t.Errorf("call %d %s: %d bad packets", i, sideNames[s], n)
			}
		}
	}
	if n := m.foreign[caller].Load() + m.foreign[callee].Load(); n != 0 {
		t.Errorf("foreign = %d, want 0", n)
	}
}

// TestMediaRejects counts what must not be credited to a call: an SSRC of
// no call, a packet failing SRTP authentication, SRTP where RTP was agreed.
func TestMediaRejects(t *testing.T) {
	m, err := newMedia(netip.MustParseAddr("127.0.0.1"), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	startMedia(t, m)
	suite, _ := sdes.LookupSuite(sdesSuite)
	right, _ := sdes.Generate(1, suite)
	wrong, _ := sdes.Generate(1, suite)
	dec, err := right.Context()
	must(t, err)
	m.legs[0][callee].dec.Store(dec)

	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.addrs[callee]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := func(ssrc uint32, key *sdes.Crypto) []byte {
		h := rtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: 1, Timestamp: 160}
		b := make([]byte, packetLen)
		if _, err := h.MarshalTo(b); err != nil {
			t.Fatal(err)
		}
		if key == nil {
			return b
		}
		enc, err := key.Context()
		must(t, err)
		out, err := enc.EncryptRTP(nil, b, nil)
		must(t, err)
		return out
	}
	for _, p := range [][]byte{
		pkt(12345, nil),                 // no call's SSRC
		pkt(m.ssrc(callee, 0), nil),     // the callee's own SSRC arriving at the callee
		pkt(m.ssrc(caller, 1<<19), nil), // index beyond the calls
		pkt(m.ssrc(caller, 0), &wrong),  // SRTP under another key
		pkt(m.ssrc(caller, 1), &right),  // SRTP on a plain leg
		pkt(m.ssrc(caller, 0), &right),  // the one good packet
		{0x80, 0x00},                    // runt
	} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	got := func() map[string]uint64 {
		return map[string]uint64{
			"foreign": m.foreign[callee].Load(), "auth": m.legs[0][callee].authFail.Load(),
			"bad": m.legs[1][callee].badPkt.Load(), "recv": m.legs[0][callee].recv.Load(),
		}
	}
	want := map[string]uint64{"foreign": 4, "auth": 1, "bad": 1, "recv": 1}
	deadline := time.Now().Add(5 * time.Second)
	for cmp.Diff(want, got()) != "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got()); diff != "" {
		t.Fatalf("counters mismatch (-want +got):\n%s", diff)
	}
}

// TestPace: calls go out at the rate asked, from the first at once; once
// the context ends the rest are skipped without waiting.
func TestPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		pace(t.Context(), 4, 10, func(int) { at = append(at, time.Since(start)) }, func(i int) { t.Errorf("skipped %d", i) })
		want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		if diff := cmp.Diff(want, at); diff != "" {
			t.Fatalf("pace times mismatch (-want +got):\n%s", diff)
		}

		ctx, cancel := context.WithCancel(t.Context())
		var done, skipped []int
		pace(ctx, 5, 1, func(i int) {
			done = append(done, i)
			if i == 1 {
				cancel()
			}
		}, func(i int) { skipped = append(skipped, i) })
		if diff := cmp.Diff([]int{0, 1}, done); diff != "" {
			t.Fatalf("done mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int{2, 3, 4}, skipped); diff != "" {
			t.Fatalf("skipped mismatch (-want +got):\n%s", diff)
		}
		if took := time.Since(start); took != 300*time.Millisecond+time.Second {
			t.Fatalf("took %s: a cancelled pace must not wait", took)
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	o := defaultOptions()
	o.Server, o.User, o.Password = "127.0.0.1:5060", "bob", "secret"
	if err := o.validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	_, err := parseFlags([]string{"-server", "nohost", "-calls", "0", "-rate", "-1", "-duration", "0s", "-instance", "uuid"},
		&discard{}, func(string) string { return "" })
	for _, flag := range []string{"-server", "-calls", "-rate", "-duration", "-instance", "-user"} {
		if err == nil || !containsWord(err.Error(), flag) {
			t.Errorf("parseFlags error %v does not name %s", err, flag)
		}
	}
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-server", "127.0.0.1:5060"}, &discard{}, &stderr, func(string) string { return "" }); code != exitUsage ||
		!strings.Contains(stderr.String(), "-user") {
		t.Errorf("run without an account = %d, %q; want exit %d naming -user", code, stderr.String(), exitUsage)
	}
	o2, err := parseFlags([]string{"-server", "127.0.0.1:5060", "-user", "bob"}, &discard{},
		func(k string) string { return map[string]string{"MEDIALOAD_PASSWORD": "env-secret"}[k] })
	if err != nil || o2.Password != "env-secret" || o2.aor() != "sip:bob@convergo.local" {
		t.Fatalf("parseFlags = %+v, %v; want the password from MEDIALOAD_PASSWORD", o2, err)
	}
}
