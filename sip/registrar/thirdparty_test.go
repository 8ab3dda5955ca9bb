package registrar

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/store"
)

// readSeed reads a testdata/thirdparty file: the Content-Type on the first
// line, the body after it.
func readSeed(t testing.TB, name string) (string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "thirdparty", name))
	if err != nil {
		t.Fatal(err)
	}
	ct, body, _ := bytes.Cut(raw, []byte("\n"))
	return strings.TrimSpace(string(ct)), body
}

// learned is the comparable summary of a device.
type learned struct {
	Key, Contact, Instance, GRUU string
	RegID                        int
	Expires                      int64
	FromResponse                 bool
	Tags                         int // feature tags and other params
	Path, CallID                 string
	CSeq                         uint32
}

func summarize(ds []device) []learned {
	var out []learned
	for _, d := range ds {
		out = append(out, learned{
			Key: d.spec.key, Contact: d.spec.uri.String(), Instance: d.spec.instance, GRUU: d.spec.pubGRUU,
			RegID: d.spec.regID, Expires: d.spec.expires, FromResponse: d.fromResponse, Tags: len(d.spec.params),
			Path: strings.Join(d.path, ","), CallID: d.callID, CSeq: d.cseq,
		})
	}
	return out
}

const (
	imei     = "urn:gsma:imei:35209900-176148-0"
	uuidDev  = "urn:uuid:2e1c3f5a-7c1d-4b6e-9b8f-0a1b2c3d4e5f"
	ueCallID = "a84b4c76e66710@2001:db8::5"
	ueURI    = "sip:+15551230002@[2001:db8::5]:5060;transport=tcp"
	obURI    = "sip:+15551230002@192.0.2.44:41234;transport=tcp;ob"
	pcscf    = "<sip:term@pcscf1.ims.example.net;lr>"
)

