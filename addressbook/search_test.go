package addressbook_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convergo/convergo/addressbook"
)

func (e *env) search(user, q string) []addressbook.Contact {
	e.t.Helper()
	var l addressbook.ListResponse
	e.must(e.do(user, "GET", "/v1/contacts?q="+url.QueryEscape(q), nil), http.StatusOK).decode(e.t, &l)
	return l.Contacts
}

func displays(cs []addressbook.Contact) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Name.Display)
	}
	return out
}

func TestSearch(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "CN"}}, func(t *testing.T, e *env) {
		e.create("alice", map[string]any{"name": map[string]any{"family": "张", "given": "三"}, "phones": []map[string]any{{"value": "138 0013 8000"}}})
		e.create("alice", map[string]any{"name": name("张三丰")})
		e.create("alice", map[string]any{"name": name("曾丽"), "phones": []map[string]any{{"value": "+1 (202) 555-0143"}}})
		e.create("alice", map[string]any{"name": name("Alexander Graham"), "org": "Bell Labs", "starred": true})
		e.create("alice", map[string]any{"name": name("Alice Martin"), "emails": []map[string]any{{"value": "alice.martin@acme.example"}}, "tags": []string{"tennis"}})
		alina := e.create("alice", map[string]any{"name": name("Alina Ben")})
		tests := []struct {
			q    string
			want []string
			tier string
		}{
			{"zs", []string{"张三", "张三丰"}, "exact"},       // initials
			{"zhangsan", []string{"张三", "张三丰"}, "exact"}, // full pinyin
			{"zhangsa", []string{"张三", "张三丰"}, "prefix"},
			{"张", []string{"张三", "张三丰"}, "exact"}, // the family name of 张三
			{"cengli", []string{"曾丽"}, "exact"},   // heteronym reading of 曾
			{"alcie", []string{"Alice Martin"}, "fuzzy"},
			{"alexnader", []string{"Alexander Graham"}, "fuzzy"},
			{"138 0013", []string{"张三"}, "prefix"},
			{"+86 138-0013-8000", []string{"张三"}, "exact"},
			{"13800138000", []string{"张三"}, "exact"},
			{"8613800138000", []string{"张三"}, "exact"},
			{"(202) 555-0143", []string{"曾丽"}, "exact"},
			{"555 0143", []string{"曾丽"}, "prefix"},
			{"acme", []string{"Alice Martin"}, "substring"},
			{"bell", []string{"Alexander Graham"}, "exact"},
			{"tag:tennis", []string{"Alice Martin"}, "exact"},
			{"nobody", []string{}, ""},
		}
		for _, tt := range tests {
			got := e.search("alice", tt.q)
			if !slices.Equal(displays(got), tt.want) {
				t.Errorf("search %q = %q, want %q", tt.q, displays(got), tt.want)
				continue
			}
			if len(got) > 0 && got[0].Match.Tier != tt.tier {
				t.Errorf("search %q tier = %q, want %q", tt.q, got[0].Match.Tier, tt.tier)
			}
		}
		// Same tier: starred first, then frequent.
		if got := displays(e.search("alice", "al")); !slices.Equal(got, []string{"Alexander Graham", "Alice Martin", "Alina Ben"}) {
			t.Fatalf("search al = %q, want the starred one first", got)
		}
		for range 4 {
			e.must(e.do("alice", "POST", "/v1/contacts/"+alina.ID+"/interactions", map[string]any{"kind": "call"}), http.StatusOK)
		}
		got := e.search("alice", "al")
		if !slices.Equal(displays(got), []string{"Alexander Graham", "Alina Ben", "Alice Martin"}) {
			t.Fatalf("search al after calls = %q, want the frequent contact before the other", displays(got))
		}
		if !slices.Contains(got[1].AutoTags, "frequent") {
			t.Fatalf("auto tags of a frequent contact = %v", got[1].AutoTags)
		}
		e.must(e.do("alice", "GET", "/v1/contacts?q=%22open", nil), http.StatusBadRequest)
		if got := e.search("bob", "zs"); len(got) != 0 {
			t.Fatalf("bob finds alice's contacts: %v", displays(got))
		}
	})
}

