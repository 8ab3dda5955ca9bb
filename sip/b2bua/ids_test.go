package b2bua

import (
	"strings"
	"testing"
)

func TestIDsAreHex(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		tag, cid := newTag(), newCallID()
		if len(tag) != 16 || len(cid) != 32 {
			t.Fatalf("tag %q (%d), call-id %q (%d): want 16 and 32 hex digits", tag, len(tag), cid, len(cid))
		}
		if strings.Trim(tag+cid, "0123456789abcdef") != "" {
			t.Fatalf("tag %q or call-id %q is not lower-case hex", tag, cid)
		}
		if seen[tag] || seen[cid] {
			t.Fatalf("repeated id after %d draws", len(seen)/2)
		}
		seen[tag], seen[cid] = true, true
	}
}
