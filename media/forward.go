package media

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// bufSize holds any UDP datagram we relay (MTU-sized media plus headroom
// for an SRTP tag and MKI).
const bufSize = 1600

// Side indexes: A is the caller's side of a pair, B the fork's.
const (
	sideA = 0
	sideB = 1
)

// peer is where a side's device said it receives (SDP).
type peer struct {
	rtp, rtcp netip.AddrPort
}

// endpoint is one side of one anchored m-line: a bound port pair plus what
// the data path needs to know about the device behind it. Fields marked
// atomic are written by the control plane (Offer/Answer) or by the side's
// own reader goroutines and read by the other side's readers.
type endpoint struct {
	side  int
	pp    portPair
	other *endpoint
	m     *sideMetrics

	sdpPeer   atomic.Pointer[peer]
	latchRTP  atomic.Pointer[netip.AddrPort]
	latchRTCP atomic.Pointer[netip.AddrPort]
	windowEnd atomic.Int64 // unix ns; 0 = not answered yet: drop
	mux       atomic.Bool
	lastRX    atomic.Int64 // unix ns of the last RTP packet from the device

	fw [2]*forwarder // readers of pp.rtp and pp.rtcp
	n  sideCounts    // this endpoint's share of m, logged at call end
}

// sideCounts are one endpoint's packet counters (atomic: the endpoint's
// readers add, the control plane reads at release).
type sideCounts struct {
	packets, bytes, drops, srtpFail, latch atomic.Uint64
}

// dropped counts a dropped packet under reason c.
func (e *endpoint) dropped(c interface{ Inc() }) {
	c.Inc()
	e.n.drops.Add(1)
}

// srtpFailed counts a packet dropped for SRTP authentication or replay.
func (e *endpoint) srtpFailed(c interface{ Inc() }) {
	e.dropped(c)
	e.n.srtpFail.Add(1)
}

// keySet holds the SRTP contexts of one forwarder. A keySet is built by the
// control plane for exactly one forwarder and never touched again after it
// is published, so the forwarder's goroutine is the only user of its
// contexts (pion contexts are not goroutine-safe). nil context = plain RTP.
type keySet struct {
	inRTP, inRTCP   *srtp.Context // decrypt what the device sent us
	outRTP, outRTCP *srtp.Context // encrypt towards the other side's device
}

// forwarder reads one socket of an endpoint and relays to the other side.
type forwarder struct {
	in       *endpoint
	conn     *net.UDPConn
	rtcpSock bool
	keys     atomic.Pointer[keySet]

	// owned by the reader goroutine
	hdr           rtp.Header
	rh            rtcp.Header
	buf, dec, enc []byte
}

func newForwarder(in *endpoint, conn *net.UDPConn, rtcpSock bool) *forwarder {
	f := &forwarder{in: in, conn: conn, rtcpSock: rtcpSock,
		buf: make([]byte, bufSize), dec: make([]byte, bufSize), enc: make([]byte, bufSize+64)}
	f.keys.Store(&keySet{})
	return f
}

// run is the reader loop; it ends when the socket is closed.
func (f *forwarder) run() {
	for f.serve() {
	}
}

// serve relays until the socket closes (false) or a packet panicked the
// path (true: counted as malformed, the loop restarts).
func (f *forwarder) serve() (again bool) {
	defer func() {
		if recover() != nil {
			f.in.dropped(f.in.m.malformed)
			again = true
		}
	}()
	for {
		n, src, err := f.conn.ReadFromUDPAddrPort(f.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return false
			}
			continue
		}
		out, conn, dst, ok := f.forward(f.buf[:n], src, time.Now().UnixNano())
		if ok {
			_, _ = conn.WriteToUDPAddrPort(out, dst)
		}
	}
}

