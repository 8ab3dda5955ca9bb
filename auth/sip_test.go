package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/icholy/digest"

	"github.com/convergo/convergo/store"
)

var (
	srcA = netip.MustParseAddrPort("192.0.2.1:5060")
	srcB = netip.MustParseAddrPort("192.0.2.2:5060")
)

// sipEnv is a Service on in-memory stores with a fixed clock.
type sipEnv struct {
	s     *Service
	a     *SIPAuth
	clk   *clock
	users *memUsers
	cfg   Config
}

func newSIPEnv(t *testing.T, change func(*Config)) *sipEnv {
	t.Helper()
	cfg := testConfig(t)
	if change != nil {
		change(&cfg)
	}
	users := newMemUsers()
	s, _ := newService(t, cfg, users, newMemTokens())
	e := &sipEnv{s: s, a: s.SIP(), clk: newClock(s), users: users, cfg: cfg}
	for _, id := range []string{"alice", "bob"} {
		u := newUser(t, cfg, id, "sip:"+id+"@example.net", "pw-"+id, "user")
		if id == "alice" {
			u.Tel = "tel:+15551230001"
		}
		users.set(u)
	}
	return e
}

// register builds a REGISTER for aor (To and From) as a UA would send it,
// and returns it re-parsed from the wire form.
func register(t *testing.T, aor string, auth ...string) *sip.Request {
	t.Helper()
	return request(t, sip.REGISTER, "sip:example.net", aor, aor, auth...)
}

func request(t *testing.T, method sip.RequestMethod, ruri, to, from string, auth ...string) *sip.Request {
	t.Helper()
	var recipient sip.Uri
	if err := sip.ParseUri(ruri, &recipient); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(method, recipient)
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1"))
	req.AppendHeader(sip.NewHeader("From", "<"+from+">;tag=f1"))
	req.AppendHeader(sip.NewHeader("To", "<"+to+">"))
	req.AppendHeader(sip.NewHeader("Call-ID", "call-1"))
	req.AppendHeader(sip.NewHeader("CSeq", "1 "+string(method)))
	req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@192.0.2.1:5060>"))
	for _, a := range auth {
		req.AppendHeader(sip.NewHeader("Authorization", a))
	}
	msg, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		t.Fatalf("parse REGISTER: %v\n%s", err, req)
	}
	return msg.(*sip.Request)
}

// sipErr asserts err is a *SIPError with code.
func sipErr(t *testing.T, err error, code int) *SIPError {
	t.Helper()
	var se *SIPError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v, want *SIPError %d", err, code)
	}
	if se.Code != code {
		t.Fatalf("code = %d %s (%v), want %d", se.Code, se.Reason, se.Err, code)
	}
	return se
}

func headerValues(hs []sip.Header, name string) []string {
	var out []string
	for _, h := range hs {
		if strings.EqualFold(h.Name(), name) {
			out = append(out, h.Value())
		}
	}
	return out
}

