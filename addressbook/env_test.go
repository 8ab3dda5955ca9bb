package addressbook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
	"github.com/convergo/convergo/store/redis"
	"github.com/convergo/convergo/store/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// authAdapter is the tiny adapter cmd/convergo will have: the real auth
// service behind the addressbook's consumer interfaces.
type authAdapter struct {
	svc   *auth.Service
	users store.Users
}

func (a authAdapter) Require(perm string, h http.Handler) http.Handler {
	return a.svc.RequirePerm(perm, h)
}

func (a authAdapter) Subject(ctx context.Context) (addressbook.Subject, bool) {
	c, ok := auth.ClaimsFrom(ctx)
	if !ok {
		return addressbook.Subject{}, false
	}
	return addressbook.Subject{UserID: c.Subject, Perms: c.Perms}, true
}

func (a authAdapter) CheckPassword(ctx context.Context, username, password string, src netip.Addr) (addressbook.Subject, error) {
	u, err := a.svc.CheckPassword(ctx, username, password, src)
	if err != nil {
		return addressbook.Subject{}, err
	}
	return addressbook.Subject{UserID: u.ID, Perms: a.svc.Perms(u.Roles)}, nil
}

// directory resolves identities through the real store.Users.
type directory struct{ users store.Users }

func (d directory) LookupIdentity(ctx context.Context, uri string) (string, bool, error) {
	u, err := d.users.GetByIdentity(ctx, uri)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return u.ID, true, nil
}

// groupChats stands in for the group-chat domain, which does not exist
// yet: the edge of this package's world.
type groupChats map[string]map[string][]string

func (g groupChats) SharedGroups(_ context.Context, user string) (map[string][]string, error) {
	return g[user], nil
}

const password = "correct horse battery staple"

// env is one convergo HTTP API (auth + addressbook) over one real store.
type env struct {
	t     testing.TB
	st    store.Store
	svc   *addressbook.Service
	srv   *httptest.Server
	auth  *auth.Service
	reg   *prometheus.Registry
	token map[string]string
}

type envOptions struct {
	cfg       addressbook.Config
	maxEvents int
	groups    addressbook.GroupPeers
}

// backends runs fn once against bolt and once against a real redis-server.
func backends(t *testing.T, opts envOptions, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			fn(t, newEnv(t, backend, opts))
		})
	}
}

var prefixes atomic.Int64

func openStore(t testing.TB, backend string, maxEvents int) store.Store {
	t.Helper()
	if maxEvents == 0 {
		maxEvents = 1000
	}
	var (
		st  store.Store
		err error
	)
	switch backend {
	case "bolt":
		st, err = bolt.Open(bolt.Config{Path: filepath.Join(t.TempDir(), "convergo.db"), MaxEvents: maxEvents}, zaptest.NewLogger(t))
	case "redis":
		addr := redistest.StartServer(t)
		st, err = redis.Open(t.Context(), redis.Config{Addrs: []string{addr}, MaxEvents: maxEvents,
			KeyPrefix: fmt.Sprintf("ab%d:", prefixes.Add(1))}, zaptest.NewLogger(t))
	}
	if err != nil {
		t.Fatalf("open %s store: %v", backend, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newEnv(t testing.TB, backend string, opts envOptions) *env {
	t.Helper()
	st := openStore(t, backend, opts.maxEvents)
	reg := prometheus.NewRegistry()
	as, err := auth.New(auth.Config{
		AutoKeyFile: filepath.Join(t.TempDir(), "jwt.pem"),
		Argon2:      auth.Argon2Config{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
		Roles:       map[string][]string{"reader": {auth.PermAddressbookRead}},
	}, st.Users(), st.Tokens(), zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	adapter := authAdapter{svc: as, users: st.Users()}
	deps := addressbook.Deps{
		Contacts: st.Contacts(), Events: st.Events(), Auth: adapter, Passwords: adapter,
		Users: directory{st.Users()}, Groups: opts.groups,
	}
	svc, err := addressbook.New(opts.cfg, deps, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("addressbook.New: %v", err)
	}
	mux := http.NewServeMux()
	as.Routes(mux)
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, st: st, svc: svc, srv: srv, auth: as, reg: reg, token: map[string]string{}}
	e.addUser("alice", "sip:alice@example.net", "tel:+12025550100", "user")
	e.addUser("bob", "sip:bob@example.net", "tel:+8613900139000", "user")
	e.addUser("reader", "sip:reader@example.net", "", "reader")
	return e
}

// addUser creates an account and logs it in through POST /v1/auth/login.
func (e *env) addUser(id, identity, tel, role string) {
	e.t.Helper()
	u := store.User{ID: id, Identity: identity, Tel: tel, Roles: []string{role}}
	if err := auth.SetPassword(&u, password, auth.Config{Argon2: auth.Argon2Config{MemoryKiB: 64, Iterations: 1, Parallelism: 1}}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Users().Create(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	e.token[id] = e.login(id, "device-1")
}

func (e *env) login(user, device string) string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password, "device": device})
	resp, err := http.Post(e.srv.URL+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tp auth.TokenPair
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tp) != nil {
		e.t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	return tp.AccessToken
}

// resp is a finished HTTP exchange.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// problem returns the RFC 9457 document of an error response.
func (r resp) problem(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p map[string]any
	r.decode(t, &p)
	return p
}

// do sends a request as user (token "" for none). body may be nil, a
// string, []byte or a value to JSON-encode; headers are name, value pairs.
func (e *env) do(user, method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if tok := e.token[user]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: r.StatusCode, header: r.Header, body: data}
}

// must checks the status of a response.
func (e *env) must(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// create POSTs a contact for user and returns it.
func (e *env) create(user string, c map[string]any) addressbook.Contact {
	e.t.Helper()
	r := e.must(e.do(user, "POST", "/v1/contacts", c), http.StatusCreated)
	var out addressbook.Contact
	r.decode(e.t, &out)
	if r.header.Get("ETag") != fmt.Sprintf(`"%d"`, out.Version) {
		e.t.Fatalf("ETag = %q, want version %d", r.header.Get("ETag"), out.Version)
	}
	return out
}

func etag(v uint64) string { return fmt.Sprintf(`"%d"`, v) }

func name(display string) map[string]any { return map[string]any{"display": display} }
