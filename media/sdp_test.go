package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/convergo/convergo/media/sdes"
	"github.com/google/go-cmp/cmp"
	"github.com/pion/sdp/v3"
)

func TestAnchorVoLTEOffer(t *testing.T) {
	raw, err := os.ReadFile("testdata/volte.sdp")
	if err != nil {
		t.Fatal(err)
	}
	r := testRelay(t, nil)
	out, err := r.Offer(t.Context(), "c1", "b1", raw)
	if err != nil {
		t.Fatal(err)
	}
	var in, got sdp.SessionDescription
	if err := in.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := got.Unmarshal(out); err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if got.Origin.SessionVersion != in.Origin.SessionVersion+1 || got.Origin.UnicastAddress != "127.0.0.1" {
		t.Fatalf("o= %+v", got.Origin)
	}
	if len(got.MediaDescriptions) != 4 {
		t.Fatalf("m-lines = %d, want 4", len(got.MediaDescriptions))
	}
	type mline struct {
		Media, Proto string
		Port         int
	}
	var ms []mline
	for _, md := range got.MediaDescriptions {
		ms = append(ms, mline{md.MediaName.Media, strings.Join(md.MediaName.Protos, "/"), md.MediaName.Port.Value})
		if md.ConnectionInformation != nil && md.ConnectionInformation.Address.Address != "127.0.0.1" &&
			md.MediaName.Port.Value != 0 {
			t.Fatalf("media c= not rewritten: %v", md.ConnectionInformation)
		}
	}
	a0, v1 := got.MediaDescriptions[0].MediaName.Port.Value, got.MediaDescriptions[1].MediaName.Port.Value
	want := []mline{{"audio", "RTP/SAVP", a0}, {"video", "RTP/AVPF", v1}, {"audio", "RTP/AVP", 0}, {"message", "TCP/MSRP", 9}}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Fatalf("m-lines (-want +got):\n%s", diff)
	}
	if a0 == 0 || v1 == 0 || a0 == v1 || a0%2 != 0 {
		t.Fatalf("ports %d %d", a0, v1)
	}
	attrs := func(md *sdp.MediaDescription, key string) []string {
		var v []string
		for _, a := range md.Attributes {
			if a.Key == key {
				v = append(v, a.Value)
			}
		}
		return v
	}
	audio, video := got.MediaDescriptions[0], got.MediaDescriptions[1]
	// Codecs, preconditions and bandwidth untouched.
	for _, key := range []string{"rtpmap", "fmtp", "curr", "des", "ptime", "maxptime"} {
		if diff := cmp.Diff(attrs(in.MediaDescriptions[0], key), attrs(audio, key)); diff != "" {
			t.Fatalf("a=%s changed:\n%s", key, diff)
		}
	}
	if len(audio.Bandwidth) != 3 {
		t.Fatalf("b= lines lost: %v", audio.Bandwidth)
	}
	cr := attrs(audio, "crypto")
	if len(cr) != 2 || !strings.HasPrefix(cr[0], "1 AES_CM_128_HMAC_SHA1_80 ") || !strings.HasPrefix(cr[1], "2 AES_CM_128_HMAC_SHA1_32 ") {
		t.Fatalf("crypto lines %q", cr)
	}
	if bytes.Contains(out, []byte("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")) {
		t.Fatal("caller's key leaked to the fork")
	}
	if diff := cmp.Diff([]string{fmt.Sprint(a0 + 1)}, attrs(audio, "rtcp")); diff != "" {
		t.Fatalf("audio a=rtcp: %s", diff)
	}
	if diff := cmp.Diff([]string{fmt.Sprint(v1 + 1)}, attrs(video, "rtcp")); diff != "" {
		t.Fatalf("video a=rtcp: %s", diff)
	}
	if len(attrs(video, "rtcp-mux")) != 1 || len(attrs(audio, "rtcp-mux")) != 0 {
		t.Fatal("rtcp-mux must follow the offer")
	}
}

func TestRTCPMux(t *testing.T) {
	r := testRelay(t, nil)
	caller, callee := newPhone(t, 1), newPhone(t, 2)
	mux := func(p *phone) string {
		return strings.Replace(p.SDP("RTP/AVP", false, 0, "", "sendrecv"), "a=sendrecv", "a=sendrecv\r\na=rtcp-mux", 1)
	}
	muxAns := func(p *phone, _ []sdes.Crypto) string { return mux(p) }
	setupCall(t, r, "c1", "b1", caller, callee, mux, muxAns)
	exchange(t, caller, callee, 2)
	// A muxed RTCP receiver report (PT 201) on the RTP port reaches the callee's RTP port.
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1}
	if _, err := caller.RTP.WriteToUDPAddrPort(rr, caller.To); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if err := callee.RTP.SetReadDeadline(timeIn(2)); err != nil {
		t.Fatal(err)
	}
	n, err := callee.RTP.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], rr) {
		t.Fatalf("muxed rtcp: %x %v", buf[:n], err)
	}
}

