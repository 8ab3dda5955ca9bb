package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// Service issues and verifies tokens, serves the auth HTTP routes and
// hands out the SIP authenticator. It is safe for concurrent use and
// starts no goroutines.
type Service struct {
	cfg      Config
	users    Users
	tokens   Tokens
	log      *zap.Logger
	keys     *keySet
	roles    roleTable
	parser   *jwt.Parser
	limiter  *limiter
	metrics  *metrics
	hashSem  chan struct{} // bounds concurrent argon2 work (memory)
	dummyPHC string        // verified for unknown users: same timing as a real check
	sip      *SIPAuth
	now      func() time.Time
}

// New validates cfg, applies its defaults, loads (or generates) the JWT
// keys and registers the metrics on reg (nil: not registered).
func New(cfg Config, users Users, tokens Tokens, log *zap.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth: invalid config: %w", err)
	}
	if users == nil || tokens == nil {
		return nil, errors.New("auth: users and tokens are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.WithDefaults()
	log = log.Named("auth")
	keys, err := loadKeySet(cfg, log)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	dummy, err := HashPassword(rand.Text(), cfg.Argon2)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		users:    users,
		tokens:   tokens,
		log:      log,
		keys:     keys,
		roles:    buildRoles(cfg.Roles),
		limiter:  newLimiter(cfg.RateLimit),
		metrics:  m,
		hashSem:  make(chan struct{}, runtime.GOMAXPROCS(0)),
		dummyPHC: dummy,
		now:      time.Now,
	}
	s.parser = newParser(cfg, keys.algs, func() time.Time { return s.now() })
	s.sip = newSIPAuth(s)
	return s, nil
}

// SIP returns the SIP authenticator sharing this service's keys, limits and metrics.
func (s *Service) SIP() *SIPAuth { return s.sip }

// Perms returns the permissions the given roles grant under this
// service's role table, sorted.
func (s *Service) Perms(roles []string) []string { return s.roles.perms(roles) }

// TokenPair is what login and refresh return.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"` // "Bearer"
	ExpiresIn    int    `json:"expires_in"` // seconds
	RefreshToken string `json:"refresh_token"`
}

// login checks a password and opens a session (a new refresh family).
func (s *Service) login(ctx context.Context, username, password, device string, src netip.Addr) (TokenPair, error) {
	u, err := s.CheckPassword(ctx, username, password, src)
	if err != nil {
		return TokenPair{}, err
	}
	pair, err := s.openSession(ctx, u, device, randomID(), s.now())
	if err != nil {
		return TokenPair{}, err
	}
	s.metrics.logins.Inc()
	return pair, nil
}

// CheckPassword verifies a user's password for callers that cannot use
// tokens (CardDAV Basic auth), under the same per-user and per-address
// failure limits as login: ErrInvalidCredentials (unknown user and wrong
// password alike, same cost), ErrDisabled, or *RateLimitError.
func (s *Service) CheckPassword(ctx context.Context, username, password string, src netip.Addr) (store.User, error) {
	now := s.now()
	uKey, aKey := userKey(username), addrKey(src)
	for _, k := range []struct{ name, key string }{{"addr", aKey}, {"user", uKey}} {
		if d := s.limiter.blocked(k.key, now); d > 0 {
			s.metrics.fail(kindLogin, "rate limited")
			return store.User{}, &RateLimitError{Key: k.name, RetryAfter: d}
		}
	}
	u, err := s.users.Get(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("auth: get user: %w", err)
	}
	phc := u.PasswordHash
	if err != nil || phc == "" {
		phc = s.dummyPHC
	}
	ok, verr := s.verifyPassword(ctx, phc, password)
	if verr != nil && ctx.Err() != nil {
		return store.User{}, verr
	}
	if verr != nil { // a stored hash we cannot read: log it, answer like a wrong password
		s.log.Error("unreadable password hash", zap.String("user", username), zap.Error(verr))
	}
	if !ok || err != nil || u.PasswordHash == "" {
		reason := "bad credentials"
		if err != nil {
			reason = "unknown user"
		}
		s.metrics.fail(kindLogin, reason)
		if d := s.limiter.fail(now, uKey, aKey); d > 0 {
			s.log.Info("login blocked after failures", zap.String("user", username), zap.Stringer("addr", src), zap.Duration("block", d))
		}
		return store.User{}, ErrInvalidCredentials
	}
	if u.Disabled {
		s.metrics.fail(kindLogin, "disabled")
		return store.User{}, ErrDisabled
	}
	s.limiter.reset(uKey)
	return u, nil
}

