package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convergo/convergo/sip"
	"go.uber.org/goleak"
)

// TestMain sets what main sets from the default configuration before any
// SIP traffic (runEnv does it only for the real process).
func TestMain(m *testing.M) {
	sip.SetTransactionWait(defaultConfig().SIP.TransactionWait)
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the server's log writes and the test's reads.
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

// testEnviron points every file the server writes into dir and every
// listener at an ephemeral loopback port.
func testEnviron(dir string, extra ...string) []string {
	return append([]string{
		"CONVERGO_STORE_BOLT_PATH=" + filepath.Join(dir, "convergo.db"),
		"CONVERGO_AUTH_AUTO_KEY_FILE=" + filepath.Join(dir, "jwt.pem"),
		"CONVERGO_HTTP_LISTEN=127.0.0.1:0",
		"CONVERGO_SIP_LISTEN=udp:127.0.0.1:0,tcp:127.0.0.1:0",
		"CONVERGO_SHUTDOWN_GRACE=5s",
	}, extra...)
}

// startServe runs "convergo serve" in-process and returns its bound
// addresses, a stop function and the channel run's result arrives on.
func startServe(t *testing.T, environ []string, args ...string) (boundAddrs, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyCh := make(chan boundAddrs, 1)
	logs := &syncBuffer{}
	e := env{environ: environ, stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs,
		onReady: func(b boundAddrs) { readyCh <- b }}
	done := make(chan error, 1)
	go func() { done <- runEnv(ctx, append([]string{"serve"}, args...), e) }()
	var stopped bool
	var stopErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("server logs:\n%s", lastLines(logs.String(), 60))
		}
	})
	select {
	case b := <-readyCh:
		return b, stop
	case err := <-done:
		stopped = true
		cancel()
		t.Fatalf("serve ended before ready: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve not ready\nlogs:\n%s", logs.String())
	}
	return boundAddrs{}, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	// SIPp computes only MD5 Digest and answers the first challenge.
	environ := testEnviron(dir, "CONVERGO_AUTH_DIGEST_ALGORITHMS=MD5,SHA-256", "CONVERGO_SIP_DOMAIN=convergo.test")
	// Bootstrap an account with the CLI before the server holds the store.
	add := env{environ: environ, stdin: strings.NewReader("sipp-secret-1\n"), stdout: io.Discard, stderr: io.Discard}
	if err := runEnv(t.Context(), []string{"user", "add", "-id", "sippuser", "-identity", "sip:sippuser@convergo.test", "-password-stdin"}, add); err != nil {
		t.Fatalf("user add: %v", err)
	}
	addrs, stop := startServe(t, environ)
	base := "http://" + addrs.HTTP
	if addrs.Admin != "" {
		t.Errorf("admin (pprof) listener bound at %s by default, want off", addrs.Admin)
	}

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d, want 200", code)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{"convergo_build_info{version=\"dev\"} 1", "go_goroutines", "process_resident_memory_bytes", "convergo_sip_inflight_requests"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body = get(t, base+"/no/such/route")
	if code != 404 || !strings.Contains(body, `"status":404`) {
		t.Fatalf("unknown route = %d %s, want a 404 problem", code, body)
	}

	t.Run("sipp options", func(t *testing.T) {
		sipp := requireTool(t, "sipp")
		for _, l := range addrs.SIP {
			transport := map[string]string{"udp": "u1", "tcp": "t1"}[l.Transport]
			runSIPp(t, sipp, "options.xml", transport, l.Addr, 3)
		}
	})
	t.Run("sipp digest register", func(t *testing.T) {
		sipp := requireTool(t, "sipp")
		for _, l := range addrs.SIP {
			transport := map[string]string{"udp": "u1", "tcp": "t1"}[l.Transport]
			runSIPp(t, sipp, "register.xml", transport, l.Addr, 3,
				"-s", "sippuser", "-au", "sippuser", "-ap", "sipp-secret-1", "-key", "domain", "convergo.test")
		}
		_, body := get(t, base+"/metrics")
		if !strings.Contains(body, `convergo_registrar_registrations_total`) {
			t.Errorf("/metrics lacks registrar counters after REGISTERs")
		}
	})

	t.Run("login and address book", func(t *testing.T) {
		res, err := http.Post(base+"/v1/auth/login", "application/json",
			strings.NewReader(`{"username":"sippuser","password":"sipp-secret-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		var login struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(res.Body).Decode(&login)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || login.AccessToken == "" {
			t.Fatalf("login = %d, %v", res.StatusCode, err)
		}
		do := func(method, path, body string) (int, string) {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+login.AccessToken)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		if code, body := do("POST", "/v1/contacts", `{"name":{"family":"张","given":"三"},"phones":[{"value":"+86 138 0013 8000"}]}`); code != 201 {
			t.Fatalf("create contact = %d %s", code, body)
		}
		if code, body := do("GET", "/v1/contacts?q=zs", ""); code != 200 || !strings.Contains(body, "三") {
			t.Fatalf("search zs = %d %s, want the contact", code, body)
		}
		if code, body := do("GET", "/v1/contacts/lookup?number=13800138000", ""); code != 200 || !strings.Contains(body, "三") {
			t.Fatalf("lookup = %d %s, want the contact", code, body)
		}
		// CardDAV with the account password (Basic), as phones do.
		req, _ := http.NewRequest("PROPFIND", base+"/carddav/", nil)
		req.SetBasicAuth("sippuser", "sipp-secret-1")
		req.Header.Set("Depth", "0")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMultiStatus {
			t.Fatalf("CardDAV PROPFIND = %d, want 207", res.StatusCode)
		}
		req.SetBasicAuth("sippuser", "wrong")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("CardDAV with a wrong password = %d, want 401", res.StatusCode)
		}
	})

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after shutdown, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s, longer than the grace period", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "convergo.db")); err != nil {
		t.Errorf("store file not created: %v", err)
	}
}

// requireTool returns the path of a tool the tests need. `make test`
// installs it; when CI is set its absence is a failure, not a skip.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (make test installs it with apt-get)", name)
	}
	t.Skipf("%s not installed; run make test as root to install it", name)
	return ""
}

func runSIPp(t *testing.T, sipp, scenario, transport, target string, calls int, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errFile := filepath.Join(t.TempDir(), "sipp.err")
	cmd := exec.CommandContext(ctx, sipp, "-sf", filepath.Join("..", "..", "testdata", "sipp", scenario),
		"-t", transport, "-i", "127.0.0.1", "-m", strconv.Itoa(calls), "-timeout", "15s", "-timeout_error",
		"-trace_err", "-error_file", errFile, "-nostdin")
	cmd.Args = append(append(cmd.Args, extra...), target)
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(errFile)
		t.Fatalf("sipp %s over %s: %v\n%s\n%s", scenario, transport, err, lastLines(string(out), 30), errs)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestBadConfigExitsWithEveryProblemAndTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bad.yaml")
	yaml := "sip:\n  listen: [\"udp:127.0.0.1:5060\", \"udp:abc\"]\n  lissten: x\nstore:\n  backend: mongo\nlog:\n  level: loud\nmedia:\n  mode: proxy\n  address: 0.0.0.0\nruntime:\n  gc_percent: -1\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	environ := []string{"CONVERGO_STORE_BOLT_PATH=" + filepath.Join(dir, "convergo.db"), "CONVERGO_SIP_MAX_INFLIGHT=lots"}
	e := env{environ: environ, stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}
	err := runEnv(t.Context(), []string{"serve", "-config", cfgFile}, e)
	if !errors.Is(err, errConfig) {
		t.Fatalf("runEnv() = %v, want errConfig", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`config: sip.listen[1]: "udp:abc": missing port`,
		"config: sip.lissten: line 3: unknown key",
		`config: store.backend: "mongo": want bolt or redis`,
		`config: log.level: "loud"`,
		`config: sip.max_inflight (CONVERGO_SIP_MAX_INFLIGHT): "lots": not an integer`,
		`config: media.mode: "proxy": must be relay or passthrough`,
		// advertise follows address, and a wildcard cannot go into SDP.
		`config: media.advertise: "0.0.0.0": must be a specific IP address`,
		"config: runtime.gc_percent: -1: must not be negative",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n  config: "); n < 8 {
		t.Errorf("want one line per problem (≥8), got %d:\n%s", n, msg)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("bad config touched the data dir: %v", entries)
	}
}

func TestConfigPrintMasksSecrets(t *testing.T) {
	var out bytes.Buffer
	e := env{environ: testEnviron(t.TempDir(), "CONVERGO_STORE_REDIS_URL=redis://app:topsecret@127.0.0.1:6379/0",
		"CONVERGO_STORE_REDIS_PASSWORD=alsosecret"), stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard}
	if err := runEnv(t.Context(), []string{"config", "print"}, e); err != nil {
		t.Fatalf("config print: %v", err)
	}
	s := out.String()
	for _, leak := range []string{"topsecret", "alsosecret"} {
		if strings.Contains(s, leak) {
			t.Fatalf("config print leaks %q:\n%s", leak, s)
		}
	}
	for _, want := range []string{"shutdown_grace: 5s", "listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']", "backend: bolt"} {
		if !strings.Contains(s, want) {
			t.Errorf("config print lacks %q:\n%s", want, s)
		}
	}
}

func TestConfigKeysListsEnvNames(t *testing.T) {
	var out bytes.Buffer
	e := env{stdout: &out, stderr: io.Discard}
	if err := runEnv(t.Context(), []string{"config", "keys"}, e); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sip.listen", "CONVERGO_SIP_LISTEN", "store.redis.url", "CONVERGO_STORE_REDIS_URL", "auth.access_ttl"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config keys lacks %q", want)
		}
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	e := env{stdout: io.Discard, stderr: io.Discard}
	if err := runEnv(t.Context(), []string{"frobnicate"}, e); !errors.Is(err, errUsage) {
		t.Fatalf("runEnv(frobnicate) = %v, want errUsage", err)
	}
	var out bytes.Buffer
	e.stdout = &out
	if err := runEnv(t.Context(), []string{"version"}, e); err != nil || out.String() != "convergo dev\n" {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
}

// TestAdminListenerServesPprof: pprof is off by default and served on
// http.admin_listen when set, never on the public listener.
func TestAdminListenerServesPprof(t *testing.T) {
	addrs, _ := startServe(t, testEnviron(t.TempDir(), "CONVERGO_HTTP_ADMIN_LISTEN=127.0.0.1:0"))
	if addrs.Admin == "" {
		t.Fatal("admin listener not bound")
	}
	if code, body := get(t, "http://"+addrs.Admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("admin /debug/pprof/ = %d, want the pprof index", code)
	}
	if code, _ := get(t, "http://"+addrs.HTTP+"/debug/pprof/"); code != 404 {
		t.Fatalf("public /debug/pprof/ = %d, want 404", code)
	}
}

// TestJSONLogs: -log-format json writes one JSON object per line.
func TestJSONLogs(t *testing.T) {
	logs := &syncBuffer{}
	ready := make(chan boundAddrs, 1)
	ctx, cancel := context.WithCancel(t.Context())
	e := env{environ: testEnviron(t.TempDir()), stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs,
		onReady: func(b boundAddrs) { ready <- b }}
	done := make(chan error, 1)
	go func() { done <- runEnv(ctx, []string{"serve", "-log-format", "json"}, e) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want several log lines, got %q", logs.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Fatalf("log line is not a JSON object with level and msg: %q (%v)", l, err)
		}
	}
	if err := runEnv(t.Context(), []string{"serve", "-log-format", "xml"}, env{environ: testEnviron(t.TempDir()), stdout: io.Discard, stderr: io.Discard}); !errors.Is(err, errConfig) {
		t.Fatalf("-log-format xml = %v, want a configuration error", err)
	}
}
