package registrar

import (
	"bufio"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/store"
)

// parseContacts parses value as the Contact header of a REGISTER, the way
// a request reaches the registrar. ok is false when sipgo refuses it.
func parseContacts(value string) ([]*sip.ContactHeader, bool) {
	if strings.ContainsAny(value, "\r\n") {
		return nil, false
	}
	raw := "REGISTER sip:" + domain + " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf\r\n" +
		"From: <sip:a@" + domain + ">;tag=1\r\nTo: <sip:a@" + domain + ">\r\nCall-ID: f\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: " + value + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		return nil, false
	}
	var out []*sip.ContactHeader
	for _, h := range m.(*sip.Request).GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

type contactSummary struct {
	URI, Instance, Key, GRUU string
	RegID                    int
	Expires                  int64
	Params                   map[string]string
}

func summarizeSpec(c contactSpec) contactSummary {
	return contactSummary{URI: c.uri.String(), Instance: c.instance, Key: c.key, GRUU: c.pubGRUU,
		RegID: c.regID, Expires: c.expires, Params: c.params}
}

func TestParseContact(t *testing.T) {
	tests := []struct {
		name       string
		value      string
		want       contactSummary
		wantReason string
	}{
		{
			name:  "outbound contact",
			value: `<sip:alice@192.0.2.1:5060;transport=tcp;ob>;+sip.instance="<urn:uuid:abc>";reg-id=1;expires=600;+g.oma.sip-im;q=0.5`,
			want: contactSummary{URI: "sip:alice@192.0.2.1:5060;transport=tcp;ob", Instance: "urn:uuid:abc", Key: "urn:uuid:abc;reg-id=1",
				RegID: 1, Expires: 600, Params: map[string]string{"+g.oma.sip-im": "", "q": "0.5"}},
		},
		{
			name:  "instance without quotes or brackets, reg-id without instance ignored elsewhere",
			value: `<sip:a@h>;+sip.instance=urn:bar`,
			want:  contactSummary{URI: "sip:a@h", Instance: "urn:bar", Key: "urn:bar", Expires: -1},
		},
		{
			name:  "reg-id without instance is ignored (RFC 5626 §6)",
			value: `<sip:a@h>;reg-id=3`,
			want:  contactSummary{URI: "sip:a@h", Key: "sip:a@h", Expires: -1},
		},
		{
			name:  "contact URI key ignores host case, URI headers dropped",
			value: `<sip:Bob@Example.NET:5070;transport=TCP?Subject=x>`,
			want:  contactSummary{URI: "sip:Bob@Example.NET:5070;transport=TCP", Key: "sip:Bob@example.net:5070;transport=TCP", Expires: -1},
		},
		{
			name:  "quoted parameters with semicolons survive sipgo",
			value: `<sip:a@h>;pub-gruu="sip:u@d;gr=urn:x";temp-gruu="sip:t@d;gr";+sip.instance="<urn:x>";expires=60`,
			want:  contactSummary{URI: "sip:a@h", Instance: "urn:x", Key: "urn:x", GRUU: "sip:u@d;gr=urn:x", Expires: 60},
		},
		{
			name:  "huge expires is capped at 2^32-1",
			value: `<sip:a@h>;expires=99999999999999`,
			want:  contactSummary{URI: "sip:a@h", Key: "sip:a@h", Expires: math.MaxUint32},
		},
		{name: "tel", value: `<tel:+15551230001>`, wantReason: "Invalid Contact URI Scheme"},
		{name: "no host", value: `<sip:alice@>`, wantReason: "Invalid Contact URI: Missing Host"},
		{name: "bad host", value: `<sip:a@ho$t>`, wantReason: "Invalid Contact URI: Bad Host"},
		{name: "bad user (fuzz)", value: `sip:>@0`, wantReason: "Invalid Contact URI: Bad User"},
		{name: "bad expires", value: `<sip:a@h>;expires=1.5`, wantReason: "Invalid Contact Expires"},
		{name: "empty instance", value: `<sip:a@h>;+sip.instance="<>"`, wantReason: "Invalid +sip.instance"},
		{name: "reg-id too big", value: `<sip:a@h>;+sip.instance="<urn:x>";reg-id=2147483648`, wantReason: "Invalid reg-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, ok := parseContacts(tt.value)
			if !ok || len(cs) != 1 {
				t.Fatalf("sipgo parse: %v, %d contacts", ok, len(cs))
			}
			spec, err := parseContact(cs[0])
			if tt.wantReason != "" {
				var se *StatusError
				if !errors.As(err, &se) || se.Code != 400 || se.Reason != tt.wantReason {
					t.Fatalf("error = %v, want 400 %q", err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarizeSpec(spec)); diff != "" {
				t.Fatalf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzContact drives Contact header values through sipgo's parser and
// parseContact: a refusal is a 400 with a reason phrase; an accepted
// contact has an instance without quotes or brackets, a key that follows
// store.BindingKey, is stable, and survives the 200 OK rendering.
func FuzzContact(f *testing.F) {
	file, err := os.Open(filepath.Join("testdata", "contact", "seeds.txt"))
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	_ = file.Close()
	f.Fuzz(func(t *testing.T, value string) {
		cs, ok := parseContacts(value)
		if !ok {
			return
		}
		for _, c := range cs {
			if c.Address.Wildcard {
				continue
			}
			spec, err := parseContact(c)
			if err != nil {
				var se *StatusError
				if !errors.As(err, &se) || se.Code != 400 || se.Reason == "" || strings.ContainsAny(se.Reason, "\r\n") {
					t.Fatalf("refusal %v is not a 400 with a reason phrase", err)
				}
				continue
			}
			checkSpec(t, spec)
			again, err := parseContact(c)
			if err != nil || !cmp.Equal(summarizeSpec(spec), summarizeSpec(again)) {
				t.Fatalf("second parse differs: %v", err)
			}
			// What we store and list in the 200 parses back to the same binding.
			b := store.Binding{AOR: "sip:a@" + domain, Key: spec.key, Contact: spec.uri.String(), Instance: spec.instance, RegID: spec.regID}
			rendered := contactHeader(b, 60, true).Value()
			back, ok := parseContacts(rendered)
			if !ok || len(back) != 1 {
				t.Fatalf("rendered contact %q does not parse", rendered)
			}
			spec2, err := parseContact(back[0])
			if err != nil {
				t.Fatalf("rendered contact %q refused: %v", rendered, err)
			}
			if spec2.key != spec.key || spec2.instance != spec.instance || spec2.regID != spec.regID || spec2.expires != 60 {
				t.Fatalf("round trip %q -> %q: key %q/%q instance %q/%q reg-id %d/%d",
					value, rendered, spec.key, spec2.key, spec.instance, spec2.instance, spec.regID, spec2.regID)
			}
			if spec.instance != "" && spec2.pubGRUU != b.AOR+";gr="+spec.instance {
				t.Fatalf("pub-gruu %q lost in %q", spec2.pubGRUU, rendered)
			}
		}
	})
}
