package addressbook

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/convergo/convergo/addressbook/phone"
	"github.com/convergo/convergo/addressbook/search"
	"github.com/convergo/convergo/addressbook/vcard"
	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// Evidence weights of the duplicate finder; a pair's score combines its
// pieces of evidence as independent probabilities (1 - Π(1 - w)).
const (
	weightNumber      = 0.9
	weightEmail       = 0.9
	weightSameName    = 0.7
	weightSameSpoken  = 0.6 // same name in pinyin: 张三 and Zhang San
	weightSimilarName = 0.5
	// sharedLimit: a number or email on more contacts than this is a
	// switchboard or a team address, not evidence of a duplicate.
	sharedLimit = 10
	// blockLimit bounds the pairwise name comparison within one block.
	blockLimit     = 200
	maxDupGroups   = 100
	maxGroupSize   = 20
	maxMergeInputs = 20
)

// DuplicateGroup is a set of contacts that are likely one person.
type DuplicateGroup struct {
	Score    float64   `json:"score"`   // 0..1, the strongest pair in the group
	Reasons  []string  `json:"reasons"` // e.g. "same number +8613800138000"
	Contacts []Contact `json:"contacts"`
}

// DuplicatesResponse is the body of GET /v1/contacts/duplicates.
type DuplicatesResponse struct {
	Groups []DuplicateGroup `json:"groups"`
}

type pairKey struct{ a, b int }

type dupFinder struct {
	cs      []*store.Contact
	parent  []int
	pairs   map[pairKey]float64
	reasons map[pairKey][]string
}

func (f *dupFinder) find(i int) int {
	for f.parent[i] != i {
		f.parent[i] = f.parent[f.parent[i]]
		i = f.parent[i]
	}
	return i
}

func (f *dupFinder) link(i, j int, w float64, reason string) {
	if i == j {
		return
	}
	if i > j {
		i, j = j, i
	}
	k := pairKey{i, j}
	if slices.Contains(f.reasons[k], reason) {
		return
	}
	f.pairs[k] = 1 - (1-f.pairs[k])*(1-w)
	f.reasons[k] = append(f.reasons[k], reason)
	if ri, rj := f.find(i), f.find(j); ri != rj {
		f.parent[ri] = rj
	}
}

// linkBy links every pair of contacts sharing a key (unless too many do).
func (f *dupFinder) linkBy(keys map[string][]int, w float64, reason func(string) string) {
	for k, idx := range keys {
		if len(idx) < 2 || len(idx) > sharedLimit {
			continue
		}
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				f.link(idx[a], idx[b], w, reason(k))
			}
		}
	}
}

// nameKey is a contact's display name folded, its words sorted, spaces
// dropped: "Zhang San" and "San Zhang" compare equal.
func nameKey(c *store.Contact) string {
	words := strings.Fields(search.Fold(c.Name.Display))
	slices.Sort(words)
	return strings.Join(words, "")
}

