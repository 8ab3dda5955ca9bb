package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// MaxBodyBytes caps the JSON bodies of the auth routes.
const MaxBodyBytes = 64 << 10

// Problem types (RFC 9457 §3.1.1) of the auth routes.
const (
	ProblemInvalidCredentials = "https://convergo.dev/problems/invalid-credentials"
	ProblemInvalidToken       = "https://convergo.dev/problems/invalid-token"
	ProblemAccountDisabled    = "https://convergo.dev/problems/account-disabled"
	ProblemForbidden          = "https://convergo.dev/problems/insufficient-permission"
	ProblemRateLimited        = "https://convergo.dev/problems/rate-limited"
	ProblemRefreshReused      = "https://convergo.dev/problems/refresh-token-reused"
)

// Routes registers the auth endpoints on mux:
//
//	POST /v1/auth/login          {"username","password","device"?} → TokenPair
//	POST /v1/auth/refresh        {"refresh_token"} → TokenPair (rotated)
//	POST /v1/auth/logout         (Bearer) {"refresh_token"}? → 204
//	GET  /v1/me                  (Bearer) → identity, roles, perms, display name
//	GET  /.well-known/jwks.json  → public keys (RFC 7517 §5)
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/auth/login", s.handleLogin)
	mux.HandleFunc("POST /v1/auth/refresh", s.handleRefresh)
	mux.Handle("POST /v1/auth/logout", s.Authenticate(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET /v1/me", s.Authenticate(http.HandlerFunc(s.handleMe)))
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Device   string `json:"device"`
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	switch {
	case req.Username == "" || req.Password == "":
		problem.Error(w, http.StatusBadRequest, "username and password are required")
		return
	case len(req.Username) > 255 || hasCtl(req.Username):
		problem.Error(w, http.StatusBadRequest, "username is too long or has control characters")
		return
	case len(req.Password) > MaxPasswordLen:
		problem.Error(w, http.StatusBadRequest, "password is too long")
		return
	case len(req.Device) > 255 || hasCtl(req.Device):
		problem.Error(w, http.StatusBadRequest, "device is too long or has control characters")
		return
	}
	pair, err := s.login(r.Context(), req.Username, req.Password, req.Device, remoteAddr(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeTokens(w, pair)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	if req.RefreshToken == "" {
		problem.Error(w, http.StatusBadRequest, "refresh_token is required")
		return
	}
	pair, err := s.refresh(r.Context(), req.RefreshToken, remoteAddr(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeTokens(w, pair)
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, _ := ClaimsFrom(r.Context())
	var req refreshRequest
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		if !decodeJSON(w, r, &req, true) {
			return
		}
	}
	if req.RefreshToken != "" {
		if _, ok := parseRefresh(req.RefreshToken); !ok {
			problem.Error(w, http.StatusBadRequest, "refresh_token is not one this server issues")
			return
		}
	}
	if err := s.logout(r.Context(), c, req.RefreshToken); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type meResponse struct {
	ID          string    `json:"id"`
	Identity    string    `json:"identity"`
	Tel         string    `json:"tel,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	Roles       []string  `json:"roles"`
	Perms       []string  `json:"perms"`
	Device      string    `json:"device,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) {
	c, _ := ClaimsFrom(r.Context())
	u, err := s.users.Get(r.Context(), c.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeError(w, r, &TokenError{Reason: "user no longer exists"})
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	case u.Disabled:
		s.writeError(w, r, ErrDisabled)
		return
	}
	res := meResponse{
		ID: c.Subject, Identity: c.SIPIdentity, Tel: u.Tel, DisplayName: u.DisplayName,
		Roles: nonNil(c.Roles), Perms: nonNil(c.Perms), Device: c.Device, ExpiresAt: c.ExpiresAt.Time.UTC(),
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, res)
}

func (s *Service) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(s.keys.jwks)))
	_, _ = w.Write(s.keys.jwks)
}

// writeError is the one place where an auth error becomes an HTTP status.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		rl *RateLimitError
		te *TokenError
	)
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second)))
		problem.Write(w, problem.Details{Type: ProblemRateLimited, Title: "Too many failed attempts",
			Status: http.StatusTooManyRequests, Detail: "too many failed attempts; retry later"})
	case errors.Is(err, ErrInvalidCredentials):
		s.challenge(w, "")
		problem.Write(w, problem.Details{Type: ProblemInvalidCredentials, Title: "Invalid credentials",
			Status: http.StatusUnauthorized, Detail: "unknown user or wrong password"})
	case errors.Is(err, ErrDisabled):
		problem.Write(w, problem.Details{Type: ProblemAccountDisabled, Title: "Account disabled",
			Status: http.StatusForbidden, Detail: "the account is disabled"})
	case errors.Is(err, ErrRefreshReused):
		s.challenge(w, "refresh token reused")
		problem.Write(w, problem.Details{Type: ProblemRefreshReused, Title: "Refresh token reused",
			Status: http.StatusUnauthorized, Detail: "refresh token was already used; the session has been revoked"})
	case errors.As(err, &te):
		s.challenge(w, te.Reason)
		problem.Write(w, problem.Details{Type: ProblemInvalidToken, Title: "Invalid token",
			Status: http.StatusUnauthorized, Detail: "token rejected: " + te.Reason})
	case errors.Is(err, ErrNoCredentials):
		s.challenge(w, "")
		problem.Error(w, http.StatusUnauthorized, "a bearer token is required")
	case errors.Is(err, ErrMalformed):
		problem.Error(w, http.StatusBadRequest, "malformed Authorization header")
	case errors.Is(err, context.Canceled):
		// the client went away; nothing useful to send
		problem.Error(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.log.Error("auth request failed", zap.String("path", r.URL.Path), zap.Error(err))
		problem.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// challenge sets the RFC 6750 §3 WWW-Authenticate header of a 401.
func (s *Service) challenge(w http.ResponseWriter, tokenErr string) {
	c := Credentials{Scheme: "Bearer", Params: []Param{{Name: "realm", Value: s.cfg.Realm, Quoted: true}}}
	if tokenErr != "" {
		c.Params = append(c.Params,
			Param{Name: "error", Value: "invalid_token", Quoted: true},
			Param{Name: "error_description", Value: tokenErr, Quoted: true})
	}
	w.Header().Set("WWW-Authenticate", c.String())
}

// decodeJSON reads one JSON object of at most MaxBodyBytes into dst and
// writes the problem (415, 413, 400) when it cannot. With emptyOK an empty
// body leaves dst untouched.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, emptyOK bool) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		w.Header().Set("Accept-Post", "application/json")
		problem.Error(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	if r.ContentLength > MaxBodyBytes {
		problem.Error(w, http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err = dec.Decode(dst)
	if err == nil {
		// exactly one value: anything after it is an error
		if err = dec.Decode(&struct{}{}); errors.Is(err, io.EOF) {
			return true
		} else if err == nil {
			err = errors.New("trailing data")
		}
	} else if errors.Is(err, io.EOF) && emptyOK {
		return true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		problem.Error(w, http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
		return false
	}
	problem.Error(w, http.StatusBadRequest, "malformed JSON body")
	return false
}

func writeTokens(w http.ResponseWriter, p TokenPair) {
	h := w.Header()
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// remoteAddr is the peer of the connection. Deployments behind a reverse
// proxy see the proxy here: the limiter then counts per proxy.
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
