package media

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// cryptoLine returns the first a=crypto value of an SDP.
func cryptoLine(t *testing.T, body []byte) string {
	t.Helper()
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=crypto:"); ok {
			return v
		}
	}
	t.Fatalf("no a=crypto in\n%s", body)
	return ""
}

func TestReInviteKeepsKeysAndROC(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	callerSDP := savpOffer("AES_CM_128_HMAC_SHA1_80")(caller)
	offerOut, answerOut := setupCall(t, r, "c1", "b1", caller, callee,
		func(*phone) string { return callerSDP }, savpAnswer)
	exchange(t, caller, callee, 3)
	exchange(t, callee, caller, 3)

	// The callee puts the call on hold with a re-INVITE (Offer on leg a):
	// the caller must see the same relay key and port (no silent re-key).
	hold := strings.Replace(string(calleeOwnSDP(callee)), "a=sendrecv", "a=sendonly", 1)
	reOffer, err := r.Offer(t.Context(), "c1", "a", []byte(hold))
	if err != nil {
		t.Fatal(err)
	}
	if cryptoLine(t, reOffer) != cryptoLine(t, answerOut) {
		t.Fatalf("re-offer re-keyed the caller leg:\n%s\nvs\n%s", reOffer, answerOut)
	}
	if !bytes.Contains(reOffer, []byte("a=sendonly")) {
		t.Fatal("direction not passed through")
	}
	held := strings.Replace(callerSDP, "a=sendrecv", "a=recvonly", 1)
	reAnswer, err := r.Answer(t.Context(), "c1", "a", []byte(held))
	if err != nil {
		t.Fatal(err)
	}
	if cryptoLine(t, reAnswer) != cryptoLine(t, offerOut) {
		t.Fatal("re-answer re-keyed the callee leg")
	}
	// Contexts were kept: the sequence continues without auth failures.
	exchange(t, callee, caller, 3)
	exchange(t, caller, callee, 3)
	for _, m := range r.m.side {
		if val(m.authFail) != 0 || val(m.replay) != 0 {
			t.Fatalf("auth/replay failures after re-INVITE: %v %v", val(m.authFail), val(m.replay))
		}
	}
	if !r.calls["c1"].pairs["b1"].streams[0].hold.Load() {
		t.Fatal("hold not detected")
	}

	// The caller re-offers with its unchanged key: the fork sees ours unchanged.
	again, err := r.Offer(t.Context(), "c1", "b1", []byte(callerSDP))
	if err != nil {
		t.Fatal(err)
	}
	if cryptoLine(t, again) != cryptoLine(t, offerOut) {
		t.Fatal("caller re-offer re-keyed the fork leg")
	}
}

// calleeOwnSDP rebuilds the SDP the callee answered with (its own key).
func calleeOwnSDP(p *phone) []byte {
	lines := []string{"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		"m=audio " + itoa(port(p.RTP)) + " RTP/SAVP 0 8 101", "a=rtcp:" + itoa(port(p.RTCP)),
		"a=rtpmap:0 PCMU/8000", "a=sendrecv", "a=crypto:" + p.Own.String()}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func TestDelayedOffer(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	// INVITE without SDP: the fork's 2xx offers, the caller's ACK answers.
	out, err := r.Offer(t.Context(), "c1", "a", []byte(savpOffer("AES_CM_128_HMAC_SHA1_80")(callee)))
	if err != nil {
		t.Fatal(err)
	}
	_, cr := caller.Learn(out)
	if len(cr) != 1 || !bytes.Contains(out, []byte("RTP/SAVP")) {
		t.Fatalf("caller should get a SAVP offer with our key:\n%s", out)
	}
	ans, err := r.Answer(t.Context(), "c1", "a", []byte(savpAnswer(caller, cr)))
	if err != nil {
		t.Fatal(err)
	}
	callee.Learn(ans)
	exchange(t, caller, callee, 3)
	exchange(t, callee, caller, 3)
	// The winner's name arrives with its next exchange and adopts the pair.
	if _, err := r.Offer(t.Context(), "c1", "b1", []byte(savpOffer("AES_CM_128_HMAC_SHA1_80")(caller))); err != nil {
		t.Fatal(err)
	}
	if got := r.ports.used(); got != 2 {
		t.Fatalf("pairs in use %d, want 2 (pair adopted, not duplicated)", got)
	}
}

func TestUnansweredCallExpires(t *testing.T) {
	lo := int(portBase.Add(16)) - 16
	r, err := New(Config{Address: "127.0.0.1", PortMin: lo, PortMax: lo + 15, Inactivity: 40 * time.Millisecond},
		zap.NewNop(), newReg())
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	r.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "running", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.running })
	if _, err := r.Offer(t.Context(), "c1", "b1", []byte(plainOffer(newPhone(t, 1)))); err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(staleAfter + time.Minute))
	waitFor(t, "expiry", func() bool { return r.ports.used() == 0 })
}

func itoa(n int) string { return strconv.Itoa(n) }
