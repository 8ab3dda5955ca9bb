package auth

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Signing algorithms accepted for JWTs (RFC 7518 §3.4, RFC 8037 §3.1).
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Digest algorithms offered to SIP clients (RFC 7616 §3.3, RFC 8760).
const (
	DigestSHA256 = "SHA-256"
	DigestMD5    = "MD5"
)

// Config is the auth block of convergo's configuration. The zero value of
// every field means its default, applied by New (and by WithDefaults).
type Config struct {
	// Issuer is written to and required in the "iss" claim. Default "convergo".
	Issuer string `yaml:"issuer"`
	// Audience is written to and required in the "aud" claim. Default "convergo".
	Audience string `yaml:"audience"`
	// AccessTTL is the lifetime of an access JWT. Default 15m.
	AccessTTL time.Duration `yaml:"access_ttl"`
	// RefreshTTL is the lifetime of a refresh token, renewed at each
	// rotation. Default 720h (30 days).
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s.
	Leeway time.Duration `yaml:"leeway"`
	// Keys are the JWT keys. The active one signs; the others only verify
	// until they are removed (key rotation). Empty: use AutoKeyFile.
	Keys []KeyConfig `yaml:"keys"`
	// ActiveKey is the id of the signing key; it needs a private_key_file.
	// Default: the first key that has a private_key_file.
	ActiveKey string `yaml:"active_key"`
	// AutoKeyFile is where an Ed25519 key is generated on first start when
	// Keys is empty, and read from afterwards (PKCS#8 PEM, mode 0600).
	// Default "./data/jwt-signing.pem". Production should configure Keys.
	AutoKeyFile string `yaml:"auto_key_file"`
	// Realm is the SIP Digest realm, used in HA1 = H(user:realm:password)
	// and in every challenge. Changing it invalidates stored HA1 values
	// until the next password set. Default "convergo".
	Realm string `yaml:"realm"`
	// NonceTTL is how long a Digest nonce is accepted; an older nonce with
	// a correct response is challenged again with stale=true. Default 5m.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// DigestAlgorithms are challenged in this order (strongest first).
	// Default [SHA-256, MD5].
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// DisableSIPBearer turns off Bearer (RFC 8898) for SIP: no Bearer
	// challenge, Bearer credentials refused. Some UAs read only the first
	// WWW-Authenticate header, which is the Bearer one otherwise.
	DisableSIPBearer bool `yaml:"disable_sip_bearer"`
	// AuthzServer, when set, is sent as authz_server in the SIP Bearer
	// challenge (RFC 8898 §3.2): the https URL clients log in at.
	AuthzServer string `yaml:"authz_server"`
	// Roles maps a role name to its permissions. An entry for a built-in
	// role (admin, operator, user) replaces its permissions; other entries
	// add roles. "*" stands for every permission.
	Roles map[string][]string `yaml:"roles"`
	// RateLimit bounds failed logins and SIP authentications.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// Argon2 is the cost of new password hashes (RFC 9106). Existing hashes
	// keep the parameters stored in their PHC string.
	Argon2 Argon2Config `yaml:"argon2"`
}

// KeyConfig is one JWT key. Files are PEM: PKCS#8 "PRIVATE KEY" or PKIX
// "PUBLIC KEY". A verify-only key needs only public_key_file.
type KeyConfig struct {
	// ID is the "kid" header of tokens signed with this key.
	ID string `yaml:"id"`
	// Alg is EdDSA (Ed25519) or ES256 (ECDSA P-256).
	Alg string `yaml:"alg"`
	// PrivateKeyFile is needed to sign (the active key).
	PrivateKeyFile string `yaml:"private_key_file"`
	// PublicKeyFile is enough to verify; derived from the private key when empty.
	PublicKeyFile string `yaml:"public_key_file"`
}

// RateLimitConfig bounds authentication failures per user and per source
// address (IPv6 per /64).
type RateLimitConfig struct {
	// MaxFailures within Window trigger a block. Default 5.
	MaxFailures int `yaml:"max_failures"`
	// Window is the period failures are counted in. Default 1m.
	Window time.Duration `yaml:"window"`
	// Block is how long a user or address is refused after tripping the
	// limit (429 / SIP 503 with Retry-After). Default 1m.
	Block time.Duration `yaml:"block"`
	// MaxKeys caps the users and addresses tracked at once; the least
	// recently failed are forgotten first. Default 100000.
	MaxKeys int `yaml:"max_keys"`
}

// Argon2Config is the argon2id cost for new password hashes. The defaults
// follow the OWASP recommendation (m=19 MiB, t=2, p=1).
type Argon2Config struct {
	// MemoryKiB is the memory per hash in KiB. Default 19456.
	MemoryKiB uint32 `yaml:"memory_kib"`
	// Iterations is the number of passes. Default 2.
	Iterations uint32 `yaml:"iterations"`
	// Parallelism is the number of lanes. Default 1.
	Parallelism uint8 `yaml:"parallelism"`
}

// Defaults of Config.
const (
	DefaultIssuer      = "convergo"
	DefaultAudience    = "convergo"
	DefaultAccessTTL   = 15 * time.Minute
	DefaultRefreshTTL  = 30 * 24 * time.Hour
	DefaultLeeway      = 30 * time.Second
	DefaultAutoKeyFile = "./data/jwt-signing.pem"
	DefaultRealm       = "convergo"
	DefaultNonceTTL    = 5 * time.Minute
)

