package addressbook_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/store"
)

func TestCRUD(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "CN"}}, func(t *testing.T, e *env) {
		c := e.create("alice", map[string]any{
			"name":   map[string]any{"given": "三", "family": "张"},
			"phones": []map[string]any{{"value": "138 0013 8000", "label": "Mobile"}, {"value": "+1 (202) 555-0143"}, {"value": "call me maybe"}},
			"emails": []map[string]any{{"value": "zhangsan@example.cn"}},
			"uris":   []map[string]any{{"value": "sip:zhangsan@ims.example.cn"}},
			"org":    "华为", "birthday": "19850412", "tags": []string{"vip", "VIP"}, "groups": []string{"同事"},
			"photo": map[string]any{"media_type": "image/png", "data": base64.StdEncoding.EncodeToString([]byte("\x89PNG"))},
		})
		if c.Version != 1 || c.Name.Display != "张三" {
			t.Fatalf("version %d, display %q; want 1, 张三 (family name first for Chinese names)", c.Version, c.Name.Display)
		}
		wantPhones := []store.ContactPhone{
			{Value: "138 0013 8000", E164: "+8613800138000", Valid: true, Label: "mobile"},
			{Value: "+1 (202) 555-0143", E164: "+12025550143", Valid: true},
			{Value: "call me maybe"}, // kept as typed, flagged invalid
		}
		if diff := gocmp.Diff(wantPhones, c.Phones); diff != "" {
			t.Fatalf("phones (-want +got):\n%s", diff)
		}
		if c.Birthday != "1985-04-12" || !slices.Equal(c.Tags, []string{"vip"}) || !slices.Contains(c.AutoTags, "org:华为") {
			t.Fatalf("normalised contact = %+v", c)
		}

		r := e.must(e.do("alice", "GET", "/v1/contacts/"+c.ID, nil), http.StatusOK)
		if r.header.Get("ETag") != etag(1) {
			t.Fatalf("GET ETag = %q", r.header.Get("ETag"))
		}
		e.must(e.do("alice", "GET", "/v1/contacts/"+c.ID, nil, "If-None-Match", etag(1)), http.StatusNotModified)

		// Writes need If-Match: 428 without, 412 with the current representation on a stale one.
		upd := map[string]any{"name": name("Zhang San"), "phones": []map[string]any{{"value": "13800138000"}}}
		p := e.must(e.do("alice", "PUT", "/v1/contacts/"+c.ID, upd), http.StatusPreconditionRequired).problem(t)
		if p["type"] != addressbook.ProblemIfMatchRequired {
			t.Fatalf("428 problem = %v", p)
		}
		r = e.must(e.do("alice", "PUT", "/v1/contacts/"+c.ID, upd, "If-Match", etag(1)), http.StatusOK)
		var v2 addressbook.Contact
		r.decode(t, &v2)
		if v2.Version != 2 || r.header.Get("ETag") != etag(2) || v2.Name.Display != "Zhang San" || len(v2.Phones) != 1 || !v2.Created.Equal(c.Created) {
			t.Fatalf("PUT result = %+v (ETag %s)", v2, r.header.Get("ETag"))
		}
		r = e.must(e.do("alice", "PUT", "/v1/contacts/"+c.ID, upd, "If-Match", etag(1)), http.StatusPreconditionFailed)
		if r.header.Get("ETag") != etag(2) {
			t.Fatalf("412 ETag = %q, want the current version", r.header.Get("ETag"))
		}
		cur := r.problem(t)["current"].(map[string]any)
		if cur["version"].(float64) != 2 || cur["name"].(map[string]any)["display"] != "Zhang San" {
			t.Fatalf("412 current = %v", cur)
		}

		// PATCH is a JSON merge patch (RFC 7396): null removes, the rest replaces.
		r = e.must(e.do("alice", "PATCH", "/v1/contacts/"+c.ID, `{"title":"CTO","starred":true,"org":null}`,
			"If-Match", etag(2), "Content-Type", "application/merge-patch+json"), http.StatusOK)
		var v3 addressbook.Contact
		r.decode(t, &v3)
		if v3.Version != 3 || v3.Title != "CTO" || !v3.Starred || v3.Org != "" || v3.Name.Display != "Zhang San" {
			t.Fatalf("PATCH result = %+v", v3)
		}
		e.must(e.do("alice", "PATCH", "/v1/contacts/"+c.ID, `{"title":"x"}`, "If-Match", etag(2)), http.StatusPreconditionFailed)
		e.must(e.do("alice", "PATCH", "/v1/contacts/"+c.ID, `{"phones":[{"value":"1\r\nVia: x"}]}`, "If-Match", etag(3)), http.StatusBadRequest)
		e.must(e.do("alice", "PUT", "/v1/contacts/"+c.ID, upd, "If-Match", "*"), http.StatusOK) // * = whatever is current

		// Another user's contact does not exist for bob: 404, never 403.
		for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
			r := e.do("bob", m, "/v1/contacts/"+c.ID, upd, "If-Match", etag(4))
			if r.status != http.StatusNotFound {
				t.Fatalf("bob %s alice's contact: status %d, want 404", m, r.status)
			}
		}

		e.must(e.do("alice", "DELETE", "/v1/contacts/"+c.ID, nil), http.StatusPreconditionRequired)
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+c.ID, nil, "If-Match", etag(3)), http.StatusPreconditionFailed)
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+c.ID, nil, "If-Match", etag(4)), http.StatusNoContent)
		e.must(e.do("alice", "GET", "/v1/contacts/"+c.ID, nil), http.StatusNotFound)
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+c.ID, nil, "If-Match", etag(5)), http.StatusNotFound)

		// Client-chosen IDs (a device that created the contact offline).
		d := e.create("alice", map[string]any{"id": "device-uuid-1", "name": name("Offline")})
		if d.ID != "device-uuid-1" {
			t.Fatalf("client id not kept: %s", d.ID)
		}
		p = e.must(e.do("alice", "POST", "/v1/contacts", map[string]any{"id": "device-uuid-1", "name": name("Again")}), http.StatusConflict).problem(t)
		if p["type"] != addressbook.ProblemContactExists {
			t.Fatalf("409 problem = %v", p)
		}
		e.must(e.do("alice", "POST", "/v1/contacts", map[string]any{"id": "changes", "name": name("x")}), http.StatusBadRequest)
	})
}

