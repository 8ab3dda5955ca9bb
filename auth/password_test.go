package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/convergo/convergo/store"
)

func TestHashPassword(t *testing.T) {
	phc, err := HashPassword("correct horse", fastArgon2)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(phc) {
		t.Fatalf("HashPassword = %q, not a PHC argon2id string", phc)
	}
	if strings.Contains(phc, "correct horse") {
		t.Fatal("hash contains the password")
	}
	other, _ := HashPassword("correct horse", fastArgon2)
	if other == phc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{{"correct horse", true}, {"correct horse ", false}, {"", false}, {"Correct horse", false}} {
		got, err := VerifyPassword(phc, tt.password)
		if err != nil || got != tt.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tt.password, got, err, tt.want)
		}
	}
}

func TestHashPasswordDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("19 MiB argon2")
	}
	phc, err := HashPassword("pw", Argon2Config{})
	if err != nil || !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("HashPassword with zero config = %q, %v", phc, err)
	}
}

func TestVerifyPasswordBadHashes(t *testing.T) {
	good, _ := HashPassword("pw", fastArgon2)
	parts := strings.Split(good, "$")
	tests := []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$t=1,m=64,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=0,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5], // would cost 95 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=300$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$abc",
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4],
		"$2b$10$short",
	}
	for _, phc := range tests {
		ok, err := VerifyPassword(phc, "pw")
		if ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", phc, ok, err)
		}
	}
}

func TestVerifyPasswordBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("imported"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(string(h), "imported"); !ok || err != nil {
		t.Fatalf("bcrypt good password = %v, %v", ok, err)
	}
	if ok, err := VerifyPassword(string(h), "other"); ok || err != nil {
		t.Fatalf("bcrypt wrong password = %v, %v", ok, err)
	}
}

func TestDigestHA1(t *testing.T) {
	// RFC 2617 §3.5 credentials; HA1 computed independently with crypto/md5 and crypto/sha256.
	sum := md5.Sum([]byte("Mufasa:testrealm@host.com:Circle Of Life"))
	md5HA1 := hexOf(sum[:])
	if md5HA1 != "939e7578ed9e3c518a452acee763bce9" {
		t.Fatalf("independent MD5 HA1 = %s", md5HA1)
	}
	got, err := DigestHA1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
	if err != nil || got != md5HA1 {
		t.Fatalf("DigestHA1(MD5) = %s, %v; want %s", got, err, md5HA1)
	}
	sha := sha256.Sum256([]byte("Mufasa:http-auth@example.org:Circle of Life"))
	got, err = DigestHA1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life")
	if err != nil || got != hexOf(sha[:]) {
		t.Fatalf("DigestHA1(SHA-256) = %s, %v", got, err)
	}
	if _, err := DigestHA1("SHA-512-256", "a", "b", "c"); err == nil {
		t.Fatal("DigestHA1(SHA-512-256) succeeded; not supported")
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestSetPassword(t *testing.T) {
	cfg := Config{Realm: "example.net", Argon2: fastArgon2}
	u := store.User{ID: "alice", Identity: "sip:alice@example.net", Version: 3}
	if err := SetPassword(&u, "s3cret pass", cfg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := VerifyPassword(u.PasswordHash, "s3cret pass"); !ok {
		t.Fatal("PasswordHash does not verify")
	}
	for _, alg := range []string{"MD5", "SHA-256"} {
		want, _ := DigestHA1(alg, "alice", "example.net", "s3cret pass")
		if u.DigestHA1[alg] != want {
			t.Errorf("DigestHA1[%s] = %q, want %q", alg, u.DigestHA1[alg], want)
		}
	}
	if u.Version != 3 || u.ID != "alice" {
		t.Fatalf("SetPassword changed other fields: %+v", u)
	}
	// default realm
	u2 := store.User{ID: "bob"}
	_ = SetPassword(&u2, "pw", Config{Argon2: fastArgon2})
	if want, _ := DigestHA1("MD5", "bob", "convergo", "pw"); u2.DigestHA1["MD5"] != want {
		t.Fatal("SetPassword did not use the default realm")
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxPasswordLen+1), "a\nb", "nul\x00"} {
		if err := SetPassword(&u, bad, cfg); !errors.Is(err, errBadPassword) {
			t.Errorf("SetPassword(%q) error = %v, want errBadPassword", bad, err)
		}
	}
}