// WithDefaults returns c with every zero field replaced by its default.
func (c Config) WithDefaults() Config {
	setDefault(&c.Issuer, DefaultIssuer)
	setDefault(&c.Audience, DefaultAudience)
	setDefault(&c.AccessTTL, DefaultAccessTTL)
	setDefault(&c.RefreshTTL, DefaultRefreshTTL)
	setDefault(&c.Leeway, DefaultLeeway)
	setDefault(&c.AutoKeyFile, DefaultAutoKeyFile)
	setDefault(&c.Realm, DefaultRealm)
	setDefault(&c.NonceTTL, DefaultNonceTTL)
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = []string{DigestSHA256, DigestMD5}
	}
	if c.ActiveKey == "" {
		for _, k := range c.Keys {
			if k.PrivateKeyFile != "" {
				c.ActiveKey = k.ID
				break
			}
		}
	}
	setDefault(&c.RateLimit.MaxFailures, 5)
	setDefault(&c.RateLimit.Window, time.Minute)
	setDefault(&c.RateLimit.Block, time.Minute)
	setDefault(&c.RateLimit.MaxKeys, 100000)
	setDefault(&c.Argon2.MemoryKiB, 19*1024)
	setDefault(&c.Argon2.Iterations, 2)
	setDefault(&c.Argon2.Parallelism, 1)
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every problem of c at once, each prefixed with its key
// relative to the auth block (the caller adds "config: auth.").
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"access_ttl", c.AccessTTL}, {"refresh_ttl", c.RefreshTTL}, {"leeway", c.Leeway},
		{"nonce_ttl", c.NonceTTL}, {"rate_limit.window", c.RateLimit.Window}, {"rate_limit.block", c.RateLimit.Block},
	} {
		if d.v < 0 {
			bad(d.key, "must not be negative (got %s)", d.v)
		}
	}
	d := c.WithDefaults()
	if d.AccessTTL > 0 && d.RefreshTTL > 0 && d.AccessTTL >= d.RefreshTTL {
		bad("access_ttl", "%s must be shorter than refresh_ttl (%s)", d.AccessTTL, d.RefreshTTL)
	}
	if c.Leeway > 5*time.Minute {
		bad("leeway", "%s is more than 5m", c.Leeway)
	}
	if c.RateLimit.MaxFailures < 0 {
		bad("rate_limit.max_failures", "must not be negative (got %d)", c.RateLimit.MaxFailures)
	}
	if c.RateLimit.MaxKeys < 0 {
		bad("rate_limit.max_keys", "must not be negative (got %d)", c.RateLimit.MaxKeys)
	}
	if d.Argon2.MemoryKiB < 8*uint32(d.Argon2.Parallelism) {
		bad("argon2.memory_kib", "must be at least 8 per lane (got %d)", d.Argon2.MemoryKiB)
	}
	if d.Argon2.MemoryKiB > maxArgon2MemoryKiB {
		bad("argon2.memory_kib", "%d is more than %d", d.Argon2.MemoryKiB, maxArgon2MemoryKiB)
	}
	if d.Argon2.Iterations > maxArgon2Iterations {
		bad("argon2.iterations", "%d is more than %d", d.Argon2.Iterations, maxArgon2Iterations)
	}

	seen := map[string]bool{}
	for i, k := range c.Keys {
		key := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.ID == "":
			bad(key+".id", "must be set")
		case seen[k.ID]:
			bad(key+".id", "%q is used twice", k.ID)
		case !isKeyID(k.ID):
			bad(key+".id", "%q may hold only letters, digits and -._~", k.ID)
		}
		seen[k.ID] = true
		if k.Alg != AlgEdDSA && k.Alg != AlgES256 {
			bad(key+".alg", "%q not allowed (%s, %s)", k.Alg, AlgEdDSA, AlgES256)
		}
		if k.PrivateKeyFile == "" && k.PublicKeyFile == "" {
			bad(key, "needs private_key_file or public_key_file")
		}
	}
	if len(c.Keys) > 0 {
		switch i := slices.IndexFunc(c.Keys, func(k KeyConfig) bool { return k.ID == d.ActiveKey }); {
		case d.ActiveKey == "":
			bad("active_key", "no key has a private_key_file to sign with")
		case i < 0:
			bad("active_key", "%q is not one of keys[].id", d.ActiveKey)
		case c.Keys[i].PrivateKeyFile == "":
			bad("active_key", "%q has no private_key_file", d.ActiveKey)
		}
	} else if c.ActiveKey != "" {
		bad("active_key", "%q set but no keys configured", c.ActiveKey)
	}

	if strings.ContainsAny(c.Realm, "\"\\") || hasCtl(c.Realm) {
		bad("realm", "must not contain quotes, backslashes or control characters")
	}
	algSeen := map[string]bool{}
	for i, a := range c.DigestAlgorithms {
		key := fmt.Sprintf("digest_algorithms[%d]", i)
		switch {
		case a != DigestSHA256 && a != DigestMD5:
			bad(key, "%q not supported (%s, %s)", a, DigestSHA256, DigestMD5)
		case algSeen[a]:
			bad(key, "%q listed twice", a)
		}
		algSeen[a] = true
	}
	if c.AuthzServer != "" {
		u, err := url.Parse(c.AuthzServer)
		if err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(c.AuthzServer, "\"\\") {
			bad("authz_server", "%q is not an https URL", c.AuthzServer)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Roles)) {
		key := "roles." + name
		if name == "" || !isRoleName(name) {
			bad(key, "role names may hold only a-z, 0-9, '-' and '_'")
		}
		for i, p := range c.Roles[name] {
			if p != "*" && !slices.Contains(AllPerms(), p) {
				bad(fmt.Sprintf("%s[%d]", key, i), "unknown permission %q (known: %s, *)", p, strings.Join(AllPerms(), ", "))
			}
		}
	}
	return errors.Join(errs...)
}

func isKeyID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return len(s) <= 128
}

func isRoleName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(s) <= 64
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