// findDuplicates groups the contacts that are likely the same person.
func findDuplicates(cs []*store.Contact) []dupGroup {
	slices.SortFunc(cs, func(a, b *store.Contact) int { return cmp.Compare(a.ID, b.ID) })
	f := &dupFinder{cs: cs, parent: make([]int, len(cs)), pairs: map[pairKey]float64{}, reasons: map[pairKey][]string{}}
	numbers, emails, names, spoken, blocks := map[string][]int{}, map[string][]int{}, map[string][]int{}, map[string][]int{}, map[string][]int{}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = nameKey(c)
	}
	for i, c := range cs {
		f.parent[i] = i
		seen := map[string]bool{}
		for _, p := range c.Phones {
			k := p.E164
			if k == "" {
				if d := phone.Digits(p.Value); len(d) >= 7 {
					k = d
				}
			}
			if k != "" && !seen[k] {
				seen[k] = true
				numbers[k] = append(numbers[k], i)
			}
		}
		for _, e := range c.Emails {
			if k := strings.ToLower(e.Value); !seen[k] {
				seen[k] = true
				emails[k] = append(emails[k], i)
			}
		}
		nk := keys[i]
		if len([]rune(nk)) < 2 {
			continue
		}
		names[nk] = append(names[nk], i)
		if pk := search.PinyinKey(c.Name.Display); pk != "" {
			spoken[pk] = append(spoken[pk], i)
		}
		r := []rune(nk)
		blocks[string(r[:2])] = append(blocks[string(r[:2])], i)
	}
	f.linkBy(numbers, weightNumber, func(k string) string { return "same number " + k })
	f.linkBy(emails, weightEmail, func(k string) string { return "same email " + k })
	f.linkBy(names, weightSameName, func(string) string { return "same name" })
	for _, idx := range spoken {
		if len(idx) < 2 || len(idx) > sharedLimit {
			continue
		}
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				if keys[idx[a]] != keys[idx[b]] { // else "same name" said it
					f.link(idx[a], idx[b], weightSameSpoken, "same name in pinyin")
				}
			}
		}
	}
	for _, idx := range blocks {
		if len(idx) < 2 || len(idx) > blockLimit {
			continue
		}
		for a := 0; a < len(idx); a++ {
			ka := keys[idx[a]]
			for b := a + 1; b < len(idx); b++ {
				kb := keys[idx[b]]
				if ka == kb {
					continue
				}
				n := min(len([]rune(ka)), len([]rune(kb)))
				max := 1
				switch {
				case n < 5:
					continue
				case n >= 10:
					max = 2
				}
				if _, ok := search.Distance(ka, kb, max); ok {
					f.link(idx[a], idx[b], weightSimilarName, "similar names")
				}
			}
		}
	}
	byRoot := map[int]*dupGroup{}
	for k, score := range f.pairs {
		root := f.find(k.a)
		g := byRoot[root]
		if g == nil {
			g = &dupGroup{}
			byRoot[root] = g
		}
		g.score = max(g.score, score)
		for _, rs := range f.reasons[k] {
			if !slices.Contains(g.reasons, rs) {
				g.reasons = append(g.reasons, rs)
			}
		}
		for _, i := range [...]int{k.a, k.b} {
			if !slices.Contains(g.members, cs[i]) {
				g.members = append(g.members, cs[i])
			}
		}
	}
	out := make([]dupGroup, 0, len(byRoot))
	for _, g := range byRoot {
		slices.SortFunc(g.members, func(a, b *store.Contact) int { return cmp.Compare(a.ID, b.ID) })
		sort.Strings(g.reasons)
		if len(g.members) > maxGroupSize {
			g.members = g.members[:maxGroupSize]
		}
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b dupGroup) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.members[0].ID, b.members[0].ID)
	})
	if len(out) > maxDupGroups {
		out = out[:maxDupGroups]
	}
	return out
}

type dupGroup struct {
	score   float64
	reasons []string
	members []*store.Contact
}

func (s *Service) handleDuplicates(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var cs []*store.Contact
	b.snapshot(func() {
		cs = make([]*store.Contact, 0, len(b.contacts))
		for _, c := range b.contacts {
			cs = append(cs, c)
		}
	})
	groups := findDuplicates(cs)
	resp := DuplicatesResponse{Groups: make([]DuplicateGroup, 0, len(groups))}
	for _, g := range groups {
		dg := DuplicateGroup{Score: float64(int(g.score*1000)) / 1000, Reasons: g.reasons}
		for _, c := range g.members {
			dg.Contacts = append(dg.Contacts, s.view(r.Context(), user, c))
		}
		resp.Groups = append(resp.Groups, dg)
	}
	writeJSON(w, http.StatusOK, resp)
}

// MergeRequest is the body of POST /v1/contacts:merge: the contacts to
// merge, each with the version the client saw, and which one survives
// (default the first).
type MergeRequest struct {
	Contacts []VersionRef `json:"contacts"`
	Primary  string       `json:"primary,omitempty"`
}

// VersionRef names a contact version.
type VersionRef struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
}

// MergeConflict reports a single-valued field on which the merged
// contacts disagreed: the primary's value (or the first one) was kept.
type MergeConflict struct {
	Field   string   `json:"field"`
	Kept    string   `json:"kept"`
	Dropped []string `json:"dropped"`
}

