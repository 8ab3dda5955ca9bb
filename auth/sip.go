package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// Principal is who a SIP request was authenticated as.
type Principal struct {
	User    store.User
	Device  string    // sip.instance from the Bearer token; empty for Digest
	Expires time.Time // token expiry (cap registrations at it); zero for Digest
}

// SIPAuth authenticates requests of directly attached SIP clients with
// Digest (RFC 7616/8760, SHA-256 and MD5) or Bearer JWTs (RFC 8898).
// Obtain it from Service.SIP. Safe for concurrent use.
type SIPAuth struct {
	s      *Service
	nonces *nonces
}

func newSIPAuth(s *Service) *SIPAuth {
	return &SIPAuth{s: s, nonces: newNonces(s.keys.nonceSecret, s.cfg.Realm, s.cfg.NonceTTL)}
}

// Authenticate checks the Authorization header(s) of req, which arrived
// from src, and returns the authenticated principal. The identity checked
// is the To AOR for REGISTER and the From AOR for other methods: it must
// be the token's sip_identity (Bearer) or the user's identity or tel alias
// (Digest). Every failure is a *SIPError carrying the response to send:
//
//   - 401 Unauthorized with challenges (Bearer first unless disabled, then
//     one Digest per algorithm, strongest first) when credentials are
//     missing, wrong, for another realm, over a stale nonce (stale=true) or
//     replayed; error="invalid_token" in the Bearer challenge for a bad token;
//   - 400 Bad Request for an unparsable or incomplete Authorization, or a
//     Digest uri that is not the Request-URI (RFC 2617 §3.2.2.5);
//   - 403 Forbidden for a disabled account or another user's identity;
//   - 503 Service Unavailable with Retry-After while the user or source
//     address is blocked after repeated failures (SIP has no 429, and 503
//     with Retry-After makes a UA back off, RFC 3261 §21.5.4);
//   - 500 Server Internal Error when the store fails.
func (a *SIPAuth) Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (Principal, error) {
	now := a.s.now()
	aKey := addrKey(src.Addr())
	if d := a.s.limiter.blocked(aKey, now); d > 0 {
		return Principal{}, a.rateLimited(kindDigest, d)
	}
	var bearer, digest *Credentials
	for _, h := range req.GetHeaders("Authorization") {
		c, err := ParseAuthorization(h.Value())
		if err != nil {
			a.s.metrics.fail(kindDigest, "malformed")
			return Principal{}, &SIPError{Code: sip.StatusBadRequest, Reason: "Bad Request", Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
		}
		switch {
		case c.Is("Bearer") && !a.s.cfg.DisableSIPBearer && bearer == nil:
			bearer = &c
		case c.Is("Digest") && digest == nil:
			// Credentials for other realms belong to other servers.
			if realm, _ := c.Param("realm"); realm == a.s.cfg.Realm {
				digest = &c
			}
		}
	}
	switch {
	case bearer != nil:
		return a.bearer(ctx, req, *bearer, aKey, now)
	case digest != nil:
		return a.digest(ctx, req, *digest, aKey, now)
	default:
		return Principal{}, a.challenge(now, false, "", ErrNoCredentials)
	}
}

func (a *SIPAuth) bearer(ctx context.Context, req *sip.Request, c Credentials, aKey string, now time.Time) (Principal, error) {
	if c.Token == "" {
		a.s.metrics.fail(kindBearer, "malformed")
		return Principal{}, &SIPError{Code: sip.StatusBadRequest, Reason: "Bad Request", Err: fmt.Errorf("%w: bearer without token", ErrMalformed)}
	}
	claims, err := a.s.VerifyToken(ctx, c.Token)
	if err != nil {
		var te *TokenError
		if !errors.As(err, &te) {
			return Principal{}, internalError(err)
		}
		a.s.metrics.fail(kindBearer, te.Reason)
		if d := a.s.limiter.fail(now, aKey); d > 0 {
			a.s.log.Info("sip auth source blocked", zap.String("addr", strings.TrimPrefix(aKey, "a:")), zap.Duration("block", d))
		}
		return Principal{}, a.challenge(now, false, te.Reason, err)
	}
	u, err := a.s.users.Get(ctx, claims.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.s.metrics.fail(kindBearer, "unknown user")
		return Principal{}, a.challenge(now, false, "unknown user", &TokenError{Reason: "unknown user"})
	case err != nil:
		return Principal{}, internalError(err)
	case u.Disabled:
		a.s.metrics.fail(kindBearer, "disabled")
		return Principal{}, forbidden("Forbidden", ErrDisabled)
	}
	aor, err := requestAOR(req)
	if err != nil {
		return Principal{}, err
	}
	if !sameAOR(claims.SIPIdentity, aor) {
		a.s.metrics.fail(kindBearer, "identity")
		return Principal{}, forbidden("Forbidden", fmt.Errorf("%w: token for %s used for %s", ErrForbidden, claims.SIPIdentity, canonicalAOR(aor)))
	}
	return Principal{User: u, Device: claims.Device, Expires: claims.ExpiresAt.Time}, nil
}

func (a *SIPAuth) digest(ctx context.Context, req *sip.Request, c Credentials, aKey string, now time.Time) (Principal, error) {
	d, err := parseDigest(c)
	if err != nil {
		a.s.metrics.fail(kindDigest, "malformed")
		return Principal{}, &SIPError{Code: sip.StatusBadRequest, Reason: "Bad Request", Err: err}
	}
	newHash := digestHash(d.algorithm)
	if newHash == nil || !a.algEnabled(d.algorithm) {
		a.s.metrics.fail(kindDigest, "algorithm")
		return Principal{}, a.challenge(now, false, "", fmt.Errorf("%w: algorithm %q not offered", ErrInvalidCredentials, d.algorithm))
	}
	if !sameRequestURI(d.uri, req.Recipient) {
		a.s.metrics.fail(kindDigest, "uri")
		return Principal{}, &SIPError{Code: sip.StatusBadRequest, Reason: "Bad Request",
			Err: fmt.Errorf("%w: digest uri is not the Request-URI", ErrMalformed)}
	}
	uKey := userKey(d.username)
	if bl := a.s.limiter.blocked(uKey, now); bl > 0 {
		return Principal{}, a.rateLimited(kindDigest, bl)
	}
	issued, ok := a.nonces.verify(d.nonce, now)
	if !ok {
		a.s.metrics.fail(kindDigest, "bad nonce")
		a.s.limiter.fail(now, aKey)
		return Principal{}, a.challenge(now, false, "", fmt.Errorf("%w: nonce not issued here", ErrInvalidCredentials))
	}
	u, err := a.s.users.Get(ctx, d.username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Principal{}, internalError(err)
	}
	ha1 := u.DigestHA1[canonicalDigestAlg(d.algorithm)] // "" for an unknown user
	known := ha1 != ""
	if !known {
		ha1 = strings.Repeat("0", newHash().Size()*2) // same work as a real check
	}
	if !digestMatch(newHash, ha1, string(req.Method), d) || !known {
		a.s.metrics.fail(kindDigest, "bad credentials")
		if bl := a.s.limiter.fail(now, uKey, aKey); bl > 0 {
			a.s.log.Info("sip auth blocked after failures", zap.String("user", d.username),
				zap.String("addr", strings.TrimPrefix(aKey, "a:")), zap.Duration("block", bl))
		}
		return Principal{}, a.challenge(now, false, "", ErrInvalidCredentials)
	}
	// The response is right: from here on the client knows the password.
	if a.nonces.expired(issued, now) {
		return Principal{}, a.challenge(now, true, "", ErrStaleNonce)
	}
	if err := a.nonces.use(d.nonce, issued, d.nc, now); err != nil {
		stale := errors.Is(err, ErrStaleNonce)
		if !stale {
			a.s.metrics.fail(kindDigest, "replay")
			a.s.limiter.fail(now, aKey)
		}
		return Principal{}, a.challenge(now, stale, "", err)
	}
	if u.Disabled {
		a.s.metrics.fail(kindDigest, "disabled")
		return Principal{}, forbidden("Forbidden", ErrDisabled)
	}
	aor, err := requestAOR(req)
	if err != nil {
		return Principal{}, err
	}
	if !sameAOR(u.Identity, aor) && (u.Tel == "" || !sameAOR(u.Tel, aor)) {
		a.s.metrics.fail(kindDigest, "identity")
		return Principal{}, forbidden("Forbidden", fmt.Errorf("%w: %s may not act as %s", ErrForbidden, u.ID, canonicalAOR(aor)))
	}
	a.s.limiter.reset(uKey)
	return Principal{User: u}, nil
}

func (a *SIPAuth) algEnabled(alg string) bool {
	for _, x := range a.s.cfg.DigestAlgorithms {
		if strings.EqualFold(x, alg) {
			return true
		}
	}
	return false
}

// canonicalDigestAlg maps a client's spelling to the DigestHA1 map key.
func canonicalDigestAlg(alg string) string {
	if strings.EqualFold(alg, DigestSHA256) {
		return DigestSHA256
	}
	return DigestMD5
}

// Challenges returns the WWW-Authenticate headers of a 401 to req: Bearer
// (unless disabled) then one Digest per configured algorithm, sharing one
// fresh nonce (RFC 8898 §2.2, RFC 7616 §3.7). The registrar uses it to
// challenge again when a token-backed registration expires.
func (a *SIPAuth) Challenges() []sip.Header {
	return a.challengeHeaders(a.s.now(), false, "")
}

func (a *SIPAuth) challengeHeaders(now time.Time, stale bool, tokenErr string) []sip.Header {
	var hs []sip.Header
	if !a.s.cfg.DisableSIPBearer {
		b := Credentials{Scheme: "Bearer", Params: []Param{{Name: "realm", Value: a.s.cfg.Realm, Quoted: true}}}
		if a.s.cfg.AuthzServer != "" {
			b.Params = append(b.Params, Param{Name: "authz_server", Value: a.s.cfg.AuthzServer, Quoted: true})
		}
		b.Params = append(b.Params, Param{Name: "scope", Value: "sip", Quoted: true})
		if tokenErr != "" { // RFC 6750 §3.1
			b.Params = append(b.Params,
				Param{Name: "error", Value: "invalid_token", Quoted: true},
				Param{Name: "error_description", Value: tokenErr, Quoted: true})
		}
		hs = append(hs, sip.NewHeader("WWW-Authenticate", b.String()))
	}
	nonce := a.nonces.issue(now)
	for _, alg := range a.s.cfg.DigestAlgorithms {
		d := Credentials{Scheme: "Digest", Params: []Param{
			{Name: "realm", Value: a.s.cfg.Realm, Quoted: true},
			{Name: "nonce", Value: nonce, Quoted: true},
			{Name: "algorithm", Value: alg},
			{Name: "qop", Value: "auth", Quoted: true},
		}}
		if stale {
			d.Params = append(d.Params, Param{Name: "stale", Value: "true"})
		}
		hs = append(hs, sip.NewHeader("WWW-Authenticate", d.String()))
	}
	return hs
}

func (a *SIPAuth) challenge(now time.Time, stale bool, tokenErr string, err error) *SIPError {
	return &SIPError{Code: sip.StatusUnauthorized, Reason: "Unauthorized", Headers: a.challengeHeaders(now, stale, tokenErr), Err: err}
}

func (a *SIPAuth) rateLimited(kind string, d time.Duration) *SIPError {
	a.s.metrics.fail(kind, "rate limited")
	secs := int((d + time.Second - 1) / time.Second)
	return &SIPError{
		Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable",
		Headers: []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(secs))},
		Err:     &RateLimitError{RetryAfter: d},
	}
}

