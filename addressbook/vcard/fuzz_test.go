package vcard

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzReader feeds arbitrary files to the import path. Besides not
// panicking: items are numbered densely, a card the reader accepted has no
// control characters where SIP headers could see them, and exporting it
// (3.0 and 4.0) and reading that back gives the same contact.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.vcf")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 8<<10)
		for n := 1; ; n++ {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("Next() error = %v", err)
			}
			if it.Index != n {
				t.Fatalf("item Index = %d, want %d", it.Index, n)
			}
			if it.Err != nil {
				if !errors.Is(it.Err, ErrMalformed) && !errors.Is(it.Err, ErrTooLarge) {
					t.Fatalf("item error %v is neither ErrMalformed nor ErrTooLarge", it.Err)
				}
				continue
			}
			c := it.Contact
			for _, s := range []string{c.Name.Display, c.Name.Given, c.Name.Family, c.Org, c.Title} {
				if strings.ContainsAny(s, "\r\n\x00") {
					t.Fatalf("control character kept in %q", s)
				}
			}
			want := c
			want.Name.Display = FormattedName(c)
			for _, version := range []string{V3, V4} {
				var out bytes.Buffer
				if err := Encode(&out, c, version); err != nil {
					t.Fatalf("Encode(%s) error = %v", version, err)
				}
				back := NewReader(&out, 1<<20)
				it2, err := back.Next()
				if err != nil || it2.Err != nil {
					t.Fatalf("re-reading the v%s export: %v, %v\n%s", version, err, it2.Err, out.String())
				}
				if diff := gocmp.Diff(want, it2.Contact, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("v%s round trip (-want +got):\n%s", version, diff)
				}
			}
		}
	})
}