// answer computes an Authorization for the challenge of alg in hs with an
// independent client implementation (github.com/icholy/digest, used by sipgo).
func answer(t *testing.T, hs []sip.Header, alg, user, password string, req *sip.Request, nc int) string {
	t.Helper()
	for _, v := range headerValues(hs, "WWW-Authenticate") {
		if !strings.HasPrefix(v, "Digest ") || !strings.Contains(v, "algorithm="+alg+",") {
			continue
		}
		chal, err := digest.ParseChallenge(v)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(chal, digest.Options{
			Method: string(req.Method), URI: req.Recipient.String(), Username: user, Password: password, Count: nc,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	t.Fatalf("no %s challenge in %v", alg, headerValues(hs, "WWW-Authenticate"))
	return ""
}

func TestSIPDigestFlow(t *testing.T) {
	e := newSIPEnv(t, nil)
	ctx := t.Context()

	// 1. No credentials: Bearer, then Digest SHA-256, then MD5, one nonce.
	req := register(t, "sip:alice@example.net")
	_, err := e.a.Authenticate(ctx, req, srcA)
	se := sipErr(t, err, 401)
	if se.Reason != "Unauthorized" || !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("reason %q err %v", se.Reason, se.Err)
	}
	chal := headerValues(se.Headers, "WWW-Authenticate")
	if len(chal) != 3 {
		t.Fatalf("challenges = %q", chal)
	}
	nonce := strings.Split(strings.Split(chal[1], `nonce="`)[1], `"`)[0]
	want := []string{
		`Bearer realm="example.net", scope="sip"`,
		`Digest realm="example.net", nonce="` + nonce + `", algorithm=SHA-256, qop="auth"`,
		`Digest realm="example.net", nonce="` + nonce + `", algorithm=MD5, qop="auth"`,
	}
	if diff := cmp.Diff(want, chal); diff != "" {
		t.Fatalf("challenges (-want +got):\n%s", diff)
	}
	// The challenge survives sipgo's response building and parsing.
	res := se.Response(req)
	parsed, err := sip.ParseMessage([]byte(res.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := headerValues(parsed.(*sip.Response).Headers(), "WWW-Authenticate"); !cmp.Equal(got, want) {
		t.Fatalf("on the wire: %q", got)
	}
	if res.StatusCode != 401 {
		t.Fatalf("response status %d", res.StatusCode)
	}

	// 2. SHA-256 answer succeeds.
	authz := answer(t, se.Headers, "SHA-256", "alice", "pw-alice", req, 1)
	p, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", authz), srcA)
	if err != nil {
		t.Fatalf("SHA-256 answer: %v", err)
	}
	if p.User.ID != "alice" || !p.Expires.IsZero() || p.Device != "" {
		t.Fatalf("principal = %+v", p)
	}

	// 3. The same request again (nc=1 replayed) is refused with a fresh challenge.
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", authz), srcA)
	se = sipErr(t, err, 401)
	if !errors.Is(err, ErrReplay) || strings.Contains(strings.Join(headerValues(se.Headers, "WWW-Authenticate"), ""), "stale") {
		t.Fatalf("replay: %v %q", err, headerValues(se.Headers, "WWW-Authenticate"))
	}

	// 4. nc=2 on the same nonce is fine; MD5 works too (nc=3, other alg, same nonce).
	first := []sip.Header{sip.NewHeader("WWW-Authenticate", want[1]), sip.NewHeader("WWW-Authenticate", want[2])}
	if _, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, first, "SHA-256", "alice", "pw-alice", req, 2)), srcA); err != nil {
		t.Fatalf("nc=2: %v", err)
	}
	if _, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, first, "MD5", "alice", "pw-alice", req, 3)), srcA); err != nil {
		t.Fatalf("MD5 nc=3: %v", err)
	}

	// 5. The tel alias is accepted as the AOR for Digest.
	telReq := register(t, "sip:alice@example.net")
	if _, err := e.a.Authenticate(ctx, register(t, "tel:+15551230001", answer(t, first, "MD5", "alice", "pw-alice", telReq, 4)), srcA); err != nil {
		t.Fatalf("tel alias: %v", err)
	}

	// 6. Stale nonce: correct answer over an expired nonce → stale=true.
	e.clk.advance(5*time.Minute + time.Second)
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, first, "SHA-256", "alice", "pw-alice", req, 9)), srcA)
	se = sipErr(t, err, 401)
	if !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("stale: %v", err)
	}
	for _, v := range headerValues(se.Headers, "WWW-Authenticate")[1:] {
		if !strings.HasSuffix(v, ", stale=true") {
			t.Fatalf("stale challenge = %q", v)
		}
	}
	// ... the client retries with the new nonce and succeeds.
	if _, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, se.Headers, "SHA-256", "alice", "pw-alice", req, 1)), srcA); err != nil {
		t.Fatalf("after stale: %v", err)
	}
	// A wrong password over the stale nonce is not told stale=true.
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, first, "SHA-256", "alice", "wrong", req, 10)), srcA)
	se = sipErr(t, err, 401)
	if strings.Contains(strings.Join(headerValues(se.Headers, "WWW-Authenticate"), ""), "stale") || !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password, stale nonce: %v %q", err, headerValues(se.Headers, "WWW-Authenticate"))
	}
}

