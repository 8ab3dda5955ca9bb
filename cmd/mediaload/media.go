package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// G.711 at 8 kHz, 20 ms per packet.
const (
	ptime      = 20 * time.Millisecond
	payloadLen = 160                    // PCMU samples per packet
	headerLen  = 12                     // RTP header, no CSRC, no extension
	packetLen  = headerLen + payloadLen // 172 bytes on the wire (plain RTP)
	slots      = 20                     // the sender serves 1/slots of the calls per millisecond
	tick       = ptime / slots
	indexBits  = 20 // low SSRC bits carrying the call index (maxCalls)
	indexMask  = 1<<indexBits - 1
	readBuf    = 2048
)

// Sides of a call as the tool plays them.
const (
	caller = 0 // sends baseA|i, receives the callee's packets
	callee = 1 // sends baseB|i, receives the caller's packets
)

var sideNames = [2]string{"caller", "callee"}

// leg is one end of one call's media. dst, enc and hdr are written by the
// signalling goroutine before on is set and then belong to the sender;
// dec belongs to the receiver of the leg's socket once stored.
type leg struct {
	on  atomic.Bool // the sender sends for this leg
	dst netip.AddrPort
	enc *srtp.Context // nil: plain RTP
	hdr rtp.Header
	dec atomic.Pointer[srtp.Context] // nil: plain RTP

	sent, recv               atomic.Uint64
	authFail, replay, badPkt atomic.Uint64
}

// prepare readies l for sending to dst as ssrc; l.on.Store(true), after
// it, hands the leg to the sender.
func (l *leg) prepare(dst netip.AddrPort, ssrc uint32, enc *srtp.Context) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	l.dst, l.enc = dst, enc
	l.hdr = rtp.Header{Version: 2, PayloadType: 0, Marker: true, SSRC: ssrc,
		SequenceNumber: binary.BigEndian.Uint16(r[:2]) & 0x7fff, Timestamp: binary.BigEndian.Uint32(r[2:])}
}

// start prepares l and switches it on.
func (l *leg) start(dst netip.AddrPort, ssrc uint32, enc *srtp.Context) {
	l.prepare(dst, ssrc, enc)
	l.on.Store(true)
}

// media holds the two shared sockets and every call's two legs.
type media struct {
	conns [2]*net.UDPConn
	addrs [2]netip.AddrPort
	base  [2]uint32 // SSRC of side s of call i: base[s] | i
	legs  [][2]leg

	sending  atomic.Bool  // global gate: cleared when the window ends
	maxLag   atomic.Int64 // worst sender lateness, ns
	sendErrs atomic.Uint64
	foreign  [2]atomic.Uint64 // packets on socket s from no call of ours
	bufs     [2]sockBuf       // SO_RCVBUF/SO_SNDBUF the kernel accepted
}

// sockBuf is what the kernel accepted for a socket's buffers, in bytes.
type sockBuf struct {
	Read  int `json:"read"`
	Write int `json:"write"`
}

func newMedia(addr netip.Addr, calls, buffer int) (*media, error) {
	m := &media{legs: make([][2]leg, calls)}
	var r [2]byte
	_, _ = rand.Read(r[:])
	m.base[caller] = uint32(r[0]&0x7f|0x01) << 24 // distinct high bytes
	m.base[callee] = uint32(r[1]&0x7f|0x80) << 24
	for s := range m.conns {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			m.close()
			return nil, fmt.Errorf("media: listen %s: %w", addr, err)
		}
		if buffer > 0 {
			// Best effort: the kernel caps at net.core.rmem_max/wmem_max.
			_ = c.SetReadBuffer(buffer)
			_ = c.SetWriteBuffer(buffer)
		}
		m.bufs[s] = socketBuffers(c)
		m.conns[s] = c
		m.addrs[s] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return m, nil
}

