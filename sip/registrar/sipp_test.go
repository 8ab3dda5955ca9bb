package registrar

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convergo/convergo/auth"
)

// TestSIPpRegister runs testdata/sipp/register.xml (REGISTER, 401, Digest
// REGISTER, 200, then the same for the unREGISTER) with the real SIPp
// against a node, over UDP and TCP, five calls at once for one account.
// SIPp 3.6 computes only MD5 and takes the first algorithm= of the
// challenge, so MD5 must be offered first (auth.digest_algorithms:
// [MD5, SHA-256]); a Bearer challenge ahead of the Digest ones is fine.
func TestSIPpRegister(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp not on PATH (apt-get install sip-tester)")
		}
		t.Skip("sipp not on PATH")
	}
	scenario, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", "register.xml"))
	if err != nil {
		t.Fatal(err)
	}
	const user, pass = "sippuser", "sipp-secret-1"
	for _, tc := range []struct {
		name      string
		transport string
		authCfg   auth.Config
	}{
		{"udp md5 first", "u1", auth.Config{DigestAlgorithms: []string{auth.DigestMD5, auth.DigestSHA256}}},
		{"tcp md5 first", "t1", auth.Config{DigestAlgorithms: []string{auth.DigestMD5, auth.DigestSHA256}}},
		{"udp md5 first without bearer", "u1", auth.Config{DigestAlgorithms: []string{auth.DigestMD5, auth.DigestSHA256}, DisableSIPBearer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, nodeOpts{authCfg: tc.authCfg})
			n.addUserPassword(user, pass)
			target := n.addr("udp")
			if tc.transport == "t1" {
				target = n.addr("tcp")
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			dir := t.TempDir()
			cmd := exec.CommandContext(ctx, sipp, "-sf", scenario, "-t", tc.transport, "-i", "127.0.0.1", "-p", "0",
				"-s", user, "-au", user, "-ap", pass, "-key", "domain", domain,
				"-m", "5", "-r", "50", "-timeout", "20s", "-timeout_error", "-max_recv_loops", "1000",
				"-trace_err", "-error_file", filepath.Join(dir, "err.log"), "-trace_msg", "-message_file", filepath.Join(dir, "msg.log"), "-nostdin", target)
			cmd.Dir = dir
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				errLog, _ := os.ReadFile(filepath.Join(dir, "err.log"))
				msgLog, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
				t.Fatalf("sipp: %v\n%s\nerrors:\n%s\nmessages:\n%s", err, tail(out.String(), 1500), tail(string(errLog), 3000), tail(string(msgLog), 3000))
			}
			if bs := n.list("sip:" + user + "@" + domain); len(bs) != 0 {
				t.Fatalf("after the unREGISTERs %d bindings are left", len(bs))
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
