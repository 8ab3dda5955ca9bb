package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// baresipModules is where Debian's baresip keeps its modules; the config
// template (testdata/baresip/config.tmpl) loads them from there.
const baresipModules = "/usr/lib/baresip/modules"

// TestBaresipSRTPCallThroughRelay: two real softphones (Debian's baresip
// 1.0, headless) register with Digest; alice calls bob with SDES-SRTP
// (mediaenc=srtp), bob auto-answers, a sine tone flows both ways and
// alice hangs up. The relay must anchor each leg on its own address with
// its own keys, forward SRTP both ways without a failure while the call is
// up, and release the call on BYE.
func TestBaresipSRTPCallThroughRelay(t *testing.T) {
	bin := requireTool(t, "baresip")
	for _, m := range []string{"ctrl_tcp.so", "srtp.so", "g711.so", "ausine.so", "aubridge.so", "menu.so", "account.so"} {
		if _, err := os.Stat(filepath.Join(baresipModules, m)); err != nil {
			t.Fatalf("baresip module %s missing: %v (the Debian package installs them in %s)", m, err, baresipModules)
		}
	}
	const relayMin, relayMax = 46000, 46999
	dir := t.TempDir()
	environ := testEnviron(dir, "CONVERGO_SIP_LISTEN=udp:127.0.0.1:0", "CONVERGO_SIP_DOMAIN=convergo.test",
		// baresip 1.0 (libre 1.1) gives up on a 401 that offers a Bearer
		// challenge ("Bad message") or a SHA-256 Digest ("Function not implemented").
		"CONVERGO_AUTH_DIGEST_ALGORITHMS=MD5", "CONVERGO_AUTH_DISABLE_SIP_BEARER=true",
		"CONVERGO_MEDIA_PORT_MIN="+strconv.Itoa(relayMin), "CONVERGO_MEDIA_PORT_MAX="+strconv.Itoa(relayMax))
	for _, u := range []string{"alice", "bob"} {
		add := env{environ: environ, stdin: strings.NewReader(u + "-secret-1\n"), stdout: io.Discard, stderr: io.Discard}
		if err := runEnv(t.Context(), []string{"user", "add", "-id", u, "-identity", "sip:" + u + "@convergo.test", "-password-stdin"}, add); err != nil {
			t.Fatalf("user add %s: %v", u, err)
		}
	}
	addrs, _ := startServe(t, environ)
	metricsURL := "http://" + addrs.HTTP + "/metrics"
	server := addrs.SIP[0].Addr
	bob := startSoftphone(t, bin, dir, "bob", server, "auto", "47000-47999")
	alice := startSoftphone(t, bin, dir, "alice", server, "manual", "48000-48999")

	alice.command(t, "dial", "sip:bob@convergo.test")
	for _, p := range []*softphone{alice, bob} {
		p.waitEvent(t, "CALL_ESTABLISHED", 10*time.Second)
		// CALL_MENC: this phone's leg runs SRTP; CALL_RTPESTAB: its first
		// packet from the relay arrived (baresip drops what fails to authenticate).
		if e := p.waitEvent(t, "CALL_MENC", 5*time.Second); !strings.Contains(e.Param, "AES_CM_128_HMAC_SHA1_80") {
			t.Errorf("%s: CALL_MENC %q, want audio on AES_CM_128_HMAC_SHA1_80", p.name, e.Param)
		}
		p.waitEvent(t, "CALL_RTPESTAB", 5*time.Second)
	}

	// Half a second of 20 ms packets each way through the relay, with no
	// SRTP failure. Judged while the call is up: at teardown baresip sends
	// its RTCP BYE unencrypted, which the relay rightly counts as failing
	// authentication when it arrives before the BYE released the call.
	var body string
	pollFor(t, 10*time.Second, "25 relayed packets each way", func() bool {
		_, body = get(t, metricsURL)
		return scrapeMetric(body, `convergo_media_packets_total{side="a"}`) >= 25 &&
			scrapeMetric(body, `convergo_media_packets_total{side="b"}`) >= 25
	})
	if n := scrapeMetric(body, "convergo_media_srtp_failures_total"); n != 0 {
		t.Errorf("SRTP failures during the call = %v, want 0\n%s", n, mediaLines(body))
	}
	if n := scrapeMetric(body, "convergo_media_calls"); n != 1 {
		t.Errorf("convergo_media_calls = %v during the call, want 1", n)
	}

	// Each leg's SDP names the relay and carries a key of the relay's own.
	offer := audioSDP(t, alice.sipMessage(t, "INVITE sip:bob@convergo.test", "INVITE"))
	bobGot := audioSDP(t, bob.sipMessage(t, "INVITE ", "INVITE"))
	answer := audioSDP(t, bob.sipMessage(t, "SIP/2.0 200", "INVITE"))
	aliceGot := audioSDP(t, alice.sipMessage(t, "SIP/2.0 200", "INVITE"))
	for _, leg := range []struct {
		name           string
		sent, received sdpAudio
	}{{"alice->bob offer", offer, bobGot}, {"bob->alice answer", answer, aliceGot}} {
		got := leg.received
		if got.addr != "127.0.0.1" || got.port < relayMin || got.port > relayMax {
			t.Errorf("%s: media at %s:%d, want the relay (127.0.0.1:%d-%d)", leg.name, got.addr, got.port, relayMin, relayMax)
		}
		if got.key == "" || got.key == leg.sent.key {
			t.Errorf("%s: a=crypto key %q, want one of the relay's own (sent %q)", leg.name, got.key, leg.sent.key)
		}
		if got.proto != leg.sent.proto {
			t.Errorf("%s: profile %s, want %s as sent", leg.name, got.proto, leg.sent.proto)
		}
	}
	// And each phone's media really came from the relay's port.
	for _, p := range []*softphone{alice, bob} {
		if port := p.rtpSourcePort(t); port < relayMin || port > relayMax {
			t.Errorf("%s received RTP from port %d, want the relay's (%d-%d)", p.name, port, relayMin, relayMax)
		}
	}

	alice.command(t, "hangup", "")
	alice.waitEvent(t, "CALL_CLOSED", 5*time.Second)
	bob.waitEvent(t, "CALL_CLOSED", 5*time.Second)
	bob.sipMessage(t, "BYE ", "BYE") // convergo carried alice's BYE to bob's leg
	pollFor(t, 5*time.Second, "the relay to release the call and its ports", func() bool {
		_, body = get(t, metricsURL)
		return scrapeMetric(body, "convergo_media_calls") == 0 && scrapeMetric(body, "convergo_media_port_pairs") == 0
	})
	t.Logf("relay after the call:\n%s", mediaLines(body))
}