func TestSIPDigestFailures(t *testing.T) {
	e := newSIPEnv(t, func(c *Config) { c.DigestAlgorithms = []string{"SHA-256"} })
	ctx := t.Context()
	base := register(t, "sip:alice@example.net")
	_, err := e.a.Authenticate(ctx, base, srcA)
	chal := sipErr(t, err, 401).Headers
	if n := len(headerValues(chal, "WWW-Authenticate")); n != 2 {
		t.Fatalf("%d challenges with only SHA-256 configured", n)
	}
	md5Chal := []sip.Header{sip.NewHeader("WWW-Authenticate", strings.Replace(headerValues(chal, "WWW-Authenticate")[1], "SHA-256", "MD5", 1))}
	good := answer(t, chal, "SHA-256", "alice", "pw-alice", base, 1)
	forged := strings.Replace(good, `nonce="`, `nonce="A`, 1)
	// An answer computed for sip:example.net sent with another Request-URI.
	otherRURI := request(t, sip.REGISTER, "sip:other.example.net", "sip:alice@example.net", "sip:alice@example.net",
		answer(t, chal, "SHA-256", "alice", "pw-alice", base, 3))

	e.users.set(func() store.User {
		u := newUser(t, e.cfg, "dave", "sip:dave@example.net", "pw-dave", "user")
		u.Disabled = true
		return u
	}())

	tests := []struct {
		name   string
		req    *sip.Request
		code   int
		reason string
		is     error
	}{
		{"wrong password", register(t, "sip:alice@example.net", answer(t, chal, "SHA-256", "alice", "nope", base, 1)), 401, "Unauthorized", ErrInvalidCredentials},
		{"unknown user", register(t, "sip:zed@example.net", answer(t, chal, "SHA-256", "zed", "x", base, 1)), 401, "Unauthorized", ErrInvalidCredentials},
		{"algorithm not offered", register(t, "sip:alice@example.net", answer(t, md5Chal, "MD5", "alice", "pw-alice", base, 1)), 401, "Unauthorized", ErrInvalidCredentials},
		{"forged nonce", register(t, "sip:alice@example.net", forged), 401, "Unauthorized", ErrInvalidCredentials},
		{"other realm is no credential", register(t, "sip:alice@example.net", strings.Replace(good, `realm="example.net"`, `realm="elsewhere"`, 1)), 401, "Unauthorized", ErrNoCredentials},
		{"uri is not the Request-URI", otherRURI, 400, "Bad Request", ErrMalformed},
		{"malformed header", register(t, "sip:alice@example.net", `Digest username="alice`), 400, "Bad Request", ErrMalformed},
		{"no qop", register(t, "sip:alice@example.net", `Digest username="alice", realm="example.net", nonce="x", uri="sip:example.net", response="00"`), 400, "Bad Request", ErrMalformed},
		{"someone else's AOR", register(t, "sip:bob@example.net", answer(t, chal, "SHA-256", "alice", "pw-alice", base, 2)), 403, "Forbidden", ErrForbidden},
		{"disabled", register(t, "sip:dave@example.net", answer(t, chal, "SHA-256", "dave", "pw-dave", base, 5)), 403, "Forbidden", ErrDisabled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), 5060)
			_, err := e.a.Authenticate(ctx, tt.req, src)
			se := sipErr(t, err, tt.code)
			if se.Reason != tt.reason || !errors.Is(err, tt.is) {
				t.Fatalf("got %d %s (%v), want %s and %v", se.Code, se.Reason, err, tt.reason, tt.is)
			}
			if tt.code == 401 && len(headerValues(se.Headers, "WWW-Authenticate")) != 2 {
				t.Fatalf("401 without challenges: %v", se.Headers)
			}
		})
	}
	// A non-REGISTER request is checked against From.
	msg := request(t, sip.MESSAGE, "sip:bob@example.net", "sip:bob@example.net", "sip:alice@example.net")
	_, err = e.a.Authenticate(ctx, msg, srcA)
	msgChal := sipErr(t, err, 401).Headers
	msg = request(t, sip.MESSAGE, "sip:bob@example.net", "sip:bob@example.net", "sip:alice@example.net", answer(t, msgChal, "SHA-256", "alice", "pw-alice", msg, 1))
	if _, err := e.a.Authenticate(ctx, msg, srcA); err != nil {
		t.Fatalf("MESSAGE from alice: %v", err)
	}
}

