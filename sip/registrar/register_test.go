package registrar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
)

const (
	inst1 = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
	inst2 = "urn:gsma:imei:35209900-176148-0"
)

func contactLine(uri, instance string, regID int, extra string) string {
	s := "Contact: <" + uri + ">"
	if instance != "" {
		s += `;+sip.instance="<` + instance + `>"`
	}
	if regID > 0 {
		s += ";reg-id=" + strconv.Itoa(regID)
	}
	return s + extra
}

// expiresOf returns the expires parameter of a response contact.
func expiresOf(t *testing.T, c *sip.ContactHeader) int {
	t.Helper()
	v, _ := c.Params.Get("expires")
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("contact %s: expires %q", c.Value(), v)
	}
	return n
}

func TestRegisterMultiDevice(t *testing.T) {
	n := startNode(t, nodeOpts{})
	aor := n.addUser("alice")
	phone := newUA(t, "UDP")
	laptop := newUA(t, "TCP")

	// Device 1 over UDP, outbound flow, asks for GRUU.
	res := phone.register(n.addr("udp"), aor, "alice", auth.DigestMD5,
		contactLine("sip:alice@192.0.2.10:5060", inst1, 1, `;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg"`),
		"Expires: 600", "Supported: gruu, outbound, path")
	if res.StatusCode != 200 {
		t.Fatalf("phone REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	cs := contacts(res)
	if len(cs) != 1 {
		t.Fatalf("200 lists %d contacts, want 1", len(cs))
	}
	if g, _ := contactParams(cs[0].Params).Get("pub-gruu"); g != `"`+aor+";gr="+inst1+`"` {
		t.Errorf("pub-gruu = %s, want %q", g, aor+";gr="+inst1)
	}
	if e := expiresOf(t, cs[0]); e < 598 || e > 600 {
		t.Errorf("expires = %d, want 600", e)
	}
	if h := res.GetHeader("Require"); h == nil || h.Value() != "outbound" {
		t.Errorf("Require = %v, want outbound (instance, reg-id, Supported: outbound)", h)
	}
	if ev, ok := n.nextEvent(time.Second); !ok || ev.Kind != Added || ev.Binding.Instance != inst1 {
		t.Fatalf("event = %+v, %v; want Added %s", ev, ok, inst1)
	}

	// Device 2 over TCP, no outbound, SHA-256, no gruu support.
	res = laptop.register(n.addr("tcp"), aor, "alice", auth.DigestSHA256,
		contactLine("sip:alice@192.0.2.20:5070;transport=tcp", inst2, 0, ";expires=300"))
	if res.StatusCode != 200 {
		t.Fatalf("laptop REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if res.GetHeader("Require") != nil {
		t.Errorf("Require without outbound support: %v", res.GetHeader("Require"))
	}
	cs = contacts(res)
	if len(cs) != 2 {
		t.Fatalf("200 lists %d contacts, want both devices", len(cs))
	}
	for _, c := range cs {
		if _, ok := c.Params.Get("pub-gruu"); ok {
			t.Errorf("pub-gruu without Supported: gruu: %s", c.Value())
		}
	}
	if ev, ok := n.nextEvent(time.Second); !ok || ev.Kind != Added || ev.Binding.Instance != inst2 {
		t.Fatalf("event = %+v, %v; want Added %s", ev, ok, inst2)
	}

	bs := n.list(aor)
	if len(bs) != 2 {
		t.Fatalf("stored %d bindings, want 2", len(bs))
	}
	got := bs[0]
	want := store.Binding{
		AOR: aor, Key: inst1 + ";reg-id=1", Contact: "sip:alice@192.0.2.10:5060", Instance: inst1, RegID: 1,
		CallID: phone.callID, CSeq: got.CSeq, Expires: got.Expires, Created: got.Created,
		Received: got.Received, Transport: "udp", Node: got.Node, Path: got.Path,
		Params: map[string]string{"+g.3gpp.icsi-ref": `"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg"`}, Source: SourceDirect,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phone binding (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.Received, "127.0.0.1:") || got.Node != "127.0.0.1:"+strings.Split(n.addr("tcp"), ":")[1] {
		t.Errorf("received %q node %q", got.Received, got.Node)
	}
	if len(got.Path) != 1 || !strings.Contains(got.Path[0], ";ob>") || !strings.Contains(got.Path[0], "@"+n.addr("tcp")+";transport=tcp;lr") {
		t.Errorf("path = %v, want our flow URI with ob", got.Path)
	}
	if bs[1].Transport != "tcp" || bs[1].RegID != 0 || strings.Contains(bs[1].Path[0], ";ob") {
		t.Errorf("laptop binding = %+v", bs[1])
	}

	// Fetch: REGISTER without Contact lists both, changes nothing.
	res = phone.register(n.addr("udp"), aor, "alice", auth.DigestMD5, "Supported: gruu")
	if res.StatusCode != 200 || len(contacts(res)) != 2 {
		t.Fatalf("fetch: %d with %d contacts, want 200 with 2", res.StatusCode, len(contacts(res)))
	}
	if evs := n.drainEvents(); len(evs) != 0 {
		t.Errorf("fetch emitted %v", evs)
	}

	// Targets: one per device.
	targets, err := n.reg.Targets(t.Context(), aor)
	if err != nil || len(targets) != 2 {
		t.Fatalf("Targets = %v, %v; want 2", targets, err)
	}
	if tg := targets[0]; tg.RequestURI != "sip:alice@192.0.2.10:5060" || tg.Destination != got.Received ||
		tg.Transport != "udp" || len(tg.Route) != 0 || tg.Source != SourceDirect || tg.Instance != inst1 {
		t.Errorf("target 0 = %+v", tg)
	}
	// GRUU targeting picks one instance.
	targets, err = n.reg.Targets(t.Context(), "<"+aor+";gr="+inst2+">")
	if err != nil || len(targets) != 1 || targets[0].Instance != inst2 {
		t.Fatalf("Targets(gruu) = %+v, %v; want the laptop only", targets, err)
	}

	// Refresh keeps Created and emits Refreshed.
	res = phone.register(n.addr("udp"), aor, "alice", auth.DigestMD5, contactLine("sip:alice@192.0.2.10:5060", inst1, 1, ""), "Expires: 900")
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	if ev, ok := n.nextEvent(time.Second); !ok || ev.Kind != Refreshed || !ev.Binding.Created.Equal(got.Created) {
		t.Fatalf("event = %+v; want Refreshed with the first Created", ev)
	}

	// Unregister the laptop with expires=0.
	res = laptop.register(n.addr("tcp"), aor, "alice", auth.DigestSHA256,
		contactLine("sip:alice@192.0.2.20:5070;transport=tcp", inst2, 0, ";expires=0"))
	if res.StatusCode != 200 || len(contacts(res)) != 1 {
		t.Fatalf("unregister: %d with %d contacts, want 200 with 1", res.StatusCode, len(contacts(res)))
	}
	if ev, ok := n.nextEvent(time.Second); !ok || ev.Kind != Removed || ev.Binding.Instance != inst2 {
		t.Fatalf("event = %+v; want Removed %s", ev, inst2)
	}

	// Contact: * with Expires: 0 removes the rest.
	laptop.register(n.addr("tcp"), aor, "alice", auth.DigestSHA256, contactLine("sip:alice@192.0.2.20:5070;transport=tcp", inst2, 0, ""))
	n.drainEvents()
	res = phone.register(n.addr("udp"), aor, "alice", auth.DigestMD5, "Contact: *", "Expires: 0")
	if res.StatusCode != 200 || len(contacts(res)) != 0 {
		t.Fatalf("Contact *: %d with %d contacts, want 200 with none", res.StatusCode, len(contacts(res)))
	}
	if bs := n.list(aor); len(bs) != 0 {
		t.Fatalf("after *: %d bindings left", len(bs))
	}
	if evs := n.drainEvents(); len(evs) != 2 || evs[0].Kind != Removed || evs[1].Kind != Removed {
		t.Fatalf("after *: events %v, want 2 Removed", evs)
	}
	targets, err = n.reg.Targets(t.Context(), aor)
	if err != nil || targets == nil || len(targets) != 0 {
		t.Fatalf("Targets after *: %v, %v; want empty, no error", targets, err)
	}
}

func TestRegisterContactWithoutInstance(t *testing.T) {
	n := startNode(t, nodeOpts{})
	aor := n.addUser("bob")
	d := newUA(t, "UDP")
	res := d.register(n.addr("udp"), aor, "bob", auth.DigestMD5, "Contact: <sip:bob@192.0.2.5:5062;transport=udp>", "Expires: 120")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	bs := n.list(aor)
	if len(bs) != 1 || bs[0].Key != "sip:bob@192.0.2.5:5062;transport=udp" || bs[0].Instance != "" {
		t.Fatalf("bindings = %+v, want one keyed by contact URI", bs)
	}
	// Same Call-ID, same contact, lower CSeq: out of order, refused, nothing changes.
	stale := d.registerReq(aor, "Contact: <sip:bob@192.0.2.5:5062;transport=udp>", "Expires: 3000")
	stale.CSeq().SeqNo = 1
	res = d.send(n.addr("udp"), stale)
	if res.StatusCode == 401 {
		stale = d.registerReq(aor, "Contact: <sip:bob@192.0.2.5:5062;transport=udp>", "Expires: 3000")
		stale.CSeq().SeqNo = 1
		stale.AppendHeader(sip.NewHeader("Authorization", digestAuthorization(t, res, auth.DigestMD5, "bob", password, "REGISTER", stale.Recipient.String())))
		res = d.send(n.addr("udp"), stale)
	}
	if res.StatusCode != 400 || res.Reason != "Replayed CSeq" {
		t.Fatalf("stale REGISTER: %d %q, want 400 Replayed CSeq", res.StatusCode, res.Reason)
	}
	if after := n.list(aor); !after[0].Expires.Equal(bs[0].Expires) {
		t.Fatalf("stale REGISTER changed the binding: %v -> %v", bs[0].Expires, after[0].Expires)
	}
	// A new Call-ID replaces it (RFC 3261 §10.3 step 7).
	d2 := newUA(t, "UDP")
	res = d2.register(n.addr("udp"), aor, "bob", auth.DigestMD5, "Contact: <sip:bob@192.0.2.5:5062;transport=udp>", "Expires: 200")
	if res.StatusCode != 200 || len(n.list(aor)) != 1 || n.list(aor)[0].CallID != d2.callID {
		t.Fatalf("new Call-ID: %d, bindings %+v", res.StatusCode, n.list(aor))
	}
}

func TestRegisterExpiry(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{MinExpires: time.Second, DefaultExpires: time.Hour, MaxExpires: 2 * time.Hour}})
	aor := n.addUser("carol")
	d := newUA(t, "UDP")

	// Per-contact expires wins over the header; the maximum caps.
	res := d.register(n.addr("udp"), aor, "carol", auth.DigestMD5,
		contactLine("sip:carol@192.0.2.1", inst1, 0, ";expires=1"),
		contactLine("sip:carol@192.0.2.2", inst2, 0, ""), "Expires: 999999")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	got := map[string]int{}
	for _, c := range contacts(res) {
		got[c.Address.Host] = expiresOf(t, c)
	}
	if got["192.0.2.1"] != 1 || got["192.0.2.2"] != 7200 {
		t.Fatalf("granted %v, want 1 and 7200 (capped)", got)
	}
	n.drainEvents()
	// The 1 s binding expires and the sweep reports it.
	ev, ok := n.nextEvent(3 * time.Second)
	if !ok || ev.Kind != Removed || ev.Binding.Contact != "sip:carol@192.0.2.1" {
		t.Fatalf("event = %+v, %v; want Removed for the expired contact", ev, ok)
	}
	if bs := n.list(aor); len(bs) != 1 || bs[0].Instance != inst2 {
		t.Fatalf("bindings after expiry = %+v", bs)
	}
}

func TestRegisterIntervalTooBrief(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{MinExpires: 60 * time.Second}})
	aor := n.addUser("dave")
	d := newUA(t, "UDP")
	res := d.register(n.addr("udp"), aor, "dave", auth.DigestMD5,
		contactLine("sip:dave@192.0.2.1", inst1, 0, ""), contactLine("sip:dave@192.0.2.2", inst2, 0, ";expires=30"), "Expires: 3600")
	if res.StatusCode != 423 || res.Reason != "Interval Too Brief" {
		t.Fatalf("got %d %q, want 423 Interval Too Brief", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
		t.Fatalf("Min-Expires = %v, want 60", h)
	}
	if bs := n.list(aor); len(bs) != 0 {
		t.Fatalf("423 left %d bindings behind (the valid contact too must not be stored)", len(bs))
	}
}

func TestRegisterMaxBindingsEvictsOldest(t *testing.T) {
	n := startNode(t, nodeOpts{cfg: Config{MaxBindings: 2}})
	aor := n.addUser("erin")
	for i := 1; i <= 3; i++ {
		d := newUA(t, "UDP")
		res := d.register(n.addr("udp"), aor, "erin", auth.DigestMD5,
			contactLine(fmt.Sprintf("sip:erin@192.0.2.%d", i), fmt.Sprintf("urn:uuid:00000000-0000-0000-0000-00000000000%d", i), 0, ""))
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER %d: %d", i, res.StatusCode)
		}
		if i == 3 && len(contacts(res)) != 2 {
			t.Fatalf("200 lists %d contacts, want 2", len(contacts(res)))
		}
		time.Sleep(5 * time.Millisecond) // distinct Created
	}
	bs := n.list(aor)
	var hosts []string
	for _, b := range bs {
		hosts = append(hosts, b.Contact)
	}
	if diff := cmp.Diff([]string{"sip:erin@192.0.2.2", "sip:erin@192.0.2.3"}, hosts); diff != "" {
		t.Fatalf("bindings (-want +got):\n%s", diff)
	}
	evs := n.drainEvents()
	if !slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == Removed && e.Binding.Contact == "sip:erin@192.0.2.1" }) {
		t.Fatalf("events %v lack Removed for the oldest binding", evs)
	}
}

