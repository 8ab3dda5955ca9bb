// Package mediatest holds test helpers for code that relays media: a Phone
// is an RTP/SRTP endpoint on real loopback UDP sockets that writes its own
// SDP, learns the far end (address and SDES key) from the SDP it receives,
// and sends and receives packets, decrypting with the advertised key. It is
// used by the media, b2bua and cmd tests; it opens sockets, so only tests
// import it.
package mediatest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"

	"github.com/convergo/convergo/media/sdes"
)

// Phone is a test device: an RTP and an RTCP socket on 127.0.0.1 and, for
// SRTP, its own send key and the far end's key to decrypt with. Not safe
// for concurrent use.
type Phone struct {
	T          testing.TB
	RTP, RTCP  *net.UDPConn
	Own        *sdes.Crypto  // the key this phone sends with (from SDP)
	TX, RX     *srtp.Context // encrypt with Own; decrypt with the far end's key
	To, ToRTCP netip.AddrPort
	Seq        uint16
	SSRC       uint32
}

// NewPhone binds the phone's sockets; they close at test cleanup.
func NewPhone(t testing.TB, ssrc uint32) *Phone {
	t.Helper()
	return &Phone{T: t, SSRC: ssrc, RTP: Listen(t), RTCP: Listen(t)}
}

// Listen binds a UDP socket on 127.0.0.1 closed at test cleanup.
func Listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Port returns the local port of c.
func Port(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// SDP builds the phone's SDP: one audio m-line with proto (RTP/AVP or
// RTP/SAVP), PCMU and telephone-event, direction dir; with withKey a fresh
// a=crypto of suite and tag that the phone then sends with.
func (p *Phone) SDP(proto string, withKey bool, tag uint32, suite, dir string) string {
	lines := []string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d %s 0 8 101", Port(p.RTP), proto),
		fmt.Sprintf("a=rtcp:%d", Port(p.RTCP)),
		"a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=" + dir}
	if withKey {
		s, ok := sdes.LookupSuite(suite)
		if !ok {
			p.T.Fatalf("unknown suite %s", suite)
		}
		c, err := sdes.Generate(tag, s)
		if err != nil {
			p.T.Fatal(err)
		}
		p.Own = &c
		if p.TX, err = srtp.CreateContext(c.Key, c.Salt, s.Profile); err != nil {
			p.T.Fatal(err)
		}
		lines = append(lines, "a=crypto:"+c.String())
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// Learn takes the far end's address and key from the SDP the phone got
// (its first m-line); it returns the m-line's profile and every a=crypto.
func (p *Phone) Learn(body []byte) (proto string, cryptos []sdes.Crypto) {
	p.T.Helper()
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		p.T.Fatalf("SDP does not parse: %v\n%s", err, body)
	}
	if len(s.MediaDescriptions) == 0 || s.ConnectionInformation == nil {
		p.T.Fatalf("SDP without m= or session c=:\n%s", body)
	}
	md := s.MediaDescriptions[0]
	addr := netip.MustParseAddr(s.ConnectionInformation.Address.Address)
	p.To = netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value))
	p.ToRTCP = netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value+1))
	for _, a := range md.Attributes {
		if a.Key == "crypto" {
			c, err := sdes.Parse(a.Value)
			if err != nil {
				p.T.Fatal(err)
			}
			cryptos = append(cryptos, c)
		}
	}
	if len(cryptos) > 0 {
		var err error
		if p.RX, err = srtp.CreateContext(cryptos[0].Key, cryptos[0].Salt, cryptos[0].Suite.Profile,
			srtp.SRTPReplayProtection(64)); err != nil {
			p.T.Fatal(err)
		}
	}
	return strings.Join(md.MediaName.Protos, "/"), cryptos
}

// Packet builds the next RTP packet (PCMU), encrypted if the phone has a key.
func (p *Phone) Packet(payload []byte) []byte {
	p.Seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.Seq,
		Timestamp: uint32(p.Seq) * 160, SSRC: p.SSRC}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		p.T.Fatal(err)
	}
	if p.TX != nil && p.Own != nil {
		if b, err = p.TX.EncryptRTP(nil, b, nil); err != nil {
			p.T.Fatal(err)
		}
	}
	return b
}

// Send sends the next packet to the learnt address.
func (p *Phone) Send(payload []byte) {
	p.T.Helper()
	if _, err := p.RTP.WriteToUDPAddrPort(p.Packet(payload), p.To); err != nil {
		p.T.Fatal(err)
	}
}

// Recv reads one RTP packet within 2s (decrypting with the far end's key
// if one was learnt).
func (p *Phone) Recv() (*rtp.Packet, error) {
	return p.RecvWithin(2 * time.Second)
}

// RecvWithin reads one RTP packet within d.
func (p *Phone) RecvWithin(d time.Duration) (*rtp.Packet, error) {
	buf := make([]byte, 2048)
	if err := p.RTP.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	n, err := p.RTP.Read(buf)
	if err != nil {
		return nil, err
	}
	b := buf[:n]
	if p.RX != nil {
		if b, err = p.RX.DecryptRTP(nil, b, nil); err != nil {
			return nil, fmt.Errorf("decrypt with advertised key: %w", err)
		}
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(b); err != nil {
		return nil, err
	}
	return &pkt, nil
}

// Exchange sends n packets from one phone to the other, checking each
// arrives with its payload and SSRC.
func Exchange(t testing.TB, from, to *Phone, n int) {
	t.Helper()
	for i := range n {
		want := fmt.Sprintf("payload-%d-%d", from.SSRC, i)
		from.Send([]byte(want))
		got, err := to.Recv()
		if err != nil {
			t.Fatalf("packet %d %d->%d: %v", i, from.SSRC, to.SSRC, err)
		}
		if string(got.Payload) != want || got.SSRC != from.SSRC {
			t.Fatalf("got %q ssrc %d, want %q ssrc %d", got.Payload, got.SSRC, want, from.SSRC)
		}
	}
}
