package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
)

// httpEnv is a Service on the real bolt store behind a ServeMux.
type httpEnv struct {
	t     *testing.T
	s     *Service
	st    *bolt.Store
	reg   *prometheus.Registry
	clk   *clock
	mux   *http.ServeMux
	cfg   Config
	users store.Users
}

func newHTTPEnv(t *testing.T, change func(*Config)) *httpEnv {
	t.Helper()
	st, err := bolt.Open(bolt.Config{Path: filepath.Join(t.TempDir(), "db")}, zap.NewNop())
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := testConfig(t)
	if change != nil {
		change(&cfg)
	}
	s, reg := newService(t, cfg, st.Users(), st.Tokens())
	e := &httpEnv{t: t, s: s, st: st, reg: reg, clk: newClock(s), mux: http.NewServeMux(), cfg: cfg, users: st.Users()}
	s.Routes(e.mux)
	return e
}

// addUser creates a user in the store with password "pw-<id>".
func (e *httpEnv) addUser(id string, roles ...string) store.User {
	e.t.Helper()
	u := newUser(e.t, e.cfg, id, "sip:"+id+"@example.net", "pw-"+id, roles...)
	created, err := e.users.Create(e.t.Context(), u)
	if err != nil {
		e.t.Fatalf("Create(%s): %v", id, err)
	}
	return created
}

func (e *httpEnv) setDisabled(id string, disabled bool) {
	e.t.Helper()
	u, err := e.users.Get(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	u.Disabled = disabled
	if _, err := e.users.Update(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
}

type reqOpt func(*http.Request)

func withAuth(v string) reqOpt      { return func(r *http.Request) { r.Header.Set("Authorization", v) } }
func withBearer(tok string) reqOpt  { return withAuth("Bearer " + tok) }
func withRemote(addr string) reqOpt { return func(r *http.Request) { r.RemoteAddr = addr } }
func withCT(ct string) reqOpt       { return func(r *http.Request) { r.Header.Set("Content-Type", ct) } }
func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Add(k, v) } }