func TestLookupAndTags(t *testing.T) {
	backends(t, envOptions{cfg: addressbook.Config{DefaultRegion: "US"}}, func(t *testing.T, e *env) {
		// bob is a convergo user (tel:+8613900139000): saving his number tags him rcs.
		b := e.create("alice", map[string]any{"name": name("Bob"), "phones": []map[string]any{{"value": "+86 139 0013 9000"}}, "org": "Acme"})
		if !slices.Contains(b.AutoTags, "rcs") || !slices.Contains(b.AutoTags, "org:acme") {
			t.Fatalf("auto tags = %v, want rcs and org:acme", b.AutoTags)
		}
		s := e.create("alice", map[string]any{"name": name("SIP friend"), "uris": []map[string]any{{"value": "sip:Bob@EXAMPLE.net"}}})
		if !slices.Contains(s.AutoTags, "rcs") {
			t.Fatalf("a saved sip: URI of a user is not tagged rcs: %v", s.AutoTags)
		}
		o := e.create("alice", map[string]any{"name": name("Outsider"), "phones": []map[string]any{{"value": "(202) 555-0143"}}})
		if slices.Contains(o.AutoTags, "rcs") {
			t.Fatalf("non-user tagged rcs: %v", o.AutoTags)
		}
		for _, number := range []string{"+12025550143", "2025550143", "(202) 555-0143", "tel:+1-202-555-0143", "001 202 555 0143", "sip:+12025550143@ims.example.net;user=phone"} {
			var lk addressbook.LookupResponse
			e.must(e.do("alice", "GET", "/v1/contacts/lookup?number="+url.QueryEscape(number), nil), http.StatusOK).decode(t, &lk)
			if len(lk.Contacts) != 1 || lk.Contacts[0].ID != o.ID {
				t.Errorf("lookup %q = %v, want Outsider", number, displays(lk.Contacts))
			}
		}
		var lk addressbook.LookupResponse
		e.must(e.do("alice", "GET", "/v1/contacts/lookup?number="+url.QueryEscape("sip:bob@example.net"), nil), http.StatusOK).decode(t, &lk)
		if len(lk.Contacts) != 1 || lk.Contacts[0].ID != s.ID {
			t.Fatalf("lookup by sip URI = %v", displays(lk.Contacts))
		}
		e.must(e.do("alice", "GET", "/v1/contacts/lookup?number=%2B19999999999", nil), http.StatusOK).decode(t, &lk)
		if len(lk.Contacts) != 0 {
			t.Fatalf("unknown number found %v", displays(lk.Contacts))
		}
		e.must(e.do("alice", "GET", "/v1/contacts/lookup", nil), http.StatusBadRequest)
		e.must(e.do("alice", "POST", "/v1/contacts/"+o.ID+"/interactions", map[string]any{"kind": "fax"}), http.StatusBadRequest)
		e.must(e.do("alice", "POST", "/v1/contacts/nope/interactions", map[string]any{"kind": "call"}), http.StatusNotFound)
	})
}

func TestSuggestions(t *testing.T) {
	groups := groupChats{"alice": {
		"sip:bob@example.net":    {"Climbing", "Family", "Work"},
		"sip:reader@example.net": {"Work"}, // one shared group is not "many"
	}}
	backends(t, envOptions{groups: groups}, func(t *testing.T, e *env) {
		// Calls and messages with bob, who is a user, but not saved.
		now := time.Now()
		for i := range 3 {
			if err := e.svc.RecordPeerInteraction(t.Context(), "alice", "tel:+8613900139000", now.Add(-time.Duration(i)*time.Hour), 1); err != nil {
				t.Fatal(err)
			}
		}
		// And with a number that is nobody on convergo: never suggested.
		for range 5 {
			if err := e.svc.RecordPeerInteraction(t.Context(), "alice", "tel:+12025550143", now, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.RecordPeerInteraction(t.Context(), "alice", "mailto:x@y", now, 1); err == nil {
			t.Fatal("RecordPeerInteraction accepted a mailto: URI")
		}
		var sr addressbook.SuggestionsResponse
		e.must(e.do("alice", "GET", "/v1/contacts/suggestions", nil), http.StatusOK).decode(t, &sr)
		var got []string
		for _, s := range sr.Suggestions {
			if s.Reason == "" {
				t.Fatalf("suggestion without a reason: %+v", s)
			}
			got = append(got, s.Kind+" "+s.Identity)
		}
		want := []string{"groups sip:bob@example.net", "interactions tel:+8613900139000"}
		if !slices.Equal(got, want) {
			t.Fatalf("suggestions = %q, want %q", got, want)
		}
		if !strings.Contains(sr.Suggestions[0].Reason, "3 group chats") || !strings.Contains(sr.Suggestions[1].Reason, "3 calls or messages") {
			t.Fatalf("reasons = %q / %q", sr.Suggestions[0].Reason, sr.Suggestions[1].Reason)
		}
		// Once bob is saved (by number and URI) there is nothing left to suggest.
		c := e.create("alice", map[string]any{"name": name("Bob"), "phones": []map[string]any{{"value": "+86 139 0013 9000"}},
			"uris": []map[string]any{{"value": "sip:bob@example.net"}}})
		e.must(e.do("alice", "GET", "/v1/contacts/suggestions", nil), http.StatusOK).decode(t, &sr)
		if len(sr.Suggestions) != 0 {
			t.Fatalf("suggestions after saving bob = %+v", sr.Suggestions)
		}
		// His calls now make the saved contact frequent.
		var one addressbook.Contact
		e.must(e.do("alice", "GET", "/v1/contacts/"+c.ID, nil), http.StatusOK).decode(t, &one)
		if !slices.Contains(one.AutoTags, "frequent") {
			t.Fatalf("auto tags of a contact called 3 times = %v", one.AutoTags)
		}
	})
}