// MergeResponse is the body of a successful merge.
type MergeResponse struct {
	Contact   Contact         `json:"contact"`
	Deleted   []string        `json:"deleted"` // now tombstones with merged_into = contact.id
	Conflicts []MergeConflict `json:"conflicts"`
}

func (s *Service) handleMerge(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	var req MergeRequest
	if !decodeJSON(w, r, &req, s.cfg.MaxBodyBytes) {
		return
	}
	if len(req.Contacts) < 2 || len(req.Contacts) > maxMergeInputs {
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("merge needs 2 to %d contacts", maxMergeInputs))
		return
	}
	ids := make([]string, 0, len(req.Contacts))
	want := map[string]uint64{}
	for _, ref := range req.Contacts {
		if _, dup := want[ref.ID]; dup || !validID(ref.ID) {
			problem.Error(w, http.StatusBadRequest, "contacts must be distinct valid ids")
			return
		}
		if ref.Version == 0 {
			s.fail(w, r, ErrIfMatchRequired)
			return
		}
		want[ref.ID] = ref.Version
		ids = append(ids, ref.ID)
	}
	primary := req.Primary
	if primary == "" {
		primary = ids[0]
	}
	if _, ok := want[primary]; !ok {
		problem.Error(w, http.StatusBadRequest, "primary must be one of the contacts")
		return
	}
	cs, err := s.contacts.GetMany(r.Context(), user, ids)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	byID := map[string]store.Contact{}
	for _, c := range cs {
		if !c.Deleted {
			byID[c.ID] = c
		}
	}
	var stale []Contact
	for _, id := range ids {
		c, ok := byID[id]
		if !ok {
			problem.Error(w, http.StatusNotFound, "no such contact: "+id)
			return
		}
		if c.Version != want[id] {
			stale = append(stale, s.view(r.Context(), user, &c))
		}
	}
	if len(stale) > 0 {
		s.staleMerge(w, stale)
		return
	}
	var others []store.Contact
	for _, id := range ids {
		if id != primary {
			others = append(others, byID[id])
		}
	}
	merged, conflicts := mergeContacts(byID[primary], others)
	c, err := s.norm.normalize(inputOf(&merged))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.ID = primary
	c.Extra = merged.Extra
	ops := []store.ContactOp{{Contact: c, Expect: want[primary]}}
	deleted := []string{}
	for _, o := range others {
		ops = append(ops, store.ContactOp{Delete: true, Contact: store.Contact{ID: o.ID, MergedInto: primary}, Expect: want[o.ID]})
		deleted = append(deleted, o.ID)
	}
	out, err := s.contacts.Apply(r.Context(), user, ops, 0)
	if err != nil {
		if cs, gerr := s.contacts.GetMany(r.Context(), user, ids); gerr == nil && isConflict(err) {
			stale = stale[:0]
			for _, c := range cs {
				stale = append(stale, s.view(r.Context(), user, &c))
			}
			s.staleMerge(w, stale)
			return
		}
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(out[0].Version))
	writeJSON(w, http.StatusOK, MergeResponse{Contact: s.view(r.Context(), user, &out[0]), Deleted: deleted,
		Conflicts: append([]MergeConflict{}, conflicts...)})
}

func (s *Service) staleMerge(w http.ResponseWriter, current []Contact) {
	s.metrics.conflicts.Inc()
	problem.Write(w, problem.Details{Type: ProblemVersionMismatch, Title: "Version mismatch",
		Status: http.StatusPreconditionFailed, Detail: "some contacts changed since you read them; review and retry",
		Extensions: map[string]any{"current": current}})
}