// close closes both sockets, which ends the receivers.
func (m *media) close() {
	for _, c := range m.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func (m *media) ssrc(side, i int) uint32 { return m.base[side] | uint32(i) }

// runSender wakes every tick and sends one packet for each switched-on leg
// of the calls in that tick's slot, until done is closed. If it falls
// behind it catches up (keeping 50 packets/s per leg on average) and
// records how late it was.
func (m *media) runSender(done <-chan struct{}) {
	var pkt [packetLen]byte
	for i := headerLen; i < packetLen; i++ {
		pkt[i] = 0xff // PCMU silence
	}
	enc := make([]byte, 0, packetLen+64)
	var scratch rtp.Header
	start := time.Now()
	t := time.NewTimer(tick)
	defer t.Stop()
	for k := 0; ; k++ {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if m.sending.Load() {
			for i := k % slots; i < len(m.legs); i += slots {
				for s := range m.legs[i] {
					m.send(s, &m.legs[i][s], pkt[:], enc, &scratch)
				}
			}
		}
		next := start.Add(time.Duration(k+2) * tick)
		d := time.Until(next)
		if lag := -int64(d); lag > m.maxLag.Load() {
			m.maxLag.Store(lag)
		}
		t.Reset(d)
	}
}

// send writes l's next packet. pkt holds the payload after headerLen.
func (m *media) send(side int, l *leg, pkt, enc []byte, scratch *rtp.Header) {
	if !l.on.Load() {
		return
	}
	if _, err := l.hdr.MarshalTo(pkt[:headerLen]); err != nil {
		m.sendErrs.Add(1)
		return
	}
	out := pkt
	if l.enc != nil {
		var err error
		if out, err = l.enc.EncryptRTP(enc[:0], pkt, scratch); err != nil {
			m.sendErrs.Add(1)
			return
		}
	}
	l.hdr.Marker = false
	l.hdr.SequenceNumber++
	l.hdr.Timestamp += payloadLen
	if _, err := m.conns[side].WriteToUDPAddrPort(out, l.dst); err != nil {
		m.sendErrs.Add(1)
		return
	}
	l.sent.Add(1)
}

// runReceiver reads socket side until it is closed and counts each packet
// on the leg its SSRC names (packets to side s come from side 1-s).
func (m *media) runReceiver(side int) {
	conn := m.conns[side]
	base := m.base[1-side]
	buf := make([]byte, readBuf)
	dec := make([]byte, readBuf)
	var h rtp.Header
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt := buf[:n]
		if n < headerLen {
			m.foreign[side].Add(1)
			continue
		}
		ssrc := binary.BigEndian.Uint32(pkt[8:12])
		i := int(ssrc & indexMask)
		if ssrc&^indexMask != base || i >= len(m.legs) {
			m.foreign[side].Add(1)
			continue
		}
		l := &m.legs[i][side]
		if ctx := l.dec.Load(); ctx != nil {
			plain, err := ctx.DecryptRTP(dec[:0], pkt, &h)
			if err != nil {
				switch {
				case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
					l.authFail.Add(1)
				case strings.Contains(err.Error(), "duplicated"): // pion's replay error is unexported
					l.replay.Add(1)
				default:
					l.badPkt.Add(1)
				}
				continue
			}
			pkt = plain
		} else if _, err := h.Unmarshal(pkt); err != nil {
			l.badPkt.Add(1)
			continue
		}
		if len(pkt) != packetLen || h.PayloadType != 0 || h.Extension || len(h.CSRC) != 0 {
			l.badPkt.Add(1) // e.g. SRTP where plain RTP was agreed
			continue
		}
		l.recv.Add(1)
	}
}

// totals sums sent and received packets per side.
func (m *media) totals() (sent, recv [2]uint64) {
	for i := range m.legs {
		for s := range m.legs[i] {
			sent[s] += m.legs[i][s].sent.Load()
			recv[s] += m.legs[i][s].recv.Load()
		}
	}
	return sent, recv
}