func TestRegisterAuthentication(t *testing.T) {
	n := startNode(t, nodeOpts{authCfg: auth.Config{Realm: "convergo.test"}})
	aor := n.addUser("frank")
	n.addUser("grace")
	d := newUA(t, "UDP")

	// The challenge offers Digest SHA-256 and MD5.
	res := d.send(n.addr("udp"), d.registerReq(aor, contactLine("sip:frank@192.0.2.1", "", 0, "")))
	if res.StatusCode != 401 {
		t.Fatalf("unauthenticated REGISTER: %d, want 401", res.StatusCode)
	}
	var algs []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if c, err := auth.ParseAuthorization(h.Value()); err == nil && c.Is("Digest") {
			a, _ := c.Param("algorithm")
			algs = append(algs, a)
		}
	}
	if diff := cmp.Diff([]string{"SHA-256", "MD5"}, algs); diff != "" {
		t.Fatalf("digest challenges (-want +got):\n%s", diff)
	}
	if bs := n.list(aor); len(bs) != 0 {
		t.Fatalf("401 stored %d bindings", len(bs))
	}

	for _, alg := range []string{auth.DigestSHA256, auth.DigestMD5} {
		if res := d.register(n.addr("udp"), aor, "frank", alg, contactLine("sip:frank@192.0.2.1", "", 0, "")); res.StatusCode != 200 {
			t.Fatalf("%s REGISTER: %d %s", alg, res.StatusCode, res.Reason)
		}
	}
	// Wrong password: challenged again.
	req := d.registerReq(aor, contactLine("sip:frank@192.0.2.1", "", 0, ""))
	res = d.send(n.addr("udp"), req)
	req = d.registerReq(aor, contactLine("sip:frank@192.0.2.1", "", 0, ""))
	req.AppendHeader(sip.NewHeader("Authorization", digestAuthorization(t, res, auth.DigestMD5, "frank", "wrong", "REGISTER", req.Recipient.String())))
	if res = d.send(n.addr("udp"), req); res.StatusCode != 401 {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	// Frank may not register Grace's AOR.
	res = d.register(n.addr("udp"), "sip:grace@"+domain, "frank", auth.DigestMD5, contactLine("sip:frank@192.0.2.1", "", 0, ""))
	if res.StatusCode != 403 {
		t.Fatalf("foreign AOR: %d %q, want 403", res.StatusCode, res.Reason)
	}
	if bs := n.list("sip:grace@" + domain); len(bs) != 0 {
		t.Fatalf("403 stored %d bindings for grace", len(bs))
	}
}