func TestSIPRateLimit(t *testing.T) {
	e := newSIPEnv(t, nil)
	ctx := t.Context()
	base := register(t, "sip:alice@example.net")
	_, err := e.a.Authenticate(ctx, base, srcA)
	chal := sipErr(t, err, 401).Headers

	// Five wrong answers for alice from different addresses block alice.
	for i := range 5 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 5060)
		_, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, chal, "SHA-256", "alice", "bad", base, i+1)), src)
		sipErr(t, err, 401)
	}
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, chal, "SHA-256", "alice", "pw-alice", base, 10)), srcB)
	se := sipErr(t, err, 503)
	if se.Reason != "Service Unavailable" || !errors.Is(err, ErrRateLimited) || !cmp.Equal(headerValues(se.Headers, "Retry-After"), []string{"60"}) {
		t.Fatalf("blocked user: %d %s %v %v", se.Code, se.Reason, err, headerValues(se.Headers, "Retry-After"))
	}
	// bob is not affected.
	if _, err := e.a.Authenticate(ctx, register(t, "sip:bob@example.net", answer(t, chal, "SHA-256", "bob", "pw-bob", base, 11)), srcB); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// An address with five bad tokens is blocked for everything, even without credentials.
	for range 5 {
		_, err := e.a.Authenticate(ctx, register(t, "sip:bob@example.net", "Bearer not.a.jwt"), srcA)
		sipErr(t, err, 401)
	}
	_, err = e.a.Authenticate(ctx, register(t, "sip:bob@example.net"), srcA)
	sipErr(t, err, 503)
	// Blocks end.
	e.clk.advance(61 * time.Second)
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net"), srcA)
	chal = sipErr(t, err, 401).Headers
	if _, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", answer(t, chal, "SHA-256", "alice", "pw-alice", base, 1)), srcA); err != nil {
		t.Fatalf("after the block: %v", err)
	}
}

func TestSIPBearer(t *testing.T) {
	e := newSIPEnv(t, nil)
	ctx := t.Context()
	now := e.clk.now()
	alice, _ := e.users.Get(ctx, "alice")
	tok, claims, err := e.s.issueAccess(alice, "urn:uuid:dev-1", "fam", now)
	if err != nil {
		t.Fatal(err)
	}

	p, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", "Bearer "+tok), srcA)
	if err != nil {
		t.Fatalf("valid bearer: %v", err)
	}
	if p.User.ID != "alice" || p.Device != "urn:uuid:dev-1" || !p.Expires.Equal(claims.ExpiresAt.Time) {
		t.Fatalf("principal = %+v", p)
	}
	// Case-insensitive scheme, and extra Digest credentials for another realm are ignored.
	if _, err := e.a.Authenticate(ctx, register(t, "sip:alice@example.net", `Digest username="x", realm="other"`, "bearer "+tok), srcA); err != nil {
		t.Fatalf("bearer with foreign digest: %v", err)
	}

	_, err = e.a.Authenticate(ctx, register(t, "sip:bob@example.net", "Bearer "+tok), srcA)
	if se := sipErr(t, err, 403); se.Reason != "Forbidden" || !errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong identity: %v", err)
	}

	e.clk.advance(16 * time.Minute)
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", "Bearer "+tok), srcA)
	se := sipErr(t, err, 401)
	chal := headerValues(se.Headers, "WWW-Authenticate")
	if len(chal) != 3 || chal[0] != `Bearer realm="example.net", scope="sip", error="invalid_token", error_description="expired"` ||
		!strings.HasPrefix(chal[1], "Digest ") || !strings.Contains(chal[1], "SHA-256") || !strings.Contains(chal[2], "MD5") {
		t.Fatalf("expired token challenges = %q", chal)
	}

	// Disabled account.
	tok, _, _ = e.s.issueAccess(alice, "", "fam", e.clk.now())
	alice.Disabled = true
	e.users.set(alice)
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", "Bearer "+tok), srcA)
	if sipErr(t, err, 403); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	_, err = e.a.Authenticate(ctx, register(t, "sip:alice@example.net", "Bearer"), srcA)
	sipErr(t, err, 400)
}

