package auth

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // each problem's prefix, in order
	}{
		{name: "zero is valid", cfg: Config{}},
		{
			name: "good keys",
			cfg: Config{Keys: []KeyConfig{
				{ID: "k2", Alg: "ES256", PrivateKeyFile: "k2.pem"},
				{ID: "k1", Alg: "EdDSA", PublicKeyFile: "k1.pub"},
			}},
		},
		{
			name: "bad keys",
			cfg: Config{Keys: []KeyConfig{
				{ID: "k1", Alg: "EdDSA", PrivateKeyFile: "a"},
				{ID: "k2", Alg: "HS256", PrivateKeyFile: "b"},
				{ID: "k1", Alg: "RS256"},
				{Alg: "EdDSA", PublicKeyFile: "c"},
			}, ActiveKey: "k9"},
			want: []string{
				`keys[1].alg: "HS256" not allowed (EdDSA, ES256)`,
				`keys[2].id: "k1" is used twice`,
				`keys[2].alg: "RS256" not allowed (EdDSA, ES256)`,
				`keys[2]: needs private_key_file or public_key_file`,
				`keys[3].id: must be set`,
				`active_key: "k9" is not one of keys[].id`,
			},
		},
		{
			name: "active key without private key",
			cfg:  Config{Keys: []KeyConfig{{ID: "old", Alg: "EdDSA", PublicKeyFile: "p"}}, ActiveKey: "old"},
			want: []string{`active_key: "old" has no private_key_file`},
		},
		{
			name: "only verify-only keys",
			cfg:  Config{Keys: []KeyConfig{{ID: "old", Alg: "EdDSA", PublicKeyFile: "p"}}},
			want: []string{`active_key: no key has a private_key_file`},
		},
		{
			name: "durations and limits",
			cfg: Config{AccessTTL: -time.Second, RefreshTTL: time.Minute, Leeway: time.Hour, NonceTTL: -1,
				RateLimit: RateLimitConfig{MaxFailures: -1, MaxKeys: -2, Window: -time.Second}},
			want: []string{
				"access_ttl: must not be negative", "nonce_ttl: must not be negative", "rate_limit.window: must not be negative",
				"leeway: 1h0m0s is more than 5m",
				"rate_limit.max_failures: must not be negative", "rate_limit.max_keys: must not be negative",
			},
		},
		{
			name: "access longer than refresh",
			cfg:  Config{AccessTTL: time.Hour, RefreshTTL: time.Minute},
			want: []string{"access_ttl: 1h0m0s must be shorter than refresh_ttl (1m0s)"},
		},
		{
			name: "sip settings",
			cfg: Config{Realm: `bad"realm`, DigestAlgorithms: []string{"SHA-256", "SHA-512-256", "SHA-256"},
				AuthzServer: "http://idp.example.net"},
			want: []string{
				"realm: must not contain quotes",
				`digest_algorithms[1]: "SHA-512-256" not supported (SHA-256, MD5)`,
				`digest_algorithms[2]: "SHA-256" listed twice`,
				`authz_server: "http://idp.example.net" is not an https URL`,
			},
		},
		{
			name: "roles",
			cfg: Config{Roles: map[string][]string{
				"support": {"user:manage", "metrics:reed"},
				"Bad":     {"*"},
				"user":    {"message:send"},
			}},
			want: []string{
				"roles.Bad: role names may hold only",
				`roles.support[1]: unknown permission "metrics:reed"`,
			},
		},
		{
			name: "argon2",
			cfg:  Config{Argon2: Argon2Config{MemoryKiB: 4, Parallelism: 1, Iterations: 100}},
			want: []string{"argon2.memory_kib: must be at least 8 per lane", "argon2.iterations: 100 is more than 64"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d problems %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestConfigWithDefaults(t *testing.T) {
	got := Config{Keys: []KeyConfig{{ID: "old", PublicKeyFile: "p"}, {ID: "new", PrivateKeyFile: "k"}}}.WithDefaults()
	want := Config{
		Issuer: "convergo", Audience: "convergo", AccessTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour,
		Leeway: 30 * time.Second, Keys: []KeyConfig{{ID: "old", PublicKeyFile: "p"}, {ID: "new", PrivateKeyFile: "k"}},
		ActiveKey: "new", AutoKeyFile: "./data/jwt-signing.pem", Realm: "convergo", NonceTTL: 5 * time.Minute,
		DigestAlgorithms: []string{"SHA-256", "MD5"},
		RateLimit:        RateLimitConfig{MaxFailures: 5, Window: time.Minute, Block: time.Minute, MaxKeys: 100000},
		Argon2:           Argon2Config{MemoryKiB: 19456, Iterations: 2, Parallelism: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("WithDefaults (-want +got):\n%s", diff)
	}
	if again := got.WithDefaults(); !cmp.Equal(again, got) {
		t.Fatal("WithDefaults is not idempotent")
	}
}

func TestRoles(t *testing.T) {
	cfg := Config{Roles: map[string][]string{
		"support":  {PermUserManage, PermAddressbookRead, PermUserManage},
		"operator": {PermMetricsRead},
		"root":     {"*"},
	}}
	table := buildRoles(cfg.Roles)
	tests := []struct {
		roles []string
		want  []string
	}{
		{[]string{"admin"}, sortedCopy(AllPerms())},
		{[]string{"root"}, sortedCopy(AllPerms())},
		{[]string{"operator"}, []string{PermMetricsRead}}, // overridden
		{[]string{"user"}, []string{PermAddressbookRead, PermAddressbookWrite, PermGroupCreate, PermMessageRead, PermMessageSend}},
		{[]string{"support", "operator"}, []string{PermAddressbookRead, PermMetricsRead, PermUserManage}},
		{[]string{"gone"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := table.perms(tt.roles); !cmp.Equal(got, tt.want) {
			t.Errorf("perms(%v) = %v, want %v", tt.roles, got, tt.want)
		}
	}
	def := buildRoles(nil)
	if got := def.perms([]string{"operator"}); !cmp.Equal(got, []string{PermAddressbookRead, PermMessageRead, PermMetricsRead}) {
		t.Errorf("default operator perms = %v", got)
	}
	if !cfg.KnownRole("support") || !cfg.KnownRole("admin") || cfg.KnownRole("gone") {
		t.Error("KnownRole wrong")
	}
	if got := cfg.RoleNames(); !cmp.Equal(got, []string{"admin", "operator", "root", "support", "user"}) {
		t.Errorf("RoleNames = %v", got)
	}
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestCanAccess(t *testing.T) {
	alice := &Claims{Perms: []string{PermMessageRead}}
	alice.Subject = "alice"
	admin := &Claims{Perms: []string{PermUserManage}}
	admin.Subject = "root"
	tests := []struct {
		c     *Claims
		owner string
		want  bool
	}{
		{alice, "alice", true},
		{alice, "bob", false},
		{admin, "bob", true},
		{nil, "alice", false},
		{&Claims{}, "", false},
	}
	for _, tt := range tests {
		if got := CanAccess(tt.c, tt.owner); got != tt.want {
			t.Errorf("CanAccess(%v, %q) = %v, want %v", tt.c, tt.owner, got, tt.want)
		}
	}
}