// do sends a request through the mux; a string body is sent as JSON.
func (e *httpEnv) do(method, path, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequestWithContext(e.t.Context(), method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.RemoteAddr = "192.0.2.10:40000"
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

func (e *httpEnv) login(user, password string, opts ...reqOpt) TokenPair {
	e.t.Helper()
	w := e.do("POST", "/v1/auth/login", `{"username":"`+user+`","password":"`+password+`","device":"urn:uuid:dev-1"}`, opts...)
	if w.Code != http.StatusOK {
		e.t.Fatalf("login(%s) = %d %s", user, w.Code, w.Body)
	}
	var p TokenPair
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// problemOf checks a problem+json response and returns its members.
func problemOf(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("content-type = %q, want %q", ct, problem.ContentType)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("problem body: %v", err)
	}
	if m["status"] != float64(status) {
		t.Fatalf("problem status = %v, want %d", m["status"], status)
	}
	return m
}

func TestLogin(t *testing.T) {
	e := newHTTPEnv(t, nil)
	alice := e.addUser("alice", "user")
	e.addUser("dave", "user")
	e.setDisabled("dave", true)

	w := e.do("POST", "/v1/auth/login", `{"username":"alice","password":"pw-alice","device":"urn:uuid:dev-1"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("login = %d %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	var pair map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &pair)
	if pair["token_type"] != "Bearer" || pair["expires_in"] != float64(900) || len(pair["refresh_token"].(string)) != 43 {
		t.Fatalf("login body = %v", pair)
	}
	c, err := e.s.VerifyToken(t.Context(), pair["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.SIPIdentity != alice.Identity || c.Device != "urn:uuid:dev-1" || c.SessionID == "" ||
		!cmp.Equal(c.Perms, e.s.Perms([]string{"user"})) {
		t.Fatalf("claims = %+v", c)
	}
	if got := counter(t, e.reg, "convergo_auth_logins_total", nil); got != 1 {
		t.Fatalf("logins_total = %v", got)
	}

	bad := []struct {
		name, body, ct, wantType string
		status                   int
	}{
		{"wrong password", `{"username":"alice","password":"nope"}`, "", ProblemInvalidCredentials, 401},
		{"unknown user", `{"username":"mallory","password":"nope"}`, "", ProblemInvalidCredentials, 401},
		{"disabled, right password", `{"username":"dave","password":"pw-dave"}`, "", ProblemAccountDisabled, 403},
		{"disabled, wrong password", `{"username":"dave","password":"x"}`, "", ProblemInvalidCredentials, 401},
		{"malformed json", `{"username":"alice",`, "", "", 400},
		{"trailing data", `{"username":"alice","password":"pw-alice"} {}`, "", "", 400},
		{"wrong types", `{"username":1,"password":"pw-alice"}`, "", "", 400},
		{"array", `[]`, "", "", 400},
		{"missing password", `{"username":"alice"}`, "", "", 400},
		{"control chars", `{"username":"al\nice","password":"x"}`, "", "", 400},
		{"text/plain", `{"username":"alice","password":"pw-alice"}`, "text/plain", "", 415},
		{"form", `username=alice`, "application/x-www-form-urlencoded", "", 415},
		{"json with charset is fine but wrong password", `{"username":"alice","password":"x"}`, "application/json; charset=utf-8", ProblemInvalidCredentials, 401},
		{"oversize", `{"username":"alice","password":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "", "", 413},
	}
	var wrongBody string
	for i, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			opts := []reqOpt{withRemote("198.51.100." + string(rune('1'+i%9)) + ":1")}
			if tt.ct != "" {
				opts = append(opts, withCT(tt.ct))
			}
			w := e.do("POST", "/v1/auth/login", tt.body, opts...)
			p := problemOf(t, w, tt.status)
			if tt.wantType != "" && p["type"] != tt.wantType {
				t.Fatalf("type = %v, want %s", p["type"], tt.wantType)
			}
			if tt.status == 401 {
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="example.net"`) {
					t.Fatalf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
				}
				// Unknown user and wrong password are indistinguishable.
				if wrongBody == "" {
					wrongBody = w.Body.String()
				} else if w.Body.String() != wrongBody {
					t.Fatalf("401 bodies differ:\n%s\n%s", wrongBody, w.Body)
				}
			}
		})
	}
	// Chunked oversize body (no Content-Length) is cut by MaxBytesReader.
	r := httptest.NewRequestWithContext(t.Context(), "POST", "/v1/auth/login",
		io.MultiReader(strings.NewReader(`{"username":"`), strings.NewReader(strings.Repeat("a", 2*MaxBodyBytes))))
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = -1
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	problemOf(t, rec, 413)

	// Nothing changed in the store.
	got, err := e.users.Get(t.Context(), "alice")
	if err != nil || got.Version != alice.Version || got.PasswordHash != alice.PasswordHash {
		t.Fatalf("alice changed: %+v, %v", got, err)
	}
	if n := counter(t, e.reg, "convergo_auth_failures_total", map[string]string{"kind": "login", "reason": "unknown_user"}); n != 1 {
		t.Fatalf("unknown_user failures = %v", n)
	}
	// The dummy hash costs what a real one does.
	p, _, _, err := parsePHC(e.s.dummyPHC)
	if err != nil || p != e.s.cfg.Argon2 {
		t.Fatalf("dummy hash params %+v, %v; want %+v", p, err, e.s.cfg.Argon2)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	e.addUser("bob", "user")
	login := func(user, password, addr string) *httptest.ResponseRecorder {
		return e.do("POST", "/v1/auth/login", `{"username":"`+user+`","password":"`+password+`"}`, withRemote(addr))
	}
	// Per user: 5 failures from 5 addresses block alice everywhere.
	for i := range 5 {
		if w := login("alice", "wrong", "203.0.113."+string(rune('1'+i))+":5060"); w.Code != 401 {
			t.Fatalf("failure %d = %d", i+1, w.Code)
		}
	}
	w := login("alice", "pw-alice", "203.0.113.9:1")
	p := problemOf(t, w, 429)
	if p["type"] != ProblemRateLimited || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("429 = %v, Retry-After %q", p, w.Header().Get("Retry-After"))
	}
	if w := login("bob", "pw-bob", "203.0.113.9:1"); w.Code != 200 {
		t.Fatalf("bob blocked by alice's failures: %d", w.Code)
	}
	// Per address: 5 failures for different users block the address.
	for i := range 5 {
		login("nobody"+string(rune('a'+i)), "x", "[2001:db8::1]:5060")
	}
	if w := login("bob", "pw-bob", "[2001:db8::2]:5060"); w.Code != 429 { // same /64
		t.Fatalf("bob from a blocked /64 = %d", w.Code)
	}
	// The block ends.
	e.clk.advance(61 * time.Second)
	if w := login("alice", "pw-alice", "203.0.113.9:1"); w.Code != 200 {
		t.Fatalf("after the block = %d %s", w.Code, w.Body)
	}
	if n := counter(t, e.reg, "convergo_auth_failures_total", map[string]string{"kind": "login", "reason": "rate_limited"}); n != 2 {
		t.Fatalf("rate_limited failures = %v, want 2", n)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	p1 := e.login("alice", "pw-alice")
	refresh := func(tok string) *httptest.ResponseRecorder {
		return e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+tok+`"}`)
	}

	// Bad input first: nothing may be consumed.
	for _, tt := range []struct {
		name, body, ct string
		status         int
	}{
		{"empty token", `{"refresh_token":""}`, "", 400},
		{"not ours", `{"refresh_token":"abc"}`, "", 401},
		{"unknown", `{"refresh_token":"` + strings.Repeat("A", 43) + `"}`, "", 401},
		{"malformed", `{"refresh_token":`, "", 400},
		{"wrong content type", `{"refresh_token":"` + p1.RefreshToken + `"}`, "text/plain", 415},
	} {
		opts := []reqOpt{withRemote("198.51.100.7:1")}
		if tt.ct != "" {
			opts = append(opts, withCT(tt.ct))
		}
		problemOf(t, e.do("POST", "/v1/auth/refresh", tt.body, opts...), tt.status)
	}

	w := refresh(p1.RefreshToken)
	if w.Code != 200 {
		t.Fatalf("refresh = %d %s", w.Code, w.Body)
	}
	var p2 TokenPair
	_ = json.Unmarshal(w.Body.Bytes(), &p2)
	if p2.RefreshToken == p1.RefreshToken || p2.AccessToken == p1.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	c1, _ := e.s.VerifyToken(t.Context(), p1.AccessToken)
	c2, err := e.s.VerifyToken(t.Context(), p2.AccessToken)
	if err != nil || c2.SessionID != c1.SessionID || c2.Device != "urn:uuid:dev-1" {
		t.Fatalf("rotated claims = %+v, %v", c2, err)
	}
	// p2 rotates once more to p3.
	w = refresh(p2.RefreshToken)
	var p3 TokenPair
	_ = json.Unmarshal(w.Body.Bytes(), &p3)
	if w.Code != 200 {
		t.Fatalf("second refresh = %d", w.Code)
	}

	// Reuse of p1 (stolen copy): 401, and the whole family dies.
	p := problemOf(t, refresh(p1.RefreshToken), 401)
	if p["type"] != ProblemRefreshReused {
		t.Fatalf("reuse problem = %v", p)
	}
	problemOf(t, refresh(p3.RefreshToken), 401) // the newest refresh token too
	for _, tok := range []string{p1.AccessToken, p2.AccessToken, p3.AccessToken} {
		p := problemOf(t, e.do("GET", "/v1/me", "", withBearer(tok)), 401)
		if p["detail"] != "token rejected: revoked" {
			t.Fatalf("access token of revoked family: %v", p)
		}
	}
	if n := counter(t, e.reg, "convergo_auth_failures_total", map[string]string{"kind": "refresh", "reason": "reused"}); n != 1 {
		t.Fatalf("reused failures = %v", n)
	}
	// Another login is a new family and works.
	p4 := e.login("alice", "pw-alice")
	if w := refresh(p4.RefreshToken); w.Code != 200 {
		t.Fatalf("refresh of a new session = %d", w.Code)
	}
}

func TestRefreshExpiredAndDisabled(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	p := e.login("alice", "pw-alice")
	e.clk.advance(31 * 24 * time.Hour)
	problemOf(t, e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`), 401)

	p = e.login("alice", "pw-alice")
	e.setDisabled("alice", true)
	problemOf(t, e.do("GET", "/v1/me", "", withBearer(p.AccessToken)), 403)
	pr := problemOf(t, e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`), 403)
	if pr["type"] != ProblemAccountDisabled {
		t.Fatalf("problem = %v", pr)
	}
	// The refused refresh ended the session: its access token is revoked too.
	pr = problemOf(t, e.do("GET", "/v1/me", "", withBearer(p.AccessToken)), 401)
	if pr["detail"] != "token rejected: revoked" {
		t.Fatalf("problem = %v", pr)
	}
}

func TestLogout(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	e.addUser("bob", "user")

	t.Run("with refresh token", func(t *testing.T) {
		p := e.login("alice", "pw-alice")
		if w := e.do("GET", "/v1/me", "", withBearer(p.AccessToken)); w.Code != 200 {
			t.Fatalf("me = %d", w.Code)
		}
		w := e.do("POST", "/v1/auth/logout", `{"refresh_token":"`+p.RefreshToken+`"}`, withBearer(p.AccessToken))
		if w.Code != http.StatusNoContent {
			t.Fatalf("logout = %d %s", w.Code, w.Body)
		}
		problemOf(t, e.do("GET", "/v1/me", "", withBearer(p.AccessToken)), 401)
		problemOf(t, e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`), 401)
	})
	t.Run("without body revokes the session", func(t *testing.T) {
		p := e.login("alice", "pw-alice")
		if w := e.do("POST", "/v1/auth/logout", "", withBearer(p.AccessToken)); w.Code != http.StatusNoContent {
			t.Fatalf("logout = %d %s", w.Code, w.Body)
		}
		problemOf(t, e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`), 401)
	})
	t.Run("other sessions survive", func(t *testing.T) {
		p1 := e.login("alice", "pw-alice")
		p2 := e.login("alice", "pw-alice")
		e.do("POST", "/v1/auth/logout", "", withBearer(p1.AccessToken))
		if w := e.do("GET", "/v1/me", "", withBearer(p2.AccessToken)); w.Code != 200 {
			t.Fatalf("other session's token = %d", w.Code)
		}
	})
	t.Run("someone else's refresh token is not revoked", func(t *testing.T) {
		pa := e.login("alice", "pw-alice")
		pb := e.login("bob", "pw-bob")
		e.do("POST", "/v1/auth/logout", `{"refresh_token":"`+pb.RefreshToken+`"}`, withBearer(pa.AccessToken))
		if w := e.do("GET", "/v1/me", "", withBearer(pb.AccessToken)); w.Code != 200 {
			t.Fatalf("bob's access token after alice's logout = %d", w.Code)
		}
	})
	t.Run("bad input changes nothing", func(t *testing.T) {
		p := e.login("alice", "pw-alice")
		problemOf(t, e.do("POST", "/v1/auth/logout", "", withBearer("x.y.z")), 401)
		problemOf(t, e.do("POST", "/v1/auth/logout", ""), 401)
		problemOf(t, e.do("POST", "/v1/auth/logout", `{"refresh_token":"short"}`, withBearer(p.AccessToken)), 400)
		problemOf(t, e.do("POST", "/v1/auth/logout", `{"refresh_token":`, withBearer(p.AccessToken)), 400)
		problemOf(t, e.do("POST", "/v1/auth/logout", `x`, withBearer(p.AccessToken), withCT("text/plain")), 415)
		if w := e.do("GET", "/v1/me", "", withBearer(p.AccessToken)); w.Code != 200 {
			t.Fatalf("access token after refused logouts = %d", w.Code)
		}
		if w := e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`); w.Code != 200 {
			t.Fatalf("refresh token after refused logouts = %d", w.Code)
		}
	})
}

func TestMe(t *testing.T) {
	e := newHTTPEnv(t, nil)
	u := newUser(t, e.cfg, "carol", "sip:carol@example.net", "pw-carol", "operator", "user")
	u.Tel = "tel:+15551230001"
	u.DisplayName = "Carol C."
	if _, err := e.users.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	p := e.login("carol", "pw-carol")
	w := e.do("GET", "/v1/me", "", withBearer(p.AccessToken))
	if w.Code != 200 {
		t.Fatalf("me = %d %s", w.Code, w.Body)
	}
	var got map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	delete(got, "expires_at")
	want := map[string]any{
		"id": "carol", "identity": "sip:carol@example.net", "tel": "tel:+15551230001", "display_name": "Carol C.",
		"roles":  []any{"operator", "user"},
		"perms":  []any{"addressbook:read", "addressbook:write", "group:create", "message:read", "message:send", "metrics:read"},
		"device": "urn:uuid:dev-1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("me (-want +got):\n%s", diff)
	}
}

func TestBadTokensHTTP(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	p := e.login("alice", "pw-alice")
	parts := strings.Split(p.AccessToken, ".")
	none := b64JSON(t, map[string]string{"alg": "none", "kid": e.s.keys.signer.id}) + "." + parts[1] + "."
	tests := []struct {
		name   string
		opts   []reqOpt
		status int
		detail string
	}{
		{"no header", nil, 401, "a bearer token is required"},
		{"basic", []reqOpt{withAuth("Basic YWxpY2U6cHc=")}, 401, "a bearer token is required"},
		{"bearer without token", []reqOpt{withAuth("Bearer")}, 400, "malformed Authorization header"},
		{"two tokens", []reqOpt{withAuth("Bearer a b")}, 400, "malformed Authorization header"},
		{"two headers", []reqOpt{withBearer(p.AccessToken), withHeader("Authorization", "Bearer x")}, 400, "malformed Authorization header"},
		{"tampered", []reqOpt{withBearer(parts[0] + "." + b64JSON(t, map[string]any{"sub": "root"}) + "." + parts[2])}, 401, "token rejected: bad signature"},
		{"alg none", []reqOpt{withBearer(none)}, 401, "token rejected: algorithm not allowed"},
		{"garbage", []reqOpt{withBearer("abc")}, 401, "token rejected: malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("GET", "/v1/me", "", tt.opts...)
			pr := problemOf(t, w, tt.status)
			if pr["detail"] != tt.detail {
				t.Fatalf("detail = %v, want %q", pr["detail"], tt.detail)
			}
			if tt.status == 401 && strings.HasPrefix(tt.detail, "token rejected") &&
				!strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// Expired, over HTTP.
	e.clk.advance(16 * time.Minute)
	pr := problemOf(t, e.do("GET", "/v1/me", "", withBearer(p.AccessToken)), 401)
	if pr["detail"] != "token rejected: expired" || pr["type"] != ProblemInvalidToken {
		t.Fatalf("expired = %v", pr)
	}
}

func TestRequirePerm(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("ops", "operator")
	e.addUser("alice", "user")
	e.addUser("nobody")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	e.mux.Handle("GET /admin/users", e.s.RequirePerm(PermUserManage, ok))
	e.mux.Handle("GET /metrics", e.s.RequirePerm(PermMetricsRead, ok))
	e.mux.Handle("POST /messages", e.s.RequirePerm(PermMessageSend, ok))
	e.mux.Handle("GET /groups/admin", e.s.Authenticate(e.s.RequirePerm(PermGroupAdmin, ok))) // already authenticated
	e.mux.Handle("GET /users/{id}/contacts", e.s.RequirePerm(PermAddressbookRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		if !CanAccess(c, r.PathValue("id")) {
			problem.Error(w, http.StatusForbidden, "not your address book")
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})))
	tokens := map[string]string{}
	for _, u := range []string{"root", "ops", "alice", "nobody"} {
		tokens[u] = e.login(u, "pw-"+u).AccessToken
	}
	tests := []struct {
		user, method, path string
		want               int
	}{
		{"root", "GET", "/admin/users", 418},
		{"ops", "GET", "/admin/users", 403},
		{"alice", "GET", "/admin/users", 403},
		{"root", "GET", "/metrics", 418},
		{"ops", "GET", "/metrics", 418},
		{"alice", "GET", "/metrics", 403},
		{"alice", "POST", "/messages", 418},
		{"ops", "POST", "/messages", 403},
		{"nobody", "POST", "/messages", 403},
		{"root", "GET", "/groups/admin", 418},
		{"alice", "GET", "/groups/admin", 403},
		{"alice", "GET", "/users/alice/contacts", 418},
		{"alice", "GET", "/users/root/contacts", 403},
		{"ops", "GET", "/users/alice/contacts", 403}, // may read address books, but not others'
		{"root", "GET", "/users/alice/contacts", 418},
		{"", "GET", "/metrics", 401},
		{"", "GET", "/groups/admin", 401},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.path, func(t *testing.T) {
			var opts []reqOpt
			if tt.user != "" {
				opts = append(opts, withBearer(tokens[tt.user]))
			}
			w := e.do(tt.method, tt.path, "", opts...)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.want, w.Body)
			}
			if tt.want == 403 && strings.HasPrefix(tt.path, "/admin") {
				pr := problemOf(t, w, 403)
				if pr["type"] != ProblemForbidden || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Fatalf("403 = %v %q", pr, w.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("RequirePerm with an unknown permission did not panic")
		}
	}()
	e.s.RequirePerm("everything:all", ok)
}

// TestHTTPServerFlow runs the main flow over a real HTTP server.
func TestHTTPServerFlow(t *testing.T) {
	e := newHTTPEnv(t, nil)
	e.addUser("alice", "user")
	srv := httptest.NewServer(e.mux)
	t.Cleanup(srv.Close)
	post := func(path, body, bearer string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = res.Body.Close() })
		return res
	}
	res := post("/v1/auth/login", `{"username":"alice","password":"pw-alice"}`, "")
	var p TokenPair
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != 200 {
		t.Fatalf("login = %d, %v", res.StatusCode, err)
	}
	res = post("/v1/auth/login", `{"username":"alice","password":"`+strings.Repeat("x", 2*MaxBodyBytes)+`"}`, "")
	if res.StatusCode != 413 {
		t.Fatalf("oversize over the wire = %d", res.StatusCode)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/.well-known/jwks.json", nil)
	jres, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(jres.Body)
	_ = jres.Body.Close()
	if jres.StatusCode != 200 || !bytes.Equal(body, e.s.keys.jwks) || jres.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("jwks = %d %s", jres.StatusCode, body)
	}
	if res := post("/v1/auth/logout", "", p.AccessToken); res.StatusCode != 204 {
		t.Fatalf("logout = %d", res.StatusCode)
	}
	if res := post("/v1/auth/logout", "", p.AccessToken); res.StatusCode != 401 {
		t.Fatalf("second logout with the revoked token = %d", res.StatusCode)
	}
}
