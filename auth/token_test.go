package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/store"
)

// writeKey generates a key and writes PKCS#8 / PKIX PEM files into dir.
func writeKey(t testing.TB, dir, id, alg string) (KeyConfig, crypto.Signer) {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	kc := KeyConfig{ID: id, Alg: alg, PrivateKeyFile: filepath.Join(dir, id+".pem"), PublicKeyFile: filepath.Join(dir, id+".pub")}
	if err := os.WriteFile(kc.PrivateKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kc.PublicKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return kc, priv
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifyToken(t *testing.T) {
	dir := t.TempDir()
	kEd, privEd := writeKey(t, dir, "ed1", AlgEdDSA)
	kEC, privEC := writeKey(t, dir, "ec1", AlgES256)
	cfg := testConfig(t)
	cfg.Keys = []KeyConfig{kEd, kEC}
	cfg.ActiveKey = "ed1"
	tokens := newMemTokens()
	s, _ := newService(t, cfg, newMemUsers(), tokens)
	clk := newClock(s)
	now := clk.now()

	alice := store.User{ID: "alice", Identity: "sip:alice@example.net", Roles: []string{"user", "admin", "user"}}
	good, gc, err := s.issueAccess(alice, "urn:uuid:dev-1", "fam-1", now)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	edPub := privEd.Public().(ed25519.PublicKey)
	pubPEM, _ := os.ReadFile(kEd.PublicKeyFile)

	claims := func(change func(c *Claims)) *Claims {
		c := &Claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "convergo", Subject: "alice", Audience: jwt.ClaimStrings{"convergo"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-1",
		}, SIPIdentity: "sip:alice@example.net"}
		if change != nil {
			change(c)
		}
		return c
	}
	parts := strings.Split(good, ".")
	tamperedPayload := parts[0] + "." + b64JSON(t, claims(func(c *Claims) { c.Perms = AllPerms() })) + "." + parts[2]
	sig := []byte(parts[2])
	// Swap one character for another base64url character: the signature
	// still decodes but no longer verifies (a bit flip could leave the alphabet).
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)
	none := b64JSON(t, map[string]string{"alg": "none", "kid": "ed1", "typ": "JWT"}) + "." + b64JSON(t, claims(nil)) + "."

	tests := []struct {
		name   string
		raw    string
		at     time.Duration // clock offset at verification
		reason string        // "" = valid
	}{
		{name: "valid", raw: good},
		{name: "valid within leeway after exp", raw: good, at: 15*time.Minute + 20*time.Second},
		{name: "ES256 from the verify set", raw: sign(t, jwt.SigningMethodES256, privEC, "ec1", claims(nil))},
		{name: "expired", raw: good, at: 15*time.Minute + 31*time.Second, reason: "expired"},
		{name: "tampered payload", raw: tamperedPayload, reason: "bad signature"},
		{name: "tampered signature", raw: tamperedSig, reason: "bad signature"},
		{name: "signed by a stranger with our kid", raw: sign(t, jwt.SigningMethodEdDSA, stranger, "ed1", claims(nil)), reason: "bad signature"},
		{name: "wrong audience", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} })), reason: "wrong audience"},
		{name: "no audience", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.Audience = nil })), reason: "missing claims"},
		{name: "wrong issuer", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.Issuer = "evil" })), reason: "wrong issuer"},
		{name: "alg none", raw: none, reason: "algorithm not allowed"},
		{name: "HS256 keyed with the public key", raw: sign(t, jwt.SigningMethodHS256, []byte(edPub), "ed1", claims(nil)), reason: "algorithm not allowed"},
		{name: "HS256 keyed with the public PEM", raw: sign(t, jwt.SigningMethodHS256, pubPEM, "ed1", claims(nil)), reason: "algorithm not allowed"},
		{name: "ES256 token claiming EdDSA kid", raw: sign(t, jwt.SigningMethodES256, privEC, "ed1", claims(nil)), reason: "algorithm not allowed"},
		{name: "unknown kid", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "nope", claims(nil)), reason: "unknown key"},
		{name: "no kid", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "", claims(nil)), reason: "unknown key"},
		{name: "no exp", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.ExpiresAt = nil })), reason: "missing claims"},
		{name: "no sub", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.Subject = "" })), reason: "missing claims"},
		{name: "no jti", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.ID = "" })), reason: "missing claims"},
		{name: "nbf in the future", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })), reason: "not yet valid"},
		{name: "iat in the future", raw: sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })), reason: "not yet valid"},
		{name: "garbage", raw: "not-a-jwt", reason: "malformed"},
		{name: "bad base64 signature", raw: parts[0] + "." + parts[1] + ".***", reason: "malformed"},
		{name: "header without alg", raw: "e30.e30.", reason: "algorithm not allowed"},
		{name: "empty", raw: "", reason: "malformed"},
		{name: "huge", raw: strings.Repeat("a", maxTokenLen+1), reason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.mu.Lock()
			clk.t = now.Add(tt.at)
			clk.mu.Unlock()
			c, err := s.VerifyToken(t.Context(), tt.raw)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("VerifyToken = %v, want valid", err)
				}
				if c.Subject != "alice" {
					t.Fatalf("sub = %q", c.Subject)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("VerifyToken error = %v, want a TokenError", err)
			}
			if te.Reason != tt.reason {
				t.Fatalf("reason = %q (%v), want %q", te.Reason, err, tt.reason)
			}
		})
	}

	// Claims of the issued token.
	want := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "convergo", Subject: "alice", Audience: jwt.ClaimStrings{"convergo"},
			ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		},
		Roles: []string{"admin", "user"}, Perms: s.Perms([]string{"admin"}), SIPIdentity: "sip:alice@example.net",
		Device: "urn:uuid:dev-1", SessionID: "fam-1",
	}
	clk.mu.Lock()
	clk.t = now
	clk.mu.Unlock()
	got, err := s.VerifyToken(t.Context(), good)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(jwt.RegisteredClaims{}, "ID")); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	if got.ID == "" || got.ID != gc.ID {
		t.Fatalf("jti = %q, want %q", got.ID, gc.ID)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]string
	_ = json.Unmarshal(hdr, &h)
	if h["alg"] != "EdDSA" || h["kid"] != "ed1" {
		t.Fatalf("header = %v", h)
	}

	// Revocation: by jti, and by session.
	if err := tokens.Revoke(t.Context(), gc.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyToken(t.Context(), good); !isReason(err, "revoked") {
		t.Fatalf("revoked jti: %v", err)
	}
	other, _, _ := s.issueAccess(alice, "", "fam-2", now)
	_ = tokens.Revoke(t.Context(), sidRevocationKey("fam-2"), time.Now().Add(time.Hour))
	if _, err := s.VerifyToken(t.Context(), other); !isReason(err, "revoked") {
		t.Fatalf("revoked session: %v", err)
	}
	// A store failure is not a token problem.
	tokens.fail = errors.New("disk on fire")
	if _, err := s.VerifyToken(t.Context(), sign(t, jwt.SigningMethodEdDSA, privEd, "ed1", claims(nil))); err == nil || errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("store failure: %v", err)
	}
}

