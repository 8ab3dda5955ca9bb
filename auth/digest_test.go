package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDigestVectors checks the response computation against the published
// examples (GET requests over HTTP; SIP uses the same formula).
func TestDigestVectors(t *testing.T) {
	tests := []struct {
		name, alg, user, realm, password, method, uri, nonce, nc, cnonce, want string
	}{
		{
			name: "RFC 2617 §3.5 MD5", alg: "MD5", user: "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", nc: "00000001", cnonce: "0a4f113b",
			want: "6629fae49393a05397450978507c4ef1",
		},
		{
			name: "RFC 7616 §3.9.1 SHA-256", alg: "SHA-256", user: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc: "00000001",
			cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			want:   "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha1, err := DigestHA1(tt.alg, tt.user, tt.realm, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if got := digestResponse(digestHash(tt.alg), ha1, tt.method, tt.uri, tt.nonce, tt.nc, tt.cnonce, "auth"); got != tt.want {
				t.Fatalf("response = %s, want %s", got, tt.want)
			}
			// The same through the header parser and digestMatch, as the server checks it.
			c, err := ParseAuthorization(`Digest username="` + tt.user + `", realm="` + tt.realm + `", nonce="` + tt.nonce +
				`", uri="` + tt.uri + `", algorithm=` + tt.alg + `, qop=auth, nc=` + tt.nc + `, cnonce="` + tt.cnonce +
				`", response="` + strings.ToUpper(tt.want) + `"`)
			if err != nil {
				t.Fatal(err)
			}
			d, err := parseDigest(c)
			if err != nil {
				t.Fatal(err)
			}
			if !digestMatch(digestHash(d.algorithm), ha1, tt.method, d) {
				t.Fatal("digestMatch refused the vector")
			}
			if digestMatch(digestHash(d.algorithm), ha1, "POST", d) {
				t.Fatal("digestMatch accepted another method")
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	base := map[string]string{
		"username": `"alice"`, "realm": `"r"`, "nonce": `"n"`, "uri": `"sip:r"`, "response": `"ab"`,
		"qop": "auth", "nc": "00000001", "cnonce": `"c"`,
	}
	tests := []struct {
		name   string
		change map[string]string // "" deletes
		ok     bool
	}{
		{name: "complete", ok: true},
		{name: "quoted qop accepted", change: map[string]string{"qop": `"auth"`}, ok: true},
		{name: "no username", change: map[string]string{"username": ""}},
		{name: "no response", change: map[string]string{"response": ""}},
		{name: "no uri", change: map[string]string{"uri": ""}},
		{name: "no qop (RFC 2069)", change: map[string]string{"qop": ""}},
		{name: "auth-int", change: map[string]string{"qop": "auth-int"}},
		{name: "no cnonce", change: map[string]string{"cnonce": ""}},
		{name: "short nc", change: map[string]string{"nc": "1"}},
		{name: "non-hex nc", change: map[string]string{"nc": "0000000g"}},
		{name: "zero nc", change: map[string]string{"nc": "00000000"}},
		{name: "userhash", change: map[string]string{"userhash": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parts []string
			for _, k := range []string{"username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce", "userhash"} {
				v, ok := base[k]
				if c, changed := tt.change[k]; changed {
					v, ok = c, c != ""
				}
				if ok {
					parts = append(parts, k+"="+v)
				}
			}
			c, err := ParseAuthorization("Digest " + strings.Join(parts, ", "))
			if err != nil {
				t.Fatal(err)
			}
			d, err := parseDigest(c)
			if (err == nil) != tt.ok {
				t.Fatalf("parseDigest error = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if tt.ok && (d.algorithm != "MD5" || d.nc != 1) {
				t.Fatalf("defaults: algorithm %q nc %d", d.algorithm, d.nc)
			}
		})
	}
}

func TestNonces(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := newNonces([]byte("secret"), "example.net", 5*time.Minute)
	nonce := n.issue(now)
	issued, ok := n.verify(nonce, now.Add(time.Second))
	if !ok || !issued.Equal(now) {
		t.Fatalf("verify(own nonce) = %v, %v", issued, ok)
	}
	if n.expired(issued, now.Add(5*time.Minute)) || !n.expired(issued, now.Add(5*time.Minute+time.Nanosecond)) {
		t.Fatal("expiry boundary wrong")
	}
	if n.issue(now) == nonce {
		t.Fatal("two nonces of one instant are equal")
	}
	other := newNonces([]byte("secret"), "other.realm", time.Minute)
	otherSecret := newNonces([]byte("secret2"), "example.net", time.Minute)
	b := []byte(nonce)
	b[3] ^= 1 // flip a bit in the timestamp part
	for name, bad := range map[string]string{
		"tampered":     string(b),
		"other realm":  other.issue(now),
		"other secret": otherSecret.issue(now),
		"short":        nonce[:len(nonce)-1],
		"not base64":   strings.Repeat("*", len(nonce)),
		"future":       n.issue(now.Add(2 * time.Minute)),
		"empty":        "",
	} {
		if _, ok := n.verify(bad, now); ok {
			t.Errorf("verify(%s) accepted", name)
		}
	}
}

func TestNonceCounts(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := newNonces([]byte("secret"), "r", time.Minute)
	nonce := n.issue(now)
	issued, _ := n.verify(nonce, now)
	steps := []struct {
		nc   uint32
		want error
	}{{1, nil}, {1, ErrReplay}, {3, nil}, {2, ErrReplay}, {3, ErrReplay}, {4, nil}}
	for i, s := range steps {
		if err := n.use(nonce, issued, s.nc, now); !errors.Is(err, s.want) {
			t.Fatalf("step %d: use(nc=%d) = %v, want %v", i, s.nc, err, s.want)
		}
	}
	// A second nonce has its own counter.
	second := n.issue(now)
	issued2, _ := n.verify(second, now)
	if err := n.use(second, issued2, 1, now); err != nil {
		t.Fatalf("use(second nonce, 1) = %v", err)
	}
}

func TestNonceCountsEviction(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := newNonces([]byte("secret"), "r", time.Minute)
	n.counts = newLRU[string, uint32](2)
	var ns []string
	var issued []time.Time
	for i := range 3 {
		at := now.Add(time.Duration(i) * time.Second)
		ns = append(ns, n.issue(at))
		issued = append(issued, at)
		if err := n.use(ns[i], at, 1, at); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(3 * time.Second)
	// ns[0] was evicted: its history is lost, so replaying nc=1 must not pass.
	if err := n.use(ns[0], issued[0], 1, later); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("use(evicted nonce) = %v, want ErrStaleNonce", err)
	}
	// Still-tracked nonces keep their history.
	if err := n.use(ns[2], issued[2], 1, later); !errors.Is(err, ErrReplay) {
		t.Fatalf("use(tracked nonce, same nc) = %v, want ErrReplay", err)
	}
	// A nonce issued after the eviction is fresh.
	fresh := n.issue(later)
	if err := n.use(fresh, later, 1, later); err != nil {
		t.Fatalf("use(fresh) = %v", err)
	}
}