func TestAuthAndPermissions(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		e.must(e.do("", "GET", "/v1/contacts", nil), http.StatusUnauthorized)
		e.must(e.do("reader", "GET", "/v1/contacts", nil), http.StatusOK)
		e.must(e.do("reader", "POST", "/v1/contacts", map[string]any{"name": name("x")}), http.StatusForbidden)
		e.must(e.do("reader", "POST", "/v1/contacts:batch", map[string]any{"items": []any{}}), http.StatusForbidden)
	})
}

func TestBadInput(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{MaxPhotoBytes: 1024, MaxBodyBytes: 8 << 10}}, func(t *testing.T, e *env) {
		tests := []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{name: "CR LF in display name", body: map[string]any{"name": name("Eve\r\nVia: SIP/2.0/UDP evil")}, status: 400, field: "name.display"},
			{name: "NUL in org", body: map[string]any{"name": name("x"), "org": "a\x00b"}, status: 400, field: "org"},
			{name: "line separator in URI", body: map[string]any{"uris": []map[string]any{{"value": "sip:a@b\u2028x"}}}, status: 400, field: "uris[0].value"},
			{name: "angle bracket in URI", body: map[string]any{"uris": []map[string]any{{"value": "sip:a@b>;tag=x"}}}, status: 400, field: "uris[0].value"},
			{name: "invalid email", body: map[string]any{"emails": []map[string]any{{"value": "not an email"}}}, status: 400, field: "emails[0].value"},
			{name: "email with display name", body: map[string]any{"emails": []map[string]any{{"value": "Eve <eve@example.com>"}}}, status: 400, field: "emails[0].value"},
			{name: "bad label", body: map[string]any{"name": name("x"), "phones": []map[string]any{{"value": "1", "label": "my phone"}}}, status: 400, field: "phones[0].label"},
			{name: "bad birthday", body: map[string]any{"name": name("x"), "birthday": "yesterday"}, status: 400, field: "birthday"},
			{name: "empty contact", body: map[string]any{"notes": "just notes"}, status: 400, field: "name"},
			{name: "photo media type", body: map[string]any{"name": name("x"), "photo": map[string]any{"media_type": "text/html", "data": "PGI+"}}, status: 400, field: "photo.media_type"},
			{name: "oversize photo", body: map[string]any{"name": name("x"), "photo": map[string]any{"media_type": "image/jpeg",
				"data": base64.StdEncoding.EncodeToString(make([]byte, 2048))}}, status: 413, field: "photo.data"},
		}
		for _, tt := range tests {
			r := e.do("alice", "POST", "/v1/contacts", tt.body)
			if r.status != tt.status {
				t.Errorf("%s: status %d, want %d (%s)", tt.name, r.status, tt.status, r.body)
				continue
			}
			p := r.problem(t)
			errs, _ := p["errors"].([]any)
			found := false
			for _, fe := range errs {
				found = found || fe.(map[string]any)["field"] == tt.field
			}
			if !found {
				t.Errorf("%s: problem %v does not name %s", tt.name, p, tt.field)
			}
		}
		e.must(e.do("alice", "POST", "/v1/contacts", strings.Repeat("x", 9<<10)), http.StatusRequestEntityTooLarge)
		e.must(e.do("alice", "POST", "/v1/contacts", `{"name":{"display":"x"}} trailing`), http.StatusBadRequest)
		e.must(e.do("alice", "POST", "/v1/contacts", `{"nmae":{"display":"x"}}`), http.StatusBadRequest) // unknown field
		e.must(e.do("alice", "POST", "/v1/contacts", `{}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
		e.must(e.do("alice", "GET", "/v1/contacts?limit=-1", nil), http.StatusBadRequest)
		e.must(e.do("alice", "GET", "/v1/contacts?q="+strings.Repeat("a", 300), nil), http.StatusBadRequest)
		// Nothing was written by any of these.
		var list addressbook.ListResponse
		e.must(e.do("alice", "GET", "/v1/contacts", nil), http.StatusOK).decode(t, &list)
		if list.Total != 0 {
			t.Fatalf("refused requests left %d contacts", list.Total)
		}
	})
}

func TestLimit(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{MaxContacts: 2}}, func(t *testing.T, e *env) {
		e.create("alice", map[string]any{"name": name("a")})
		e.create("alice", map[string]any{"name": name("b")})
		p := e.must(e.do("alice", "POST", "/v1/contacts", map[string]any{"name": name("c")}), http.StatusConflict).problem(t)
		if p["type"] != addressbook.ProblemContactLimit {
			t.Fatalf("limit problem = %v", p)
		}
		e.create("bob", map[string]any{"name": name("c")}) // per user
	})
}

func TestListPaging(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		var want []string
		for i := range 25 {
			c := e.create("alice", map[string]any{"name": name(fmt.Sprintf("Person %02d", i))})
			want = append(want, c.ID)
		}
		var (
			got    []string
			cursor string
			token  string
		)
		for page := 0; ; page++ {
			path := "/v1/contacts?limit=10"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var l addressbook.ListResponse
			e.must(e.do("alice", "GET", path, nil), http.StatusOK).decode(t, &l)
			if page == 0 {
				token = l.SyncToken
			} else if l.SyncToken != "" {
				t.Fatalf("sync_token on page %d", page)
			}
			if page == 0 && l.Total != 25 {
				t.Fatalf("total = %d", l.Total)
			}
			if page == 1 { // a delete while paging must not make the listing skip anyone else
				e.must(e.do("alice", "DELETE", "/v1/contacts/"+want[3], nil, "If-Match", etag(1)), http.StatusNoContent)
			}
			for _, c := range l.Contacts {
				got = append(got, c.ID)
			}
			if l.NextCursor == "" {
				break
			}
			cursor = l.NextCursor
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Fatalf("paged listing (-want +got):\n%s", diff)
		}
		var ch addressbook.ChangesResponse
		e.must(e.do("alice", "GET", "/v1/contacts/changes?since="+token, nil), http.StatusOK).decode(t, &ch)
		if len(ch.Changes) != 1 || !ch.Changes[0].Deleted || ch.Changes[0].ID != want[3] {
			t.Fatalf("changes after the listing = %+v, want the delete", ch.Changes)
		}
	})
}

func TestBatch(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{MaxPhotoBytes: 16, MaxBodyBytes: 1 << 20}}, func(t *testing.T, e *env) {
		existing := e.create("alice", map[string]any{"name": name("Existing")})
		gone := e.create("alice", map[string]any{"name": name("Gone")})
		body := map[string]any{"items": []map[string]any{
			{"op": "upsert", "contact": map[string]any{"name": name("New")}},
			{"op": "upsert", "id": "dev-1", "contact": map[string]any{"name": name("Device one")}},
			{"op": "upsert", "id": existing.ID, "version": 1, "contact": map[string]any{"name": name("Existing 2")}},
			{"op": "upsert", "id": existing.ID, "version": 1, "contact": map[string]any{"name": name("Stale")}},
			{"op": "upsert", "contact": map[string]any{"name": name("Bad\nname")}},
			{"op": "upsert", "contact": map[string]any{"name": name("Big"), "photo": map[string]any{"media_type": "image/png", "data": base64.StdEncoding.EncodeToString(make([]byte, 64))}}},
			{"op": "delete", "id": gone.ID, "version": 1},
			{"op": "delete", "id": "nope", "version": 1},
			{"op": "frobnicate"},
		}}
		var br addressbook.BatchResponse
		e.must(e.do("alice", "POST", "/v1/contacts:batch", body), http.StatusOK).decode(t, &br)
		var statuses []int
		for _, r := range br.Results {
			statuses = append(statuses, r.Status)
		}
		want := []int{201, 201, 200, 412, 400, 413, 204, 404, 400}
		if !slices.Equal(statuses, want) {
			t.Fatalf("batch statuses = %v, want %v\n%+v", statuses, want, br.Results)
		}
		if br.Results[3].Current == nil || br.Results[3].Current.Name.Display != "Existing 2" || br.Results[3].Version != 2 {
			t.Fatalf("412 item = %+v, want the current representation", br.Results[3])
		}
		if br.Results[1].ID != "dev-1" || br.Results[2].Version != 2 {
			t.Fatalf("results = %+v", br.Results)
		}
		var l addressbook.ListResponse
		e.must(e.do("alice", "GET", "/v1/contacts", nil), http.StatusOK).decode(t, &l)
		if l.Total != 3 {
			t.Fatalf("after the batch %d contacts, want 3 (existing, new, dev-1)", l.Total)
		}
	})
}
