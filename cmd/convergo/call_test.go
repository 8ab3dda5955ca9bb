package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freeUDPPort returns a loopback UDP port nobody listens on right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestCallForkedToTwoDevices runs the whole server with real SIPp peers:
// bob registers two devices (Digest), a caller from a trusted peer calls
// bob, device 1 answers, device 2 rings and must be CANCELled, the caller
// hangs up after a second. Every SIPp process must report zero failures.
func TestCallForkedToTwoDevices(t *testing.T) {
	sipp := requireTool(t, "sipp")
	dir := t.TempDir()
	environ := testEnviron(dir, "CONVERGO_AUTH_DIGEST_ALGORITHMS=MD5,SHA-256", "CONVERGO_SIP_DOMAIN=convergo.test",
		"CONVERGO_SIP_LISTEN=udp:127.0.0.1:0", "CONVERGO_ISC_TRUSTED_PEERS=127.0.0.1")
	add := env{environ: environ, stdin: strings.NewReader("bob-secret-1\n"), stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	if err := runEnv(t.Context(), []string{"user", "add", "-id", "bob", "-identity", "sip:bob@convergo.test", "-password-stdin"}, add); err != nil {
		t.Fatalf("user add: %v", err)
	}
	addrs, _ := startServe(t, environ)
	target := addrs.SIP[0].Addr
	// bob keeps the caller in his address book: answered calls make it "frequent".
	base := "http://" + addrs.HTTP
	token := login(t, base, "bob", "bob-secret-1")
	code, body := apiDo(t, token, "POST", base+"/v1/contacts", `{"name":{"display":"SIPp caller"},"uris":[{"value":"sip:sipp@127.0.0.1"}]}`)
	if code != 201 {
		t.Fatalf("create contact = %d %s", code, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == "" {
		t.Fatalf("create contact: %v %s", err, body)
	}
	scenario := func(name string) string { return filepath.Join("..", "..", "testdata", "sipp", name) }
	common := []string{"-i", "127.0.0.1", "-t", "u1", "-nostdin", "-timeout", "20s", "-timeout_error", "-max_recv_loops", "1000"}
	ports := []int{freeUDPPort(t), freeUDPPort(t)}
	for i, p := range ports {
		args := append([]string{"-sf", scenario("register-device.xml"), "-p", strconv.Itoa(p), "-m", "1",
			"-s", "bob", "-au", "bob", "-ap", "bob-secret-1", "-key", "domain", "convergo.test",
			"-key", "instance", "urn:uuid:00000000-0000-4000-8000-00000000000" + strconv.Itoa(i+1)}, common...)
		if out, err := exec.CommandContext(t.Context(), sipp, append(args, target)...).CombinedOutput(); err != nil {
			t.Fatalf("register device %d: %v\n%s", i+1, err, lastLines(string(out), 20))
		}
	}
	const calls = 3
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	devices := []*exec.Cmd{
		exec.CommandContext(ctx, sipp, append([]string{"-sf", scenario("uas.xml"), "-p", strconv.Itoa(ports[0]), "-m", strconv.Itoa(calls)}, common...)...),
		exec.CommandContext(ctx, sipp, append([]string{"-sf", scenario("uas-ring.xml"), "-p", strconv.Itoa(ports[1]), "-m", strconv.Itoa(calls)}, common...)...),
	}
	outs := make([]*strings.Builder, len(devices))
	for i, d := range devices {
		outs[i] = &strings.Builder{}
		d.Stdout, d.Stderr = outs[i], outs[i]
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let both devices bind before the first INVITE
	caller := exec.CommandContext(ctx, sipp, append(append([]string{"-sf", scenario("uac.xml"), "-s", "bob", "-key", "domain", "convergo.test",
		"-m", strconv.Itoa(calls), "-r", "10"}, common...), target)...)
	if out, err := caller.CombinedOutput(); err != nil {
		t.Fatalf("caller: %v\n%s", err, lastLines(string(out), 40))
	}
	for i, d := range devices {
		if err := d.Wait(); err != nil {
			t.Fatalf("device %d (%s): %v\n%s", i+1, d.Args[2], err, lastLines(outs[i].String(), 40))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := apiDo(t, token, "GET", base+"/v1/contacts/"+created.ID, "")
		if code == 200 && strings.Contains(body, `"frequent"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d answered calls the caller's contact is not tagged frequent: %d %s", calls, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func login(t *testing.T, base, user, password string) string {
	t.Helper()
	code, body := apiDo(t, "", "POST", base+"/v1/auth/login", `{"username":"`+user+`","password":"`+password+`"}`)
	var res struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.AccessToken == "" {
		t.Fatalf("login %s = %d %s", user, code, body)
	}
	return res.AccessToken
}

func apiDo(t *testing.T, token, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestUntrustedCallerIsChallenged: in direct mode an INVITE from a handset
// must carry credentials like its REGISTER does (401 with challenges).
func TestUntrustedCallerIsChallenged(t *testing.T) {
	dir := t.TempDir()
	environ := testEnviron(dir, "CONVERGO_SIP_LISTEN=udp:127.0.0.1:0")
	addrs, _ := startServe(t, environ)
	c, err := net.Dial("udp", addrs.SIP[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	invite := "INVITE sip:bob@convergo.local SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-untrusted1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:mallory@convergo.local>;tag=m1\r\nTo: <sip:bob@convergo.local>\r\n" +
		"Call-ID: untrusted-1\r\nCSeq: 1 INVITE\r\nContact: <sip:mallory@" + c.LocalAddr().String() + ">\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(invite)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "SIP/2.0 1") {
			continue
		}
		if !strings.HasPrefix(msg, "SIP/2.0 401 ") || !strings.Contains(msg, "WWW-Authenticate: Digest") {
			t.Fatalf("got\n%s\nwant 401 with a Digest challenge", msg)
		}
		return
	}
}