// verifyPassword runs the argon2 check under the concurrency bound.
func (s *Service) verifyPassword(ctx context.Context, phc, password string) (bool, error) {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashSem }()
	return VerifyPassword(phc, password)
}

// openSession stores a new refresh token of family and signs an access token.
func (s *Service) openSession(ctx context.Context, u store.User, device, family string, now time.Time) (TokenPair, error) {
	rawRefresh, id := newRefreshSecret()
	err := s.tokens.PutRefresh(ctx, store.RefreshToken{
		ID: id, Family: family, User: u.ID, Device: device, Expires: now.Add(s.cfg.RefreshTTL),
	})
	if err != nil {
		return TokenPair{}, fmt.Errorf("auth: store refresh token: %w", err)
	}
	access, _, err := s.issueAccess(u, device, family, now)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTTL / time.Second), RefreshToken: rawRefresh,
	}, nil
}

// refresh rotates a refresh token: the presented one is spent and a new
// pair of the same family returned. Presenting a spent token revokes the
// family and every access token of it (refresh token rotation, RFC 9700).
func (s *Service) refresh(ctx context.Context, raw string, src netip.Addr) (TokenPair, error) {
	now := s.now()
	aKey := addrKey(src)
	if d := s.limiter.blocked(aKey, now); d > 0 {
		s.metrics.fail(kindRefresh, "rate limited")
		return TokenPair{}, &RateLimitError{Key: "addr", RetryAfter: d}
	}
	id, ok := parseRefresh(raw)
	if !ok {
		s.metrics.fail(kindRefresh, "malformed")
		s.limiter.fail(now, aKey)
		return TokenPair{}, &TokenError{Reason: "unknown refresh token"}
	}
	rt, err := s.tokens.UseRefresh(ctx, id, now)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.metrics.fail(kindRefresh, "reused")
		s.log.Warn("refresh token reused, session revoked", zap.String("user", rt.User), zap.String("sid", rt.Family))
		if err := s.revokeSession(ctx, rt.Family, now); err != nil {
			return TokenPair{}, err
		}
		return TokenPair{}, ErrRefreshReused
	case errors.Is(err, store.ErrNotFound):
		s.metrics.fail(kindRefresh, "unknown")
		s.limiter.fail(now, aKey)
		return TokenPair{}, &TokenError{Reason: "unknown refresh token"}
	case err != nil:
		return TokenPair{}, fmt.Errorf("auth: use refresh token: %w", err)
	}
	u, err := s.users.Get(ctx, rt.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.metrics.fail(kindRefresh, "unknown user")
		if err := s.revokeSession(ctx, rt.Family, now); err != nil {
			return TokenPair{}, err
		}
		return TokenPair{}, &TokenError{Reason: "user no longer exists"}
	case err != nil:
		return TokenPair{}, fmt.Errorf("auth: get user: %w", err)
	case u.Disabled:
		s.metrics.fail(kindRefresh, "disabled")
		if err := s.revokeSession(ctx, rt.Family, now); err != nil {
			return TokenPair{}, err
		}
		return TokenPair{}, ErrDisabled
	}
	return s.openSession(ctx, u, rt.Device, rt.Family, now)
}

// revokeSession kills a refresh family and, through the "sid:" entry of
// the revocation list, every access token issued in it.
func (s *Service) revokeSession(ctx context.Context, family string, now time.Time) error {
	if err := s.tokens.RevokeFamily(ctx, family, now.Add(s.cfg.RefreshTTL)); err != nil {
		return fmt.Errorf("auth: revoke family: %w", err)
	}
	if err := s.tokens.Revoke(ctx, sidRevocationKey(family), now.Add(s.cfg.AccessTTL+s.cfg.Leeway)); err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	return nil
}

// logout revokes the access token c (until it would expire anyway), its
// session, and the session of refreshRaw when that belongs to the same user.
func (s *Service) logout(ctx context.Context, c *Claims, refreshRaw string) error {
	now := s.now()
	if err := s.tokens.Revoke(ctx, c.ID, c.ExpiresAt.Add(s.cfg.Leeway)); err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	if c.SessionID != "" {
		if err := s.revokeSession(ctx, c.SessionID, now); err != nil {
			return err
		}
	}
	if refreshRaw == "" {
		return nil
	}
	id, _ := parseRefresh(refreshRaw) // shape checked by the handler
	rt, err := s.tokens.UseRefresh(ctx, id, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // already gone: logout is idempotent
	case err != nil && !errors.Is(err, store.ErrTokenReused):
		return fmt.Errorf("auth: use refresh token: %w", err)
	case rt.User != c.Subject || rt.Family == c.SessionID:
		return nil
	}
	return s.revokeSession(ctx, rt.Family, now)
}
