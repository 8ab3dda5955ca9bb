package addressbook_test

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/addressbook"
)

// TestImportExportRoundTrip imports testdata/contacts.vcf (Apple 3.0,
// Android 2.1 quoted-printable, 4.0, Chinese names, photos, and a few
// broken cards), checks the per-card results, exports the book in both
// versions, imports each export into a fresh book and compares.
func TestImportExportRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/contacts.vcf")
	if err != nil {
		t.Fatal(err)
	}
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "US"}}, func(t *testing.T, e *env) {
		var ir addressbook.ImportResponse
		e.must(e.do("alice", "POST", "/v1/contacts:import", data, "Content-Type", "text/vcard"), http.StatusOK).decode(t, &ir)
		var statuses []string
		for _, r := range ir.Results {
			statuses = append(statuses, r.Status)
		}
		want := []string{"created", "created", "created", "failed", "created", "failed", "created", "failed", "created", "failed", "created", "failed"}
		if !slices.Equal(statuses, want) || ir.Created != 7 || ir.Failed != 5 {
			t.Fatalf("import statuses = %v (created %d, failed %d), want %v", statuses, ir.Created, ir.Failed, want)
		}
		if r := ir.Results[6]; len(r.Warnings) == 0 || !strings.Contains(strings.Join(r.Warnings, " "), "BDAY") {
			t.Fatalf("mallory's card warnings = %q, want the dropped BDAY", r.Warnings)
		}
		if ir.Results[0].ID != "8D2F5A1E-1C2B-4C3D-9E8F-0A1B2C3D4E5F" || ir.Results[2].ID != "4fbe8971-0bc3-424c-9c26-36c3e1eff6b1" {
			t.Fatalf("IDs from UIDs = %q, %q", ir.Results[0].ID, ir.Results[2].ID)
		}
		// What was imported is searchable and normalised.
		if got := displays(e.search("alice", "zs")); !slices.Equal(got, []string{"张三"}) {
			t.Fatalf("search zs after import = %q", got)
		}
		var mallory addressbook.Contact
		for _, c := range e.search("alice", "mallory") {
			mallory = c
		}
		if mallory.Name.Display != "Mallory Via: SIP/2.0/UDP evil" || mallory.Name.Given != "Eve" {
			t.Fatalf("control characters not stripped: %+v", mallory.Name)
		}
		// Importing the same file again finds every card by its UID.
		e.must(e.do("alice", "POST", "/v1/contacts:import", data, "Content-Type", "text/vcard"), http.StatusOK).decode(t, &ir)
		if ir.Exists != 7 || ir.Created != 0 {
			t.Fatalf("second import: created %d, exists %d; want 0, 7", ir.Created, ir.Exists)
		}
		e.must(e.do("alice", "POST", "/v1/contacts:import?on_conflict=replace", data, "Content-Type", "text/vcard"), http.StatusOK).decode(t, &ir)
		if ir.Updated != 7 {
			t.Fatalf("replace import: updated %d, want 7", ir.Updated)
		}

		var before addressbook.ListResponse
		e.must(e.do("alice", "GET", "/v1/contacts", nil), http.StatusOK).decode(t, &before)
		for _, version := range []string{"3.0", "4.0"} {
			r := e.must(e.do("alice", "GET", "/v1/contacts:export?version="+version, nil), http.StatusOK)
			if ct := r.header.Get("Content-Type"); ct != "text/vcard; charset=utf-8" || bytes.Count(r.body, []byte("BEGIN:VCARD")) != 7 {
				t.Fatalf("export %s: Content-Type %q, %d cards", version, ct, bytes.Count(r.body, []byte("BEGIN:VCARD")))
			}
			fresh := newEnv(t, "bolt", envOptions{cfg: addressbook.Config{DefaultRegion: "US"}})
			var ir2 addressbook.ImportResponse
			fresh.must(fresh.do("alice", "POST", "/v1/contacts:import", r.body, "Content-Type", "text/vcard"), http.StatusOK).decode(t, &ir2)
			if ir2.Created != 7 || ir2.Failed != 0 {
				t.Fatalf("re-import of the %s export: %+v", version, ir2)
			}
			var after addressbook.ListResponse
			fresh.must(fresh.do("alice", "GET", "/v1/contacts", nil), http.StatusOK).decode(t, &after)
			opts := cmpopts.IgnoreFields(addressbook.Contact{}, "Version", "Created", "Updated")
			if diff := gocmp.Diff(before.Contacts, after.Contacts, opts, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("vCard %s round trip (-before +after):\n%s", version, diff)
			}
		}
		e.must(e.do("alice", "GET", "/v1/contacts:export?version=2.1", nil), http.StatusBadRequest)
		e.must(e.do("alice", "POST", "/v1/contacts:import", data, "Content-Type", "application/json"), http.StatusUnsupportedMediaType)
	})
}

func TestImportLimits(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{MaxImportBytes: 200, MaxContacts: 1}}, func(t *testing.T, e *env) {
		big := strings.Repeat("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n", 20)
		e.must(e.do("alice", "POST", "/v1/contacts:import", big, "Content-Type", "text/vcard"), http.StatusRequestEntityTooLarge)
		two := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:One\r\nUID:one\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Two\r\nUID:two\r\nEND:VCARD\r\n"
		var ir addressbook.ImportResponse
		e.must(e.do("alice", "POST", "/v1/contacts:import", two, "Content-Type", "text/vcard"), http.StatusOK).decode(t, &ir)
		if ir.Created != 1 || ir.Failed != 1 || !strings.Contains(ir.Results[1].Error, "limit") {
			t.Fatalf("import over the contact limit = %+v", ir)
		}
	})
}