func TestRegisterBadInput(t *testing.T) {
	n := startNode(t, nodeOpts{})
	aor := n.addUser("heidi")
	ok := contactLine("sip:heidi@192.0.2.1", inst1, 0, "")
	tests := []struct {
		name       string
		aor        string
		hdrs       []string
		wantCode   int
		wantReason string
	}{
		{"unknown user", "sip:nobody@" + domain, []string{ok}, 404, "Not Found"},
		{"tel contact", aor, []string{"Contact: <tel:+15551230001>"}, 400, "Invalid Contact URI Scheme"},
		{"contact without host", aor, []string{"Contact: <sip:heidi@>"}, 400, "Invalid Contact URI: Missing Host"},
		{"contact expires not a number", aor, []string{"Contact: <sip:heidi@192.0.2.1>;expires=soon"}, 400, "Invalid Contact Expires"},
		{"negative contact expires", aor, []string{"Contact: <sip:heidi@192.0.2.1>;expires=-5"}, 400, "Invalid Contact Expires"},
		{"empty instance", aor, []string{`Contact: <sip:heidi@192.0.2.1>;+sip.instance="<>"`}, 400, "Invalid +sip.instance"},
		{"instance with space", aor, []string{`Contact: <sip:heidi@192.0.2.1>;+sip.instance="<urn:a b>"`}, 400, "Invalid +sip.instance"},
		{"reg-id zero", aor, []string{contactLine("sip:heidi@192.0.2.1", inst1, 0, ";reg-id=0")}, 400, "Invalid reg-id"},
		{"reg-id not a number", aor, []string{contactLine("sip:heidi@192.0.2.1", inst1, 0, ";reg-id=x")}, 400, "Invalid reg-id"},
		{"expires header not a number", aor, []string{ok, "Expires: 1h"}, 400, "Invalid Expires"},
		{"wildcard with non-zero expires", aor, []string{"Contact: *", "Expires: 60"}, 400, "Invalid Contact: * Needs Expires 0"},
		{"wildcard without expires", aor, []string{"Contact: *"}, 400, "Invalid Contact: * Needs Expires 0"},
		{"wildcard among others", aor, []string{"Contact: *, <sip:heidi@192.0.2.1>", "Expires: 0"}, 400, "Invalid Contact: * Must Be Alone"},
		{"too many contacts", aor, []string{"Contact: " + strings.Repeat("<sip:h@192.0.2.1>, ", 10) + "<sip:h@192.0.2.2>"}, 400, "Too Many Contacts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newUA(t, "UDP")
			res := d.register(n.addr("udp"), tt.aor, "heidi", auth.DigestMD5, tt.hdrs...)
			if res.StatusCode != tt.wantCode || res.Reason != tt.wantReason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.wantCode, tt.wantReason)
			}
			if bs := n.list(aor); len(bs) != 0 {
				t.Fatalf("rejection left %d bindings", len(bs))
			}
			if evs := n.drainEvents(); len(evs) != 0 {
				t.Fatalf("rejection emitted %v", evs)
			}
		})
	}
	for result, want := range map[string]float64{resultNotFound: 1, resultBad: float64(len(tests) - 1)} {
		if got := counterValue(n.reg.metrics.registrations.WithLabelValues(result)); got != want {
			t.Errorf("registrations{result=%q} = %v, want %v", result, got, want)
		}
	}
	if _, err := n.reg.Targets(t.Context(), "sip:nobody@"+domain); err == nil {
		t.Fatal("Targets(unknown) = nil error, want 404")
	} else if code, _ := err.(*StatusError).SIPStatus(); code != 404 {
		t.Fatalf("Targets(unknown) status %d, want 404", code)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := (Config{MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: 30 * time.Minute, MaxBindings: 3,
		NodeURI: "sip:10.0.0.5:5060;transport=tcp"}).Validate(); err != nil {
		t.Fatalf("valid Config: %v", err)
	}
	err := Config{MinExpires: 2 * time.Hour, MaxExpires: time.Hour, DefaultExpires: 1500 * time.Millisecond,
		MaxBindings: -1, SweepInterval: -time.Second, MaxFlows: -2, NodeURI: "sip:user@host;transport=sctp"}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{
		"min_expires: 2h0m0s: must not exceed max_expires",
		"default_expires: 1.5s: must be whole seconds",
		"max_bindings: -1: must be positive",
		"sweep_interval: -1s: must be positive",
		"max_flows: -2: must be positive",
		`node_uri: "sip:user@host;transport=sctp": want sip:host[:port][;transport=x] without a user part`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q\nmissing %q", err, want)
		}
	}
}

