package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
)

var userTestCfg = auth.Config{Realm: "example.net", Argon2: auth.Argon2Config{MemoryKiB: 64, Iterations: 1, Parallelism: 1}}

func openUserStore(t *testing.T) store.Users {
	t.Helper()
	st, err := bolt.Open(bolt.Config{Path: filepath.Join(t.TempDir(), "db")}, zap.NewNop())
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st.Users()
}

// runUser runs userCommand and returns its output.
func runUser(t *testing.T, users store.Users, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := userCommand(t.Context(), users, userTestCfg, args, strings.NewReader(stdin), &out)
	return out.String(), err
}

func mustRunUser(t *testing.T, users store.Users, stdin string, args ...string) string {
	t.Helper()
	out, err := runUser(t, users, stdin, args...)
	if err != nil {
		t.Fatalf("user %v: %v", args, err)
	}
	return out
}

func checkPassword(t *testing.T, u store.User, password string, want bool) {
	t.Helper()
	ok, err := auth.VerifyPassword(u.PasswordHash, password)
	if err != nil || ok != want {
		t.Fatalf("VerifyPassword(%q) = %v, %v; want %v", password, ok, err, want)
	}
	for _, alg := range []string{"MD5", "SHA-256"} {
		ha1, _ := auth.DigestHA1(alg, u.ID, "example.net", password)
		if (u.DigestHA1[alg] == ha1) != want {
			t.Fatalf("DigestHA1[%s] match = %v, want %v", alg, !want, want)
		}
	}
}

func TestUserAddAndList(t *testing.T) {
	users := openUserStore(t)
	out := mustRunUser(t, users, "s3cret one\r\nignored second line\n",
		"add", "-id", "alice", "-identity", "sip:alice@example.net", "-tel", "tel:+15551230001",
		"-name", "Alice A.", "-roles", "admin,user,admin", "-password-stdin")
	if out != "user alice added (sip:alice@example.net, roles: admin,user)\n" {
		t.Fatalf("output = %q", out)
	}
	u, err := users.Get(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Identity != "sip:alice@example.net" || u.Tel != "tel:+15551230001" || u.DisplayName != "Alice A." ||
		!cmp.Equal(u.Roles, []string{"admin", "user"}) || u.Disabled || u.Created.IsZero() {
		t.Fatalf("stored user = %+v", u)
	}
	checkPassword(t, u, "s3cret one", true)

	t.Setenv(passwordEnv, "env password")
	mustRunUser(t, users, "", "add", "-id", "bob", "-identity", "sip:bob@example.net")
	bob, _ := users.Get(t.Context(), "bob")
	checkPassword(t, bob, "env password", true)
	if !cmp.Equal(bob.Roles, []string{"user"}) {
		t.Fatalf("default roles = %v", bob.Roles)
	}

	out = mustRunUser(t, users, "", "list")
	want := "ID     IDENTITY               TEL               NAME      ROLES       STATUS\n" +
		"alice  sip:alice@example.net  tel:+15551230001  Alice A.  admin,user  active\n" +
		"bob    sip:bob@example.net    -                 -         user        active\n"
	if out != want {
		t.Fatalf("list =\n%s\nwant\n%s", out, want)
	}
	for _, secret := range []string{"s3cret", "env password", "argon2", u.PasswordHash, u.DigestHA1["MD5"]} {
		if strings.Contains(out, secret) {
			t.Fatalf("list shows %q", secret)
		}
	}
}

func TestUserAddErrors(t *testing.T) {
	users := openUserStore(t)
	mustRunUser(t, users, "pw\n", "add", "-id", "alice", "-identity", "sip:alice@example.net", "-password-stdin")
	tests := []struct {
		name  string
		stdin string
		env   string
		args  []string
		usage bool   // errors.Is(err, errUsage)
		want  string // in the error text
	}{
		{"no password anywhere", "", "", []string{"-id", "bob", "-identity", "sip:bob@example.net"}, true, passwordEnv},
		{"empty stdin", "", "", []string{"-id", "bob", "-identity", "sip:bob@example.net", "-password-stdin"}, true, "no password on stdin"},
		{"empty first line", "\nsecond\n", "", []string{"-id", "bob", "-identity", "sip:bob@example.net", "-password-stdin"}, true, "password must be"},
		{"missing id", "pw\n", "", []string{"-identity", "sip:bob@example.net", "-password-stdin"}, true, "-id is required"},
		{"bad id", "pw\n", "", []string{"-id", "bo:b", "-identity", "sip:bob@example.net", "-password-stdin"}, true, "only letters"},
		{"bad identity", "pw\n", "", []string{"-id", "bob", "-identity", "bob@example.net", "-password-stdin"}, true, "want sip:user@domain"},
		{"identity without user", "pw\n", "", []string{"-id", "bob", "-identity", "sip:example.net", "-password-stdin"}, true, "want sip:user@domain"},
		{"bad tel", "pw\n", "", []string{"-id", "bob", "-identity", "sip:bob@example.net", "-tel", "+1555", "-password-stdin"}, true, "want tel:+NUMBER"},
		{"unknown role", "pw\n", "", []string{"-id", "bob", "-identity", "sip:bob@example.net", "-roles", "root", "-password-stdin"}, true, `unknown role "root" (known: admin, operator, user)`},
		{"control char in name", "pw\n", "", []string{"-id", "bob", "-identity", "sip:bob@example.net", "-name", "a\nb", "-password-stdin"}, true, "-name"},
		{"unknown flag", "pw\n", "", []string{"-id", "bob", "-x"}, true, "flag provided but not defined"},
		{"stray argument", "pw\n", "", []string{"-id", "bob", "extra"}, true, "unexpected argument"},
		{"duplicate id", "pw\n", "", []string{"-id", "alice", "-identity", "sip:alice2@example.net", "-password-stdin"}, false, "already taken"},
		{"duplicate identity", "pw\n", "", []string{"-id", "alice2", "-identity", "sip:alice@example.net", "-password-stdin"}, false, "already taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(passwordEnv, tt.env)
			out, err := runUser(t, users, tt.stdin, append([]string{"add"}, tt.args...)...)
			if err == nil || errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v (usage %v), want %q (usage %v)", err, errors.Is(err, errUsage), tt.want, tt.usage)
			}
			if out != "" {
				t.Fatalf("output on error: %q", out)
			}
		})
	}
	list, _ := users.List(t.Context())
	if len(list) != 1 {
		t.Fatalf("%d users stored after failed adds", len(list))
	}
}

