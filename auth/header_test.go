package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Credentials
		wantErr error
	}{
		{
			name: "digest rfc 2617",
			in:   readTestdata(t, "authz-digest-rfc2617.txt"),
			want: Credentials{Scheme: "Digest", Params: []Param{
				{"username", "Mufasa", true}, {"realm", "testrealm@host.com", true},
				{"nonce", "dcd98b7102dd2f0e8b11d0f600bfb0c093", true}, {"uri", "/dir/index.html", true},
				{"qop", "auth", false}, {"nc", "00000001", false}, {"cnonce", "0a4f113b", true},
				{"response", "6629fae49393a05397450978507c4ef1", true}, {"opaque", "5ccc069c403ebaf9f0171e9517f40e41", true},
			}},
		},
		{
			name: "quoted pairs and commas inside quotes",
			in:   `Digest username="al\"ice\\x", cnonce="c,n", uri="sip:a@b;transport=tcp"`,
			want: Credentials{Scheme: "Digest", Params: []Param{
				{"username", `al"ice\x`, true}, {"cnonce", "c,n", true}, {"uri", "sip:a@b;transport=tcp", true},
			}},
		},
		{
			name: "bearer token68",
			in:   "Bearer aaa.bbb.ccc",
			want: Credentials{Scheme: "Bearer", Token: "aaa.bbb.ccc"},
		},
		{
			name: "bearer token68 padding and surrounding space",
			in:   "  bearer   abc+/~-._==  ",
			want: Credentials{Scheme: "bearer", Token: "abc+/~-._=="},
		},
		{
			name: "bws around equals, tabs, empty elements",
			in:   "Digest realm = \"r\" ,,\t, nonce=x\t,",
			want: Credentials{Scheme: "Digest", Params: []Param{{"realm", "r", true}, {"nonce", "x", false}}},
		},
		{name: "scheme only", in: "Digest", want: Credentials{Scheme: "Digest"}},
		{name: "empty quoted value", in: `Digest opaque=""`, want: Credentials{Scheme: "Digest", Params: []Param{{"opaque", "", true}}}},
		{name: "utf-8 in quotes", in: `Digest username="jösé"`, want: Credentials{Scheme: "Digest", Params: []Param{{"username", "jösé", true}}}},
		{name: "empty", in: "", wantErr: errAuthSyntax},
		{name: "no space after scheme", in: `Digest,realm="x"`, wantErr: errAuthSyntax},
		{name: "unterminated quote", in: `Digest username="abc`, wantErr: errAuthSyntax},
		{name: "escape at end", in: `Digest username="abc\`, wantErr: errAuthSyntax},
		{name: "missing value", in: `Digest username=, realm="x"`, wantErr: errAuthSyntax},
		{name: "missing equals", in: `Digest username "x"`, wantErr: errAuthSyntax},
		{name: "junk after value", in: `Digest username="x" realm="y"`, wantErr: errAuthSyntax},
		{name: "duplicate param ignoring case", in: `Digest nc=1, NC=2`, wantErr: errAuthDupParam},
		{name: "control char in quotes", in: "Digest username=\"a\x01b\"", wantErr: errAuthSyntax},
		{name: "newline", in: "Digest username=\"a\"\r\n, realm=\"b\"", wantErr: errAuthSyntax},
		{name: "only commas", in: "Digest , ,", wantErr: errAuthSyntax},
		{name: "too long", in: "Bearer " + strings.Repeat("a", maxAuthorizationLen), wantErr: errAuthTooLong},
		{name: "too many params", in: "Digest " + manyParams(maxAuthParams+1), wantErr: errAuthSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseAuthorization(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ParseAuthorization(%q) (-want +got):\n%s", tt.in, diff)
			}
			checkRoundTrip(t, got)
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("p")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString("=v")
	}
	return b.String()
}

func TestCredentialsString(t *testing.T) {
	c := Credentials{Scheme: "Digest", Params: []Param{
		{Name: "realm", Value: `a "q" \ b`, Quoted: true},
		{Name: "algorithm", Value: "SHA-256"},
		{Name: "opaque", Value: "has space"}, // not a token: quoted although Quoted is false
		{Name: "empty", Value: ""},
	}}
	want := `Digest realm="a \"q\" \\ b", algorithm=SHA-256, opaque="has space", empty=""`
	if got := c.String(); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	if v, ok := c.Param("ALGORITHM"); !ok || v != "SHA-256" {
		t.Fatalf("Param(ALGORITHM) = %q, %v", v, ok)
	}
	if !c.Is("digest") {
		t.Fatal("Is(digest) = false")
	}
}

// checkRoundTrip is the parser's invariant: what parses serialises to a
// string that parses to the same credentials, and serialising is stable.
func checkRoundTrip(t *testing.T, c Credentials) {
	t.Helper()
	s := c.String()
	c2, err := ParseAuthorization(s)
	if err != nil {
		t.Fatalf("re-parse of %q: %v", s, err)
	}
	if diff := cmp.Diff(c, c2); diff != "" {
		t.Fatalf("round trip of %q changed credentials (-first +second):\n%s", s, diff)
	}
	if s2 := c2.String(); s2 != s {
		t.Fatalf("String not stable: %q then %q", s, s2)
	}
	for _, p := range c.Params {
		if v, ok := c2.Param(p.Name); !ok || v != p.Value {
			t.Fatalf("Param(%q) = %q, %v after round trip, want %q", p.Name, v, ok, p.Value)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/authz-*.txt")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseAuthorization(in)
		if err != nil {
			return // refusing is fine; panicking is not
		}
		if c.Scheme == "" || !isToken(c.Scheme) {
			t.Fatalf("accepted %q with scheme %q", in, c.Scheme)
		}
		if c.Token != "" && len(c.Params) > 0 {
			t.Fatalf("accepted %q with both token68 and params", in)
		}
		seen := map[string]bool{}
		for _, p := range c.Params {
			k := strings.ToLower(p.Name)
			if seen[k] || !isToken(p.Name) || hasCtl(strings.ReplaceAll(p.Value, "\t", "")) {
				t.Fatalf("accepted %q with bad param %+v", in, p)
			}
			seen[k] = true
		}
		checkRoundTrip(t, c)
		if c.Is("Digest") { // must not panic on anything the parser accepts
			_, _ = parseDigest(c)
		}
	})
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func BenchmarkParseAuthorization(b *testing.B) {
	in, err := os.ReadFile("testdata/authz-digest-rfc7616.txt")
	if err != nil {
		b.Fatal(err)
	}
	s := string(in)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := ParseAuthorization(s); err != nil {
			b.Fatal(err)
		}
	}
}