// TestRegisterBearer: a REGISTER carrying a JWT from POST /v1/auth/login
// is accepted without a challenge, and its expiry is capped at the token's
// lifetime (RFC 8898 §2.3).
func TestRegisterBearer(t *testing.T) {
	n := startNode(t, nodeOpts{authCfg: auth.Config{AccessTTL: 10 * time.Minute}})
	aor := n.addUser("pat")
	mux := http.NewServeMux()
	n.auth.Routes(mux)
	rec := httptest.NewRecorder()
	body := `{"username":"pat","password":"` + password + `","device":"` + inst1 + `"}`
	login := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/auth/login", strings.NewReader(body))
	login.Header.Set("Content-Type", "application/json")
	mux.ServeHTTP(rec, login)
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &pair); err != nil || pair.AccessToken == "" {
		t.Fatalf("login body %s: %v", rec.Body, err)
	}
	d := newUA(t, "TCP")
	req := d.registerReq(aor, contactLine("sip:pat@192.0.2.8;transport=tcp", inst1, 1, ""), "Expires: 3600",
		"Authorization: Bearer "+pair.AccessToken)
	res := d.send(n.addr("tcp"), req)
	if res.StatusCode != 200 {
		t.Fatalf("Bearer REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if e := expiresOf(t, contacts(res)[0]); e > 600 || e < 590 {
		t.Fatalf("granted %d s, want at most the token's 600 s", e)
	}
	// A token does not let pat register someone else.
	other := n.addUser("quinn")
	req = d.registerReq(other, contactLine("sip:pat@192.0.2.8;transport=tcp", inst1, 1, ""), "Authorization: Bearer "+pair.AccessToken)
	if res := d.send(n.addr("tcp"), req); res.StatusCode != 403 || len(n.list(other)) != 0 {
		t.Fatalf("Bearer for another AOR: %d, %d bindings; want 403 and none", res.StatusCode, len(n.list(other)))
	}
}
