package addressbook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/store"
)

func (e *env) changes(user, token string, extra string) addressbook.ChangesResponse {
	e.t.Helper()
	var ch addressbook.ChangesResponse
	e.must(e.do(user, "GET", "/v1/contacts/changes?since="+token+extra, nil), http.StatusOK).decode(e.t, &ch)
	return ch
}

func (e *env) syncToken(user string) string {
	e.t.Helper()
	var l addressbook.ListResponse
	e.must(e.do(user, "GET", "/v1/contacts?limit=1", nil), http.StatusOK).decode(e.t, &l)
	return l.SyncToken
}

type change struct {
	ID      string
	Version uint64
	Deleted bool
	Display string
}

func summary(ch addressbook.ChangesResponse) []change {
	var out []change
	for _, c := range ch.Changes {
		s := change{ID: c.ID, Version: c.Version, Deleted: c.Deleted}
		if c.Contact != nil {
			s.Display = c.Contact.Name.Display
		}
		out = append(out, s)
	}
	return out
}

func TestSyncChanges(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		t0 := e.syncToken("alice")
		a := e.create("alice", map[string]any{"name": name("Ann")})
		b := e.create("alice", map[string]any{"name": name("Bob")})
		ch := e.changes("alice", t0, "")
		if got, want := summary(ch), []change{{a.ID, 1, false, "Ann"}, {b.ID, 1, false, "Bob"}}; !slices.Equal(got, want) || ch.More {
			t.Fatalf("changes = %+v (more %v), want %+v", got, ch.More, want)
		}
		t1 := ch.SyncToken
		if again := e.changes("alice", t1, ""); len(again.Changes) != 0 || again.SyncToken != t1 {
			t.Fatalf("no news: %+v, token %q; want none and the same token", again.Changes, again.SyncToken)
		}
		e.must(e.do("alice", "PUT", "/v1/contacts/"+a.ID, map[string]any{"name": name("Ann 2")}, "If-Match", etag(1)), http.StatusOK)
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+b.ID, nil, "If-Match", etag(1)), http.StatusNoContent)
		c := e.create("alice", map[string]any{"name": name("Cid")})
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+c.ID, nil, "If-Match", etag(1)), http.StatusNoContent)
		ch = e.changes("alice", t1, "")
		want := []change{{a.ID, 2, false, "Ann 2"}, {b.ID, 2, true, ""}, {c.ID, 2, true, ""}}
		if got := summary(ch); !slices.Equal(got, want) {
			t.Fatalf("changes after update and deletes = %+v, want %+v", got, want)
		}
		// Paging: one change per page, each with a token that goes on.
		var paged []change
		tok := t1
		for range 10 {
			p := e.changes("alice", tok, "&limit=1")
			paged = append(paged, summary(p)...)
			tok = p.SyncToken
			if !p.More {
				break
			}
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged changes = %+v, want %+v", paged, want)
		}
		// A token of another user, or a mangled one, is 410: resync.
		bobTok := e.syncToken("bob")
		for _, bad := range []string{bobTok, "garbage", t1[:len(t1)-2] + "AA"} {
			p := e.must(e.do("alice", "GET", "/v1/contacts/changes?since="+bad, nil), http.StatusGone).problem(t)
			if p["type"] != addressbook.ProblemSyncTokenExpired {
				t.Fatalf("410 problem = %v", p)
			}
		}
		// The same changes are events of alice's one log (what /v1/sync streams).
		evs, err := e.st.Events().Read(t.Context(), "alice", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, ev := range evs {
			var cc store.ContactChange
			if err := json.Unmarshal(ev.Data, &cc); err != nil || cc.ID == "" {
				t.Fatalf("event %+v: data %v", ev, err)
			}
			types = append(types, ev.Type)
		}
		if want := []string{"contact.upsert", "contact.upsert", "contact.upsert", "contact.delete", "contact.upsert", "contact.delete"}; !slices.Equal(types, want) {
			t.Fatalf("event types = %v, want %v", types, want)
		}
	})
}

func TestSyncTokenExpires(t *testing.T) {
	backends(t, envOptions{maxEvents: 5}, func(t *testing.T, e *env) {
		t0 := e.syncToken("alice")
		for i := range 8 {
			e.create("alice", map[string]any{"name": name(string(rune('a' + i)))})
		}
		p := e.must(e.do("alice", "GET", "/v1/contacts/changes?since="+t0, nil), http.StatusGone).problem(t)
		if p["type"] != addressbook.ProblemSyncTokenExpired {
			t.Fatalf("problem = %v", p)
		}
		// Full resync: list everything, then sync from its token.
		var l addressbook.ListResponse
		e.must(e.do("alice", "GET", "/v1/contacts", nil), http.StatusOK).decode(t, &l)
		if l.Total != 8 {
			t.Fatalf("resync listed %d, want 8", l.Total)
		}
		x := e.create("alice", map[string]any{"name": name("after")})
		if got := summary(e.changes("alice", l.SyncToken, "")); len(got) != 1 || got[0].ID != x.ID {
			t.Fatalf("changes after resync = %+v", got)
		}
	})
}

