package vcard

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/store"
)

func readAll(t testing.TB, data []byte, maxCard int) []Item {
	t.Helper()
	r := NewReader(bytes.NewReader(data), maxCard)
	var items []Item
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			t.Fatalf("Next() error = %v", err)
		}
		items = append(items, it)
	}
}

func TestReadRealistic(t *testing.T) {
	data, err := os.ReadFile("testdata/realistic.vcf")
	if err != nil {
		t.Fatal(err)
	}
	items := readAll(t, data, 64<<10)
	type result struct {
		Display string
		Err     error
	}
	var got []result
	for _, it := range items {
		got = append(got, result{it.Contact.Name.Display, it.Err})
	}
	want := []result{
		{Display: "Dr. Alice Jane Martin"},
		{Display: "张三"},
		{Display: "José Núñez"},
		{Err: ErrMalformed}, // a line without a colon
		{Display: "曾丽"},
		{Err: ErrMalformed}, // VERSION:5.0
		{Display: "Mallory Via: SIP/2.0/UDP evil"},
		{Err: ErrMalformed}, // nothing but a note
		{Display: "Pizza Place"},
		{Err: ErrMalformed}, // no END before the next BEGIN
		{Display: "Bob Stone"},
		{Err: ErrMalformed}, // trailing junk
	}
	if diff := gocmp.Diff(want, got, cmpopts.EquateErrors()); diff != "" {
		t.Fatalf("items (-want +got):\n%s", diff)
	}
	for i, it := range items {
		if it.Index != i+1 {
			t.Errorf("item %d Index = %d", i, it.Index)
		}
	}

	alice := items[0].Contact
	wantAlice := store.Contact{
		UID:  "8D2F5A1E-1C2B-4C3D-9E8F-0A1B2C3D4E5F",
		Name: store.ContactName{Display: "Dr. Alice Jane Martin", Given: "Alice", Family: "Martin", Middle: "Jane", Prefix: "Dr."},
		Phones: []store.ContactPhone{
			{Value: "+1 (202) 555-0143", Label: "mobile", Pref: true},
			{Value: "202-555-0199", Label: "work"},
			{Value: "+44 20 7946 0000"},
		},
		Emails: []store.ContactValue{
			{Value: "alice.martin@acme.example", Label: "work", Pref: true},
			{Value: "alice@example.com", Label: "home"},
		},
		URIs:       []store.ContactValue{{Value: "sip:alice@ims.example.net"}},
		Org:        "Acme Corp",
		Department: "Sales",
		Title:      "Account Manager",
		Birthday:   "1985-04-12",
		Notes:      "Met at MWC 2024, Barcelona.\nLikes tennis.",
		Groups:     []string{"Work", "Tennis"},
		Extra:      []store.ContactExtra{{Group: "item1", Name: "X-ABLABEL", Value: "London office"}},
	}
	if alice.Photo == nil || alice.Photo.MediaType != "image/png" || len(alice.Photo.Data) != 70 {
		t.Errorf("alice photo = %+v, want a 70-byte image/png", alice.Photo)
	}
	alice.Photo = nil
	if diff := gocmp.Diff(wantAlice, alice); diff != "" {
		t.Errorf("alice (-want +got):\n%s", diff)
	}

	zeng := items[4].Contact
	if zeng.Name.Family != "曾" || zeng.Name.Given != "丽" || zeng.Notes != "first line\nsecond line" ||
		len(zeng.Phones) != 1 || zeng.Phones[0].Label != "mobile" || len(zeng.Extra) != 1 || zeng.Extra[0].Name != "X-ANDROID-CUSTOM" {
		t.Errorf("vCard 2.1 quoted-printable card = %+v", zeng)
	}
	jose := items[2].Contact
	if jose.Birthday != "--06-12" || jose.Phones[0].Value != "+34-600-123-456" || !jose.Phones[0].Pref ||
		jose.Phones[1].Value != "call reception and ask for José" || jose.Photo == nil {
		t.Errorf("vCard 4.0 card = %+v", jose)
	}
	mallory := items[6]
	if mallory.Contact.Name.Given != "Eve" || mallory.Contact.URIs[0].Value != "sip:mallory@evil.example" ||
		len(mallory.Warnings) != 1 || !strings.Contains(mallory.Warnings[0], "BDAY") {
		t.Errorf("mallory = %+v, warnings %q", mallory.Contact, mallory.Warnings)
	}
	pizza := items[8].Contact
	if !pizza.Starred || len(pizza.Tags) != 1 || pizza.Phones[0].Value != "PIZZA-NOW" || pizza.Phones[1].Value != "10086" {
		t.Errorf("pizza = %+v", pizza)
	}
}

func TestRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/realistic.vcf")
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{V3, V4} {
		var in []store.Contact
		var out bytes.Buffer
		for _, it := range readAll(t, data, 64<<10) {
			if it.Err != nil {
				continue
			}
			in = append(in, it.Contact)
			if err := Encode(&out, it.Contact, version); err != nil {
				t.Fatal(err)
			}
		}
		for _, line := range strings.Split(out.String(), "\r\n") {
			if len(line) > 75 {
				t.Fatalf("v%s: line of %d octets not folded: %q", version, len(line), line)
			}
		}
		var again []store.Contact
		for _, it := range readAll(t, out.Bytes(), 64<<10) {
			if it.Err != nil {
				t.Fatalf("v%s: re-reading card %d: %v", version, it.Index, it.Err)
			}
			again = append(again, it.Contact)
		}
		if diff := gocmp.Diff(in, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("v%s round trip (-exported +re-imported):\n%s", version, diff)
		}
	}
}

func TestTooLarge(t *testing.T) {
	big := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Big\r\nNOTE:" + strings.Repeat("x", 5000) + "\r\nEND:VCARD\r\n" +
		"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Small\r\nEND:VCARD\r\n"
	items := readAll(t, []byte(big), 1024)
	if len(items) != 2 || !errors.Is(items[0].Err, ErrTooLarge) || items[1].Err != nil || items[1].Contact.Name.Display != "Small" {
		t.Fatalf("items = %+v", items)
	}
}

func TestParseBirthday(t *testing.T) {
	for in, want := range map[string]string{
		"1985-04-12": "1985-04-12", "19850412": "1985-04-12", "--0412": "--04-12", "--04-12": "--04-12",
		"1985-04-12T00:00:00Z": "1985-04-12", "--0229": "--02-29", "1985-13-01": "", "--1301": "", "soon": "",
	} {
		got, ok := ParseBirthday(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseBirthday(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