func isReason(err error, reason string) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Reason == reason
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	k1, _ := writeKey(t, dir, "k1", AlgEdDSA)
	k2, _ := writeKey(t, dir, "k2", AlgES256)
	alice := store.User{ID: "alice", Identity: "sip:alice@example.net"}
	tokens := newMemTokens()

	cfg := testConfig(t)
	cfg.Keys = []KeyConfig{k1}
	before, _ := newService(t, cfg, newMemUsers(), tokens)
	old, _, err := before.issueAccess(alice, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Rotation: k2 signs, k1 (public key only) still verifies.
	k1VerifyOnly := KeyConfig{ID: "k1", Alg: AlgEdDSA, PublicKeyFile: k1.PublicKeyFile}
	cfg.Keys = []KeyConfig{k1VerifyOnly, k2}
	during, _ := newService(t, cfg, newMemUsers(), tokens)
	if during.keys.signer.id != "k2" {
		t.Fatalf("active key = %s, want k2 (first with a private key)", during.keys.signer.id)
	}
	if _, err := during.VerifyToken(t.Context(), old); err != nil {
		t.Fatalf("old-key token during rotation: %v", err)
	}
	fresh, _, _ := during.issueAccess(alice, "", "", time.Now())
	if _, err := during.VerifyToken(t.Context(), fresh); err != nil {
		t.Fatalf("new-key token: %v", err)
	}
	if _, err := before.VerifyToken(t.Context(), fresh); !isReason(err, "unknown key") {
		t.Fatalf("node without k2: %v", err)
	}

	// k1 removed: its tokens stop verifying.
	cfg.Keys = []KeyConfig{k2}
	after, _ := newService(t, cfg, newMemUsers(), tokens)
	if _, err := after.VerifyToken(t.Context(), old); !isReason(err, "unknown key") {
		t.Fatalf("old-key token after removal: %v", err)
	}
	if _, err := after.VerifyToken(t.Context(), fresh); err != nil {
		t.Fatalf("new-key token after removal: %v", err)
	}
}

