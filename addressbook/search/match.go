package search

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Hit is one search result.
type Hit struct {
	ID    string
	Tier  Tier   // worst tier among the query's terms
	Score int    // sum of the terms' scores
	Field string // field the worst term matched: name, pinyin, email, org, tag, phone
}

// ranked is a Hit plus the doc fields that order it.
type ranked struct {
	Hit
	starred bool
	freq    float64
	key     [2]uint64 // sort name prefix; d is read only when keys tie
	d       *doc
}

// before reports whether a ranks ahead of b: tier, then starred, then
// frequency, then score, then name, then id.
func (a *ranked) before(b *ranked) bool {
	if a.Tier != b.Tier {
		return a.Tier > b.Tier
	}
	if a.starred != b.starred {
		return a.starred
	}
	if a.freq != b.freq {
		return a.freq > b.freq
	}
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if a.key != b.key {
		if a.key[0] != b.key[0] {
			return a.key[0] < b.key[0]
		}
		return a.key[1] < b.key[1]
	}
	if c := cmp.Compare(a.d.sortName, b.d.sortName); c != 0 {
		return c < 0
	}
	return a.d.id < b.d.id
}

// worstFirst is a heap whose root is the lowest-ranked kept hit.
type worstFirst []*ranked

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return h[j].before(h[i]) }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(*ranked)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Search returns the best limit hits for q, best first, and how many
// contacts matched in all.
func (ix *Index) Search(q Query, limit int) ([]Hit, int) {
	if limit <= 0 {
		return nil, 0
	}
	m := newMatcher(q)
	h := make(worstFirst, 0, min(limit, len(ix.docs)))
	total := 0
	consider := func(d *doc, hit Hit, r ranked) {
		total++
		r.Hit, r.d = hit, d
		if len(h) < limit {
			kept := new(ranked)
			*kept = r
			heap.Push(&h, kept)
		} else if r.before(h[0]) {
			*h[0] = r
			heap.Fix(&h, 0)
		}
	}
	for k := 0; k*chunkSize < len(ix.docs); k++ {
		docs := ix.docs[k*chunkSize : min(len(ix.docs), (k+1)*chunkSize)]
		var c *chunk
		if k < len(ix.chunks) {
			c = ix.chunks[k]
		}
		if c == nil || c.stale || c.n != len(docs) { // not committed: grade every doc
			for _, d := range docs {
				if q.Starred && !d.starred {
					continue
				}
				if hit, ok := m.match(d); ok {
					consider(d, hit, ranked{starred: d.starred, freq: d.frequency, key: nameKey(d.sortName)})
				}
			}
			continue
		}
		var s set
		if q.Starred {
			s = c.starred
		} else {
			for i := range s {
				s[i] = ^uint64(0)
			}
		}
		for i := range m.terms {
			if s.empty() {
				break
			}
			cs := m.candidates(ix, k, c, i)
			s.and(&cs)
		}
		s.each(func(i int) {
			if i >= len(docs) {
				return
			}
			m.local = i
			if hit, ok := m.match(docs[i]); ok {
				consider(docs[i], hit, ranked{starred: c.starred[i/64]&(1<<(i%64)) != 0, freq: c.freq[i], key: c.key[i]})
			}
		})
		m.local = -1
	}
	slices.SortFunc(h, func(a, b *ranked) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	out := make([]Hit, len(h))
	for i, r := range h {
		out[i] = r.Hit
		out[i].ID = r.d.id
	}
	return out, total
}

// LookupNumber returns the contacts with number e164 (caller ID), or,
// when none has it or e164 is empty, those whose numbers end with the
// last 8 digits of digits (at least 7 digits needed), best ranked first.
func (ix *Index) LookupNumber(e164, digits string) []string {
	var ids []string
	if e164 != "" {
		ids = slices.Clone(ix.byE164[e164])
	}
	if len(ids) == 0 && len(digits) >= 7 {
		tail := digits[max(0, len(digits)-8):]
		for _, d := range ix.docs {
			for _, p := range d.phones {
				if strings.HasSuffix(strings.TrimPrefix(p.E164, "+"), tail) || strings.HasSuffix(p.NSN, tail) ||
					strings.HasSuffix(p.Raw, tail) {
					ids = append(ids, d.id)
					break
				}
			}
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		ra, rb := ix.rankOf(a), ix.rankOf(b)
		if ra.before(rb) {
			return -1
		}
		return 1
	})
	return ids
}

func (ix *Index) rankOf(id string) *ranked {
	d := ix.docs[ix.pos[id]]
	return &ranked{Hit: Hit{ID: id, Tier: TierExact}, starred: d.starred, freq: d.frequency, key: nameKey(d.sortName), d: d}
}

// matcher holds per-query scratch state for one Search.
type matcher struct {
	terms  []termState
	buf    []int // edit-distance rows
	local  int   // index in its chunk of the doc being matched; -1 outside a committed chunk
	graded []set // per term: docs of the current chunk whose text grade is in grades
	grades [][chunkSize]textGrade
}

// textGrade is the best grade of a term's occurrences in one doc's text,
// found while scanning the chunk for candidates.
type textGrade struct {
	tier  Tier
	score int16
	kind  uint8
}

type termState struct {
	Term
	runes  []rune
	mask   uint64
	edits  int
	pinyin bool   // ASCII letters: may spell a Chinese name
	trim   string // phone: digits without leading zeros (trunk prefix)
	sipQ   string // "sip:" + Text: a SIP URI starting with the word is a prefix match
	sipsQ  string
}

func newMatcher(q Query) *matcher {
	m := &matcher{buf: make([]int, 3*65), local: -1}
	for _, t := range q.Terms {
		ts := termState{Term: t}
		if t.Field == FieldPhone {
			ts.trim = strings.TrimLeft(t.Text, "0") // a national trunk prefix: 020 7946 0000
			if len(t.Text) < 7 || len(ts.trim) < 3 || ts.trim == t.Text {
				ts.trim = ""
			}
		} else {
			ts.runes = []rune(t.Text)
			ts.mask = runeMask(ts.runes)
			if !t.Phrase && !strings.Contains(t.Text, " ") {
				ts.edits = maxEdits(len(ts.runes))
			}
			ts.pinyin = isASCIILetters(t.Text)
			ts.sipQ, ts.sipsQ = "sip:"+t.Text, "sips:"+t.Text
		}
		m.terms = append(m.terms, ts)
	}
	m.graded = make([]set, len(m.terms))
	m.grades = make([][chunkSize]textGrade, len(m.terms))
	return m
}

func (m *matcher) match(d *doc) (Hit, bool) {
	hit := Hit{Tier: TierExact}
	for i := range m.terms {
		t := &m.terms[i]
		var (
			tier  Tier
			score int
			field string
		)
		switch {
		case t.Field == FieldPhone:
			tier, score = matchPhone(d, t)
			field = "phone"
		case m.local >= 0 && m.graded[i].has(m.local):
			g := m.grades[i][m.local]
			tier, score, field = g.tier, int(g.score), segFields[g.kind]
			tier, score, field = m.beyondText(d, t, tier, score, field)
		case m.local >= 0: // not in the text: a pinyin or typo candidate
			tier, score, field = m.beyondText(d, t, TierNone, 0, "")
		default:
			tier, score, field = m.matchText(d, t)
		}
		if tier == TierNone {
			return Hit{}, false
		}
		if tier < hit.Tier || hit.Field == "" {
			hit.Tier, hit.Field = min(tier, hit.Tier), field
		}
		hit.Score += score
	}
	return hit, true
}

func matchPhone(d *doc, t *termState) (Tier, int) {
	q := t.Text
	if t.E164 != "" {
		for _, p := range d.phones {
			if p.E164 == t.E164 {
				return TierExact, 100
			}
		}
	}
	if !strings.Contains(d.digits, q) && (t.trim == "" || !strings.Contains(d.digits, t.trim)) {
		return TierNone, 0
	}
	best, score := TierNone, 0
	try := func(k, q string) {
		switch {
		case k == "" || q == "":
		case k == q:
			best, score = TierExact, 100
		case strings.HasSuffix(k, q) && len(q) >= 4: // people type the last digits
			if best < TierPrefix || score < 85 {
				best, score = TierPrefix, 85
			}
		case strings.HasPrefix(k, q):
			if best < TierPrefix {
				best, score = TierPrefix, 80
			}
		case strings.Contains(k, q):
			if best < TierSubstring {
				best, score = TierSubstring, 60
			}
		}
	}
	for _, p := range d.phones {
		for _, k := range [...]string{strings.TrimPrefix(p.E164, "+"), p.NSN, p.Raw} {
			try(k, q)
			try(k, t.trim)
		}
	}
	return best, score
}

// matchText grades a text term against one doc: every occurrence of the
// term in the doc's fields is graded by where it sits (a whole field or
// word is exact, the start of one is a prefix, anything else a
// substring), then pinyin spellings of Chinese names and typos in name
// words are tried for what the text did not match well.
func (m *matcher) matchText(d *doc, t *termState) (Tier, int, string) {
	best, score, field := TierNone, 0, ""
	q := t.Text
	for off := 0; off < len(d.all); {
		i := strings.Index(d.all[off:], q)
		if i < 0 {
			break
		}
		pos := off + i
		off = pos + 1
		sg := d.segAt(pos)
		if sg == nil || pos+len(q) > int(sg.end) || !t.fieldOK(sg.kind) {
			continue
		}
		tier, s, f := gradeAt(d.all, sg, pos, len(q), t)
		if tier > best || (tier == best && s > score) {
			best, score, field = tier, s, f
		}
		if best == TierExact {
			return best, score, field
		}
	}
	return m.beyondText(d, t, best, score, field)
}

// beyondText improves a text grade with pinyin spellings of Chinese names
// and, when the text did not match at all, typos in name words.
func (m *matcher) beyondText(d *doc, t *termState, best Tier, score int, field string) (Tier, int, string) {
	if t.Field != FieldAny && t.Field != FieldName {
		return best, score, field
	}
	if best < TierPrefix {
		if tier := m.pinyinTier(d, t); tier > best {
			return tier, pinyinScore(tier), "pinyin"
		}
	}
	if best == TierNone && t.edits > 0 {
		for i, w := range d.nameRunes {
			if maskRulesOut(t.mask, d.nameMasks[i], t.edits) {
				continue
			}
			if dist, ok := withinEdits(t.runes, w, t.edits, m.buf); ok {
				return TierFuzzy, 30 - 10*dist, "name"
			}
		}
	}
	return best, score, field
}

// segAt returns the segment holding byte pos of d.all.
func (d *doc) segAt(pos int) *seg {
	for i := range d.segs {
		if sg := &d.segs[i]; pos >= int(sg.start) && pos < int(sg.end) {
			return sg
		}
	}
	return nil
}

func (t *termState) fieldOK(kind uint8) bool {
	switch t.Field {
	case FieldName:
		return kind == segName
	case FieldEmail:
		return kind == segEmail
	case FieldOrg:
		return kind == segOrg
	case FieldTag:
		return kind == segTag
	}
	return true
}

// Scores of a text match by field and tier (exact, prefix, substring).
var segScores = [...][3]int{
	segName:  {100, 80, 50},
	segEmail: {90, 70, 40},
	segOrg:   {70, 60, 35},
	segTag:   {70, 55, 30},
}

var segFields = [...]string{segName: "name", segEmail: "email", segOrg: "org", segTag: "tag"}

// gradeAt grades the occurrence of a term at all[pos:pos+n] in segment sg.
func gradeAt(all string, sg *seg, pos, n int, t *termState) (Tier, int, string) {
	sc, field := segScores[sg.kind], segFields[sg.kind]
	start, end := int(sg.start), int(sg.end)
	switch {
	case pos == start && pos+n == end:
		return TierExact, sc[0], field
	case sg.kind == segEmail:
		if pos == start || all[start:pos] == "sip:" || all[start:pos] == "sips:" {
			return TierPrefix, sc[1], field
		}
		return TierSubstring, sc[2], field
	case sg.kind == segTag:
		if pos == start {
			return TierPrefix, sc[1], field
		}
		return TierSubstring, sc[2], field
	}
	// Names and organisations: words count too.
	atWordStart := pos == start || !isWordEnd(all[start:pos])
	if !atWordStart {
		return TierSubstring, sc[2], field
	}
	wordEnd := pos + n
	for wordEnd < end {
		r, size := utf8.DecodeRuneInString(all[wordEnd:end])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		wordEnd += size
	}
	if wordEnd == pos+n {
		return TierExact, sc[0], field
	}
	if pos == start || sg.kind != segName {
		return TierPrefix, sc[1], field
	}
	return TierPrefix, sc[1] + (sc[0]-sc[1])*n/(wordEnd-pos)/2, field
}

// isWordEnd reports whether s ends with a letter or digit.
func isWordEnd(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func (m *matcher) pinyinTier(d *doc, t *termState) Tier {
	if !t.pinyin || len(d.pinyin) == 0 {
		return TierNone
	}
	best := TierNone
	for i := range d.pinyin {
		best = max(best, matchPinyin(&d.pinyin[i], t.Text))
	}
	return best
}

func pinyinScore(t Tier) int {
	switch t {
	case TierExact:
		return 90
	case TierPrefix:
		return 75
	default:
		return 40
	}
}
