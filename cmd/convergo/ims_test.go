package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// fakeSCSCF is the edge of the world in IMS mode: a SIP peer on loopback
// that sends third-party REGISTERs and terminating INVITEs the way an
// S-CSCF does, and answers the B-legs convergo sends back through it (as
// the devices behind it would).
type fakeSCSCF struct {
	ua   *sipgo.UserAgent
	cli  *sipgo.Client
	addr string

	mu       sync.Mutex
	invites  []*sip.Request // B-legs that reached us
	byes     int
	answered chan struct{}
}

func startFakeSCSCF(t *testing.T) *fakeSCSCF {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("scscf"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSCSCF{ua: ua, answered: make(chan struct{}, 4)}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		f.mu.Lock()
		f.invites = append(f.invites, req.Clone())
		f.mu.Unlock()
		tagged := req.Clone()
		tagged.To().Params.Add("tag", sip.GenerateTagN(8))
		res := sip.NewResponseFromRequest(tagged, 200, "OK", []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "device", Host: "127.0.0.1", Port: portOf(f.addr)}})
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
		f.answered <- struct{}{}
		select { // hold the transaction until the ACK so sipgo does not give up on it
		case <-tx.Done():
		case <-time.After(2 * time.Second):
		}
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		f.mu.Lock()
		f.byes++
		f.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = conn.LocalAddr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { _ = conn.Close(); <-done; _ = ua.Close() })
	// Requests leave from an ephemeral socket: binding the listener's address for
	// the client races ServeUDP registering it (bind: address already in use).
	f.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func portOf(addr string) int {
	var p int
	_, _ = fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &p)
	return p
}

// TestIMSTerminatingCallThroughSCSCF: the S-CSCF's third-party REGISTER
// teaches convergo a device (instance and pub-GRUU from the embedded
// message/sip 200 OK); a terminating INVITE from the S-CSCF is then forked
// to that device through the S-CSCF, with the device's GRUU as R-URI and
// the ICID kept; the call connects and a BYE from the caller reaches the
// device leg.
func TestIMSTerminatingCallThroughSCSCF(t *testing.T) {
	dir := t.TempDir()
	environ := testEnviron(dir, "CONVERGO_SIP_LISTEN=udp:127.0.0.1:0", "CONVERGO_ISC_TRUSTED_PEERS=127.0.0.1")
	addrs, _ := startServe(t, environ)
	as := addrs.SIP[0].Addr
	f := startFakeSCSCF(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	const aor = "sip:+15551230002@ims.test"
	const gruu = "sip:+15551230002@ims.test;gr=urn:gsma:imei:35209900-176148-0"
	embedded := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-ue1\r\n" +
		"From: <" + aor + ">;tag=ue1\r\nTo: <" + aor + ">;tag=sc1\r\nCall-ID: ue-reg-1\r\nCSeq: 2 REGISTER\r\n" +
		"Contact: <sip:+15551230002@10.0.0.9:5060;transport=udp>;expires=600;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";" +
		"pub-gruu=\"" + gruu + "\"\r\nContent-Length: 0\r\n\r\n"
	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1", Port: portOf(as)})
	reg.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "scscf", Host: "127.0.0.1", Port: portOf(f.addr)}, Params: sip.NewParams()})
	reg.From().Params.Add("tag", "3p1")
	reg.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "+15551230002", Host: "ims.test"}, Params: sip.NewParams()})
	reg.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "scscf", Host: "127.0.0.1", Port: portOf(f.addr)}})
	reg.AppendHeader(sip.NewHeader("Expires", "600"))
	reg.AppendHeader(sip.NewHeader("P-Charging-Vector", `icid-value="icid-reg-1";orig-ioi=ims.test`))
	reg.AppendHeader(sip.NewHeader("Content-Type", "message/sip"))
	reg.SetBody([]byte(embedded))
	res, err := f.cli.Do(ctx, reg)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("third-party REGISTER: %v %v", res, err)
	}

	// The terminating INVITE, as the S-CSCF routes it to the AS.
	inv := sip.NewRequest(sip.INVITE, sip.Uri{User: "+15551230002", Host: "ims.test"})
	for _, r := range []string{"sip:as@" + as + ";lr", "sip:odi_abc@" + f.addr + ";lr;service=scscf"} {
		var u sip.Uri
		if err := sip.ParseUri(r, &u); err != nil {
			t.Fatal(err)
		}
		inv.AppendHeader(&sip.RouteHeader{Address: u})
	}
	inv.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "+15551230001", Host: "ims.test"}, Params: sip.NewParams()})
	inv.From().Params.Add("tag", "caller1")
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "+15551230002", Host: "ims.test"}, Params: sip.NewParams()})
	inv.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:+15551230001@ims.test>"))
	inv.AppendHeader(sip.NewHeader("P-Served-User", "<"+aor+">;sescase=term;regstate=reg"))
	inv.AppendHeader(sip.NewHeader("P-Charging-Vector", `icid-value="icid-call-1";orig-ioi=ims.test`))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody([]byte("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"))
	dua := sipgo.DialogUA{Client: f.cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{User: "caller", Host: "127.0.0.1", Port: portOf(f.addr)}}}
	sess, err := dua.WriteInvite(ctx, inv)
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE answer: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatalf("ACK: %v", err)
	}

	f.mu.Lock()
	if len(f.invites) != 1 {
		f.mu.Unlock()
		t.Fatalf("B-legs through the S-CSCF = %d, want 1 (the one learned device)", len(f.invites))
	}
	b := f.invites[0]
	f.mu.Unlock()
	if got := b.Recipient.String(); got != gruu {
		t.Errorf("B-leg Request-URI = %s, want the device's pub-GRUU %s", got, gruu)
	}
	if b.CallID().Value() == inv.CallID().Value() {
		t.Errorf("B-leg reuses the A-leg Call-ID; a B2BUA leg needs its own")
	}
	if h := b.GetHeader("P-Charging-Vector"); h == nil || !strings.Contains(h.Value(), "icid-call-1") {
		t.Errorf("B-leg P-Charging-Vector = %v, want the call's ICID kept", h)
	}
	if h := b.GetHeader("P-Asserted-Identity"); h == nil || !strings.Contains(h.Value(), "+15551230001") {
		t.Errorf("B-leg P-Asserted-Identity = %v, want the caller asserted by the S-CSCF", h)
	}

	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		byes := f.byes
		f.mu.Unlock()
		if byes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device leg got %d BYEs, want 1", byes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = sess.Close()
}