// TestTwoDevicesConflict: two devices of one user edit the same contact.
// The second write gets 412 with what the first wrote, merges, and retries;
// both edits survive and both devices converge through the change feed.
func TestTwoDevicesConflict(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		e.token["phone"] = e.login("alice", "phone")
		e.token["laptop"] = e.login("alice", "laptop")
		start := e.syncToken("phone")
		c := e.create("phone", map[string]any{"name": name("Carol"), "phones": []map[string]any{{"value": "+1 202 555 0101"}}})
		tok := e.changes("laptop", start, "").SyncToken

		// Both devices hold version 1. The phone adds an email first.
		e.must(e.do("phone", "PUT", "/v1/contacts/"+c.ID, map[string]any{"name": name("Carol"),
			"phones": []map[string]any{{"value": "+1 202 555 0101"}}, "emails": []map[string]any{{"value": "carol@example.com"}}},
			"If-Match", etag(1)), http.StatusOK)
		// The laptop, still at version 1, changes the title: refused, nothing overwritten.
		r := e.must(e.do("laptop", "PUT", "/v1/contacts/"+c.ID, map[string]any{"name": name("Carol"),
			"phones": []map[string]any{{"value": "+1 202 555 0101"}}, "title": "Engineer"}, "If-Match", etag(1)), http.StatusPreconditionFailed)
		var p struct {
			Current addressbook.Contact `json:"current"`
		}
		r.decode(t, &p)
		if p.Current.Version != 2 || len(p.Current.Emails) != 1 {
			t.Fatalf("412 current = %+v, want version 2 with the phone's email", p.Current)
		}
		// The laptop merges its change into the current version and retries.
		merged := map[string]any{"name": name("Carol"), "phones": []map[string]any{{"value": "+1 202 555 0101"}},
			"emails": []map[string]any{{"value": p.Current.Emails[0].Value}}, "title": "Engineer"}
		e.must(e.do("laptop", "PUT", "/v1/contacts/"+c.ID, merged, "If-Match", r.header.Get("ETag")), http.StatusOK)

		for _, dev := range []string{"phone", "laptop"} {
			ch := e.changes(dev, tok, "")
			if len(ch.Changes) != 1 || ch.Changes[0].Version != 3 || ch.Changes[0].Contact.Title != "Engineer" ||
				len(ch.Changes[0].Contact.Emails) != 1 {
				t.Fatalf("%s syncs %+v, want version 3 with both edits", dev, ch.Changes)
			}
		}
	})
}

// TestTwoNodes: two convergo nodes on one store. A write through one is
// found by the other's search and lookup at once (the index is checked
// against the change feed on every read).
func TestTwoNodes(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		adapter := authAdapter{svc: e.auth, users: e.st.Users()}
		other, err := addressbook.New(addressbook.Config{}, addressbook.Deps{Contacts: e.st.Contacts(), Events: e.st.Events(),
			Auth: adapter, Users: directory{e.st.Users()}}, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		other.Routes(mux)
		srv2 := httptest.NewServer(mux)
		t.Cleanup(srv2.Close)
		node2 := &env{t: t, st: e.st, srv: srv2, token: e.token}

		var l addressbook.ListResponse
		node2.must(node2.do("alice", "GET", "/v1/contacts?q=dora", nil), http.StatusOK).decode(t, &l) // builds node 2's index
		if l.Total != 0 {
			t.Fatal("unexpected hit")
		}
		d := e.create("alice", map[string]any{"name": name("Dora"), "phones": []map[string]any{{"value": "+1 202 555 0199"}}})
		node2.must(node2.do("alice", "GET", "/v1/contacts?q=dora", nil), http.StatusOK).decode(t, &l)
		if l.Total != 1 || l.Contacts[0].ID != d.ID {
			t.Fatalf("node 2 search after node 1 write = %+v", l.Contacts)
		}
		e.must(e.do("alice", "DELETE", "/v1/contacts/"+d.ID, nil, "If-Match", etag(1)), http.StatusNoContent)
		var lk addressbook.LookupResponse
		node2.must(node2.do("alice", "GET", "/v1/contacts/lookup?number=2025550199", nil), http.StatusOK).decode(t, &lk)
		if len(lk.Contacts) != 0 {
			t.Fatalf("node 2 still finds the deleted contact: %+v", lk.Contacts)
		}
	})
}

// TestConcurrentClients: searches, listings and syncs run while other
// clients write; every write lands once and the index ends up exact.
func TestConcurrentClients(t *testing.T) {
	backends(t, envOptions{}, func(t *testing.T, e *env) {
		const writers, perWriter = 3, 10
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					r := e.do("alice", "POST", "/v1/contacts", map[string]any{"name": name(fmt.Sprintf("Writer%d Person%d", w, i))})
					if r.status != http.StatusCreated {
						t.Errorf("create: %d %s", r.status, r.body)
					}
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				for range 2 * perWriter {
					for _, path := range []string{"/v1/contacts?q=writer", "/v1/contacts?limit=5", "/v1/contacts/changes", "/v1/contacts/duplicates"} {
						if r := e.do("alice", "GET", path, nil); r.status != http.StatusOK {
							t.Errorf("GET %s: %d %s", path, r.status, r.body)
						}
					}
				}
			})
		}
		wg.Wait()
		var l addressbook.ListResponse
		e.must(e.do("alice", "GET", "/v1/contacts?q=writer&limit=200", nil), http.StatusOK).decode(t, &l)
		if l.Total != writers*perWriter {
			t.Fatalf("search finds %d of %d contacts written concurrently", l.Total, writers*perWriter)
		}
	})
}