// mergeContacts unites others into primary: lists are merged without
// duplicates, notes are concatenated, starred if any is, and for every
// single-valued field the primary's value wins (else the first non-empty
// one); disagreements are reported.
func mergeContacts(primary store.Contact, others []store.Contact) (store.Contact, []MergeConflict) {
	m := primary
	var conflicts []MergeConflict
	scalar := func(field string, get func(*store.Contact) *string) {
		kept := get(&m)
		var dropped []string
		for i := range others {
			v := *get(&others[i])
			switch {
			case v == "" || strings.EqualFold(v, *kept):
			case *kept == "":
				*kept = v
			case !slices.Contains(dropped, v):
				dropped = append(dropped, v)
			}
		}
		if len(dropped) > 0 {
			conflicts = append(conflicts, MergeConflict{Field: field, Kept: *kept, Dropped: dropped})
		}
	}
	scalar("name.display", func(c *store.Contact) *string { return &c.Name.Display })
	scalar("name.given", func(c *store.Contact) *string { return &c.Name.Given })
	scalar("name.family", func(c *store.Contact) *string { return &c.Name.Family })
	scalar("name.middle", func(c *store.Contact) *string { return &c.Name.Middle })
	scalar("name.prefix", func(c *store.Contact) *string { return &c.Name.Prefix })
	scalar("name.suffix", func(c *store.Contact) *string { return &c.Name.Suffix })
	scalar("name.phonetic_given", func(c *store.Contact) *string { return &c.Name.PhoneticGiven })
	scalar("name.phonetic_family", func(c *store.Contact) *string { return &c.Name.PhoneticFamily })
	scalar("org", func(c *store.Contact) *string { return &c.Org })
	scalar("department", func(c *store.Contact) *string { return &c.Department })
	scalar("title", func(c *store.Contact) *string { return &c.Title })
	scalar("birthday", func(c *store.Contact) *string { return &c.Birthday })
	scalar("uid", func(c *store.Contact) *string { return &c.UID })
	m.Phones = slices.Clone(m.Phones)
	m.Emails, m.URIs = slices.Clone(m.Emails), slices.Clone(m.URIs)
	m.Tags, m.Groups = slices.Clone(m.Tags), slices.Clone(m.Groups)
	m.Extra = slices.Clone(m.Extra)
	notes := []string{}
	if m.Notes != "" {
		notes = append(notes, m.Notes)
	}
	photos := 0
	for _, o := range others {
		for _, p := range o.Phones {
			if !slices.ContainsFunc(m.Phones, func(q store.ContactPhone) bool { return samePhone(p, q) }) {
				p.Pref = false
				m.Phones = append(m.Phones, p)
			}
		}
		m.Emails = unionValues(m.Emails, o.Emails)
		m.URIs = unionValues(m.URIs, o.URIs)
		m.Tags = unionNames(m.Tags, o.Tags)
		m.Groups = unionNames(m.Groups, o.Groups)
		if o.Notes != "" && !slices.Contains(notes, o.Notes) {
			notes = append(notes, o.Notes)
		}
		m.Starred = m.Starred || o.Starred
		for _, e := range o.Extra {
			if len(m.Extra) < vcard.MaxExtra && !slices.ContainsFunc(m.Extra, func(x store.ContactExtra) bool {
				return x.Name == e.Name && x.Value == e.Value
			}) {
				m.Extra = append(m.Extra, e)
			}
		}
		if o.Photo != nil {
			photos++
			if m.Photo == nil {
				m.Photo = o.Photo
			}
		}
	}
	m.Notes = strings.Join(notes, "\n\n")
	if photos > 0 && primary.Photo != nil {
		conflicts = append(conflicts, MergeConflict{Field: "photo", Kept: "primary's photo",
			Dropped: []string{fmt.Sprintf("%d other photo(s)", photos)}})
	}
	return m, conflicts
}

func samePhone(a, b store.ContactPhone) bool {
	if a.E164 != "" || b.E164 != "" {
		return a.E164 == b.E164
	}
	return phone.Digits(a.Value) == phone.Digits(b.Value)
}

func unionValues(a, b []store.ContactValue) []store.ContactValue {
	for _, v := range b {
		if !slices.ContainsFunc(a, func(x store.ContactValue) bool { return strings.EqualFold(x.Value, v.Value) }) {
			v.Pref = false
			a = append(a, v)
		}
	}
	return a
}

func unionNames(a, b []string) []string {
	for _, v := range b {
		if !slices.ContainsFunc(a, func(x string) bool { return strings.EqualFold(x, v) }) {
			a = append(a, v)
		}
	}
	return a
}
