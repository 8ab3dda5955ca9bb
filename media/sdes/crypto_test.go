package sdes

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		check   func(t *testing.T, c Crypto)
	}{
		{name: "lifetime and mki", in: "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:4",
			check: func(t *testing.T, c Crypto) {
				if c.Tag != 1 || c.Lifetime != "2^31" || c.MKI != 1 || c.MKILen != 4 || len(c.Key) != 16 || len(c.Salt) != 14 {
					t.Fatalf("got %+v", c)
				}
				if got := c.MKIBytes(); string(got) != "\x00\x00\x00\x01" {
					t.Fatalf("mki bytes %x", got)
				}
			}},
		{name: "sha1_32", in: "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj",
			check: func(t *testing.T, c Crypto) {
				if c.Suite.Name != "AES_CM_128_HMAC_SHA1_32" || c.Tag != 2 {
					t.Fatalf("got %+v", c)
				}
			}},
		{name: "aes256 unpadded", in: "3 AES_256_CM_HMAC_SHA1_80 inline:" + strings.Repeat("A", 62),
			check: func(t *testing.T, c Crypto) {
				if len(c.Key) != 32 || len(c.Salt) != 14 {
					t.Fatalf("got %d/%d", len(c.Key), len(c.Salt))
				}
			}},
		{name: "gcm128", in: "4 AEAD_AES_128_GCM inline:" + strings.Repeat("B", 38) + "==",
			check: func(t *testing.T, c Crypto) {
				if len(c.Key) != 16 || len(c.Salt) != 12 {
					t.Fatalf("got %d/%d", len(c.Key), len(c.Salt))
				}
			}},
		{name: "gcm256 session params", in: "5 AEAD_AES_256_GCM inline:" + strings.Repeat("C", 59) + "= KDR=0 UNENCRYPTED_SRTCP",
			check: func(t *testing.T, c Crypto) {
				if len(c.Key) != 32 || len(c.Params) != 2 {
					t.Fatalf("got %+v", c)
				}
			}},
		{name: "short key", in: "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD", wantErr: ErrKey},
		{name: "gcm256 key too short", in: "1 AEAD_AES_256_GCM inline:" + strings.Repeat("A", 40), wantErr: ErrKey},
		{name: "bad base64", in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", wantErr: ErrKey},
		{name: "unknown suite", in: "1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", wantErr: ErrSuite},
		{name: "null suite", in: "1 NULL_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", wantErr: ErrSuite},
		{name: "bad tag", in: "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", wantErr: ErrSyntax},
		{name: "tag too long", in: "1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", wantErr: ErrSyntax},
		{name: "not inline", in: "1 AES_CM_128_HMAC_SHA1_80 uri:x", wantErr: ErrSyntax},
		{name: "bad mki", in: "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|300:1", wantErr: ErrSyntax},
		{name: "bad lifetime", in: "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^x", wantErr: ErrSyntax},
		{name: "missing fields", in: "1 AES_CM_128_HMAC_SHA1_80", wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
			again, err := Parse(c.String())
			if err != nil || !SameKey(c, again) || again.Tag != c.Tag || again.Lifetime != c.Lifetime {
				t.Fatalf("round trip %q: %+v, %v", c.String(), again, err)
			}
		})
	}
}

func TestGenerateContext(t *testing.T) {
	for _, s := range suites {
		c, err := Generate(7, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Context(); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		d, _ := Generate(7, s)
		if SameKey(c, d) {
			t.Fatalf("%s: two generated keys equal", s.Name)
		}
		if !strings.HasPrefix(c.String(), "7 "+s.Name+" inline:") {
			t.Fatalf("format %q", c.String())
		}
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:4")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(c.String())
		if err != nil {
			t.Fatalf("accepted %q but re-parse of %q failed: %v", s, c.String(), err)
		}
		if !SameKey(c, again) || again.Tag != c.Tag {
			t.Fatalf("round trip changed %q", s)
		}
	})
}

func TestContextWithMKI(t *testing.T) {
	c, err := Parse("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|3:2")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Context()
	if err != nil {
		t.Fatal(err)
	}
	rx, err := c.Context()
	if err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 'h', 'i'}
	enc, err := tx.EncryptRTP(nil, pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != len(pkt)+2+10 {
		t.Fatalf("MKI not on the wire: %d bytes", len(enc))
	}
	dec, err := rx.DecryptRTP(nil, enc, nil)
	if err != nil || string(dec[12:]) != "hi" {
		t.Fatalf("decrypt: %v", err)
	}
}