func forbidden(reason string, err error) *SIPError {
	return &SIPError{Code: sip.StatusForbidden, Reason: reason, Err: err}
}

func internalError(err error) *SIPError {
	return &SIPError{Code: sip.StatusInternalServerError, Reason: "Server Internal Error", Err: err}
}

// requestAOR returns the AOR the request acts for: To of a REGISTER
// (RFC 3261 §10.3 step 5), From of anything else.
func requestAOR(req *sip.Request) (sip.Uri, error) {
	if req.Method == sip.REGISTER {
		if to := req.To(); to != nil {
			return to.Address, nil
		}
	} else if from := req.From(); from != nil {
		return from.Address, nil
	}
	return sip.Uri{}, &SIPError{Code: sip.StatusBadRequest, Reason: "Bad Request", Err: fmt.Errorf("%w: no To/From", ErrMalformed)}
}

// sameAOR compares a stored identity (sip:, sips: or tel: URI) with an AOR
// from the request after RFC 3261 §10.3 canonicalisation: parameters and
// headers dropped, scheme and host compared without case.
func sameAOR(identity string, aor sip.Uri) bool {
	if identity == "" {
		return false
	}
	var id sip.Uri
	if err := sip.ParseUri(identity, &id); err != nil {
		return false
	}
	return canonicalAOR(id) == canonicalAOR(aor)
}

func canonicalAOR(u sip.Uri) string {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "sip" && scheme != "sips" {
		return scheme + ":" + u.Raw()
	}
	s := scheme + ":" + u.User + "@" + strings.ToLower(u.Host)
	if u.Port != 0 {
		s += ":" + strconv.Itoa(u.Port)
	}
	return s
}

// sameRequestURI reports whether the Digest uri parameter names the
// Request-URI (same scheme, user, host and port; parameters may differ in
// order, so they are compared only through the full string when the uri
// does not parse).
func sameRequestURI(uri string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return uri == ruri.String()
	}
	return canonicalAOR(u) == canonicalAOR(ruri)
}