func TestParseThirdPartyBody(t *testing.T) {
	ueFromRegister := learned{Key: imei, Contact: ueURI, Instance: imei, Expires: 600000, Tags: 2, Path: pcscf, CallID: ueCallID, CSeq: 12}
	tests := []struct {
		file    string
		want    []learned
		wantErr string
	}{
		{file: "kamailio-register.txt", want: []learned{ueFromRegister}},
		{file: "lf-only.txt", want: []learned{ueFromRegister}},
		{file: "multipart-tight-boundary.txt", want: []learned{ueFromRegister}},
		{file: "kamailio-response.txt", want: []learned{{
			Key: "sip:432011123456791@192.168.20.86:62534;ob", Contact: "sip:432011123456791@192.168.20.86:62534;ob",
			Expires: 300, FromResponse: true, CallID: "25536ca319b24a59835915a2ee246ef7", CSeq: 43599,
		}}},
		{file: "sprout-response.txt", want: []learned{
			{Key: imei, Contact: ueURI, Instance: imei, GRUU: "sip:+15551230002@ims.example.net;gr=" + imei, Expires: 3600,
				FromResponse: true, Tags: 1, CallID: ueCallID, CSeq: 12},
			{Key: uuidDev + ";reg-id=1", Contact: obURI, Instance: uuidDev, RegID: 1, GRUU: "sip:+15551230002@ims.example.net;gr=" + uuidDev,
				Expires: 1200, FromResponse: true, CallID: ueCallID, CSeq: 12},
		}},
		{file: "sprout-multipart.txt", want: []learned{
			// The 200's expiry and GRUU, the REGISTER's feature tags and Path.
			{Key: imei, Contact: ueURI, Instance: imei, GRUU: "sip:+15551230002@ims.example.net;gr=" + imei, Expires: 3600,
				FromResponse: true, Tags: 1, Path: pcscf, CallID: ueCallID, CSeq: 12},
			{Key: uuidDev + ";reg-id=1", Contact: obURI, Instance: uuidDev, RegID: 1, GRUU: "sip:+15551230002@ims.example.net;gr=" + uuidDev,
				Expires: 1200, FromResponse: true, CallID: ueCallID, CSeq: 12},
		}},
		{file: "response-one-removed.txt", want: []learned{
			{Key: imei, Contact: ueURI, Instance: imei, Expires: 0, FromResponse: true, CallID: ueCallID, CSeq: 13},
			{Key: uuidDev + ";reg-id=1", Contact: obURI, Instance: uuidDev, RegID: 1, Expires: 1100, FromResponse: true, CallID: ueCallID, CSeq: 13},
		}},
		{file: "service-info-only.txt"},
		{file: "garbage.txt", wantErr: "message/sip"},
		{file: "invite.txt", wantErr: "INVITE is not a REGISTER"},
		{file: "bad-contact.txt", wantErr: "Invalid +sip.instance"},
		{file: "multipart-no-boundary.txt", wantErr: "without boundary"},
		{file: "multipart-broken.txt", wantErr: "multipart: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ct, body := readSeed(t, tt.file)
			got, err := parseThirdPartyBody(ct, body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Fatalf("devices (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzThirdPartyBody feeds the message/sip and multipart parser. Accepted
// bodies must yield devices whose fields satisfy the binding invariants,
// and parsing must be deterministic.
func FuzzThirdPartyBody(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "thirdparty", "*.txt"))
	for _, s := range seeds {
		ct, body := readSeed(f, filepath.Base(s))
		f.Add(ct, body)
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		ds, err := parseThirdPartyBody(ct, body)
		if err != nil {
			return
		}
		if len(ds) > maxDevices {
			t.Fatalf("%d devices, more than %d", len(ds), maxDevices)
		}
		keys := map[string]bool{}
		for _, d := range ds {
			checkSpec(t, d.spec)
			if keys[d.spec.key] {
				t.Fatalf("key %q twice after merge", d.spec.key)
			}
			keys[d.spec.key] = true
		}
		again, err := parseThirdPartyBody(ct, body)
		if err != nil || !cmp.Equal(summarize(ds), summarize(again)) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

// checkSpec asserts what every accepted contact must satisfy.
func checkSpec(t *testing.T, c contactSpec) {
	t.Helper()
	if c.key == "" || c.key != store.BindingKey(c.instance, c.regID, keyURI(c.uri)) {
		t.Fatalf("key %q does not follow store.BindingKey", c.key)
	}
	if strings.ContainsAny(c.instance, "\"<> \t\r\n;,") {
		t.Fatalf("instance %q keeps quotes, brackets or separators", c.instance)
	}
	if c.regID < 0 || (c.regID > 0 && c.instance == "") {
		t.Fatalf("reg-id %d with instance %q", c.regID, c.instance)
	}
	if c.uri.Scheme != "sip" && c.uri.Scheme != "sips" || c.uri.Host == "" {
		t.Fatalf("contact URI %q accepted", c.uri.String())
	}
	if c.expires < -1 {
		t.Fatalf("expires %d", c.expires)
	}
}

// sendFrom sends raw over UDP from a socket bound to host (127.0.0.2 is
// trusted in these tests) and returns the final response.
func sendFrom(t *testing.T, host, to, raw string) *sip.Response {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)}, mustUDPAddr(t, to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw = strings.ReplaceAll(raw, "LOCAL", c.LocalAddr().String())
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatalf("parse response: %v", err)
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
	}
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var tpSeq int

// thirdPartyRaw builds a third-party REGISTER as Kamailio and Sprout do
// (TS 24.229 §5.4.1.7): From and Contact name the S-CSCF.
func thirdPartyRaw(aor, expires, ct string, body []byte, extra ...string) string {
	tpSeq++
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER sip:rcs-as.ims.example.net SIP/2.0\r\n")
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bK-3p%d\r\n", tpSeq)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:scscf1.ims.example.net:6060>;tag=3p%d\r\nTo: <%s>\r\n", tpSeq, aor)
	fmt.Fprintf(&b, "Call-ID: 3p-%d@scscf1\r\nCSeq: %d REGISTER\r\nContact: <sip:scscf1.ims.example.net:6060;transport=tcp>\r\n", tpSeq, tpSeq)
	if expires != "" {
		fmt.Fprintf(&b, "Expires: %s\r\n", expires)
	}
	fmt.Fprintf(&b, "P-Charging-Vector: icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=023551024\";orig-ioi=ims.example.net\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	if ct != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.String()
}

func TestThirdPartyRegister(t *testing.T) {
	n := startNode(t, nodeOpts{trusted: []string{"127.0.0.2"}})
	const aor = "sip:+15551230002@ims.example.net" // an IMS user, unknown to the account store
	udp := n.addr("udp")

	// Kamailio style: one message/sip part, the UE's REGISTER, no GRUU.
	ct, body := readSeed(t, "kamailio-register.txt")
	res := sendFrom(t, "127.0.0.2", udp, thirdPartyRaw(aor, "3720", ct, body))
	if res.StatusCode != 200 {
		t.Fatalf("third-party REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Expires"); h == nil || h.Value() != "3720" {
		t.Fatalf("Expires = %v, want the same 3720", h)
	}
	bs := n.list(aor)
	if len(bs) != 1 {
		t.Fatalf("learned %d bindings, want 1", len(bs))
	}
	b := bs[0]
	if b.Source != SourceISC || b.Instance != imei || b.Contact != ueURI ||
		b.Params["icid"] != "AyretyU0dm+6O2IrT5tAFrbHLso=023551024" || b.Params["path"] != pcscf ||
		len(b.Path) != 1 || b.Path[0] != "<sip:scscf1.ims.example.net:6060;transport=tcp;lr>" {
		t.Fatalf("binding = %+v", b)
	}
	if left := time.Until(b.Expires); left < 3700*time.Second || left > 3720*time.Second {
		t.Fatalf("expires in %s, want the granted 3720 s (not the UE's 600000)", left)
	}
	if ev, ok := n.nextEvent(time.Second); !ok || ev.Kind != Added || ev.Binding.Source != SourceISC {
		t.Fatalf("event = %+v, %v", ev, ok)
	}
	targets, err := n.reg.Targets(t.Context(), aor)
	if err != nil || len(targets) != 1 {
		t.Fatalf("Targets = %+v, %v", targets, err)
	}
	want := Target{AOR: aor, Key: imei, Instance: imei, RequestURI: ueURI,
		Route: []string{"<sip:scscf1.ims.example.net:6060;transport=tcp;lr>"}, Transport: "tcp", Source: SourceISC,
		ICID: "AyretyU0dm+6O2IrT5tAFrbHLso=023551024", Params: b.Params}
	if diff := cmp.Diff(want, targets[0]); diff != "" {
		t.Fatalf("target (-want +got):\n%s", diff)
	}

	// Sprout style: multipart with the REGISTER and the 200 (GRUUs, two devices).
	ct, body = readSeed(t, "sprout-multipart.txt")
	if res := sendFrom(t, "127.0.0.2", udp, thirdPartyRaw(aor, "3600", ct, body)); res.StatusCode != 200 {
		t.Fatalf("multipart third-party REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	targets, err = n.reg.Targets(t.Context(), aor)
	if err != nil || len(targets) != 2 {
		t.Fatalf("Targets = %+v, %v; want 2", targets, err)
	}
	for _, tg := range targets {
		if !strings.HasPrefix(tg.RequestURI, aor+";gr=") || tg.Route[0] != "<sip:scscf1.ims.example.net:6060;transport=tcp;lr>" {
			t.Fatalf("target %+v: want the pub-GRUU through the S-CSCF", tg)
		}
	}
	n.drainEvents()

	// Garbage: 400 naming the problem, nothing learned, nothing removed.
	ct, body = readSeed(t, "garbage.txt")
	res = sendFrom(t, "127.0.0.2", udp, thirdPartyRaw(aor, "3600", ct, body))
	if res.StatusCode != 400 || res.Reason != "Invalid message/sip Body" || res.GetHeader("Warning") == nil {
		t.Fatalf("garbage body: %d %q (Warning %v), want 400 Invalid message/sip Body with a Warning", res.StatusCode, res.Reason, res.GetHeader("Warning"))
	}
	if len(n.list(aor)) != 2 || len(n.drainEvents()) != 0 {
		t.Fatal("a rejected third-party REGISTER changed the bindings")
	}

	// Expires: 0 removes what third-party registrations brought.
	res = sendFrom(t, "127.0.0.2", udp, thirdPartyRaw(aor, "0", "", nil))
	if res.StatusCode != 200 || res.GetHeader("Expires").Value() != "0" {
		t.Fatalf("de-registration: %d, Expires %v", res.StatusCode, res.GetHeader("Expires"))
	}
	if bs := n.list(aor); len(bs) != 0 {
		t.Fatalf("after Expires: 0, %d bindings left", len(bs))
	}
	if evs := n.drainEvents(); len(evs) != 2 || evs[0].Kind != Removed || evs[1].Kind != Removed {
		t.Fatalf("events %v, want 2 Removed", evs)
	}
	if _, err := n.reg.Targets(t.Context(), aor); err == nil {
		t.Fatal("Targets for an IMS user with nothing registered and no account: want 404")
	}

	// The same REGISTER from an untrusted address is a direct-mode REGISTER:
	// it must authenticate (and the AOR is no account here: 404), learns nothing.
	ct, body = readSeed(t, "kamailio-register.txt")
	res = sendFrom(t, "127.0.0.1", udp, thirdPartyRaw(aor, "3720", ct, body))
	if res.StatusCode != 404 || len(n.list(aor)) != 0 {
		t.Fatalf("untrusted third-party REGISTER: %d, %d bindings; want 404 and none", res.StatusCode, len(n.list(aor)))
	}
	// A device in a trusted network registering itself (From = To) is not a
	// third-party REGISTER: it is challenged.
	known := n.addUser("olga")
	raw := strings.Replace(thirdPartyRaw(known, "600", "", nil), "From: <sip:scscf1.ims.example.net:6060>", "From: <"+known+">", 1)
	if res := sendFrom(t, "127.0.0.2", udp, raw); res.StatusCode != 401 || len(n.list(known)) != 0 {
		t.Fatalf("trusted device REGISTER: %d, want 401 and nothing stored", res.StatusCode)
	}
	if got := counterValue(n.reg.metrics.thirdParty.WithLabelValues(tpBad)); got != 1 {
		t.Errorf("third-party bad_request count = %v, want 1", got)
	}
	if got := counterValue(n.reg.metrics.thirdParty.WithLabelValues(tpRegistered)); got != 2 {
		t.Errorf("third-party registered count = %v, want 2", got)
	}

	// ... and with a P-Asserted-Identity it is refused outright.
	res = sendFrom(t, "127.0.0.1", udp, thirdPartyRaw(aor, "3720", ct, body, "P-Asserted-Identity: <"+aor+">"))
	if res.StatusCode != 403 {
		t.Fatalf("untrusted P-Asserted-Identity: %d %q, want 403", res.StatusCode, res.Reason)
	}
}

func TestThirdPartyRegisterPerContactRemoval(t *testing.T) {
	n := startNode(t, nodeOpts{trusted: []string{"127.0.0.2"}})
	const aor = "sip:+15551230002@ims.example.net"
	ct, body := readSeed(t, "sprout-response.txt")
	if res := sendFrom(t, "127.0.0.2", n.addr("udp"), thirdPartyRaw(aor, "3600", ct, body)); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	ct, body = readSeed(t, "response-one-removed.txt")
	if res := sendFrom(t, "127.0.0.2", n.addr("udp"), thirdPartyRaw(aor, "3600", ct, body)); res.StatusCode != 200 {
		t.Fatalf("re-REGISTER: %d", res.StatusCode)
	}
	bs := n.list(aor)
	if len(bs) != 1 || bs[0].Instance != uuidDev || bs[0].Params["gruu"] == "" {
		t.Fatalf("bindings = %+v, want only the device still listed, its pub-GRUU kept", bs)
	}
}