func TestUserPasswdRolesDisable(t *testing.T) {
	users := openUserStore(t)
	mustRunUser(t, users, "old pw\n", "add", "-id", "alice", "-identity", "sip:alice@example.net", "-password-stdin")

	out := mustRunUser(t, users, "new pw\n", "passwd", "-id", "alice", "-password-stdin")
	if out != "password of alice changed\n" || strings.Contains(out, "new pw") {
		t.Fatalf("passwd output = %q", out)
	}
	u, _ := users.Get(t.Context(), "alice")
	checkPassword(t, u, "new pw", true)
	checkPassword(t, u, "old pw", false)

	if out := mustRunUser(t, users, "", "roles", "-id", "alice", "-set", "operator, admin"); out != "roles of alice: operator,admin\n" {
		t.Fatalf("roles output = %q", out)
	}
	u, _ = users.Get(t.Context(), "alice")
	if !cmp.Equal(u.Roles, []string{"operator", "admin"}) {
		t.Fatalf("roles = %v", u.Roles)
	}
	mustRunUser(t, users, "", "roles", "-id", "alice", "-set", "")
	u, _ = users.Get(t.Context(), "alice")
	if len(u.Roles) != 0 {
		t.Fatalf("roles after -set \"\" = %v", u.Roles)
	}

	if out := mustRunUser(t, users, "", "disable", "-id", "alice"); out != "user alice disabled\n" {
		t.Fatalf("disable output = %q", out)
	}
	if u, _ = users.Get(t.Context(), "alice"); !u.Disabled {
		t.Fatal("not disabled")
	}
	if !strings.Contains(mustRunUser(t, users, "", "list"), "disabled") {
		t.Fatal("list does not show disabled")
	}
	mustRunUser(t, users, "", "disable", "-id", "alice", "-enable")
	if u, _ = users.Get(t.Context(), "alice"); u.Disabled {
		t.Fatal("not enabled")
	}
	checkPassword(t, u, "new pw", true) // other fields untouched

	for _, tt := range []struct {
		args  []string
		stdin string
		usage bool
		want  string
	}{
		{[]string{"passwd", "-id", "zed", "-password-stdin"}, "pw\n", false, `no user "zed"`},
		{[]string{"passwd", "-password-stdin"}, "pw\n", true, "-id is required"},
		{[]string{"roles", "-id", "alice"}, "", true, "-set are required"},
		{[]string{"roles", "-id", "alice", "-set", "root"}, "", true, "unknown role"},
		{[]string{"roles", "-id", "zed", "-set", "user"}, "", false, `no user "zed"`},
		{[]string{"disable", "-id", "zed"}, "", false, `no user "zed"`},
		{[]string{"disable"}, "", true, "-id is required"},
		{[]string{"list", "extra"}, "", true, "unexpected argument"},
		{[]string{"frobnicate"}, "", true, "unknown user command"},
		{nil, "", true, "needs a command"},
	} {
		if _, err := runUser(t, users, tt.stdin, tt.args...); err == nil || errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("user %v error = %v, want %q (usage %v)", tt.args, err, tt.want, tt.usage)
		}
	}
	if u2, _ := users.Get(t.Context(), "alice"); u2.Version != u.Version {
		t.Fatalf("failed commands changed alice: version %d → %d", u.Version, u2.Version)
	}
}

func TestUserHelp(t *testing.T) {
	users := openUserStore(t)
	out, err := runUser(t, users, "", "add", "-h")
	if err != nil || !strings.Contains(out, "-password-stdin") {
		t.Fatalf("add -h = %q, %v", out, err)
	}
	out, err = runUser(t, users, "", "help")
	if err != nil || !strings.Contains(out, "CONVERGO_USER_PASSWORD") {
		t.Fatalf("help = %q, %v", out, err)
	}
}