func TestSIPBearerDisabledAndAuthzServer(t *testing.T) {
	e := newSIPEnv(t, func(c *Config) { c.AuthzServer = "https://idp.example.net/login" })
	_, err := e.a.Authenticate(t.Context(), register(t, "sip:alice@example.net"), srcA)
	if got := headerValues(sipErr(t, err, 401).Headers, "WWW-Authenticate")[0]; got != `Bearer realm="example.net", authz_server="https://idp.example.net/login", scope="sip"` {
		t.Fatalf("bearer challenge = %q", got)
	}

	e = newSIPEnv(t, func(c *Config) { c.DisableSIPBearer = true })
	alice, _ := e.users.Get(t.Context(), "alice")
	tok, _, _ := e.s.issueAccess(alice, "", "", e.clk.now())
	_, err = e.a.Authenticate(t.Context(), register(t, "sip:alice@example.net", "Bearer "+tok), srcA)
	chal := headerValues(sipErr(t, err, 401).Headers, "WWW-Authenticate")
	if len(chal) != 2 || !strings.HasPrefix(chal[0], "Digest ") {
		t.Fatalf("challenges with bearer disabled = %q", chal)
	}
	if got := len(e.a.Challenges()); got != 2 {
		t.Fatalf("Challenges() = %d headers", got)
	}
}

func TestSIPStoreFailure(t *testing.T) {
	e := newSIPEnv(t, nil)
	tokens := newMemTokens()
	e.s.tokens = tokens
	alice, _ := e.users.Get(t.Context(), "alice")
	tok, _, _ := e.s.issueAccess(alice, "", "fam", e.clk.now())
	tokens.fail = errors.New("redis down")
	_, err := e.a.Authenticate(t.Context(), register(t, "sip:alice@example.net", "Bearer "+tok), srcA)
	if se := sipErr(t, err, 500); se.Reason != "Server Internal Error" {
		t.Fatalf("reason %q", se.Reason)
	}
}

// TestSIPWithSipgoUAs registers a real sipgo client, which answers the
// first WWW-Authenticate only, against a sipgo server that authenticates
// with SIPAuth (Bearer disabled so that the first challenge is Digest).
func TestSIPWithSipgoUAs(t *testing.T) {
	e := newSIPEnv(t, func(c *Config) { c.DisableSIPBearer = true })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	quietTransport := sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet))
	srvUA, err := sipgo.NewUA(sipgo.WithUserAgent("convergo-test"), quietTransport)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(srvUA, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   Principal
		err error
	}
	results := make(chan result, 8)
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		src, _ := netip.ParseAddrPort(req.Source())
		p, err := e.a.Authenticate(ctx, req, src)
		results <- result{p, err}
		var se *SIPError
		if errors.As(err, &se) {
			_ = tx.Respond(se.Response(req))
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	defer func() {
		_ = conn.Close() // ends ServeUDP
		<-served
		_ = srvUA.Close()
	}()

	cliUA, err := sipgo.NewUA(sipgo.WithUserAgent("alice"), sipgo.WithUserAgentHostname("127.0.0.1"), quietTransport)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cliUA.Close() }()
	client, err := sipgo.NewClient(cliUA, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()

	port := conn.LocalAddr().(*net.UDPAddr).Port
	doRegister := func(password string) int {
		var ruri sip.Uri
		_ = sip.ParseUri(fmt.Sprintf("sip:127.0.0.1:%d", port), &ruri)
		req := sip.NewRequest(sip.REGISTER, ruri)
		req.AppendHeader(sip.NewHeader("To", "<sip:alice@example.net>"))
		req.AppendHeader(sip.NewHeader("From", "<sip:alice@example.net>;tag="+sip.GenerateTagN(8)))
		req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@127.0.0.1>"))
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		res, err := client.Do(rctx, req)
		if err != nil {
			t.Fatalf("REGISTER: %v", err)
		}
		if res.StatusCode != 401 {
			t.Fatalf("first REGISTER = %d, want 401", res.StatusCode)
		}
		res, err = client.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: "alice", Password: password})
		if err != nil {
			t.Fatalf("REGISTER with digest: %v", err)
		}
		return res.StatusCode
	}
	if code := doRegister("pw-alice"); code != 200 {
		t.Fatalf("authenticated REGISTER = %d", code)
	}
	<-results // the challenge
	if r := <-results; r.err != nil || r.p.User.ID != "alice" {
		t.Fatalf("server side: %+v", r)
	}
	if code := doRegister("wrong"); code != 401 {
		t.Fatalf("wrong password REGISTER = %d", code)
	}
}
