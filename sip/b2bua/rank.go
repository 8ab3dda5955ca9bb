package b2bua

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// failure is the best final failure held while forks are pending.
type failure struct {
	code   int
	reason string
	res    *sip.Response // nil when we made it up (timeout, transport error)
	// own marks a failure of this server (the media relay out of ports,
	// an SDP it cannot anchor): answered as is, not mapped by upstream.
	own  bool
	warn string // Warning text (RFC 3261 §20.43) for an own failure
}

// rank orders final failures for the response relayed when no fork
// answers; lower is better. RFC 3261 §16.7 step 6: any 6xx; else the lowest
// class, preferring within 4xx the responses that let the caller retry
// (415, 420, 484, 488) and busy (486); 480 and, worst of all, 408 last
// (protocols.md §2.4 rule 5, Sprout's order).
func rank(code int) int {
	switch {
	case code >= 600:
		return 0
	case code >= 300 && code < 400:
		return 10
	case code == sip.StatusBusyHere:
		return 20
	case code == 415 || code == 420 || code == 484 || code == 488:
		return 21
	case code == sip.StatusTemporarilyUnavailable:
		return 45
	case code == sip.StatusRequestTimeout:
		return 90
	case code >= 400 && code < 500:
		return 30
	default: // 5xx
		return 60
	}
}

// consider keeps f if it ranks better than the failure held (the first of
// equals wins).
func (c *call) consider(f failure) {
	if c.best.code == 0 || rank(f.code) < rank(c.best.code) {
		c.best = f
	}
}

// upstream maps a fork's failure to what the caller may see: a 503 would
// make the caller's proxy try elsewhere for our callee's fault, so it
// becomes 500 (RFC 3261 §16.7 step 6); a device's challenge means nothing
// to the caller (the credentials are per leg), so 401/407 become 403.
func upstream(code int, reason string) (int, string) {
	switch code {
	case sip.StatusServiceUnavailable:
		return sip.StatusInternalServerError, "Server Internal Error"
	case sip.StatusUnauthorized, sip.StatusProxyAuthRequired:
		return sip.StatusForbidden, "Forbidden"
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || hasControl(reason) {
		reason = defaultReason(code)
	}
	return code, reason
}

// defaultReason returns a reason phrase for the codes we generate or relay.
func defaultReason(code int) string {
	switch code {
	case 180:
		return "Ringing"
	case 181:
		return "Call Is Being Forwarded"
	case 182:
		return "Queued"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirect"
	case code < 500:
		return "Client Error"
	case code < 600:
		return "Server Error"
	}
	return "Global Failure"
}
