package addressbook_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	govcard "github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	gocarddav "github.com/emersion/go-webdav/carddav"

	"github.com/convergo/convergo/addressbook"
)

// davClient is a real CardDAV client (go-webdav's) logged in as user.
func (e *env) davClient(user string) *gocarddav.Client {
	e.t.Helper()
	c, err := gocarddav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, user, password), e.srv.URL+"/carddav/")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// discover walks RFC 6352 §7 discovery from the well-known URI.
func discover(t *testing.T, ctx context.Context, c *gocarddav.Client) string {
	t.Helper()
	principal, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil {
		t.Fatalf("FindCurrentUserPrincipal: %v", err)
	}
	home, err := c.FindAddressBookHomeSet(ctx, principal)
	if err != nil {
		t.Fatalf("FindAddressBookHomeSet: %v", err)
	}
	books, err := c.FindAddressBooks(ctx, home)
	if err != nil || len(books) != 1 {
		t.Fatalf("FindAddressBooks = %+v, %v; want one", books, err)
	}
	return books[0].Path
}

func card(uid, fn, tel string) govcard.Card {
	c := govcard.Card{}
	c.SetValue(govcard.FieldVersion, "3.0")
	c.SetValue(govcard.FieldUID, uid)
	c.SetValue(govcard.FieldFormattedName, fn)
	c.AddValue(govcard.FieldTelephone, tel)
	c.AddAddress(&govcard.Address{StreetAddress: "1 Main St", Locality: "Springfield"})
	return c
}

func syncPaths(objs []gocarddav.AddressObject) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Path[strings.LastIndexByte(o.Path, '/')+1:])
	}
	slices.Sort(out)
	return out
}

