package sdes

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// Suite is one SDES crypto suite and its pion profile.
type Suite struct {
	// Name is the SDES name, e.g. AES_CM_128_HMAC_SHA1_80.
	Name string
	// Profile is the pion/srtp protection profile.
	Profile srtp.ProtectionProfile
	// KeyLen and SaltLen are the master key and salt sizes in bytes.
	KeyLen, SaltLen int
}

// suites lists what we support, in our preference order.
var suites = []Suite{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	{"AES_256_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
}

// LookupSuite returns the suite named name (case-sensitive, as RFC 4568).
func LookupSuite(name string) (Suite, bool) {
	for _, s := range suites {
		if s.Name == name {
			return s, true
		}
	}
	return Suite{}, false
}

// Crypto is one parsed a=crypto value with its first key parameter.
type Crypto struct {
	// Tag identifies the line within its m-line; an answer echoes it.
	Tag uint32
	// Suite is the crypto suite.
	Suite Suite
	// Key and Salt are the decoded master key and salt.
	Key, Salt []byte
	// Lifetime is the optional key lifetime as written ("2^31", "1048576").
	Lifetime string
	// MKI is the master key identifier value, MKILen its size in bytes
	// (0 when the line has no MKI).
	MKI    uint64
	MKILen int
	// Params are the session parameters (KDR=, UNENCRYPTED_SRTP, ...), as written.
	Params []string
}

// MKIBytes returns the MKI as sent on the wire (MKILen bytes, big-endian),
// or nil when the line has none.
func (c Crypto) MKIBytes() []byte {
	if c.MKILen == 0 {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], c.MKI)
	return append([]byte(nil), b[8-c.MKILen:]...)
}

// Parse parses the value of an a=crypto attribute (the text after
// "crypto:"). Only the first key parameter is used (RFC 4568 allows
// several, joined by ';', for MKI key sets).
func Parse(value string) (Crypto, error) {
	f := strings.Fields(value)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: want <tag> <suite> <key-params>: %q", ErrSyntax, trunc(value))
	}
	tag, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w: tag %q", ErrSyntax, trunc(f[0]))
	}
	suite, ok := LookupSuite(f[1])
	if !ok {
		return Crypto{}, fmt.Errorf("%w: %q", ErrSuite, trunc(f[1]))
	}
	c := Crypto{Tag: uint32(tag), Suite: suite, Params: f[3:]}
	kp, _, _ := strings.Cut(f[2], ";")
	rest, ok := strings.CutPrefix(kp, "inline:")
	if !ok {
		return Crypto{}, fmt.Errorf("%w: key method must be inline", ErrSyntax)
	}
	parts := strings.Split(rest, "|")
	if len(parts) > 3 {
		return Crypto{}, fmt.Errorf("%w: too many key parameter fields", ErrSyntax)
	}
	raw, err := decode(parts[0])
	if err != nil {
		return Crypto{}, err
	}
	want := suite.KeyLen + suite.SaltLen
	if len(raw) < want {
		return Crypto{}, fmt.Errorf("%w: %s needs %d bytes of key||salt, got %d", ErrKey, suite.Name, want, len(raw))
	}
	c.Key, c.Salt = raw[:suite.KeyLen:suite.KeyLen], raw[suite.KeyLen:want:want]
	for _, p := range parts[1:] {
		if mki, ln, ok := strings.Cut(p, ":"); ok {
			if c.MKILen != 0 {
				return Crypto{}, fmt.Errorf("%w: two MKI fields", ErrSyntax)
			}
			v, err1 := strconv.ParseUint(mki, 10, 64)
			n, err2 := strconv.Atoi(ln)
			if err1 != nil || err2 != nil || n < 1 || n > 8 || (n < 8 && v >= 1<<(8*n)) {
				return Crypto{}, fmt.Errorf("%w: MKI %q", ErrSyntax, trunc(p))
			}
			c.MKI, c.MKILen = v, n
			continue
		}
		if c.Lifetime != "" || !validLifetime(p) {
			return Crypto{}, fmt.Errorf("%w: lifetime %q", ErrSyntax, trunc(p))
		}
		c.Lifetime = p
	}
	return c, nil
}

// String formats c as an a=crypto value with padded base64.
func (c Crypto) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(c.Tag), 10))
	b.WriteByte(' ')
	b.WriteString(c.Suite.Name)
	b.WriteString(" inline:")
	b.WriteString(base64.StdEncoding.EncodeToString(append(append([]byte(nil), c.Key...), c.Salt...)))
	if c.Lifetime != "" {
		b.WriteString("|" + c.Lifetime)
	}
	if c.MKILen != 0 {
		b.WriteString("|" + strconv.FormatUint(c.MKI, 10) + ":" + strconv.Itoa(c.MKILen))
	}
	for _, p := range c.Params {
		b.WriteString(" " + p)
	}
	return b.String()
}

// Generate returns a fresh random key for suite under tag.
func Generate(tag uint32, suite Suite) (Crypto, error) {
	buf := make([]byte, suite.KeyLen+suite.SaltLen)
	if _, err := rand.Read(buf); err != nil {
		return Crypto{}, fmt.Errorf("sdes: generate key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: buf[:suite.KeyLen:suite.KeyLen], Salt: buf[suite.KeyLen:]}, nil
}

// SameKey reports whether a and b carry the same suite, key, salt and MKI.
func SameKey(a, b Crypto) bool {
	return a.Suite.Name == b.Suite.Name && string(a.Key) == string(b.Key) &&
		string(a.Salt) == string(b.Salt) && a.MKI == b.MKI && a.MKILen == b.MKILen
}

// Context creates a pion SRTP context for c with replay protection on.
func (c Crypto) Context() (*srtp.Context, error) {
	opts := []srtp.ContextOption{srtp.SRTPReplayProtection(128), srtp.SRTCPReplayProtection(128)}
	if c.MKILen != 0 {
		opts = append(opts, srtp.MasterKeyIndicator(c.MKIBytes()))
	}
	ctx, err := srtp.CreateContext(c.Key, c.Salt, c.Suite.Profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("sdes: srtp context %s: %w", c.Suite.Name, err)
	}
	return ctx, nil
}

func decode(s string) ([]byte, error) {
	if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
		return raw, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %w", ErrKey, err)
	}
	return raw, nil
}

func validLifetime(s string) bool {
	if e, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(e)
		return err == nil && n > 0 && n <= 64
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
