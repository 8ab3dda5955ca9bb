package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/convergo/convergo/internal/problem"
)

type claimsKey struct{}

// ContextWithClaims returns ctx carrying c, as Authenticate does. Tests of
// other packages use it to call their handlers without a token.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the verified claims Authenticate put in ctx.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Authenticate requires "Authorization: Bearer <jwt>", verifies it
// (VerifyToken) and passes the claims to next in the request context. It
// answers 401 (missing or invalid token) or 400 (unparsable header) itself.
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticateRequest(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
	})
}

// RequirePerm serves next only when the token grants perm: it
// authenticates first unless Authenticate already ran, and answers 403
// otherwise. It panics if perm is not one of AllPerms (a wiring bug).
func (s *Service) RequirePerm(perm string, next http.Handler) http.Handler {
	if !slices.Contains(AllPerms(), perm) {
		panic(fmt.Sprintf("auth: RequirePerm with unknown permission %q", perm))
	}
	check := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		if !c.HasPerm(perm) {
			s.metrics.fail(kindToken, "permission")
			w.Header().Set("WWW-Authenticate", Credentials{Scheme: "Bearer", Params: []Param{
				{Name: "realm", Value: s.cfg.Realm, Quoted: true},
				{Name: "error", Value: "insufficient_scope", Quoted: true},
				{Name: "scope", Value: perm, Quoted: true},
			}}.String())
			problem.Write(w, problem.Details{Type: ProblemForbidden, Title: "Insufficient permission",
				Status: http.StatusForbidden, Detail: "this request needs the " + perm + " permission"})
			return
		}
		next.ServeHTTP(w, r)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClaimsFrom(r.Context()); ok {
			check.ServeHTTP(w, r)
			return
		}
		s.Authenticate(check).ServeHTTP(w, r)
	})
}

func (s *Service) authenticateRequest(r *http.Request) (*Claims, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		s.metrics.fail(kindToken, "missing")
		return nil, ErrNoCredentials
	case 1:
	default:
		s.metrics.fail(kindToken, "malformed")
		return nil, fmt.Errorf("%w: several Authorization headers", ErrMalformed)
	}
	c, err := ParseAuthorization(vals[0])
	if err != nil {
		s.metrics.fail(kindToken, "malformed")
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !c.Is("Bearer") {
		s.metrics.fail(kindToken, "missing")
		return nil, ErrNoCredentials
	}
	if c.Token == "" {
		s.metrics.fail(kindToken, "malformed")
		return nil, fmt.Errorf("%w: bearer without token", ErrMalformed)
	}
	claims, err := s.VerifyToken(r.Context(), c.Token)
	var te *TokenError
	if errors.As(err, &te) {
		s.metrics.fail(kindToken, te.Reason)
	}
	return claims, err
}
