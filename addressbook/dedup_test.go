package addressbook_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/convergo/convergo/addressbook"
)

func TestDuplicatesAndMerge(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "CN"}}, func(t *testing.T, e *env) {
		a := e.create("alice", map[string]any{"name": name("张三"), "phones": []map[string]any{{"value": "138 0013 8000", "label": "mobile"}},
			"title": "Engineer", "tags": []string{"work"}})
		b := e.create("alice", map[string]any{"name": name("Zhang San"), "phones": []map[string]any{{"value": "+86 138-0013-8000"}},
			"emails": []map[string]any{{"value": "zs@example.cn"}}, "title": "Manager", "starred": true, "tags": []string{"golf"}})
		c := e.create("alice", map[string]any{"name": name("Jonathan Smith"), "emails": []map[string]any{{"value": "JS@example.com"}}})
		d := e.create("alice", map[string]any{"name": name("Jonathon Smith"), "emails": []map[string]any{{"value": "js@example.com"}}})
		e.create("alice", map[string]any{"name": name("Someone Else")})
		f := e.create("alice", map[string]any{"name": name("Mary Jones")})
		g := e.create("alice", map[string]any{"name": name("Mary Jones")})

		var dr addressbook.DuplicatesResponse
		e.must(e.do("alice", "GET", "/v1/contacts/duplicates", nil), http.StatusOK).decode(t, &dr)
		type group struct {
			ids     []string
			reasons []string
		}
		var got []group
		for _, gr := range dr.Groups {
			var ids []string
			for _, c := range gr.Contacts {
				ids = append(ids, c.ID)
			}
			slices.Sort(ids)
			got = append(got, group{ids, gr.Reasons})
			if gr.Score <= 0 || gr.Score > 1 {
				t.Fatalf("score %v out of range", gr.Score)
			}
		}
		sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
		want := map[string][]string{ // group → reasons
			sorted(a.ID, b.ID)[0] + sorted(a.ID, b.ID)[1]: {"same name in pinyin", "same number +8613800138000"},
			sorted(c.ID, d.ID)[0] + sorted(c.ID, d.ID)[1]: {"same email js@example.com", "similar names"},
			sorted(f.ID, g.ID)[0] + sorted(f.ID, g.ID)[1]: {"same name"},
		}
		if len(got) != len(want) {
			t.Fatalf("duplicate groups = %+v, want 3", got)
		}
		for _, gr := range got {
			w, ok := want[gr.ids[0]+gr.ids[1]]
			if !ok || !slices.Equal(w, gr.reasons) {
				t.Fatalf("group %v reasons %q, want %q", gr.ids, gr.reasons, w)
			}
		}
		if dr.Groups[2].Score >= dr.Groups[0].Score {
			t.Fatalf("groups not ordered by score: %v, %v", dr.Groups[0].Score, dr.Groups[2].Score)
		}

		tok := e.syncToken("alice")
		req := map[string]any{"contacts": []map[string]any{{"id": a.ID, "version": 1}, {"id": b.ID, "version": 1}}, "primary": a.ID}
		e.must(e.do("alice", "POST", "/v1/contacts:merge", map[string]any{"contacts": []map[string]any{{"id": a.ID, "version": 1}, {"id": b.ID, "version": 9}}}),
			http.StatusPreconditionFailed)
		e.must(e.do("alice", "POST", "/v1/contacts:merge", map[string]any{"contacts": []map[string]any{{"id": a.ID}, {"id": b.ID}}}),
			http.StatusPreconditionRequired)
		e.must(e.do("bob", "POST", "/v1/contacts:merge", req), http.StatusNotFound)
		var mr addressbook.MergeResponse
		e.must(e.do("alice", "POST", "/v1/contacts:merge", req), http.StatusOK).decode(t, &mr)
		m := mr.Contact
		if m.ID != a.ID || m.Version != 2 || m.Name.Display != "张三" || m.Title != "Engineer" || !m.Starred ||
			len(m.Phones) != 1 || len(m.Emails) != 1 || !slices.Equal(m.Tags, []string{"work", "golf"}) {
			t.Fatalf("merged contact = %+v", m)
		}
		wantConflicts := []addressbook.MergeConflict{{Field: "name.display", Kept: "张三", Dropped: []string{"Zhang San"}},
			{Field: "title", Kept: "Engineer", Dropped: []string{"Manager"}}}
		if len(mr.Conflicts) != 2 || mr.Conflicts[0].Field != wantConflicts[0].Field || mr.Conflicts[1].Dropped[0] != "Manager" {
			t.Fatalf("conflicts = %+v, want %+v", mr.Conflicts, wantConflicts)
		}
		if !slices.Equal(mr.Deleted, []string{b.ID}) {
			t.Fatalf("deleted = %v", mr.Deleted)
		}
		// Other devices learn about the merge through the change feed: the
		// survivor's new version and the loser's tombstone pointing at it.
		ch := e.changes("alice", tok, "")
		if len(ch.Changes) != 2 || ch.Changes[0].ID != a.ID || ch.Changes[0].Version != 2 ||
			ch.Changes[1].ID != b.ID || !ch.Changes[1].Deleted || ch.Changes[1].MergedInto != a.ID {
			t.Fatalf("changes after merge = %+v", ch.Changes)
		}
		e.must(e.do("alice", "GET", "/v1/contacts/"+b.ID, nil), http.StatusNotFound)
		e.must(e.do("alice", "POST", "/v1/contacts:merge", req), http.StatusNotFound) // b is gone now
		e.must(e.do("alice", "POST", "/v1/contacts:merge", map[string]any{"contacts": []map[string]any{{"id": a.ID, "version": 2}}}), http.StatusBadRequest)
	})
}
