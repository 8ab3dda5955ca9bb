package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/convergo/convergo/store"
)

// Claims is the payload of a convergo access token (RFC 7519 §4).
type Claims struct {
	jwt.RegisteredClaims // iss, sub (user ID), aud, exp, nbf, iat, jti

	Roles       []string `json:"roles,omitempty"`
	Perms       []string `json:"perms,omitempty"`        // permissions of Roles when the token was issued
	SIPIdentity string   `json:"sip_identity,omitempty"` // public identity, sip:alice@example.net
	Device      string   `json:"sip.instance,omitempty"` // device / +sip.instance given at login
	SessionID   string   `json:"sid,omitempty"`          // refresh-token family of the login
}

// errMissingClaims is returned by Claims.Validate.
var errMissingClaims = errors.New("auth: token lacks sub or jti")

// Validate is called by the JWT parser after the registered claims checks:
// sub and jti are required, the latter for revocation.
func (c *Claims) Validate() error {
	if c.Subject == "" || c.ID == "" || len(c.Subject) > 255 {
		return errMissingClaims
	}
	return nil
}

// maxTokenLen bounds the size of a JWT we even try to parse.
const maxTokenLen = 8 << 10

// sidRevocationKey is the revocation-list entry that kills every access
// token of a login session (refresh family) at once.
func sidRevocationKey(sid string) string { return "sid:" + sid }

// randomID returns 128 random bits as base32 text (jti, refresh family).
func randomID() string { return rand.Text() }

// newParser pins algorithms, issuer, audience and expiry (RFC 8725 §3.1).
func newParser(cfg Config, algs []string, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(now),
	)
}

// issueAccess signs an access token for u with the active key.
func (s *Service) issueAccess(u store.User, device, sid string, now time.Time) (string, *Claims, error) {
	roles := slices.Clone(u.Roles)
	slices.Sort(roles)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomID(),
		},
		Roles:       slices.Compact(roles),
		Perms:       s.roles.perms(u.Roles),
		SIPIdentity: u.Identity,
		Device:      device,
		SessionID:   sid,
	}
	t := jwt.NewWithClaims(s.keys.signer.method, c)
	t.Header["kid"] = s.keys.signer.id
	raw, err := t.SignedString(s.keys.signer.priv)
	if err != nil {
		return "", nil, fmt.Errorf("auth: sign token: %w", err)
	}
	return raw, c, nil
}

// VerifyToken checks a raw access JWT: signature with the key named by its
// kid, pinned algorithm, issuer, audience, exp (required), nbf and iat with
// the configured leeway, and the revocation list (its jti and its session).
// Token problems are *TokenError (errors.Is ErrTokenInvalid); any other
// error is a store failure. Safe for concurrent use.
func (s *Service) VerifyToken(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return nil, &TokenError{Reason: "malformed"}
	}
	c := &Claims{}
	if _, err := s.parser.ParseWithClaims(raw, c, s.keys.keyFunc); err != nil {
		return nil, &TokenError{Reason: s.tokenFailure(raw, err), Err: err}
	}
	ids := []string{c.ID}
	if c.SessionID != "" {
		ids = append(ids, sidRevocationKey(c.SessionID))
	}
	for _, id := range ids {
		revoked, err := s.tokens.IsRevoked(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("auth: revocation check: %w", err)
		}
		if revoked {
			return nil, &TokenError{Reason: "revoked"}
		}
	}
	return c, nil
}

// tokenFailure names why the parser refused raw. Signature and key
// problems are checked first: claims of a badly signed token mean nothing.
func (s *Service) tokenFailure(raw string, err error) string {
	switch {
	case errors.Is(err, errUnknownKID), errors.Is(err, errNoKID):
		return "unknown key"
	case errors.Is(err, errAlgMismatch):
		return "algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		// The parser reports a refused algorithm as a signature error:
		// look at the (untrusted) header to tell them apart.
		t, _, perr := jwt.NewParser().ParseUnverified(raw, &jwt.MapClaims{})
		if perr != nil || t.Method == nil {
			return "algorithm not allowed"
		}
		alg := t.Method.Alg()
		kid, _ := t.Header["kid"].(string)
		switch k, known := s.keys.byID[kid]; {
		case alg != AlgEdDSA && alg != AlgES256:
			return "algorithm not allowed"
		case !known:
			return "unknown key"
		case k.alg != alg:
			return "algorithm not allowed"
		}
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not yet valid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, errMissingClaims):
		return "missing claims"
	default:
		return "invalid"
	}
}

// refreshSecretLen is the size of the opaque refresh token before encoding.
const refreshSecretLen = 32

// newRefreshSecret returns a refresh token for the client and the hash
// under which the store keeps it.
func newRefreshSecret() (raw, id string) {
	b := make([]byte, refreshSecretLen)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, refreshID(b)
}

// parseRefresh checks the shape of a client's refresh token and returns
// its store id; false for anything we cannot have issued.
func parseRefresh(raw string) (string, bool) {
	if len(raw) != base64.RawURLEncoding.EncodedLen(refreshSecretLen) {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != refreshSecretLen {
		return "", false
	}
	return refreshID(b), true
}

// refreshID is the SHA-256 of the secret, base64url: the only form stored.
func refreshID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
