package search

import (
	"slices"
	"strings"
)

// Fields is what the index needs to know about one contact.
type Fields struct {
	Names     []string // display, given, family, middle, phonetic, nickname
	Emails    []string
	Orgs      []string // organisation, department, title
	Tags      []string // tags and groups
	Phones    []Phone
	Starred   bool
	Frequency float64 // decayed interaction count; more is ranked first
	SortName  string  // tie-breaker, usually the display name
}

// Phone is one number in the forms a query may match.
type Phone struct {
	E164 string // +8613800138000, or empty
	NSN  string // national significant number
	Raw  string // digits as typed
}

// Tier is the quality of a match; a higher tier always ranks first.
type Tier uint8

// Match tiers, worst to best.
const (
	TierNone Tier = iota
	TierFuzzy
	TierSubstring
	TierPrefix
	TierExact
)

// String names the tier in API responses.
func (t Tier) String() string {
	switch t {
	case TierExact:
		return "exact"
	case TierPrefix:
		return "prefix"
	case TierSubstring:
		return "substring"
	case TierFuzzy:
		return "fuzzy"
	default:
		return "none"
	}
}

// doc is the precomputed search form of one contact.
type doc struct {
	id        string
	names     []string // folded name words, distinct (fuzzy matching)
	nameRunes [][]rune // the same as runes, for edit distance
	nameMasks []uint64 // runeMask of each name word
	pinyin    []pyName // one per name containing Han characters
	all       string   // every folded name, email/URI, organisation and tag, \x1f between them
	segs      []seg    // where each of them is in all
	phones    []Phone
	digits    string // every digit key, each preceded by \x1f
	starred   bool
	frequency float64
	sortName  string
}

// Kinds of the segments of doc.all.
const (
	segName uint8 = iota
	segEmail
	segOrg
	segTag
)

// seg is one field value inside doc.all.
type seg struct {
	start, end int32
	kind       uint8
}

// Index holds the docs of one address book; see the package documentation
// for what may run concurrently.
type Index struct {
	docs   []*doc              // deletes swap the last one in; chunk k is docs[k*chunkSize:]
	chunks []*chunk            // scan form of the docs; nil or stale ones are rebuilt by Commit
	pos    map[string]int      // id → index in docs
	byE164 map[string][]string // E.164 → ids, for caller-ID lookup
}

// New returns an empty index.
func New() *Index {
	return &Index{pos: make(map[string]int), byE164: make(map[string][]string)}
}

// Len returns the number of contacts indexed.
func (ix *Index) Len() int { return len(ix.docs) }

// Put adds or replaces the contact id.
func (ix *Index) Put(id string, f Fields) {
	ix.Delete(id)
	d := newDoc(id, f)
	ix.pos[id] = len(ix.docs)
	ix.docs = append(ix.docs, d)
	ix.dirty(len(ix.docs) - 1)
	for _, p := range d.phones {
		if p.E164 != "" && !slices.Contains(ix.byE164[p.E164], id) {
			ix.byE164[p.E164] = append(ix.byE164[p.E164], id)
		}
	}
}

// Delete removes the contact id; unknown ids are ignored.
func (ix *Index) Delete(id string) {
	i, ok := ix.pos[id]
	if !ok {
		return
	}
	d := ix.docs[i]
	last := len(ix.docs) - 1
	ix.docs[i] = ix.docs[last]
	ix.pos[ix.docs[i].id] = i
	ix.docs[last] = nil
	ix.docs = ix.docs[:last]
	ix.dirty(i)
	ix.dirty(last)
	delete(ix.pos, id)
	for _, p := range d.phones {
		ids := slices.DeleteFunc(ix.byE164[p.E164], func(s string) bool { return s == id })
		if len(ids) == 0 {
			delete(ix.byE164, p.E164)
		} else {
			ix.byE164[p.E164] = ids
		}
	}
}

// SetFrequency updates the interaction score of id without re-indexing it.
func (ix *Index) SetFrequency(id string, f float64) {
	if i, ok := ix.pos[id]; ok {
		ix.docs[i].frequency = f
		if k := i / chunkSize; k < len(ix.chunks) && ix.chunks[k] != nil && i%chunkSize < len(ix.chunks[k].freq) {
			ix.chunks[k].freq[i%chunkSize] = f
		}
	}
}

func newDoc(id string, f Fields) *doc {
	d := &doc{id: id, starred: f.Starred, frequency: f.Frequency, sortName: Fold(f.SortName)}
	var all strings.Builder
	var seen []string
	add := func(kind uint8, v string) {
		if v == "" || slices.Contains(seen, v) {
			return
		}
		seen = append(seen, v)
		if all.Len() > 0 {
			all.WriteByte('\x1f')
		}
		start := int32(all.Len())
		all.WriteString(v)
		d.segs = append(d.segs, seg{start: start, end: int32(all.Len()), kind: kind})
	}
	for _, n := range f.Names {
		fn := strings.TrimSpace(Fold(n))
		if fn == "" || slices.Contains(seen, fn) {
			continue
		}
		add(segName, fn)
		for _, w := range terms(fn) {
			if slices.Contains(d.names, w) {
				continue
			}
			r := []rune(w)
			d.names = append(d.names, w)
			d.nameRunes = append(d.nameRunes, r)
			d.nameMasks = append(d.nameMasks, runeMask(r))
		}
		if hasHan(fn) {
			if py := pinyinOf(fn); len(py.chars) > 0 {
				d.pinyin = append(d.pinyin, py)
			}
		}
	}
	seen = seen[:0]
	for _, e := range f.Emails {
		add(segEmail, strings.TrimSpace(Fold(e)))
	}
	seen = seen[:0]
	for _, o := range f.Orgs {
		add(segOrg, strings.TrimSpace(Fold(o)))
	}
	seen = seen[:0]
	for _, t := range f.Tags {
		add(segTag, strings.TrimSpace(Fold(t)))
	}
	d.all = all.String()
	var digits strings.Builder
	for _, p := range f.Phones {
		e := strings.TrimPrefix(p.E164, "+")
		if e != "" {
			p.E164 = "+" + e
		}
		d.phones = append(d.phones, p)
		for _, k := range [...]string{e, p.NSN, p.Raw} {
			if k != "" {
				digits.WriteByte('\x1f')
				digits.WriteString(k)
			}
		}
	}
	d.digits = digits.String()
	return d
}
