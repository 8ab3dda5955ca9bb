package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convergo/convergo/media/sdes"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var portBase atomic.Int32

func init() { portBase.Store(int32(41000 + (time.Now().UnixNano()/1000)%8000*2)) }

// testRelay starts a relay on 127.0.0.1 with its own port range and stops
// it (waiting for its goroutines) at cleanup.
func testRelay(t *testing.T, mod func(*Config)) *Relay {
	t.Helper()
	lo := int(portBase.Add(64)) - 64
	cfg := Config{Address: "127.0.0.1", PortMin: lo, PortMax: lo + 63, Quarantine: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	for {
		r.mu.Lock()
		ok := r.running
		r.mu.Unlock()
		if ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("relay did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

// phone is a test device: an RTP and an RTCP socket on 127.0.0.1 and,
// for SRTP, its own send key and the relay's key to decrypt with.
type phone struct {
	t          *testing.T
	rtp, rtcp  *net.UDPConn
	own        *sdes.Crypto
	tx, rx     *srtp.Context
	to, toRTCP netip.AddrPort
	seq        uint16
	ssrc       uint32
}

func newPhone(t *testing.T, ssrc uint32) *phone {
	t.Helper()
	p := &phone{t: t, ssrc: ssrc, rtp: listen(t), rtcp: listen(t)}
	return p
}

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func port(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// sdp builds the phone's SDP: audio (and video if video) with proto; a
// key line for SAVP or when withKey.
func (p *phone) sdp(proto string, withKey bool, tag uint32, suite, dir string) string {
	lines := []string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d %s 0 8 101", port(p.rtp), proto),
		fmt.Sprintf("a=rtcp:%d", port(p.rtcp)),
		"a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=" + dir}
	if withKey {
		s, _ := sdes.LookupSuite(suite)
		c, err := sdes.Generate(tag, s)
		if err != nil {
			p.t.Fatal(err)
		}
		p.own = &c
		if p.tx, err = srtp.CreateContext(c.Key, c.Salt, s.Profile); err != nil {
			p.t.Fatal(err)
		}
		lines = append(lines, "a=crypto:"+c.String())
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// learn takes the relay's address and key from the SDP the phone got.
func (p *phone) learn(body []byte) (proto string, cryptos []sdes.Crypto) {
	p.t.Helper()
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		p.t.Fatalf("relay SDP does not parse: %v\n%s", err, body)
	}
	md := s.MediaDescriptions[0]
	addr := netip.MustParseAddr(s.ConnectionInformation.Address.Address)
	p.to = netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value))
	p.toRTCP = netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value+1))
	for _, a := range md.Attributes {
		if a.Key == "crypto" {
			c, err := sdes.Parse(a.Value)
			if err != nil {
				p.t.Fatal(err)
			}
			cryptos = append(cryptos, c)
		}
	}
	if len(cryptos) > 0 {
		var err error
		if p.rx, err = srtp.CreateContext(cryptos[0].Key, cryptos[0].Salt, cryptos[0].Suite.Profile,
			srtp.SRTPReplayProtection(64)); err != nil {
			p.t.Fatal(err)
		}
	}
	return strings.Join(md.MediaName.Protos, "/"), cryptos
}

func (p *phone) packet(payload []byte) []byte {
	p.seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.seq,
		Timestamp: uint32(p.seq) * 160, SSRC: p.ssrc}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if p.tx != nil && p.own != nil {
		if b, err = p.tx.EncryptRTP(nil, b, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	return b
}

func (p *phone) send(payload []byte) {
	p.t.Helper()
	if _, err := p.rtp.WriteToUDPAddrPort(p.packet(payload), p.to); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one RTP packet (decrypting with the relay's key if any).
func (p *phone) recv() (*rtp.Packet, error) {
	buf := make([]byte, 2048)
	if err := p.rtp.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	n, err := p.rtp.Read(buf)
	if err != nil {
		return nil, err
	}
	b := buf[:n]
	if p.rx != nil {
		if b, err = p.rx.DecryptRTP(nil, b, nil); err != nil {
			return nil, fmt.Errorf("decrypt with advertised key: %w", err)
		}
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(b); err != nil {
		return nil, err
	}
	return &pkt, nil
}

// exchange sends a few packets each way and checks the payloads arrive.
func exchange(t *testing.T, from, to *phone, n int) {
	t.Helper()
	for i := range n {
		want := fmt.Sprintf("payload-%d-%d", from.ssrc, i)
		from.send([]byte(want))
		got, err := to.recv()
		if err != nil {
			t.Fatalf("packet %d %d->%d: %v", i, from.ssrc, to.ssrc, err)
		}
		if string(got.Payload) != want || got.SSRC != from.ssrc {
			t.Fatalf("got %q ssrc %d, want %q ssrc %d", got.Payload, got.SSRC, want, from.ssrc)
		}
	}
}

// call runs offer/answer for leg between caller and callee.
func setupCall(t *testing.T, r *Relay, id, leg string, caller, callee *phone,
	offer func(*phone) string, answer func(*phone, []sdes.Crypto) string) (offerOut, answerOut []byte) {
	t.Helper()
	var err error
	offerOut, err = r.Offer(t.Context(), id, leg, []byte(offer(caller)))
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	_, cr := callee.learn(offerOut)
	answerOut, err = r.Answer(t.Context(), id, leg, []byte(answer(callee, cr)))
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	caller.learn(answerOut)
	return offerOut, answerOut
}

func sipStatus(err error) int {
	var se interface{ SIPStatus() (int, string) }
	if errors.As(err, &se) {
		c, _ := se.SIPStatus()
		return c
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")

func nopLog() *zap.Logger { return zap.NewNop() }

func newReg() *prometheus.Registry { return prometheus.NewRegistry() }

// val reads a counter's value.
func val(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func timeIn(sec int) time.Time { return time.Now().Add(time.Duration(sec) * time.Second) }