func TestCardDAV(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "US"}}, func(t *testing.T, e *env) {
		ctx := t.Context()
		dav := e.davClient("alice")
		book := discover(t, ctx, dav)
		if book != "/carddav/alice/addressbooks/default/" {
			t.Fatalf("address book path = %q", book)
		}
		a := e.create("alice", map[string]any{"id": "ann", "name": name("Ann"), "phones": []map[string]any{{"value": "+1 202 555 0101"}}})
		e.create("alice", map[string]any{"id": "ben", "name": name("Ben")})

		// Initial sync-collection (RFC 6578): every card and a token.
		full, err := dav.SyncCollection(ctx, book, &gocarddav.SyncQuery{DataRequest: gocarddav.AddressDataRequest{AllProp: true}})
		if err != nil {
			t.Fatalf("initial SyncCollection: %v", err)
		}
		if got := syncPaths(full.Updated); !slices.Equal(got, []string{"ann.vcf", "ben.vcf"}) || full.SyncToken == "" || len(full.Deleted) != 0 {
			t.Fatalf("initial sync = %v deleted %v token %q", got, full.Deleted, full.SyncToken)
		}
		for _, o := range full.Updated {
			if o.ETag != "1" {
				t.Fatalf("ETag of %s = %q, want the version", o.Path, o.ETag)
			}
		}

		// A phone adds a card (with a property convergo has no field for).
		put, err := dav.PutAddressObject(ctx, book+"cid.vcf", card("cid-uid", "Cid Phone", "+1 202 555 0102"))
		if err != nil {
			t.Fatalf("PutAddressObject: %v", err)
		}
		if put.ETag != "1" {
			t.Fatalf("PUT ETag = %q", put.ETag)
		}
		if got := displays(e.search("alice", "2025550102")); !slices.Equal(got, []string{"Cid Phone"}) {
			t.Fatalf("REST search for the CardDAV card = %q", got)
		}
		// The REST API edits Ann and the card from the phone, and deletes Ben.
		e.must(e.do("alice", "PUT", "/v1/contacts/ann", map[string]any{"name": name("Ann 2")}, "If-Match", etag(a.Version)), http.StatusOK)
		e.must(e.do("alice", "PATCH", "/v1/contacts/cid", `{"title":"Plumber"}`, "If-Match", etag(1)), http.StatusOK)
		var cid addressbook.Contact
		e.must(e.do("alice", "GET", "/v1/contacts/cid", nil), http.StatusOK).decode(t, &cid)
		cid.Phones[0].Value += " " // a REST client replaces the whole contact
		e.must(e.do("alice", "PUT", "/v1/contacts/cid", cid, "If-Match", etag(2)), http.StatusOK)
		e.must(e.do("alice", "DELETE", "/v1/contacts/ben", nil, "If-Match", etag(1)), http.StatusNoContent)

		delta, err := dav.SyncCollection(ctx, book, &gocarddav.SyncQuery{SyncToken: full.SyncToken, DataRequest: gocarddav.AddressDataRequest{AllProp: true}})
		if err != nil {
			t.Fatalf("incremental SyncCollection: %v", err)
		}
		if got := syncPaths(delta.Updated); !slices.Equal(got, []string{"ann.vcf", "cid.vcf"}) || len(delta.Deleted) != 1 || !strings.HasSuffix(delta.Deleted[0], "/ben.vcf") {
			t.Fatalf("incremental sync = updated %v deleted %v", got, delta.Deleted)
		}
		objs, err := dav.MultiGetAddressBook(ctx, book, &gocarddav.AddressBookMultiGet{Paths: []string{book + "ann.vcf", book + "cid.vcf"},
			DataRequest: gocarddav.AddressDataRequest{AllProp: true}})
		if err != nil || len(objs) != 2 {
			t.Fatalf("MultiGet = %v, %v", objs, err)
		}
		for _, o := range objs {
			switch {
			case strings.HasSuffix(o.Path, "ann.vcf") && o.Card.PreferredValue(govcard.FieldFormattedName) != "Ann 2":
				t.Fatalf("ann via CardDAV = %v", o.Card)
			case strings.HasSuffix(o.Path, "cid.vcf") && (o.Card.Value(govcard.FieldTitle) != "Plumber" || o.Card.Address() == nil ||
				o.Card.Address().StreetAddress != "1 Main St"):
				t.Fatalf("cid via CardDAV lost the phone's address or the REST title: %v", o.Card)
			}
		}
		again, err := dav.SyncCollection(ctx, book, &gocarddav.SyncQuery{SyncToken: delta.SyncToken})
		if err != nil || len(again.Updated)+len(again.Deleted) != 0 {
			t.Fatalf("sync with nothing new = %+v, %v", again, err)
		}

		// Stale writes are refused; the client must fetch and retry.
		stale := `BEGIN:VCARD` + "\r\nVERSION:3.0\r\nFN:Stale\r\nUID:cid-uid\r\nEND:VCARD\r\n"
		r := e.dav("alice", "PUT", book+"cid.vcf", stale, "Content-Type", "text/vcard", "If-Match", `"1"`)
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("stale PUT status %d: %s", r.status, r.body)
		}
		r = e.dav("alice", "PUT", book+"cid.vcf", stale, "Content-Type", "text/vcard", "If-None-Match", "*")
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("create over an existing card: status %d", r.status)
		}
		if r := e.dav("alice", "DELETE", book+"cid.vcf", "", "If-Match", `"1"`); r.status != http.StatusPreconditionFailed {
			t.Fatalf("stale DELETE status %d", r.status)
		}
		if err := dav.RemoveAll(ctx, book+"cid.vcf"); err != nil {
			t.Fatalf("DELETE: %v", err)
		}
		e.must(e.do("alice", "GET", "/v1/contacts/cid", nil), http.StatusNotFound)

		// An unknown token: 403 valid-sync-token (RFC 6578 §3.2); the client resyncs.
		if _, err := dav.SyncCollection(ctx, book, &gocarddav.SyncQuery{SyncToken: "https://convergo.dev/ns/sync/bogus"}); err == nil {
			t.Fatal("SyncCollection with a bogus token succeeded")
		}
		r = e.dav("alice", "REPORT", book, `<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>`+
			`https://convergo.dev/ns/sync/bogus</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`,
			"Content-Type", "application/xml")
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "valid-sync-token") {
			t.Fatalf("bogus token: status %d %s", r.status, r.body)
		}

		// What DAVx5 and Thunderbird read before choosing sync-collection.
		r = e.dav("alice", "PROPFIND", book, `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">`+
			`<d:prop><d:sync-token/><cs:getctag/><d:supported-report-set/><d:resourcetype/><d:displayname/><d:current-user-privilege-set/><d:quota-used-bytes/></d:prop></d:propfind>`,
			"Content-Type", "application/xml", "Depth", "0")
		if r.status != http.StatusMultiStatus {
			t.Fatalf("PROPFIND of the book: status %d", r.status)
		}
		for _, want := range []string{"<d:sync-token>https://convergo.dev/ns/sync/", "<cs:getctag>", "<d:sync-collection/>",
			"<card:addressbook/>", "<d:write-content/>", "404 Not Found"} {
			if !strings.Contains(string(r.body), want) {
				t.Fatalf("PROPFIND of the book lacks %q:\n%s", want, r.body)
			}
		}

		// Authentication and ownership.
		if r := e.dav("", "PROPFIND", book, "", "Depth", "0"); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("no credentials: status %d", r.status)
		}
		if r := e.dav("bob", "PROPFIND", book, "", "Depth", "0"); r.status != http.StatusNotFound {
			t.Fatalf("bob reading alice's book: status %d, want 404", r.status)
		}
		if r := e.dav("reader", "PUT", "/carddav/reader/addressbooks/default/x.vcf", stale, "Content-Type", "text/vcard"); r.status != http.StatusForbidden {
			t.Fatalf("read-only account PUT: status %d, want 403", r.status)
		}
		resp, err := http.Get(e.srv.URL + "/.well-known/carddav")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.Path != "/carddav/" { // followed the RFC 6764 redirect
			t.Fatalf("/.well-known/carddav led to %s", resp.Request.URL.Path)
		}

		// addressbook-query is go-webdav's own REPORT over our backend.
		found, err := dav.QueryAddressBook(ctx, book, &gocarddav.AddressBookQuery{
			DataRequest: gocarddav.AddressDataRequest{AllProp: true},
			PropFilters: []gocarddav.PropFilter{{Name: govcard.FieldFormattedName, TextMatches: []gocarddav.TextMatch{{Text: "Ann"}}}},
		})
		if err != nil || len(found) != 1 {
			t.Fatalf("QueryAddressBook = %v, %v", found, err)
		}
	})
}

// dav sends a raw WebDAV request with Basic credentials.
func (e *env) dav(user, method, path, body string, headers ...string) resp {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: r.StatusCode, header: r.Header, body: data}
}
