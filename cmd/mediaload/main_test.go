package main

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/srtp/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type srtpCtx = srtp.Context

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

func containsWord(s, w string) bool { return strings.Contains(s, w+" ") || strings.HasSuffix(s, w) }

// syncBuffer collects the server's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		must(t, err)
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a convergo process started for the test.
type server struct {
	cmd      *exec.Cmd
	sip      string
	http     string
	portMin  int
	portMax  int
	out      *syncBuffer
	password string
}

// startServer builds cmd/convergo, creates bob with the built binary and
// serves testdata/mediaload/convergo.yaml with test-owned listeners, paths
// and a relay port range outside the ephemeral range (so no socket of the
// test can hold a relay port).
func startServer(t *testing.T) *server {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not in PATH: cannot build cmd/convergo")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "convergo")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "./cmd/convergo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/convergo: %v\n%s", err, out)
	}
	config, err := filepath.Abs(filepath.Join("..", "..", "testdata", "mediaload", "convergo.yaml"))
	must(t, err)
	s := &server{sip: fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")), http: fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		out: &syncBuffer{}, password: "bob-secret-1"}
	s.portMin = 61000 + 2*mrand.IntN(1500) // above ip_local_port_range's default 60999
	s.portMax = s.portMin + 199
	env := append(os.Environ(),
		"CONVERGO_STORE_BOLT_PATH="+filepath.Join(dir, "convergo.db"),
		"CONVERGO_AUTH_AUTO_KEY_FILE="+filepath.Join(dir, "jwt.pem"),
		"CONVERGO_SIP_LISTEN=udp:"+s.sip, "CONVERGO_HTTP_LISTEN="+s.http,
		"CONVERGO_MEDIA_PORT_MIN="+strconv.Itoa(s.portMin), "CONVERGO_MEDIA_PORT_MAX="+strconv.Itoa(s.portMax),
		"CONVERGO_SHUTDOWN_GRACE=5s")
	add := exec.CommandContext(t.Context(), bin, "user", "add", "-config", config, "-id", "bob",
		"-identity", "sip:bob@convergo.test", "-password-stdin")
	add.Env, add.Stdin = env, strings.NewReader(s.password+"\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("convergo user add: %v\n%s", err, out)
	}
	s.cmd = exec.Command(bin, "serve", "-config", config)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = env, s.out, s.out
	must(t, s.cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("convergo serve ended with %v\n%s", err, s.out.String())
			}
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
			t.Errorf("convergo serve did not stop within 10 s of SIGTERM\n%s", s.out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := s.get(t, "/readyz"); code == http.StatusOK {
			return s
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("convergo serve exited before ready: %v\n%s", err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("convergo not ready after 20 s\n%s", s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.http+path, nil)
	must(t, err)
	req.Close = true
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestLoadThroughServer runs the tool's core against a real convergo:
// calls are set up through SIP, G.711 crosses the relay both ways with no
// loss, the SDP each end sees names the relay, SRTP<->RTP bridging
// decrypts cleanly, and every call ends with a BYE answered 200 that also
// reached the callee, after which the relay holds no call.
func TestLoadThroughServer(t *testing.T) {
	srv := startServer(t)
	const calls = 5
	for _, tc := range []struct {
		name         string
		srtp         bool
		callerProfle string
	}{
		{name: "plain", callerProfle: "RTP/AVP"},
		{name: "srtp to plain callee", srtp: true, callerProfle: "RTP/SAVP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			o.Server, o.Domain, o.User, o.Password = srv.sip, "convergo.test", "bob", srv.password
			o.Calls, o.Rate, o.Duration, o.SRTP = calls, 50, 2*time.Second, tc.srtp
			o.ServerPID, o.Metrics = srv.cmd.Process.Pid, "http://"+srv.http+"/metrics"
			rep, err := runLoad(t.Context(), o, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
			if err != nil {
				t.Fatalf("runLoad: %v\n%s", err, srv.out.String())
			}
			var text strings.Builder
			rep.WriteText(&text)
			t.Log("\n" + text.String())

			if rep.Up != calls || rep.Failed != 0 {
				t.Errorf("calls up %d failed %d (%v), want %d up", rep.Up, rep.Failed, rep.Failures, calls)
			}
			for _, d := range rep.Directions {
				if d.Received == 0 || d.Lost != 0 {
					t.Errorf("%s: sent %d received %d lost %d, want packets and no loss", d.Name, d.Sent, d.Received, d.Lost)
				}
			}
			if rep.AuthFailures+rep.Replays+rep.BadPackets+rep.Foreign+rep.SendErrors != 0 {
				t.Errorf("auth failures %d, replays %d, bad %d, foreign %d, send errors %d: want none",
					rep.AuthFailures, rep.Replays, rep.BadPackets, rep.Foreign, rep.SendErrors)
			}
			// The callee device stays RTP/AVP (srtp_policy: strip): with an SRTP
			// caller, every packet the caller counted was decrypted with the
			// relay's key, every packet the callee counted is plain RTP.
			if rep.CallerProfile != tc.callerProfle {
				t.Errorf("caller profile %s, want %s", rep.CallerProfile, tc.callerProfle)
			}
			if diff := cmp.Diff(map[string]int{"RTP/AVP": calls}, rep.CalleeProfiles); diff != "" {
				t.Errorf("profiles offered to the callee (-want +got):\n%s", diff)
			}
			// The SDP each end received names the relay, never the other end.
			if diff := cmp.Diff([]string{"127.0.0.1"}, rep.Relay.Addrs); diff != "" {
				t.Errorf("SDP addresses (-want +got):\n%s", diff)
			}
			if rep.Relay.Anchored != calls || rep.Relay.Unanchored != 0 {
				t.Errorf("offers anchored %d, untouched %d: want all %d anchored", rep.Relay.Anchored, rep.Relay.Unanchored, calls)
			}
			for _, p := range []int{rep.Relay.CalleePortMin, rep.Relay.CalleePortMax, rep.Relay.CallerPortMin, rep.Relay.CallerPortMax} {
				if p < srv.portMin || p > srv.portMax {
					t.Errorf("relay ports callee side %d-%d, caller side %d-%d: want inside media %d-%d",
						rep.Relay.CalleePortMin, rep.Relay.CalleePortMax, rep.Relay.CallerPortMin, rep.Relay.CallerPortMax, srv.portMin, srv.portMax)
					break
				}
			}
			if rep.ByeOK != calls || rep.CalleeByes != calls || rep.ServerByes != 0 {
				t.Errorf("BYE answered 200: %d, reached the callee: %d, server hung up: %d; want %d, %d, 0",
					rep.ByeOK, rep.CalleeByes, rep.ServerByes, calls, calls)
			}
			if rep.ForeignInvites != 0 {
				t.Errorf("foreign INVITEs %d, want 0", rep.ForeignInvites)
			}
			// The relay's own counters agree: it forwarded both sides and dropped nothing.
			for k, v := range rep.RelayMetrics {
				if strings.HasPrefix(k, "convergo_media_drops_total") || strings.HasPrefix(k, "convergo_media_srtp_failures_total") {
					t.Errorf("relay %s +%d, want none", k, v)
				}
			}
			for _, side := range []string{"a", "b"} {
				if rep.RelayMetrics[`convergo_media_packets_total{side="`+side+`"}`] == 0 {
					t.Errorf("relay forwarded nothing from side %s: %v", side, rep.RelayMetrics)
				}
			}
			if c := rep.ServerCPU; c == nil || c.Error != "" || c.RSSMiB <= 0 {
				t.Errorf("server figures %+v, want CPU and RSS read from /proc", c)
			}
			if !rep.Clean() {
				t.Error("report not clean")
			}
		})
	}
	// Every call was released: the relay holds none.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := srv.get(t, "/metrics")
		if strings.Contains(body, "\nconvergo_media_calls 0\n") {
			break
		}
		if time.Now().After(deadline) {
			i := strings.Index(body, "\nconvergo_media_calls ")
			t.Fatalf("relay still holds calls after every BYE: %q", body[max(i, 0):min(max(i, 0)+40, len(body))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
