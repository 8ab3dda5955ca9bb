package phone

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// MaxLen bounds the input Parse looks at: libphonenumber itself refuses
// more than 250 characters, and no dialable number is anywhere near that.
const MaxLen = 250

// Number is a phone number as typed plus what libphonenumber made of it.
type Number struct {
	Raw   string // as typed
	E164  string // +8613800138000; empty when the number could not be normalised
	Valid bool   // a valid number of its region's numbering plan
	NSN   string // national significant number (digits), empty when unparsable
	Ext   string // extension, if one was typed
}

// Normalizer parses numbers for one default region (the region assumed for
// numbers typed without a country code). It is safe for concurrent use.
type Normalizer struct {
	region string
}

// NewNormalizer returns a Normalizer for region, an ISO 3166-1 alpha-2 code
// such as "US" or "CN" (case-insensitive).
func NewNormalizer(region string) (*Normalizer, error) {
	r := strings.ToUpper(region)
	if !ValidRegion(r) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRegion, region)
	}
	return &Normalizer{region: r}, nil
}

// ValidRegion reports whether region (upper case) has numbering metadata.
func ValidRegion(region string) bool {
	return phonenumbers.GetSupportedRegions()[region]
}

// Region returns the default region.
func (n *Normalizer) Region() string { return n.region }

// Parse normalises raw. E164 is set when libphonenumber says the number is
// valid, or when it was typed in international form (+ or tel:+) and is at
// least a possible number: an explicit country code is the user's word.
// Anything else keeps only Raw (and NSN when the digits could be read).
func (n *Normalizer) Parse(raw string) Number {
	out := Number{Raw: raw}
	s := strings.TrimSpace(raw)
	if len(s) > MaxLen {
		return out
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "tel:"), "TEL:")
	if i := strings.IndexByte(s, ';'); i >= 0 { // RFC 3966 parameters (;ext= is kept by the parser)
		if !strings.HasPrefix(s[i:], ";ext=") {
			s = s[:i]
		}
	}
	num, err := phonenumbers.Parse(s, n.region)
	if err != nil {
		return out
	}
	out.NSN = phonenumbers.GetNationalSignificantNumber(num)
	out.Ext = num.GetExtension()
	out.Valid = phonenumbers.IsValidNumber(num)
	international := strings.HasPrefix(s, "+")
	if out.Valid || (international && phonenumbers.IsPossibleNumber(num)) {
		out.E164 = phonenumbers.Format(num, phonenumbers.E164)
	}
	return out
}

// Digits returns the decimal digits of s, any script (fullwidth, Arabic-
// Indic, …) mapped to ASCII, everything else dropped.
func Digits(s string) string {
	if len(s) > MaxLen {
		s = s[:MaxLen]
	}
	return phonenumbers.NormalizeDigitsOnly(s)
}

// LooksLikeNumber reports whether s is made only of digits and the
// punctuation people type in phone numbers (spaces, + - . ( ) /), with at
// least three digits: such a query is a phone number in any format.
func LooksLikeNumber(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			digits++
		case unicode.IsSpace(r) || r == '+' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return false
		}
	}
	return digits >= 3
}

// NSNOf returns the national significant number of an E.164 number (the
// digits after its country calling code) without parsing it: calling
// codes are prefix-free (ITU-T E.164 §6.2.1), so the first 1–3 digits that
// name a known code are the code. "" when e164 is not +<digits>.
func NSNOf(e164 string) string {
	d, ok := strings.CutPrefix(e164, "+")
	if !ok || len(d) < 2 {
		return ""
	}
	for n := 1; n <= 3 && n < len(d); n++ {
		cc := 0
		for _, c := range d[:n] {
			if c < '0' || c > '9' {
				return ""
			}
			cc = cc*10 + int(c-'0')
		}
		if phonenumbers.GetRegionCodeForCountryCode(cc) != "ZZ" {
			return d[n:]
		}
	}
	return ""
}