func TestJWKS(t *testing.T) {
	dir := t.TempDir()
	kEd, privEd := writeKey(t, dir, "ed", AlgEdDSA)
	kEC, privEC := writeKey(t, dir, "ec", AlgES256)
	cfg := testConfig(t)
	cfg.Keys = []KeyConfig{kEd, {ID: "ec", Alg: AlgES256, PublicKeyFile: kEC.PublicKeyFile}}
	s, _ := newService(t, cfg, newMemUsers(), newMemTokens())
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(s.keys.jwks, &doc); err != nil {
		t.Fatal(err)
	}
	ecPub := privEC.Public().(*ecdsa.PublicKey)
	ecdhPub, _ := ecPub.ECDH()
	raw := ecdhPub.Bytes()
	want := []map[string]string{
		{"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])},
		{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(privEd.Public().(ed25519.PublicKey))},
	}
	if diff := cmp.Diff(want, doc.Keys); diff != "" {
		t.Fatalf("jwks (-want +got):\n%s", diff)
	}
	if strings.Contains(string(s.keys.jwks), `"d"`) {
		t.Fatal("jwks contains private material")
	}
}

func TestAutoKey(t *testing.T) {
	cfg := testConfig(t)
	s1, _ := newService(t, cfg, newMemUsers(), newMemTokens())
	fi, err := os.Stat(cfg.AutoKeyFile)
	if err != nil {
		t.Fatalf("auto key not written: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("auto key mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(cfg.AutoKeyFile)
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("auto key is not a PKCS#8 PEM")
	}
	s2, _ := newService(t, cfg, newMemUsers(), newMemTokens())
	if s1.keys.signer.id != s2.keys.signer.id || !cmp.Equal(s1.keys.jwks, s2.keys.jwks) {
		t.Fatal("second start did not reuse the key")
	}
	tok, _, _ := s1.issueAccess(store.User{ID: "a"}, "", "", time.Now())
	if _, err := s2.VerifyToken(t.Context(), tok); err != nil {
		t.Fatalf("token of first start: %v", err)
	}
	if len(s1.keys.signer.id) != 43 {
		t.Fatalf("kid %q is not an RFC 7638 thumbprint", s1.keys.signer.id)
	}
}

func TestNewKeyErrors(t *testing.T) {
	dir := t.TempDir()
	kEd, _ := writeKey(t, dir, "ed", AlgEdDSA)
	kEC, _ := writeKey(t, dir, "ec", AlgES256)
	tests := []struct {
		name string
		keys []KeyConfig
		want string
	}{
		{"missing file", []KeyConfig{{ID: "x", Alg: AlgEdDSA, PrivateKeyFile: filepath.Join(dir, "nope.pem")}}, "no such file"},
		{"ed key declared ES256", []KeyConfig{{ID: "x", Alg: AlgES256, PrivateKeyFile: kEd.PrivateKeyFile}}, "needs alg EdDSA"},
		{"ec key declared EdDSA", []KeyConfig{{ID: "x", Alg: AlgEdDSA, PrivateKeyFile: kEC.PrivateKeyFile}}, "must be P-256"},
		{"public does not match", []KeyConfig{{ID: "x", Alg: AlgEdDSA, PrivateKeyFile: kEd.PrivateKeyFile, PublicKeyFile: kEC.PublicKeyFile}}, "does not match"},
		{"public file as private", []KeyConfig{{ID: "x", Alg: AlgEdDSA, PrivateKeyFile: kEd.PublicKeyFile}}, `no PEM block "PRIVATE KEY"`},
		{"invalid config", []KeyConfig{{ID: "x", Alg: "HS256", PrivateKeyFile: kEd.PrivateKeyFile}}, `keys[0].alg: "HS256" not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Keys = tt.keys
			_, err := New(cfg, newMemUsers(), newMemTokens(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			kc, _ := writeKey(b, b.TempDir(), "k", alg)
			cfg := testConfig(b)
			cfg.Keys = []KeyConfig{kc}
			s, _ := newService(b, cfg, newMemUsers(), newMemTokens())
			raw, _, err := s.issueAccess(store.User{ID: "alice", Identity: "sip:alice@example.net", Roles: []string{"user"}}, "", "sid", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.VerifyToken(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
