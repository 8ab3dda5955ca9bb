package media

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/convergo/convergo/media/sdes"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// fwdRig is a forwarder wired to two endpoints without sockets, for
// allocation tests and benchmarks of the packet path.
type fwdRig struct {
	f      *forwarder
	src    netip.AddrPort
	plain  []byte
	tx     *srtp.Context // the device's encrypt context (SRTP rigs)
	hdr    rtp.Header
	encBuf []byte
	seq    uint16
}

func newRig(tb testing.TB, payload int, srtpIn bool) *fwdRig {
	tb.Helper()
	m, err := newMetrics(prometheus.NewRegistry(), func() int { return 0 })
	if err != nil {
		tb.Fatal(err)
	}
	a := &endpoint{side: sideA, m: m.side[sideA]}
	b := &endpoint{side: sideB, m: m.side[sideB]}
	a.other, b.other = b, a
	src := netip.MustParseAddrPort("127.0.0.1:4000")
	a.latchRTP.Store(&src)
	far := time.Now().Add(time.Hour).UnixNano()
	a.windowEnd.Store(far)
	b.windowEnd.Store(far)
	b.sdpPeer.Store(&peer{rtp: netip.MustParseAddrPort("127.0.0.1:5000")})
	rig := &fwdRig{f: newForwarder(a, nil, false), src: src, encBuf: make([]byte, 0, bufSize)}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, SSRC: 42},
		Payload: make([]byte, payload-12)}
	if rig.plain, err = pkt.Marshal(); err != nil {
		tb.Fatal(err)
	}
	if srtpIn {
		k, err := sdes.Generate(1, mustSuite("AES_CM_128_HMAC_SHA1_80"))
		if err != nil {
			tb.Fatal(err)
		}
		in, err := k.Context()
		if err != nil {
			tb.Fatal(err)
		}
		rig.f.keys.Store(&keySet{inRTP: in})
		if rig.tx, err = srtp.CreateContext(k.Key, k.Salt, k.Suite.Profile); err != nil {
			tb.Fatal(err)
		}
	}
	return rig
}

// next returns the next packet as the device would send it.
func (r *fwdRig) next() []byte {
	if r.tx == nil {
		return r.plain
	}
	r.seq++
	binary.BigEndian.PutUint16(r.plain[2:], r.seq)
	out, err := r.tx.EncryptRTP(r.encBuf[:0], r.plain, &r.hdr)
	if err != nil {
		panic(err)
	}
	return out
}

func (r *fwdRig) step(tb testing.TB) {
	_, _, _, ok := r.f.forward(r.next(), r.src, time.Now().UnixNano())
	if !ok {
		tb.Fatal("packet not forwarded")
	}
}

func TestForwardAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); runs without -race")
	}
	for _, tc := range []struct {
		name string
		srtp bool
	}{{"rtp", false}, {"srtp-to-rtp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, 172, tc.srtp)
			rig.step(t) // warm up per-SSRC state
			if n := testing.AllocsPerRun(1000, func() { rig.step(t) }); n != 0 {
				t.Fatalf("forward allocates %v per packet", n)
			}
		})
	}
}

func BenchmarkForward(b *testing.B) {
	for _, srtpIn := range []bool{false, true} {
		for _, size := range []int{172, 1200} {
			name := fmt.Sprintf("rtp-%d", size)
			if srtpIn {
				name = fmt.Sprintf("srtp-to-rtp-%d", size)
			}
			b.Run(name, func(b *testing.B) {
				rig := newRig(b, size, srtpIn)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					rig.step(b)
				}
			})
		}
	}
	// Baseline: the device-side encryption included in srtp-to-rtp above.
	b.Run("device-encrypt-only-172", func(b *testing.B) {
		rig := newRig(b, 172, true)
		b.ReportAllocs()
		b.SetBytes(172)
		for b.Loop() {
			rig.next()
		}
	})
}

func TestLatchRules(t *testing.T) {
	x := netip.MustParseAddrPort("127.0.0.1:7000")
	y := netip.MustParseAddrPort("127.0.0.1:7002")
	sdpAddr := netip.MustParseAddrPort("127.0.0.1:7004")
	for _, tc := range []struct {
		name   string
		srtp   bool
		window bool
		sends  []netip.AddrPort
		want   []bool
	}{
		{"plain first source in window latches, later ones do not", false, true,
			[]netip.AddrPort{x, y, x}, []bool{true, false, true}},
		{"plain sdp address may take over in window", false, true,
			[]netip.AddrPort{x, sdpAddr, x}, []bool{true, true, false}},
		{"srtp may move in window", true, true,
			[]netip.AddrPort{x, y, x}, []bool{true, true, true}},
		{"after window only the sdp address, once", true, false,
			[]netip.AddrPort{x, sdpAddr, y, sdpAddr}, []bool{false, true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, 172, tc.srtp)
			a := rig.f.in
			a.latchRTP.Store(nil)
			a.sdpPeer.Store(&peer{rtp: sdpAddr})
			if !tc.window {
				a.windowEnd.Store(time.Now().Add(-time.Second).UnixNano())
			}
			for i, src := range tc.sends {
				_, _, _, ok := rig.f.forward(rig.next(), src, time.Now().UnixNano())
				if ok != tc.want[i] {
					t.Fatalf("packet %d from %v: forwarded=%v, want %v", i, src, ok, tc.want[i])
				}
			}
		})
	}
}

// FuzzForward feeds arbitrary datagrams to the packet path of a plain and
// an SRTP side, muxed: nothing may panic and nothing forwarded may be
// shorter than an RTP/RTCP header.
func FuzzForward(f *testing.F) {
	f.Add([]byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 42, 1, 2, 3})
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0x90, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 42, 0xbe, 0xde, 0, 9})
	rigs := []*fwdRig{newRig(f, 172, false), newRig(f, 172, true)}
	for _, rig := range rigs {
		rig.f.in.mux.Store(true)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, rig := range rigs {
			out, _, _, ok := rig.f.forward(pkt, rig.src, time.Now().UnixNano())
			if ok && len(out) < 8 {
				t.Fatalf("forwarded %d bytes", len(out))
			}
		}
	})
}