// softphone is one baresip process: its output (with the SIP trace) and
// its ctrl_tcp connection, whose events a reader goroutine collects.
type softphone struct {
	name string
	out  *syncBuffer
	conn net.Conn

	mu     sync.Mutex
	events []baresipEvent
	token  int
}

// baresipEvent is one ctrl_tcp message: an event or a command's response.
type baresipEvent struct {
	Event    bool   `json:"event"`
	Type     string `json:"type"`
	Param    string `json:"param"`
	Response bool   `json:"response"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
}

// startSoftphone writes name's config from testdata/baresip, starts
// baresip, waits for its registration and connects to its ctrl_tcp port.
// A cleanup (run before the server's) stops it with SIGTERM, so that it
// un-registers, and kills it if it has not exited 5 s later.
func startSoftphone(t *testing.T, bin, dir, name, server, answerMode, rtpPorts string) *softphone {
	t.Helper()
	cfgDir := filepath.Join(dir, name)
	if err := os.Mkdir(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctrl := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackTCPPort(t)))
	r := strings.NewReplacer("{{NAME}}", name, "{{RTP_PORTS}}", rtpPorts, "{{CTRL_LISTEN}}", ctrl,
		"{{USER}}", name, "{{DOMAIN}}", "convergo.test", "{{PASSWORD}}", name+"-secret-1",
		"{{SERVER}}", server, "{{MEDIAENC}}", "srtp", "{{ANSWERMODE}}", answerMode)
	for _, f := range []string{"config", "accounts"} {
		tmpl, err := os.ReadFile(filepath.Join("..", "..", "testdata", "baresip", f+".tmpl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, f), []byte(r.Replace(string(tmpl))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := &softphone{name: name, out: &syncBuffer{}}
	cmd := exec.Command(bin, "-f", cfgDir, "-s") // -s: SIP trace on stdout
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start baresip %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	readerDone := make(chan struct{})
	t.Cleanup(func() {
		if p.conn != nil {
			p.conn.Close()
			<-readerDone
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("baresip %s output:\n%s", name, lastLines(p.out.String(), 80))
		}
	})
	registered := name + "@convergo.test: {0/UDP/v4} 200 OK"
	pollFor(t, 10*time.Second, name+" registered", func() bool {
		select {
		case <-exited:
			t.Fatalf("baresip %s exited:\n%s", name, lastLines(p.out.String(), 40))
		default:
		}
		return strings.Contains(p.out.String(), registered)
	})
	conn, err := net.DialTimeout("tcp", ctrl, 2*time.Second)
	if err != nil {
		close(readerDone)
		t.Fatalf("baresip %s ctrl_tcp: %v", name, err)
	}
	p.conn = conn
	go func() {
		defer close(readerDone)
		p.readEvents(bufio.NewReader(conn))
	}()
	return p
}

// readEvents collects netstring-framed JSON ("len:{...},") until the
// connection closes.
func (p *softphone) readEvents(r *bufio.Reader) {
	for {
		n, err := r.ReadString(':')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(n[:len(n)-1])
		if err != nil || size < 0 || size > 1<<20 {
			return
		}
		buf := make([]byte, size+1) // the payload and its trailing ','
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var e baresipEvent
		if json.Unmarshal(buf[:size], &e) == nil {
			p.mu.Lock()
			p.events = append(p.events, e)
			p.mu.Unlock()
		}
	}
}

// command runs a baresip command through ctrl_tcp and fails the test
// unless baresip answers it with ok.
func (p *softphone) command(t *testing.T, cmd, params string) {
	t.Helper()
	p.mu.Lock()
	p.token++
	token := fmt.Sprintf("%s-%d", cmd, p.token)
	p.mu.Unlock()
	msg, err := json.Marshal(map[string]string{"command": cmd, "params": params, "token": token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(p.conn, "%d:%s,", len(msg), msg); err != nil {
		t.Fatalf("%s: send %s: %v", p.name, cmd, err)
	}
	e := p.wait(t, "response to "+cmd, 5*time.Second, func(e baresipEvent) bool { return e.Response && e.Token == token })
	if !e.OK {
		t.Fatalf("%s: %s %s: %s", p.name, cmd, params, e.Data)
	}
}

// waitEvent returns the first event of type typ (e.g. CALL_ESTABLISHED).
func (p *softphone) waitEvent(t *testing.T, typ string, timeout time.Duration) baresipEvent {
	t.Helper()
	return p.wait(t, typ, timeout, func(e baresipEvent) bool { return e.Event && e.Type == typ })
}

func (p *softphone) wait(t *testing.T, what string, timeout time.Duration, match func(baresipEvent) bool) baresipEvent {
	t.Helper()
	var found baresipEvent
	pollFor(t, timeout, p.name+": "+what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.events {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// sipMessage returns the body of the first SIP message in p's trace whose
// start line begins with start and whose CSeq method is method; it fails
// the test when there is none.
func (p *softphone) sipMessage(t *testing.T, start, method string) string {
	t.Helper()
	// baresip -s prints each message as ESC[36;1m "#\n" "UDP src -> dst\n" message ESC[;m.
	blocks := strings.Split(p.out.String(), "\x1b[36;1m#\n")
	for _, b := range blocks[1:] {
		b, _, _ = strings.Cut(b, "\x1b[;m")
		_, msg, _ := strings.Cut(b, "\n")
		msg = strings.ReplaceAll(msg, "\r\n", "\n")
		head, body, _ := strings.Cut(msg, "\n\n")
		if !strings.HasPrefix(head, start) {
			continue
		}
		for _, h := range strings.Split(head, "\n") {
			if name, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(name, "CSeq") && strings.HasSuffix(strings.TrimSpace(v), " "+method) {
				return body
			}
		}
	}
	t.Fatalf("%s: no %q (%s) in the SIP trace", p.name, start, method)
	return ""
}

// rtpSourcePort returns the port p's first audio packet came from, as
// baresip logs it ("incoming rtp for 'audio' established, receiving from ip:port").
func (p *softphone) rtpSourcePort(t *testing.T) int {
	t.Helper()
	const marker = "incoming rtp for 'audio' established, receiving from 127.0.0.1:"
	out := p.out.String()
	i := strings.Index(out, marker)
	if i < 0 {
		t.Fatalf("%s: no %q in its output", p.name, marker)
	}
	digits := out[i+len(marker):]
	n := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if n < 0 {
		n = len(digits)
	}
	port, err := strconv.Atoi(digits[:n])
	if err != nil {
		t.Fatalf("%s: RTP source port in %q: %v", p.name, out[i:min(len(out), i+len(marker)+8)], err)
	}
	return port
}

// sdpAudio is what the test checks of an SDP's audio stream.
type sdpAudio struct {
	addr  string // c=
	port  int    // m=audio
	proto string // RTP/AVP or RTP/SAVP
	key   string // the first a=crypto inline key
}

func audioSDP(t *testing.T, sdp string) sdpAudio {
	t.Helper()
	var a sdpAudio
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "c=IN IP4 "):
			a.addr = strings.TrimPrefix(l, "c=IN IP4 ")
		case strings.HasPrefix(l, "m=audio "):
			f := strings.Fields(l)
			if len(f) < 3 {
				t.Fatalf("bad m= line %q", l)
			}
			a.port, _ = strconv.Atoi(f[1])
			a.proto = f[2]
		case strings.HasPrefix(l, "a=crypto:") && a.key == "":
			if _, k, ok := strings.Cut(l, "inline:"); ok {
				a.key, _, _ = strings.Cut(k, "|")
			}
		}
	}
	if a.port == 0 {
		t.Fatalf("no audio stream in SDP:\n%s", sdp)
	}
	return a
}

// scrapeMetric sums the samples of a Prometheus text exposition whose
// name, or name with labels, is sel.
func scrapeMetric(body, sel string) float64 {
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || strings.HasPrefix(l, "#") {
			continue
		}
		if name := l[:i]; name == sel || strings.HasPrefix(name, sel+"{") {
			v, _ := strconv.ParseFloat(l[i+1:], 64)
			sum += v
		}
	}
	return sum
}

func mediaLines(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "convergo_media_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// pollFor calls cond every 20 ms until it holds, failing the test after timeout.
func pollFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeLoopbackTCPPort returns a loopback TCP port nobody listens on right now.
func freeLoopbackTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
