package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Digest nonce layout: base64url(issued ‖ random ‖ HMAC(secret, issued ‖ random ‖ realm)[:16]),
// issued being Unix nanoseconds, big-endian (RFC 7616 §3.3 leaves the format to the server).
const (
	nonceTimeLen = 8
	nonceRandLen = 12
	nonceMACLen  = 16
	nonceRawLen  = nonceTimeLen + nonceRandLen + nonceMACLen

	// maxTrackedNonces bounds the per-nonce nc table.
	maxTrackedNonces = 100000
	// nonceFutureSkew tolerates clocks of nodes sharing the secret.
	nonceFutureSkew = time.Minute
)

// nonces issues stateless Digest nonces and keeps, per nonce in use, the
// highest nonce count seen. Safe for concurrent use.
type nonces struct {
	secret []byte
	realm  string
	ttl    time.Duration

	mu     sync.Mutex
	counts *lru[string, uint32]
	// floor: a nonce issued at or before it may have been evicted from
	// counts before expiring, so its history is unknown: treat it as stale.
	floor time.Time
}

func newNonces(secret []byte, realm string, ttl time.Duration) *nonces {
	return &nonces{secret: secret, realm: realm, ttl: ttl, counts: newLRU[string, uint32](maxTrackedNonces)}
}

func (n *nonces) mac(b []byte) []byte {
	m := hmac.New(sha256.New, n.secret)
	m.Write(b)
	m.Write([]byte(n.realm))
	return m.Sum(nil)[:nonceMACLen]
}

// issue returns a new nonce stamped with now.
func (n *nonces) issue(now time.Time) string {
	b := make([]byte, nonceRawLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	_, _ = rand.Read(b[nonceTimeLen : nonceTimeLen+nonceRandLen])
	copy(b[nonceTimeLen+nonceRandLen:], n.mac(b[:nonceTimeLen+nonceRandLen]))
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify checks that nonce is ours (MAC over time, random and realm) and
// returns when it was issued. It says nothing about expiry.
func (n *nonces) verify(nonce string, now time.Time) (time.Time, bool) {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(nonceRawLen) {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(b) != nonceRawLen {
		return time.Time{}, false
	}
	body := b[:nonceTimeLen+nonceRandLen]
	if !hmac.Equal(n.mac(body), b[len(body):]) {
		return time.Time{}, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	if issued.After(now.Add(nonceFutureSkew)) {
		return time.Time{}, false
	}
	return issued, true
}

func (n *nonces) expired(issued, now time.Time) bool { return now.Sub(issued) > n.ttl }

// use records nc for a verified, unexpired nonce. The count must be
// strictly greater than every count seen with this nonce (RFC 7616 §3.4:
// a repeated nc is a replay). It returns ErrReplay, or ErrStaleNonce when
// the nonce's history was evicted.
func (n *nonces) use(nonce string, issued time.Time, nc uint32, now time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	last, ok := n.counts.get(nonce, now)
	switch {
	case ok && nc <= last:
		return ErrReplay
	case !ok && !issued.After(n.floor):
		return ErrStaleNonce
	}
	if ev, evicted := n.counts.put(nonce, nc, issued.Add(n.ttl), now); evicted {
		if evIssued, ok := n.verify(ev.key, now); ok && evIssued.After(n.floor) {
			n.floor = evIssued
		}
	}
	return nil
}

// digestCreds are the fields of a Digest Authorization this server needs
// (RFC 7616 §3.4).
type digestCreds struct {
	username, realm, nonce, uri, response, algorithm, qop, cnonce, ncRaw string
	nc                                                                   uint32
}

// parseDigest checks that c carries a complete qop=auth Digest response.
func parseDigest(c Credentials) (digestCreds, error) {
	var d digestCreds
	get := func(name string) string { v, _ := c.Param(name); return v }
	d.username, d.realm, d.nonce, d.uri = get("username"), get("realm"), get("nonce"), get("uri")
	d.response, d.cnonce, d.ncRaw, d.qop = strings.ToLower(get("response")), get("cnonce"), get("nc"), get("qop")
	d.algorithm = get("algorithm")
	if d.algorithm == "" {
		d.algorithm = DigestMD5 // RFC 7616 §3.4: absent means MD5
	}
	switch {
	case d.username == "" || d.nonce == "" || d.uri == "" || d.response == "":
		return d, fmt.Errorf("%w: digest needs username, nonce, uri and response", ErrMalformed)
	case strings.EqualFold(get("userhash"), "true"):
		return d, fmt.Errorf("%w: userhash not supported", ErrMalformed)
	case d.qop != "auth":
		return d, fmt.Errorf("%w: qop must be auth", ErrMalformed)
	case d.cnonce == "":
		return d, fmt.Errorf("%w: digest needs cnonce", ErrMalformed)
	case len(d.ncRaw) != 8:
		return d, fmt.Errorf("%w: nc must be 8 hex digits", ErrMalformed)
	}
	nc, err := strconv.ParseUint(d.ncRaw, 16, 32)
	if err != nil || nc == 0 {
		return d, fmt.Errorf("%w: nc must be 8 hex digits, not zero", ErrMalformed)
	}
	d.nc = uint32(nc)
	return d, nil
}

// digestResponse computes the qop=auth response (RFC 7616 §3.4.1):
// H(HA1:nonce:nc:cnonce:qop:H(method:uri)).
func digestResponse(newHash func() hash.Hash, ha1, method, uri, nonce, nc, cnonce, qop string) string {
	ha2 := hexHash(newHash, method, uri)
	return hexHash(newHash, ha1, nonce, nc, cnonce, qop, ha2)
}

// digestMatch compares the client's response to the expected one in constant time.
func digestMatch(newHash func() hash.Hash, ha1, method string, d digestCreds) bool {
	want := digestResponse(newHash, ha1, method, d.uri, d.nonce, d.ncRaw, d.cnonce, d.qop)
	return subtle.ConstantTimeCompare([]byte(want), []byte(d.response)) == 1
}
