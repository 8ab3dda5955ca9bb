package main

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/convergo/convergo/media/sdes"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSDP(t *testing.T) {
	tests := []struct {
		file    string
		wantErr bool
		peer    string
		proto   string
		run     string
		index   int
		cryptos int
	}{
		{file: "relay-offer-plain.sdp", peer: "127.0.0.1:30000", proto: "RTP/AVP", run: "0a1b2c3d4e5f", index: 2},
		{file: "relay-answer-srtp.sdp", peer: "127.0.0.1:30004", proto: "RTP/SAVP", index: -1, cryptos: 1},
		{file: "media-level-c.sdp", peer: "10.0.0.1:4000", proto: "RTP/AVP", index: -1},
		{file: "savp-bad-key.sdp", wantErr: true},   // RTP/SAVP but no usable a=crypto
		{file: "hold-zero-addr.sdp", wantErr: true}, // nowhere to send
		{file: "no-rtp-audio.sdp", wantErr: true},
		{file: "bad-call-attr.sdp", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseSDP(readTestdata(t, tt.file))
			if tt.wantErr {
				if !errors.Is(err, errSDP) {
					t.Fatalf("parseSDP() error = %v, want errSDP", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSDP() error = %v", err)
			}
			if got.Peer.String() != tt.peer || got.Proto != tt.proto || got.Run != tt.run || got.Index != tt.index || len(got.Crypto) != tt.cryptos {
				t.Fatalf("parseSDP() = peer %s proto %s run %q index %d cryptos %d, want %s %s %q %d %d",
					got.Peer, got.Proto, got.Run, got.Index, len(got.Crypto), tt.peer, tt.proto, tt.run, tt.index, tt.cryptos)
			}
		})
	}
}

func TestBuildSDPRoundTrip(t *testing.T) {
	suite, _ := sdes.LookupSuite(sdesSuite)
	key, err := sdes.Generate(7, suite)
	if err != nil {
		t.Fatal(err)
	}
	at := netip.MustParseAddrPort("127.0.0.1:41234")
	for _, tc := range []struct {
		name  string
		run   string
		index int
		key   *sdes.Crypto
		proto string
	}{
		{name: "offer plain", run: "r1", index: 999, proto: "RTP/AVP"},
		{name: "answer srtp", index: 3, key: &key, proto: "RTP/SAVP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSDP(buildSDP(at, tc.run, tc.index, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			wantIndex := tc.index
			if tc.run == "" {
				wantIndex = -1
			}
			if got.Peer != at || got.Proto != tc.proto || got.Run != tc.run || got.Index != wantIndex {
				t.Fatalf("round trip = %+v", got)
			}
			if tc.key != nil && (len(got.Crypto) != 1 || !sdes.SameKey(got.Crypto[0], *tc.key) || got.Crypto[0].Tag != 7) {
				t.Fatalf("crypto = %+v, want the key with tag 7", got.Crypto)
			}
		})
	}
}

// FuzzParseSDP: SDP comes from the server (outside input). Whatever
// parses names a usable peer, and what we would answer with parses back
// to the same peer, run and call.
func FuzzParseSDP(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	for _, s := range seeds {
		f.Add(readTestdata(f, filepath.Base(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := parseSDP(in)
		if err != nil {
			return
		}
		if !info.Addr.IsValid() || info.Addr.IsUnspecified() || info.Port < 1 || info.Port > 65535 ||
			info.Peer != netip.AddrPortFrom(info.Addr, uint16(info.Port)) {
			t.Fatalf("unusable peer accepted: %+v", info)
		}
		if info.secure() && len(info.Crypto) == 0 {
			t.Fatalf("%s accepted without a key", info.Proto)
		}
		if (info.Run == "") != (info.Index == -1) || info.Index >= maxCalls {
			t.Fatalf("run %q index %d", info.Run, info.Index)
		}
		var key *sdes.Crypto
		if info.secure() {
			key = &info.Crypto[0]
		}
		if info.Run != "" && len(info.Run) > 64 {
			return // our own run ids are 12 hex digits; long ones need not round-trip
		}
		back, err := parseSDP(buildSDP(info.Peer, info.Run, max(info.Index, 0), key))
		if err != nil {
			if info.Run != "" {
				return // a run id with characters SDP attribute values cannot carry back
			}
			t.Fatalf("our SDP for %+v does not parse: %v", info, err)
		}
		if back.Peer != info.Peer || back.Run != info.Run || back.Index != info.Index || back.secure() != info.secure() {
			t.Fatalf("round trip %+v -> %+v", info, back)
		}
	})
}
