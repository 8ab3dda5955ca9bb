package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// jwtKey is one configured or generated key.
type jwtKey struct {
	id     string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer    // ed25519.PrivateKey or *ecdsa.PrivateKey; nil when verify-only
	pub    crypto.PublicKey // ed25519.PublicKey or *ecdsa.PublicKey
}

// keySet is immutable after loadKeySet.
type keySet struct {
	signer      *jwtKey
	byID        map[string]*jwtKey
	algs        []string // distinct algorithms, pinned in the parser
	jwks        []byte   // GET /.well-known/jwks.json body
	nonceSecret []byte   // HMAC key of Digest nonces, derived from the signer
}

// loadKeySet reads cfg.Keys, or loads (creating it on first start) the
// Ed25519 key in cfg.AutoKeyFile when no keys are configured. cfg has its
// defaults applied and is valid.
func loadKeySet(cfg Config, log *zap.Logger) (*keySet, error) {
	ks := &keySet{byID: map[string]*jwtKey{}}
	if len(cfg.Keys) == 0 {
		k, created, err := loadAutoKey(cfg.AutoKeyFile)
		if err != nil {
			return nil, err
		}
		log.Warn("no jwt keys configured, using an auto-generated Ed25519 key; configure auth.keys in production",
			zap.String("file", cfg.AutoKeyFile), zap.String("kid", k.id), zap.Bool("created", created))
		ks.add(k)
		ks.signer = k
	}
	for i, kc := range cfg.Keys {
		k, err := loadKey(kc, log)
		if err != nil {
			return nil, fmt.Errorf("auth: keys[%d] (%s): %w", i, kc.ID, err)
		}
		ks.add(k)
		if kc.ID == cfg.ActiveKey {
			if k.priv == nil {
				return nil, fmt.Errorf("auth: active key %q has no private key", kc.ID)
			}
			ks.signer = k
		}
	}
	if ks.signer == nil {
		return nil, fmt.Errorf("auth: active key %q not found", cfg.ActiveKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ks.signer.priv)
	if err != nil {
		return nil, fmt.Errorf("auth: nonce secret: %w", err)
	}
	// Nodes that share the signing key accept each other's nonces.
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("convergo sip digest nonce v1"))
	ks.nonceSecret = mac.Sum(nil)
	if ks.jwks, err = ks.marshalJWKS(); err != nil {
		return nil, err
	}
	return ks, nil
}

func (ks *keySet) add(k *jwtKey) {
	ks.byID[k.id] = k
	if !slices.Contains(ks.algs, k.alg) {
		ks.algs = append(ks.algs, k.alg)
	}
}

// keyFunc resolves the kid header to a configured key whose algorithm
// matches the token's (the parser already pinned the algorithm list).
func (ks *keySet) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	k, ok := ks.byID[kid]
	if !ok {
		return nil, errUnknownKID
	}
	if t.Method.Alg() != k.alg {
		return nil, errAlgMismatch
	}
	return k.pub, nil
}

var (
	errNoKID       = errors.New("auth: token has no kid")
	errUnknownKID  = errors.New("auth: unknown kid")
	errAlgMismatch = errors.New("auth: token alg does not match its key")
)

func loadKey(kc KeyConfig, log *zap.Logger) (*jwtKey, error) {
	k := &jwtKey{id: kc.ID, alg: kc.Alg}
	if kc.PrivateKeyFile != "" {
		if fi, err := os.Stat(kc.PrivateKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("jwt private key file is readable by group or others",
				zap.String("file", kc.PrivateKeyFile), zap.Stringer("mode", fi.Mode().Perm()))
		}
		der, err := readPEM(kc.PrivateKeyFile, "PRIVATE KEY")
		if err != nil {
			return nil, err
		}
		raw, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kc.PrivateKeyFile, err)
		}
		signer, ok := raw.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", kc.PrivateKeyFile)
		}
		k.priv, k.pub = signer, signer.Public()
	}
	if kc.PublicKeyFile != "" {
		der, err := readPEM(kc.PublicKeyFile, "PUBLIC KEY")
		if err != nil {
			return nil, err
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kc.PublicKeyFile, err)
		}
		if k.pub != nil {
			eq, ok := k.pub.(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !eq.Equal(pub) {
				return nil, fmt.Errorf("%s does not match %s", kc.PublicKeyFile, kc.PrivateKeyFile)
			}
		}
		k.pub = pub
	}
	switch pub := k.pub.(type) {
	case ed25519.PublicKey:
		if kc.Alg != AlgEdDSA {
			return nil, fmt.Errorf("an Ed25519 key needs alg %s, not %q", AlgEdDSA, kc.Alg)
		}
		k.method = jwt.SigningMethodEdDSA
	case *ecdsa.PublicKey:
		if kc.Alg != AlgES256 || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an ECDSA key must be P-256 with alg %s", AlgES256)
		}
		k.method = jwt.SigningMethodES256
	default:
		return nil, fmt.Errorf("key type %T not supported (Ed25519, ECDSA P-256)", k.pub)
	}
	return k, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no PEM block %q", path, typ)
	}
	return blk.Bytes, nil
}

// loadAutoKey reads the Ed25519 key at path or, if there is no file,
// generates one and writes it with mode 0600. Its kid is the RFC 7638
// thumbprint, so it is stable across restarts.
func loadAutoKey(path string) (*jwtKey, bool, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, false, fmt.Errorf("auth: generate key: %w", gerr)
		}
		if der, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return nil, false, fmt.Errorf("auth: marshal key: %w", err)
		}
		if err = writeNewKey(path, der); errors.Is(err, fs.ErrExist) {
			// Another process won the race: use its key.
			der, err = readPEM(path, "PRIVATE KEY")
		} else {
			created = err == nil
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth: auto key %s: %w", path, err)
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, false, fmt.Errorf("auth: auto key %s: %w", path, err)
	}
	priv, ok := raw.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("auth: auto key %s: not an Ed25519 key", path)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &jwtKey{id: okpThumbprint(pub), alg: AlgEdDSA, method: jwt.SigningMethodEdDSA, priv: priv, pub: pub}, created, nil
}

func writeNewKey(path string, der []byte) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

// okpThumbprint is the RFC 7638 §3 thumbprint of an Ed25519 key.
func okpThumbprint(pub ed25519.PublicKey) string {
	// Members in lexicographic order, no whitespace (RFC 7638 §3.3).
	doc := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(doc))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// jwk is one public key of the JWKS (RFC 7517 §4, RFC 8037 §2, RFC 7518 §6.2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func (ks *keySet) marshalJWKS() ([]byte, error) {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, id := range slices.Sorted(maps.Keys(ks.byID)) {
		k := ks.byID[id]
		j := jwk{Kid: k.id, Alg: k.alg, Use: "sig"}
		switch pub := k.pub.(type) {
		case ed25519.PublicKey:
			j.Kty, j.Crv, j.X = "OKP", "Ed25519", base64.RawURLEncoding.EncodeToString(pub)
		case *ecdsa.PublicKey:
			ep, err := pub.ECDH()
			if err != nil {
				return nil, fmt.Errorf("auth: jwks %s: %w", k.id, err)
			}
			b := ep.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
			j.Kty, j.Crv = "EC", "P-256"
			j.X = base64.RawURLEncoding.EncodeToString(b[1:33])
			j.Y = base64.RawURLEncoding.EncodeToString(b[33:65])
		}
		doc.Keys = append(doc.Keys, j)
	}
	return json.Marshal(doc)
}
