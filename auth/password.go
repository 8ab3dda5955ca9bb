package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/convergo/convergo/store"
)

// MaxPasswordLen bounds the password accepted by SetPassword and login, so
// that hashing cost does not depend on attacker-chosen sizes.
const MaxPasswordLen = 1024

const (
	maxArgon2MemoryKiB  = 1 << 20 // 1 GiB
	maxArgon2Iterations = 64
	argon2SaltLen       = 16
	argon2KeyLen        = 32
)

var (
	errBadPHC      = errors.New("auth: unsupported or malformed password hash")
	errBadPassword = errors.New("auth: password must be 1 to 1024 bytes without control characters")
)

// HashPassword returns password hashed with argon2id as a PHC string:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> (RFC 9106).
func HashPassword(password string, p Argon2Config) (string, error) {
	if p.MemoryKiB == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		p = Config{Argon2: p}.WithDefaults().Argon2
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string phc
// (argon2id, or bcrypt $2a$/$2b$/$2y$ for imported accounts). The
// comparison is constant-time. The error is non-nil only when phc is not
// a hash this package understands.
func VerifyPassword(phc, password string) (bool, error) {
	if strings.HasPrefix(phc, "$2") {
		err := bcrypt.CompareHashAndPassword([]byte(phc), []byte(password))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("%w: %w", errBadPHC, err)
		}
	}
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC parses an argon2id PHC string, refusing parameters that would
// make verification unreasonably expensive.
func parsePHC(phc string) (Argon2Config, []byte, []byte, error) {
	var p Argon2Config
	parts := strings.Split(phc, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadPHC
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, errBadPHC
	}
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return p, nil, nil, errBadPHC
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return p, nil, nil, errBadPHC
		}
		switch i {
		case 0:
			p.MemoryKiB = uint32(n)
		case 1:
			p.Iterations = uint32(n)
		case 2:
			if n > 255 {
				return p, nil, nil, errBadPHC
			}
			p.Parallelism = uint8(n)
		}
	}
	if p.MemoryKiB > maxArgon2MemoryKiB || p.Iterations > maxArgon2Iterations || p.MemoryKiB < 8*uint32(p.Parallelism) {
		return p, nil, nil, errBadPHC
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errBadPHC
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, errBadPHC
	}
	return p, salt, key, nil
}

// digestHash returns the hash of a Digest algorithm name (RFC 7616 §3.3),
// or nil when the algorithm is not supported.
func digestHash(alg string) func() hash.Hash {
	switch {
	case strings.EqualFold(alg, DigestSHA256):
		return sha256.New
	case strings.EqualFold(alg, DigestMD5):
		return md5.New
	}
	return nil
}

// hexHash returns lowercase hex H(p1:p2:...).
func hexHash(newHash func() hash.Hash, parts ...string) string {
	h := newHash()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DigestHA1 returns H(user:realm:password) in lowercase hex for a Digest
// algorithm ("SHA-256" or "MD5"), as stored in store.User.DigestHA1.
func DigestHA1(alg, user, realm, password string) (string, error) {
	h := digestHash(alg)
	if h == nil {
		return "", fmt.Errorf("auth: digest algorithm %q not supported", alg)
	}
	return hexHash(h, user, realm, password), nil
}

// CheckPassword reports whether password is acceptable to SetPassword.
func CheckPassword(password string) error {
	if password == "" || len(password) > MaxPasswordLen || hasCtl(password) {
		return errBadPassword
	}
	return nil
}

// SetPassword sets u.PasswordHash (argon2id with cfg.Argon2) and, for every
// supported Digest algorithm, u.DigestHA1 with user = u.ID and realm =
// cfg.Realm (defaults applied). Nothing else of u changes.
func SetPassword(u *store.User, password string, cfg Config) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	phc, err := HashPassword(password, cfg.Argon2)
	if err != nil {
		return err
	}
	ha1 := make(map[string]string, 2)
	for _, alg := range []string{DigestSHA256, DigestMD5} {
		ha1[alg], _ = DigestHA1(alg, u.ID, cfg.Realm, password)
	}
	u.PasswordHash = phc
	u.DigestHA1 = ha1
	return nil
}
