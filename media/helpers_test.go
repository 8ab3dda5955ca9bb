package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convergo/convergo/media/mediatest"
	"github.com/convergo/convergo/media/sdes"
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
	return testRelayLog(t, mod, zap.NewNop())
}

// testRelayLog is testRelay logging to log.
func testRelayLog(t *testing.T, mod func(*Config), log *zap.Logger) *Relay {
	t.Helper()
	lo := int(portBase.Add(64)) - 64
	cfg := Config{Address: "127.0.0.1", PortMin: lo, PortMax: lo + 63, Quarantine: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg, log, prometheus.NewRegistry())
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

// phone is mediatest's Phone; the aliases keep the tests short.
type phone = mediatest.Phone

func newPhone(t *testing.T, ssrc uint32) *phone { return mediatest.NewPhone(t, ssrc) }

func listen(t *testing.T) *net.UDPConn { return mediatest.Listen(t) }

func port(c *net.UDPConn) int { return mediatest.Port(c) }

func exchange(t *testing.T, from, to *phone, n int) { mediatest.Exchange(t, from, to, n) }

// call runs offer/answer for leg between caller and callee.
func setupCall(t *testing.T, r *Relay, id, leg string, caller, callee *phone,
	offer func(*phone) string, answer func(*phone, []sdes.Crypto) string) (offerOut, answerOut []byte) {
	t.Helper()
	var err error
	offerOut, err = r.Offer(t.Context(), id, leg, []byte(offer(caller)))
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	_, cr := callee.Learn(offerOut)
	answerOut, err = r.Answer(t.Context(), id, leg, []byte(answer(callee, cr)))
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	caller.Learn(answerOut)
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
