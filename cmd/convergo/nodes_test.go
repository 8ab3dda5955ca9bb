package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/store/redistest"
)

// TestCallAcrossNodesSharingRedis: two convergo nodes share one real
// redis-server. A device registers with node A over TCP; a caller sends its
// INVITE to node B; node B's B-leg reaches the device through node A's Path
// hop and the flow the device registered on. The call connects and the
// caller's BYE reaches the device.
func TestCallAcrossNodesSharingRedis(t *testing.T) {
	redisAddr := redistest.StartServer(t)
	node := func(name string) []string {
		dir := t.TempDir()
		return []string{
			"CONVERGO_NODE=" + name,
			"CONVERGO_STORE_BACKEND=redis",
			"CONVERGO_STORE_REDIS_URL=redis://" + redisAddr,
			"CONVERGO_AUTH_AUTO_KEY_FILE=" + filepath.Join(dir, "jwt.pem"),
			"CONVERGO_HTTP_LISTEN=127.0.0.1:0",
			"CONVERGO_SIP_LISTEN=udp:127.0.0.1:0,tcp:127.0.0.1:0",
			"CONVERGO_SIP_DOMAIN=convergo.test",
			"CONVERGO_SHUTDOWN_GRACE=5s",
			// Nodes trust each other (node-to-node hops) and the test caller.
			"CONVERGO_ISC_TRUSTED_PEERS=127.0.0.1",
			"CONVERGO_AUTH_DISABLE_SIP_BEARER=true",
		}
	}
	envA, envB := node("node-a"), node("node-b")
	// Both nodes use the same JWT/nonce key so Digest nonces verify anywhere.
	envB = append(envB, "CONVERGO_AUTH_AUTO_KEY_FILE="+strings.TrimPrefix(envA[3], "CONVERGO_AUTH_AUTO_KEY_FILE="))
	add := env{environ: envA, stdin: strings.NewReader("dev-secret-1\n"), stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	if err := runEnv(t.Context(), []string{"user", "add", "-id", "dave", "-identity", "sip:dave@convergo.test", "-password-stdin"}, add); err != nil {
		t.Fatalf("user add: %v", err)
	}
	a, _ := startServe(t, envA)
	b, _ := startServe(t, envB)
	addrOf := func(bound boundAddrs, tr string) string {
		for _, l := range bound.SIP {
			if l.Transport == tr {
				return l.Addr
			}
		}
		t.Fatalf("no %s listener", tr)
		return ""
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// The device: a sipgo UA that registers over TCP with node A and
	// answers INVITEs arriving on that connection.
	devUA, err := sipgo.NewUA(sipgo.WithUserAgent("dave-phone"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = devUA.Close() })
	devSrv, err := sipgo.NewServer(devUA)
	if err != nil {
		t.Fatal(err)
	}
	var invites, byes atomic.Int32
	devSrv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		invites.Add(1)
		tagged := req.Clone()
		tagged.To().Params.Add("tag", sip.GenerateTagN(8))
		res := sip.NewResponseFromRequest(tagged, 200, "OK", nil)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "dave", Host: "127.0.0.1", Port: 5999, UriParams: sip.NewParams()}})
		_ = tx.Respond(res)
		select {
		case <-tx.Done():
		case <-time.After(2 * time.Second):
		}
	})
	devSrv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	devSrv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		byes.Add(1)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	devCli, err := sipgo.NewClient(devUA, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	aTCP := addrOf(a, "tcp")
	var regURI sip.Uri
	if err := sip.ParseUri("sip:"+aTCP+";transport=tcp", &regURI); err != nil {
		t.Fatal(err)
	}
	reg := sip.NewRequest(sip.REGISTER, regURI)
	reg.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "dave", Host: "convergo.test"}, Params: sip.NewParams()})
	reg.From().Params.Add("tag", "d1")
	reg.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "dave", Host: "convergo.test"}, Params: sip.NewParams()})
	reg.AppendHeader(sip.NewHeader("Contact", `<sip:dave@127.0.0.1:5999;transport=tcp>;+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000000da>"`))
	reg.AppendHeader(sip.NewHeader("Expires", "600"))
	reg.SetTransport("TCP")
	res, err := devCli.Do(ctx, reg)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	if res.StatusCode == 401 {
		res, err = devCli.DoDigestAuth(ctx, reg, res, sipgo.DigestAuth{Username: "dave", Password: "dev-secret-1"})
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER with Digest: %v %v", res, err)
	}

	// The caller sends its INVITE to node B.
	callerUA, err := sipgo.NewUA(sipgo.WithUserAgent("caller"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = callerUA.Close() })
	callerCli, err := sipgo.NewClient(callerUA, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var target sip.Uri
	if err := sip.ParseUri(fmt.Sprintf("sip:dave@%s", addrOf(b, "udp")), &target); err != nil {
		t.Fatal(err)
	}
	inv := sip.NewRequest(sip.INVITE, target)
	inv.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "carol", Host: "convergo.test"}, Params: sip.NewParams()})
	inv.From().Params.Add("tag", "c1")
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "dave", Host: "convergo.test"}, Params: sip.NewParams()})
	dua := sipgo.DialogUA{Client: callerCli, ContactHDR: sip.ContactHeader{Address: sip.Uri{User: "carol", Host: "127.0.0.1", Port: 5998}}}
	sess, err := dua.WriteInvite(ctx, inv)
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE via node B: %v (device saw %d INVITEs)", err, invites.Load())
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatalf("ACK: %v", err)
	}
	if n := invites.Load(); n != 1 {
		t.Fatalf("device got %d INVITEs, want 1", n)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for byes.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("device got %d BYEs, want 1", byes.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = sess.Close()
}