// forward checks, decrypts, re-encrypts and addresses one packet. It
// allocates nothing (see TestForwardAllocs) except on a latch event or a
// replay failure (pion's error value).
func (f *forwarder) forward(pkt []byte, src netip.AddrPort, now int64) ([]byte, *net.UDPConn, netip.AddrPort, bool) {
	e := f.in
	m := e.m
	var none netip.AddrPort
	win := e.windowEnd.Load()
	if win == 0 {
		e.dropped(m.inactive)
		return nil, nil, none, false
	}
	isRTCP := f.rtcpSock || (len(pkt) >= 2 && pkt[1] >= 192 && pkt[1] <= 223 && e.mux.Load())
	if len(pkt) < 8 || pkt[0]>>6 != 2 || (!isRTCP && len(pkt) < 12) {
		e.dropped(m.malformed)
		return nil, nil, none, false
	}
	ks := f.keys.Load()
	srtpIn := (isRTCP && ks.inRTCP != nil) || (!isRTCP && ks.inRTP != nil)
	// Source check before any crypto (RFC 4961 symmetric RTP, latching):
	//   - the learnt address is always accepted;
	//   - the SDP address may be learnt while nothing is, or in the window;
	//   - another address only within the window after the answer, and
	//     for plain RTP only if nothing was learnt yet (SRTP may move
	//     because the packet must authenticate before it is learnt).
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	latch := &e.latchRTP // muxed RTCP comes from the RTP address too
	if f.rtcpSock {
		latch = &e.latchRTCP
	}
	cur := latch.Load()
	known := cur != nil && *cur == src
	if !known {
		inWin := now < win
		var ok bool
		if e.announced(src, f.rtcpSock) {
			ok = cur == nil || inWin
		} else {
			ok = inWin && (srtpIn || cur == nil)
		}
		if !ok {
			e.dropped(m.source)
			return nil, nil, none, false
		}
	}
	plain := pkt
	var err error
	switch {
	case isRTCP && ks.inRTCP != nil:
		plain, err = ks.inRTCP.DecryptRTCP(f.dec[:0], pkt, &f.rh)
	case isRTCP:
		err = f.rh.Unmarshal(pkt)
	case ks.inRTP != nil:
		plain, err = ks.inRTP.DecryptRTP(f.dec[:0], pkt, &f.hdr)
	default:
		_, err = f.hdr.Unmarshal(pkt)
	}
	if err != nil {
		switch {
		case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
			e.srtpFailed(m.authFail)
		case strings.Contains(err.Error(), "duplicated"): // pion's replay error is unexported
			e.srtpFailed(m.replay)
		default:
			e.dropped(m.malformed)
		}
		return nil, nil, none, false
	}
	if !known { // only packets that parsed or authenticated get here
		learnt := new(netip.AddrPort) // allocates only on a latch event
		*learnt = src
		latch.Store(learnt)
		m.latch.Inc()
		e.n.latch.Add(1)
	}
	if !isRTCP {
		e.lastRX.Store(now)
	}

	o := e.other
	conn := o.pp.rtp
	var dst netip.AddrPort
	if isRTCP && !o.mux.Load() {
		conn = o.pp.rtcp
		if l := o.latchRTCP.Load(); l != nil {
			dst = *l
		} else if p := o.sdpPeer.Load(); p != nil {
			dst = p.rtcp
		}
	} else if l := o.latchRTP.Load(); l != nil {
		dst = *l
	} else if p := o.sdpPeer.Load(); p != nil {
		dst = p.rtp
	}
	if !dst.IsValid() || o.windowEnd.Load() == 0 {
		e.dropped(m.noPeer)
		return nil, nil, none, false
	}
	out := plain
	switch {
	case isRTCP && ks.outRTCP != nil:
		out, err = ks.outRTCP.EncryptRTCP(f.enc[:0], plain, &f.rh)
	case !isRTCP && ks.outRTP != nil:
		out, err = ks.outRTP.EncryptRTP(f.enc[:0], plain, &f.hdr)
	}
	if err != nil {
		e.dropped(m.malformed)
		return nil, nil, none, false
	}
	m.packets.Inc()
	m.bytes.Add(float64(len(pkt)))
	e.n.packets.Add(1)
	e.n.bytes.Add(uint64(len(pkt)))
	return out, conn, dst, true
}

// announced reports whether src is the address e's device gave in SDP.
func (e *endpoint) announced(src netip.AddrPort, rtcpSock bool) bool {
	p := e.sdpPeer.Load()
	if p == nil {
		return false
	}
	if rtcpSock {
		return p.rtcp == src
	}
	return p.rtp == src
}
