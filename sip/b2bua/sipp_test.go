package b2bua

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippDir holds the scenarios (testdata/sipp at the repository root).
const sippDir = "../../testdata/sipp"

// needSIPp returns the sipp binary, or skips (fails under CI).
func needSIPp(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("sipp not on PATH (apt-get install sip-tester): %v", err)
		}
		t.Skip("sipp not on PATH (apt-get install sip-tester)")
	}
	return bin
}

// freeUDPPort returns a loopback UDP port nobody holds right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// freeMediaPort returns a base for sipp's media sockets: it binds the port
// and port+2 (audio and video RTP).
func freeMediaPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		p := freeUDPPort(t)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+2))
		if err == nil {
			_ = pc.Close()
			return p
		}
	}
	t.Fatal("no free media port pair")
	return 0
}

// sippProc is one running sipp.
type sippProc struct {
	name string
	cmd  *exec.Cmd
	dir  string
	out  bytes.Buffer
	done chan error
}

// startSIPp runs sipp with the scenario and args; its files go to a temp dir.
func startSIPp(t *testing.T, ctx context.Context, bin, name, scenario string, args ...string) *sippProc {
	t.Helper()
	dir := t.TempDir()
	scen, err := filepath.Abs(filepath.Join(sippDir, scenario))
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"-sf", scen, "-i", "127.0.0.1", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
		"-mp", strconv.Itoa(freeMediaPort(t)),
		"-timeout", "60s", "-timeout_error", "-max_recv_loops", "1000"}, args...)
	p := &sippProc{name: name, dir: dir, done: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, bin, full...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.Dir = dir
	t.Logf("%s: sipp %s", name, strings.Join(full, " "))
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// wait waits for sipp to exit; exit status 0 means every call succeeded.
func (p *sippProc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	if t.Failed() {
		d = time.Second // the caller failed: do not wait long for the devices
	}
	select {
	case err := <-p.done:
		if err != nil {
			errs, _ := os.ReadFile(filepath.Join(p.dir, "errors.log"))
			screen, _ := os.ReadFile(filepath.Join(p.dir, "screen.log"))
			t.Errorf("sipp %s: %v\n%s\nerrors:\n%s\nscreen:\n%s", p.name, err, p.out.String(), tail(errs, 3000), tail(screen, 3000))
		}
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		screen, _ := os.ReadFile(filepath.Join(p.dir, "screen.log"))
		t.Errorf("sipp %s did not finish in %s\n%s", p.name, d, tail(screen, 3000))
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stat reads a cumulative counter (the last column) from the final
// statistics screen, -1 if absent.
func (p *sippProc) stat(name string) int {
	screen, _ := os.ReadFile(filepath.Join(p.dir, "screen.log"))
	idx := bytes.LastIndex(screen, []byte(name))
	if idx < 0 {
		return -1
	}
	line := string(screen[idx+len(name):])
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	n := -1
	for _, f := range strings.Fields(line) {
		if v, err := strconv.Atoi(f); err == nil {
			n = v
		}
	}
	return n
}

// retransmissions sums the Retrans column of the requests sipp sent (the
// last scenario screen), -1 if unknown.
func (p *sippProc) retransmissions() int {
	screen, _ := os.ReadFile(filepath.Join(p.dir, "screen.log"))
	idx := bytes.LastIndex(screen, []byte("Messages  Retrans"))
	if idx < 0 {
		return -1
	}
	total := 0
	for _, line := range strings.Split(string(screen[idx:]), "\n") {
		if strings.Contains(line, "Test Terminated") {
			break
		}
		if !strings.Contains(line, "---------->") {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 4 {
			if n, err := strconv.Atoi(f[3]); err == nil {
				total += n
			}
		}
	}
	return total
}

// sippDevices points the callee at sipp devices on fresh ports.
func (e *env) sippDevices(t *testing.T, ports ...int) {
	var ts []Target
	for i, p := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		ts = append(ts, Target{AOR: "sipp", Key: strconv.Itoa(i), RequestURI: "sip:bob@" + addr, Destination: addr, Transport: "udp"})
	}
	e.loc.set("sip:bob@convergo.test", ts...)
}

// TestSIPpScenarios runs the scenarios of testdata/sipp through an
// in-process b2bua: the caller and the devices are real sipp processes.
func TestSIPpScenarios(t *testing.T) {
	bin := needSIPp(t)
	const calls = 10
	t.Run("answer elsewhere", func(t *testing.T) {
		e := newEnv(t, Config{})
		ctx := t.Context()
		p1, p2 := freeUDPPort(t), freeUDPPort(t)
		e.sippDevices(t, p1, p2)
		answer := startSIPp(t, ctx, bin, "uas", "uas.xml", "-p", strconv.Itoa(p1), "-m", strconv.Itoa(calls))
		ring := startSIPp(t, ctx, bin, "uas-ring", "uas-ring.xml", "-p", strconv.Itoa(p2), "-m", strconv.Itoa(calls))
		time.Sleep(300 * time.Millisecond) // let the devices bind
		caller := startSIPp(t, ctx, bin, "uac", "uac.xml", "-s", "bob", "-key", "domain", "convergo.test", "-p", strconv.Itoa(freeUDPPort(t)),
			"-m", strconv.Itoa(calls), "-r", "10", e.udp)
		caller.wait(t, 60*time.Second)
		answer.wait(t, 30*time.Second)
		ring.wait(t, 30*time.Second)
		for _, p := range []*sippProc{caller, answer, ring} {
			if got := p.stat("Successful call"); got != calls {
				t.Errorf("sipp %s: %d successful calls, want %d", p.name, got, calls)
			}
		}
		e.waitIdle()
	})
	t.Run("caller cancels", func(t *testing.T) {
		e := newEnv(t, Config{})
		ctx := t.Context()
		p1, p2 := freeUDPPort(t), freeUDPPort(t)
		e.sippDevices(t, p1, p2)
		r1 := startSIPp(t, ctx, bin, "uas-ring-1", "uas-ring.xml", "-p", strconv.Itoa(p1), "-m", strconv.Itoa(calls))
		r2 := startSIPp(t, ctx, bin, "uas-ring-2", "uas-ring.xml", "-p", strconv.Itoa(p2), "-m", strconv.Itoa(calls))
		time.Sleep(300 * time.Millisecond)
		caller := startSIPp(t, ctx, bin, "cancel", "cancel.xml", "-s", "bob", "-key", "domain", "convergo.test", "-p", strconv.Itoa(freeUDPPort(t)),
			"-m", strconv.Itoa(calls), "-r", "10", e.udp)
		caller.wait(t, 60*time.Second)
		r1.wait(t, 30*time.Second)
		r2.wait(t, 30*time.Second)
		for _, p := range []*sippProc{caller, r1, r2} {
			if got := p.stat("Successful call"); got != calls {
				t.Errorf("sipp %s: %d successful calls, want %d", p.name, got, calls)
			}
		}
		e.waitIdle()
	})
}

// TestSIPpLoad is a load run, not a correctness test: it runs only when
// CONVERGO_SIPP_RATE (calls/s) is set, e.g.
//
//	CONVERGO_SIPP_RATE=500 CONVERGO_SIPP_CALLS=5000 go test -run TestSIPpLoad -v ./sip/b2bua/
//
// and reports SIPp's counts; it fails if any call failed.
func TestSIPpLoad(t *testing.T) {
	rate := os.Getenv("CONVERGO_SIPP_RATE")
	if rate == "" {
		t.Skip("set CONVERGO_SIPP_RATE (and CONVERGO_SIPP_CALLS) for a load run")
	}
	bin := needSIPp(t)
	calls := os.Getenv("CONVERGO_SIPP_CALLS")
	if calls == "" {
		calls = "5000"
	}
	e := newEnv(t, Config{MaxCalls: 100000})
	ctx := t.Context()
	p1, p2 := freeUDPPort(t), freeUDPPort(t)
	e.sippDevices(t, p1, p2)
	answer := startSIPp(t, ctx, bin, "uas", "uas.xml", "-p", strconv.Itoa(p1), "-m", calls)
	ring := startSIPp(t, ctx, bin, "uas-ring", "uas-ring.xml", "-p", strconv.Itoa(p2), "-m", calls)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	caller := startSIPp(t, ctx, bin, "uac", "uac.xml", "-s", "bob", "-key", "domain", "convergo.test", "-p", strconv.Itoa(freeUDPPort(t)),
		"-m", calls, "-r", rate, e.udp)
	caller.wait(t, 10*time.Minute)
	elapsed := time.Since(start)
	answer.wait(t, time.Minute)
	ring.wait(t, time.Minute)
	t.Logf("rate %s/s, %s calls in %s: successful %d, failed %d, retransmissions %d",
		rate, calls, elapsed.Round(time.Millisecond), caller.stat("Successful call"), caller.stat("Failed call"), caller.retransmissions())
	e.waitIdle()
}
