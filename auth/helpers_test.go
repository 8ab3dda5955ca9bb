package auth

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// fastArgon2 keeps tests quick; production uses the defaults.
var fastArgon2 = Argon2Config{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func testConfig(t testing.TB) Config {
	t.Helper()
	return Config{
		AutoKeyFile: filepath.Join(t.TempDir(), "data", "jwt-signing.pem"),
		Realm:       "example.net",
		Argon2:      fastArgon2,
	}
}

// memTokens is an in-memory store.Tokens with the documented semantics,
// for unit tests that do not need a backend. Store-backed tests use bolt.
type memTokens struct {
	mu       sync.Mutex
	refresh  map[string]store.RefreshToken
	families map[string]time.Time
	revoked  map[string]time.Time
	fail     error // returned by every call when set
}

func newMemTokens() *memTokens {
	return &memTokens{refresh: map[string]store.RefreshToken{}, families: map[string]time.Time{}, revoked: map[string]time.Time{}}
}

func (m *memTokens) PutRefresh(_ context.Context, t store.RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.refresh[t.ID]; ok {
		return store.ErrExists
	}
	m.refresh[t.ID] = t
	return nil
}

func (m *memTokens) UseRefresh(_ context.Context, id string, now time.Time) (store.RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.RefreshToken{}, m.fail
	}
	t, ok := m.refresh[id]
	if !ok || !now.Before(t.Expires) {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if exp, ok := m.families[t.Family]; ok && now.Before(exp) {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if t.Used {
		return t, store.ErrTokenReused
	}
	t.Used = true
	m.refresh[id] = t
	return t, nil
}

func (m *memTokens) RevokeFamily(_ context.Context, family string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.families[family] = expires
	return nil
}

func (m *memTokens) Revoke(_ context.Context, jti string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.revoked[jti] = expires
	return nil
}

func (m *memTokens) IsRevoked(_ context.Context, jti string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	exp, ok := m.revoked[jti]
	return ok && time.Now().Before(exp), nil
}

// memUsers is an in-memory Users keyed by ID.
type memUsers struct {
	mu sync.Mutex
	m  map[string]store.User
}

func newMemUsers(users ...store.User) *memUsers {
	mu := &memUsers{m: map[string]store.User{}}
	for _, u := range users {
		mu.m[u.ID] = u
	}
	return mu
}

func (m *memUsers) Get(_ context.Context, id string) (store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.m[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	u.Roles = slices.Clone(u.Roles)
	return u, nil
}

func (m *memUsers) set(u store.User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[u.ID] = u
}

// newUser returns a user with password set under cfg.
func newUser(t *testing.T, cfg Config, id, identity, password string, roles ...string) store.User {
	t.Helper()
	u := store.User{ID: id, Identity: identity, DisplayName: "Name of " + id, Roles: roles}
	if err := SetPassword(&u, password, cfg); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	return u
}

func newService(t testing.TB, cfg Config, users Users, tokens Tokens) (*Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, users, tokens, zap.NewNop(), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, reg
}

// counter returns the value of a counter in reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// clock is a settable time source for Service.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s *Service) *clock {
	c := &clock{t: time.Now()}
	s.now = c.now
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
