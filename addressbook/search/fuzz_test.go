package search

import (
	"bufio"
	"os"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// FuzzParseQuery checks that no input panics, that accepted queries obey
// the limits, and that String renders a query ParseQuery reads back
// identically (seeds: testdata/queries.txt, one per line).
func FuzzParseQuery(f *testing.F) {
	fh, err := os.Open("testdata/queries.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	ix := testIndex()
	f.Fuzz(func(t *testing.T, in string) {
		q, err := ParseQuery(in)
		if err != nil {
			return
		}
		if len(q.Terms) > MaxTerms || (len(q.Terms) == 0 && !q.Starred) {
			t.Fatalf("ParseQuery(%q) = %+v: outside the limits", in, q)
		}
		q2, err := parse(q.String())
		if err != nil {
			t.Fatalf("ParseQuery(%q) error = %v (from %q)", q.String(), err, in)
		}
		if diff := gocmp.Diff(q, q2); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", in, q.String(), diff)
		}
		hits, total := ix.Search(q, 5) // must not panic whatever the query
		if len(hits) > 5 || total < len(hits) {
			t.Fatalf("Search(%q) = %d hits, total %d", in, len(hits), total)
		}
	})
}