func FuzzRewriteSDP(f *testing.F) {
	if raw, err := os.ReadFile("testdata/volte.sdp"); err == nil {
		f.Add(raw)
	}
	adv := netip.MustParseAddr("192.0.2.1")
	key, _ := sdes.Generate(1, mustSuite("AES_CM_128_HMAC_SHA1_80"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, infos, err := parseSDP(body)
		if err != nil {
			if sipStatus(err) != 488 {
				t.Fatalf("parse error without 488: %v", err)
			}
			return
		}
		outs := make([]mediaOut, len(infos))
		for i, mi := range infos {
			if mi.rtp && mi.port != 0 {
				outs[i] = mediaOut{port: 30000 + 2*i, secure: mi.secure, mux: mi.mux, cryptos: []sdes.Crypto{key}, rewrite: true}
			}
		}
		out, err := rewriteSDP(s, adv, outs)
		if err != nil {
			return
		}
		var again sdp.SessionDescription
		if err := again.Unmarshal(out); err != nil {
			t.Fatalf("accepted SDP does not re-parse: %v\nin:\n%q\nout:\n%q", err, body, out)
		}
		if len(again.MediaDescriptions) != len(infos) {
			t.Fatalf("m-lines %d -> %d", len(infos), len(again.MediaDescriptions))
		}
	})
}

func mustSuite(name string) sdes.Suite {
	s, ok := sdes.LookupSuite(name)
	if !ok {
		panic(name)
	}
	return s
}

func TestNonRTPMediaCrossesUntouched(t *testing.T) {
	r := testRelay(t, nil)
	body := "v=0\r\no=- 5 5 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n" +
		"m=message 2855 TCP/MSRP *\r\na=path:msrp://10.0.0.5:2855/s1;tcp\r\n" +
		"m=audio 4000 RTP/AVP 0\r\n"
	out, err := r.Offer(t.Context(), "c1", "b1", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var got sdp.SessionDescription
	if err := got.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	msrp, audio := got.MediaDescriptions[0], got.MediaDescriptions[1]
	if msrp.MediaName.Port.Value != 2855 || msrp.ConnectionInformation == nil ||
		msrp.ConnectionInformation.Address.Address != "10.0.0.5" {
		t.Fatalf("msrp m-line changed:\n%s", out)
	}
	if got.ConnectionInformation.Address.Address != "127.0.0.1" || audio.MediaName.Port.Value == 4000 {
		t.Fatalf("audio not anchored:\n%s", out)
	}
}

func TestAudioAndVideoRelayed(t *testing.T) {
	r := testRelay(t, nil)
	ca, cv, ba, bv := newPhone(t, 1), newPhone(t, 2), newPhone(t, 3), newPhone(t, 4)
	two := func(a, v *phone) string {
		return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			fmt.Sprintf("m=audio %d RTP/AVP 0\r\na=rtcp:%d\r\n", port(a.RTP), port(a.RTCP)) +
			fmt.Sprintf("m=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=rtcp:%d\r\n", port(v.RTP), port(v.RTCP))
	}
	offer, err := r.Offer(t.Context(), "c1", "b1", []byte(two(ca, cv)))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := r.Answer(t.Context(), "c1", "b1", []byte(two(ba, bv)))
	if err != nil {
		t.Fatal(err)
	}
	learnN := func(p *phone, body []byte, i int) {
		var s sdp.SessionDescription
		if err := s.Unmarshal(body); err != nil {
			t.Fatal(err)
		}
		p.To = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.MediaDescriptions[i].MediaName.Port.Value))
	}
	learnN(ba, offer, 0)
	learnN(bv, offer, 1)
	learnN(ca, answer, 0)
	learnN(cv, answer, 1)
	if ca.To == cv.To || ba.To == bv.To {
		t.Fatal("streams share a relay port")
	}
	exchange(t, ca, ba, 2)
	exchange(t, bv, cv, 2)
	exchange(t, cv, bv, 2)
	exchange(t, ba, ca, 2)
}
