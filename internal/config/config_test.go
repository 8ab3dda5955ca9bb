package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	Listen   []string      `yaml:"listen"`
	Timeout  time.Duration `yaml:"timeout"`
	Password string        `yaml:"password" secret:"true"`
	URL      string        `yaml:"url"`
	Max      int           `yaml:"max"`
}

type keyCfg struct {
	ID  string `yaml:"id"`
	Alg string `yaml:"alg"`
}

type root struct {
	Node  string            `yaml:"node"`
	Debug bool              `yaml:"debug"`
	SIP   inner             `yaml:"sip"`
	Keys  []keyCfg          `yaml:"keys"`
	Roles map[string]string `yaml:"roles"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		want     root
		wantErrs []string
	}{
		{
			name: "defaults kept, values set",
			yaml: "sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  timeout: 30s\nkeys:\n  - id: k1\n    alg: EdDSA\nroles:\n  x: y\n",
			want: root{Node: "default", SIP: inner{Listen: []string{"udp:127.0.0.1:5060"}, Timeout: 30 * time.Second, Max: 9},
				Keys: []keyCfg{{ID: "k1", Alg: "EdDSA"}}, Roles: map[string]string{"x": "y"}},
		},
		{
			name:     "every unknown key and bad value reported",
			yaml:     "nodee: x\nsip:\n  lisen: []\n  timeout: soon\n  max: many\nkeys:\n  - id: k1\n    algo: x\n",
			wantErrs: []string{"nodee: line 1: unknown key", "sip.lisen: line 3: unknown key", "sip.timeout: line 4:", "sip.max: line 5:", "keys[0].algo: line 8: unknown key"},
		},
		{
			name:     "wrong shape",
			yaml:     "sip: 5\n",
			wantErrs: []string{"sip: line 1: want a mapping"},
		},
		{name: "empty file", yaml: "", want: root{Node: "default", SIP: inner{Max: 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := root{Node: "default", SIP: inner{Max: 9}}
			err := Decode([]byte(tt.yaml), &got)
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("Decode() = nil, want errors %q", tt.wantErrs)
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Decode() error\n%s\nmissing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Decode() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	var c root
	err := ApplyEnv(&c, []string{
		"CONVERGO_SIP_LISTEN=udp:0.0.0.0:5060, tcp:0.0.0.0:5060",
		"CONVERGO_SIP_TIMEOUT=2m",
		"CONVERGO_DEBUG=true",
		"CONVERGO_USER_PASSWORD=ignored",
		"PATH=/bin",
	}, "CONVERGO_USER_PASSWORD")
	if err != nil {
		t.Fatalf("ApplyEnv() = %v", err)
	}
	want := root{Debug: true, SIP: inner{Listen: []string{"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"}, Timeout: 2 * time.Minute}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("ApplyEnv() (-want +got):\n%s", diff)
	}

	err = ApplyEnv(&c, []string{"CONVERGO_SIP_LISTN=x", "CONVERGO_SIP_MAX=lots", "CONVERGO_SIP_TIMEOUT=7"})
	for _, w := range []string{"CONVERGO_SIP_LISTN: environment variable names no configuration key",
		`sip.max (CONVERGO_SIP_MAX): "lots": not an integer`, `sip.timeout (CONVERGO_SIP_TIMEOUT): "7": not a duration`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ApplyEnv() error = %v, missing %q", err, w)
		}
	}
}

func TestPrefix(t *testing.T) {
	err := errors.Join(errors.New(`listen[1]: "udp:abc": missing port`), errors.New("plain problem"),
		errors.Join(errors.New("redis.url: bad scheme")))
	var got []string
	for _, e := range Prefix("sip", err) {
		got = append(got, e.Error())
	}
	want := []string{`sip.listen[1]: "udp:abc": missing port`, "sip: plain problem", "sip.redis.url: bad scheme"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Prefix() (-want +got):\n%s", diff)
	}
}

func TestRenderMasksSecrets(t *testing.T) {
	c := root{SIP: inner{Password: "hunter2", URL: "redis://user:s3cret@127.0.0.1:6379/0", Timeout: 90 * time.Second}}
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"hunter2", "s3cret"} {
		if strings.Contains(s, bad) {
			t.Fatalf("Render() leaks %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{"password: '" + Mask + "'", "timeout: 1m30s", "redis://user:" + Mask + "@127.0.0.1:6379/0"} {
		if !strings.Contains(s, want) {
			t.Fatalf("Render() missing %q:\n%s", want, s)
		}
	}
	// What Render prints decodes back (except masked values).
	var back root
	if err := Decode(out, &back); err != nil {
		t.Fatalf("Decode(Render()) = %v\n%s", err, s)
	}
	if back.SIP.Timeout != c.SIP.Timeout {
		t.Fatalf("timeout round trip = %v, want %v", back.SIP.Timeout, c.SIP.Timeout)
	}
}

func TestLeaves(t *testing.T) {
	var got []string
	for _, l := range Leaves(&root{}) {
		got = append(got, l.Key+"="+l.Env+":"+l.Type)
	}
	want := []string{"node=CONVERGO_NODE:string", "debug=CONVERGO_DEBUG:bool", "sip.listen=CONVERGO_SIP_LISTEN:list",
		"sip.timeout=CONVERGO_SIP_TIMEOUT:duration", "sip.password=CONVERGO_SIP_PASSWORD:string",
		"sip.url=CONVERGO_SIP_URL:string", "sip.max=CONVERGO_SIP_MAX:int"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Leaves() (-want +got):\n%s", diff)
	}
}
