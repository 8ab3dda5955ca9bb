package auth

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

var (
	// ErrInvalidCredentials is returned when a user name, password or Digest
	// response does not match. Unknown users get the same error.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrDisabled is returned when the credentials are right but the account is disabled.
	ErrDisabled = errors.New("auth: account disabled")
	// ErrRateLimited is matched by every *RateLimitError.
	ErrRateLimited = errors.New("auth: too many failed attempts")
	// ErrTokenInvalid is matched by every *TokenError: the token is
	// malformed, expired, wrongly signed, for another issuer or audience, or revoked.
	ErrTokenInvalid = errors.New("auth: invalid token")
	// ErrRefreshReused is returned when an already exchanged refresh token is
	// presented again; its whole family has been revoked.
	ErrRefreshReused = errors.New("auth: refresh token reused")
	// ErrForbidden is returned when an authenticated principal lacks a
	// permission or presents credentials for another identity.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrMalformed is returned for an Authorization header or request body
	// that does not parse.
	ErrMalformed = errors.New("auth: malformed credentials")
	// ErrNoCredentials is returned when a request carries no usable credentials.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrStaleNonce is returned for a Digest response that is right but was
	// computed over an expired nonce; the client retries with stale=true.
	ErrStaleNonce = errors.New("auth: stale nonce")
	// ErrReplay is returned when a Digest nonce count does not increase.
	ErrReplay = errors.New("auth: replayed nonce count")
)

// RateLimitError reports that a user or source address is blocked after
// too many failures. It matches ErrRateLimited.
type RateLimitError struct {
	Key        string        // "user" or "addr": which limit tripped (never the value)
	RetryAfter time.Duration // until the block ends
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("auth: too many failed attempts (%s), retry after %s", e.Key, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// TokenError says why a JWT was refused. It matches ErrTokenInvalid.
type TokenError struct {
	// Reason is a short, stable phrase safe to show to the client and to use
	// as a metric label: "malformed", "expired", "not yet valid",
	// "bad signature", "algorithm not allowed", "unknown key", "wrong issuer",
	// "wrong audience", "missing claims", "revoked".
	Reason string
	Err    error // underlying cause; may be nil
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return "auth: invalid token: " + e.Reason + ": " + e.Err.Error()
	}
	return "auth: invalid token: " + e.Reason
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrTokenInvalid) true.
func (e *TokenError) Is(target error) bool { return target == ErrTokenInvalid }

// SIPError is a failed SIP authentication that already knows its final
// response: 400 for unparsable credentials, 401 with the challenges to
// send, 403 for a disabled account or a foreign identity, 503 with
// Retry-After while a rate limit blocks the user or address, 500 when the
// store fails. Err carries the cause for logs (never credentials).
type SIPError struct {
	Code    int
	Reason  string
	Headers []sip.Header // WWW-Authenticate challenges, Retry-After
	Err     error
}

func (e *SIPError) Error() string {
	return strconv.Itoa(e.Code) + " " + e.Reason + ": " + fmt.Sprint(e.Err)
}

// Unwrap returns the cause.
func (e *SIPError) Unwrap() error { return e.Err }

// SIPStatus returns the code and reason phrase to answer with; the SIP
// request guard maps any error carrying it to that response.
func (e *SIPError) SIPStatus() (int, string) { return e.Code, e.Reason }

// SIPHeaders returns the headers (challenges, Retry-After) to add to the response.
func (e *SIPError) SIPHeaders() []sip.Header {
	out := make([]sip.Header, len(e.Headers))
	for i, h := range e.Headers {
		out[i] = sip.HeaderClone(h)
	}
	return out
}

// Response builds the final response to req: status, reason and headers.
func (e *SIPError) Response(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, e.Code, e.Reason, nil)
	for _, h := range e.Headers {
		res.AppendHeader(sip.HeaderClone(h))
	}
	return res
}
