package search

import (
	"errors"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

func testIndex() *Index {
	ix := New()
	ix.Put("zhangsan", Fields{Names: []string{"张三"}, SortName: "张三",
		Phones: []Phone{{E164: "+8613800138000", NSN: "13800138000", Raw: "13800138000"}}})
	ix.Put("zengli", Fields{Names: []string{"曾丽"}, SortName: "曾丽"})
	ix.Put("zhangsanfeng", Fields{Names: []string{"张三丰"}, SortName: "张三丰"})
	ix.Put("alice", Fields{Names: []string{"Alice Martin", "Alice", "Martin"}, SortName: "Alice Martin",
		Emails: []string{"alice@example.com", "sip:alice@ims.example.net"}, Orgs: []string{"Acme Corp", "Sales"},
		Tags:   []string{"work", "tennis"},
		Phones: []Phone{{E164: "+12025550143", NSN: "2025550143", Raw: "2025550143"}}})
	ix.Put("alexander", Fields{Names: []string{"Alexander Graham"}, SortName: "Alexander Graham", Starred: true})
	ix.Put("alina", Fields{Names: []string{"Alina Ben"}, SortName: "Alina Ben", Frequency: 4})
	ix.Put("jose", Fields{Names: []string{"José Núñez"}, SortName: "José Núñez",
		Phones: []Phone{{E164: "+442079460000", NSN: "2079460000", Raw: "02079460000"}}})
	ix.Put("bob", Fields{Names: []string{"Bob"}, SortName: "Bob", Orgs: []string{"Acme Corp"}})
	ix.Commit()
	return ix
}

func search(t *testing.T, ix *Index, q string) []Hit {
	t.Helper()
	pq, err := ParseQuery(q)
	if err != nil {
		t.Fatalf("ParseQuery(%q) error = %v", q, err)
	}
	hits, total := ix.Search(pq, 20)
	if total != len(hits) {
		t.Fatalf("Search(%q) total = %d, want %d", q, total, len(hits))
	}
	return hits
}

func ids(hits []Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func TestSearch(t *testing.T) {
	ix := testIndex()
	tests := []struct {
		q        string
		want     []string
		wantTier Tier // of the first hit
	}{
		// Chinese names: characters, full pinyin, initials, mixed.
		{q: "张三", want: []string{"zhangsan", "zhangsanfeng"}, wantTier: TierExact},
		{q: "zs", want: []string{"zhangsan", "zhangsanfeng"}, wantTier: TierExact},
		{q: "zhangsan", want: []string{"zhangsan", "zhangsanfeng"}, wantTier: TierExact},
		{q: "zhangs", want: []string{"zhangsan", "zhangsanfeng"}, wantTier: TierExact}, // 三 by its initial
		{q: "zhangsa", want: []string{"zhangsan", "zhangsanfeng"}, wantTier: TierPrefix},
		{q: "zsf", want: []string{"zhangsanfeng"}, wantTier: TierExact},
		{q: "sanfeng", want: []string{"zhangsanfeng"}, wantTier: TierSubstring},
		{q: "cengli", want: []string{"zengli"}, wantTier: TierExact}, // heteronym 曾 ceng/zeng
		{q: "zl", want: []string{"zengli"}, wantTier: TierExact},
		// Latin names: exact word, prefix, substring, typos, diacritics.
		{q: "alice", want: []string{"alice"}, wantTier: TierExact},
		// Same tier: the starred contact first, then the frequent one.
		{q: "al", want: []string{"alexander", "alina", "alice"}, wantTier: TierPrefix},
		{q: "artin", want: []string{"alice"}, wantTier: TierSubstring},
		{q: "alcie", want: []string{"alice"}, wantTier: TierFuzzy},
		{q: "alexnader", want: []string{"alexander"}, wantTier: TierFuzzy},
		{q: "jose nunez", want: []string{"jose"}, wantTier: TierExact},
		{q: "José", want: []string{"jose"}, wantTier: TierExact},
		// Phone numbers in any format.
		{q: "138 0013", want: []string{"zhangsan"}, wantTier: TierPrefix},
		{q: "+86 138-0013-8000", want: []string{"zhangsan"}, wantTier: TierExact},
		{q: "8000", want: []string{"zhangsan"}, wantTier: TierPrefix},
		{q: "(202) 555-0143", want: []string{"alice"}, wantTier: TierExact},
		{q: "0044 20 7946 0000", want: []string{"jose"}, wantTier: TierExact},
		{q: "020 7946 0000", want: []string{"jose"}, wantTier: TierExact},
		// Emails, URIs, organisation, tags, qualifiers, filters.
		{q: "alice@example.com", want: []string{"alice"}, wantTier: TierExact},
		{q: "example", want: []string{"alice"}, wantTier: TierSubstring},
		{q: "acme", want: []string{"alice", "bob"}, wantTier: TierExact},
		{q: "tag:tennis", want: []string{"alice"}, wantTier: TierExact},
		{q: "org:acme bob", want: []string{"bob"}, wantTier: TierExact},
		{q: "email:alice", want: []string{"alice"}, wantTier: TierPrefix},
		{q: "is:starred", want: []string{"alexander"}, wantTier: TierExact},
		{q: `"alice martin"`, want: []string{"alice"}, wantTier: TierExact},
		{q: "nobody", want: []string{}},
		{q: "zzz", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			hits := search(t, ix, tt.q)
			if diff := gocmp.Diff(tt.want, ids(hits)); diff != "" {
				t.Fatalf("Search(%q) ids (-want +got):\n%s", tt.q, diff)
			}
			if len(hits) > 0 && hits[0].Tier != tt.wantTier {
				t.Fatalf("Search(%q) first tier = %v, want %v", tt.q, hits[0].Tier, tt.wantTier)
			}
		})
	}
}

func TestSearchUpdateDelete(t *testing.T) {
	ix := testIndex()
	ix.Put("bob", Fields{Names: []string{"Robert"}, SortName: "Robert"})
	if got := ids(search(t, ix, "bob")); len(got) != 0 {
		t.Fatalf("after rename, Search(bob) = %v, want none", got)
	}
	ix.Delete("zhangsan")
	if got := ids(search(t, ix, "zs")); !gocmp.Equal(got, []string{"zhangsanfeng"}) {
		t.Fatalf("after delete, Search(zs) = %v", got)
	}
	if got := ix.LookupNumber("+8613800138000", "8613800138000"); len(got) != 0 {
		t.Fatalf("after delete, LookupNumber = %v, want none", got)
	}
	ix.Delete("unknown") // no-op
	if ix.Len() != 7 {
		t.Fatalf("Len() = %d, want 7", ix.Len())
	}
}

func TestLookupNumber(t *testing.T) {
	ix := testIndex()
	tests := []struct {
		e164, digits string
		want         []string
	}{
		{"+12025550143", "12025550143", []string{"alice"}},
		{"", "2025550143", []string{"alice"}},                   // unparsable query: last digits
		{"+8613900000000", "13800138000", []string{"zhangsan"}}, // E.164 miss, suffix hit
		{"", "0143", nil}, // too short to guess
		{"+19999999999", "19999999999", nil},
	}
	for _, tt := range tests {
		if got := ix.LookupNumber(tt.e164, tt.digits); !gocmp.Equal(got, tt.want) {
			t.Errorf("LookupNumber(%q, %q) = %v, want %v", tt.e164, tt.digits, got, tt.want)
		}
	}
}

func TestSearchLimit(t *testing.T) {
	ix := testIndex()
	q, _ := ParseQuery("a")
	hits, total := ix.Search(q, 2)
	if len(hits) != 2 || total < 4 {
		t.Fatalf("Search(a, 2) = %d hits of %d, want 2 of >= 4", len(hits), total)
	}
	if hits[0].ID != "alexander" {
		t.Fatalf("first hit = %s, want the starred alexander", hits[0].ID)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in      string
		want    Query
		wantErr bool
	}{
		{in: "138 0013", want: Query{Terms: []Term{{Field: FieldPhone, Text: "1380013"}}}},
		{in: "+86 138", want: Query{Terms: []Term{{Field: FieldPhone, Text: "86138", Plus: true}}}},
		{in: "0086 138", want: Query{Terms: []Term{{Field: FieldPhone, Text: "86138", Plus: true}}}},
		{in: "Alice  ＭＡＲＴＩＮ", want: Query{Terms: []Term{{Text: "alice"}, {Text: "martin"}}}},
		{in: `tag:work "acme corp" is:starred`, want: Query{Starred: true,
			Terms: []Term{{Field: FieldTag, Text: "work"}, {Text: "acme corp", Phrase: true}}}},
		{in: "bob 555", want: Query{Terms: []Term{{Text: "bob"}, {Field: FieldPhone, Text: "555"}}}},
		{in: "sip:alice", want: Query{Terms: []Term{{Text: "sip:alice"}}}},
		{in: "", wantErr: true},
		{in: " - , ", wantErr: true},
		{in: `"open`, wantErr: true},
		{in: "is:blocked", wantErr: true},
		{in: "a b c d e f g h i", wantErr: true},
		{in: string(make([]byte, MaxQueryBytes+1)), wantErr: true},
		{in: "\xff", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseQuery(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrQuery) {
				t.Errorf("ParseQuery(%q) error = %v, want ErrQuery", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseQuery(%q) error = %v", tt.in, err)
			continue
		}
		if diff := gocmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseQuery(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestWithinEdits(t *testing.T) {
	tests := []struct {
		a, b string
		k    int
		want int
		ok   bool
	}{
		{"alice", "alice", 1, 0, true},
		{"alcie", "alice", 1, 1, true}, // a transposition is one edit
		{"aclie", "alice", 1, 0, false},
		{"aclie", "alice", 2, 2, true},
		{"alic", "alice", 1, 1, true},
		{"alexnader", "alexander", 2, 1, true},
		{"bob", "robert", 2, 0, false},
	}
	for _, tt := range tests {
		d, ok := withinEdits([]rune(tt.a), []rune(tt.b), tt.k, nil)
		if ok != tt.ok || (ok && d != tt.want) {
			t.Errorf("withinEdits(%q, %q, %d) = %d, %v; want %d, %v", tt.a, tt.b, tt.k, d, ok, tt.want, tt.ok)
		}
	}
}

func TestPinyinKey(t *testing.T) {
	for in, want := range map[string]string{"张三": "zhangsan", "Zhang San": "zhangsan", "José Núñez": "josenunez", "李娜": "lina"} {
		if got := PinyinKey(in); got != want {
			t.Errorf("PinyinKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCommittedMatchesUncommitted: the chunked scan (after Commit) and the
// per-doc grading (before it) are two implementations of one ranking.
func TestCommittedMatchesUncommitted(t *testing.T) {
	committed := benchIndex(3000)
	plain := New()
	for _, d := range committed.docs {
		plain.docs = append(plain.docs, d)
		plain.pos[d.id] = len(plain.docs) - 1
	}
	queries := append(slices.Clone(benchQueries), "a", "e", "son", "jo", "zhang wei", "org:acme", "email:james", "tag:vip", "name:li")
	for _, s := range queries {
		q, err := ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		want, wantTotal := plain.Search(q, 30)
		got, gotTotal := committed.Search(q, 30)
		if diff := gocmp.Diff(want, got); diff != "" || wantTotal != gotTotal {
			t.Fatalf("query %q: total %d vs %d; (-uncommitted +committed):\n%s", s, wantTotal, gotTotal, diff)
		}
	}
	// After edits, before the next Commit, both paths still agree.
	committed.Put("c00001", Fields{Names: []string{"Zhang Wei"}, SortName: "Zhang Wei", Starred: true})
	committed.Delete("c00002")
	committed.SetFrequency("c00003", 9)
	q, _ := ParseQuery("zhang")
	before, _ := committed.Search(q, 10)
	committed.Commit()
	after, _ := committed.Search(q, 10)
	if diff := gocmp.Diff(before, after); diff != "" || before[0].ID != "c00001" {
		t.Fatalf("stale vs committed chunks (-before +after):\n%s", diff)
	}
}
