package phone

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		region, raw string
		want        Number
	}{
		{"CN", "138 0013 8000", Number{E164: "+8613800138000", Valid: true, NSN: "13800138000"}},
		{"US", "+86 138-0013-8000", Number{E164: "+8613800138000", Valid: true, NSN: "13800138000"}},
		{"US", "(202) 555-0143", Number{E164: "+12025550143", Valid: true, NSN: "2025550143"}},
		{"US", "tel:+1-202-555-0143", Number{E164: "+12025550143", Valid: true, NSN: "2025550143"}},
		{"US", "+1 202 555 0143 ext. 12", Number{E164: "+12025550143", Valid: true, NSN: "2025550143", Ext: "12"}},
		{"GB", "020 7946 0000", Number{E164: "+442079460000", Valid: true, NSN: "2079460000"}},
		// A CN mobile typed without country code under a US default is not
		// silently turned into a US number.
		{"US", "138 0013 8000", Number{NSN: "3800138000"}},
		{"CN", "10086", Number{NSN: "10086"}},
		{"US", "call me", Number{}},
		{"US", "", Number{}},
	}
	for _, tt := range tests {
		t.Run(tt.region+"/"+tt.raw, func(t *testing.T) {
			n, err := NewNormalizer(tt.region)
			if err != nil {
				t.Fatal(err)
			}
			got := n.Parse(tt.raw)
			tt.want.Raw = tt.raw
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestNewNormalizer(t *testing.T) {
	if _, err := NewNormalizer("XX"); !errors.Is(err, ErrUnknownRegion) {
		t.Fatalf("NewNormalizer(XX) error = %v, want ErrUnknownRegion", err)
	}
	n, err := NewNormalizer("cn")
	if err != nil || n.Region() != "CN" {
		t.Fatalf("NewNormalizer(cn) = %v, %v; want region CN", n, err)
	}
}

func TestLooksLikeNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"138 0013": true, "+86138": true, "(202) 555-0143": true, "１３８": true,
		"12": false, "zs": false, "138a": false, "": false, "+ - ": false,
	} {
		if got := LooksLikeNumber(s); got != want {
			t.Errorf("LooksLikeNumber(%q) = %v, want %v", s, got, want)
		}
	}
	if got := Digits("+86 (138) ００１３"); got != "861380013" {
		t.Errorf("Digits() = %q, want 861380013", got)
	}
}

func TestNSNOf(t *testing.T) {
	for in, want := range map[string]string{
		"+8613800138000": "13800138000", "+12025550143": "2025550143", "+442079460000": "2079460000",
		"+35312345678": "12345678", "+80012345678": "12345678", "": "", "8613800138000": "", "+x1": "",
	} {
		if got := NSNOf(in); got != want {
			t.Errorf("NSNOf(%q) = %q, want %q", in, got, want)
		}
	}
	n, _ := NewNormalizer("US")
	for _, raw := range []string{"+86 138 0013 8000", "+1 202 555 0143", "+353 1 234 5678", "+44 20 7946 0000"} {
		p := n.Parse(raw)
		if got := NSNOf(p.E164); got != p.NSN {
			t.Errorf("NSNOf(%s) = %q, libphonenumber says %q", p.E164, got, p.NSN)
		}
	}
}
