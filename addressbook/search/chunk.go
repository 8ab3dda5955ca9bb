package search

import (
	"encoding/binary"
	"math/bits"
	"sort"
	"strings"
)

// chunkSize docs share one scan form. Small enough that rebuilding a chunk
// after an edit is cheap, large enough that the scans run over long
// contiguous strings and arrays instead of chasing a pointer per doc.
const chunkSize = 256

// chunk is the scan form of docs[k*chunkSize : (k+1)*chunkSize]: every
// doc's text and digit keys concatenated (one strings.Index finds all the
// docs holding a substring), and the name words and pinyin names in flat
// arrays with their pre-filter masks.
type chunk struct {
	stale   bool
	n       int     // docs in the chunk
	text    string  // doc.all + "\x00", per doc
	starts  []int32 // offset of each doc in text
	digits  string  // doc.digits + "\x00", per doc
	dstart  []int32 // offset of each doc in digits
	words   []wordRef
	py      []pyRef
	segs    []cseg // every field of every doc, in text order, offsets in text
	freq    []float64
	key     [][2]uint64 // first 16 bytes of each doc's sort name, big-endian
	starred [chunkSize / 64]uint64
}

// cseg is a field of one doc of the chunk, with offsets into chunk.text.
type cseg struct {
	seg
	doc uint16
}

type wordRef struct {
	runes []rune
	mask  uint64
	doc   uint16
}

type pyRef struct {
	name *pyName
	doc  uint16
}

// set is a bitset over the docs of one chunk.
type set [chunkSize / 64]uint64

func (s *set) add(i int)      { s[i/64] |= 1 << (i % 64) }
func (s *set) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s *set) and(o *set) {
	for i := range s {
		s[i] &= o[i]
	}
}
func (s *set) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// each calls fn for every doc in s, in order.
func (s *set) each(fn func(i int)) {
	for w, bitsw := range s {
		for bitsw != 0 {
			b := bits.TrailingZeros64(bitsw)
			fn(w*64 + b)
			bitsw &^= 1 << b
		}
	}
}

// dirty marks the chunk of doc i for rebuilding.
func (ix *Index) dirty(i int) {
	k := i / chunkSize
	for len(ix.chunks) <= k {
		ix.chunks = append(ix.chunks, nil)
	}
	if ix.chunks[k] != nil {
		ix.chunks[k].stale = true
	}
}

// Commit rebuilds the scan form of the chunks that Put and Delete changed.
// Call it after a series of changes and before searching; a Search on an
// uncommitted index is still correct, only slower on the changed chunks.
func (ix *Index) Commit() {
	n := (len(ix.docs) + chunkSize - 1) / chunkSize
	if len(ix.chunks) > n {
		clear(ix.chunks[n:])
		ix.chunks = ix.chunks[:n]
	}
	for len(ix.chunks) < n {
		ix.chunks = append(ix.chunks, nil)
	}
	for k := range ix.chunks {
		if c := ix.chunks[k]; c == nil || c.stale {
			ix.chunks[k] = buildChunk(ix.docs[k*chunkSize : min(len(ix.docs), (k+1)*chunkSize)])
		}
	}
}

func buildChunk(docs []*doc) *chunk {
	c := &chunk{n: len(docs), starts: make([]int32, len(docs)), dstart: make([]int32, len(docs)),
		freq: make([]float64, len(docs)), key: make([][2]uint64, len(docs))}
	var text, digits strings.Builder
	for i, d := range docs {
		c.starts[i] = int32(text.Len())
		for _, sg := range d.segs {
			c.segs = append(c.segs, cseg{seg: seg{start: sg.start + c.starts[i], end: sg.end + c.starts[i], kind: sg.kind}, doc: uint16(i)})
		}
		c.freq[i], c.key[i] = d.frequency, nameKey(d.sortName)
		text.WriteString(d.all)
		text.WriteByte(0)
		c.dstart[i] = int32(digits.Len())
		digits.WriteString(d.digits)
		digits.WriteByte(0)
		for j, w := range d.nameRunes {
			c.words = append(c.words, wordRef{runes: w, mask: d.nameMasks[j], doc: uint16(i)})
		}
		for j := range d.pinyin {
			c.py = append(c.py, pyRef{name: &d.pinyin[j], doc: uint16(i)})
		}
		if d.starred {
			c.starred[i/64] |= 1 << (i % 64)
		}
	}
	c.text, c.digits = text.String(), digits.String()
	return c
}

// containing adds to s the docs whose text (starts/text) holds q.
func containing(s *set, text string, starts []int32, q string) {
	if q == "" {
		return
	}
	for pos := 0; pos < len(text); {
		i := strings.Index(text[pos:], q)
		if i < 0 {
			return
		}
		at := int32(pos + i)
		d := sort.Search(len(starts), func(j int) bool { return starts[j] > at }) - 1
		s.add(d)
		if d+1 >= len(starts) {
			return
		}
		pos = int(starts[d+1])
	}
}

// candidates returns the docs of c that match term ti: every text hit,
// graded on the spot (m.grades), plus the docs that match by pinyin or by
// a typo. The per-doc match then needs no second scan of the text.
func (m *matcher) candidates(ix *Index, k int, c *chunk, ti int) set {
	var s set
	t := &m.terms[ti]
	if t.Field == FieldPhone {
		containing(&s, c.digits, c.dstart, t.Text)
		containing(&s, c.digits, c.dstart, t.trim)
		if t.E164 != "" {
			for _, id := range ix.byE164[t.E164] {
				if i := ix.pos[id]; i/chunkSize == k {
					s.add(i % chunkSize)
				}
			}
		}
		return s
	}
	m.graded[ti] = set{}
	m.gradeText(&s, c, ti)
	if t.Field != FieldAny && t.Field != FieldName {
		return s
	}
	if t.edits > 0 {
		for _, w := range c.words {
			if s.has(int(w.doc)) || maskRulesOut(t.mask, w.mask, t.edits) {
				continue
			}
			if _, ok := withinEdits(t.runes, w.runes, t.edits, m.buf); ok {
				s.add(int(w.doc))
			}
		}
	}
	if t.pinyin {
		for _, p := range c.py {
			if !s.has(int(p.doc)) && matchPinyin(p.name, t.Text) != TierNone {
				s.add(int(p.doc))
			}
		}
	}
	return s
}

// nameKey packs the first 16 bytes of a sort name so that comparing keys
// orders like comparing the names (up to those bytes).
func nameKey(s string) [2]uint64 {
	var b [16]byte
	copy(b[:], s)
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// gradeText finds every occurrence of term ti in the chunk's text and
// keeps, per doc, the best grade among those in fields the term allows.
// It reads only the chunk's contiguous arrays, never the docs.
func (m *matcher) gradeText(s *set, c *chunk, ti int) {
	t := &m.terms[ti]
	q := t.Text
	text, segs := c.text, c.segs
	for pos := 0; pos < len(text); {
		i := strings.Index(text[pos:], q)
		if i < 0 {
			return
		}
		at := int32(pos + i)
		pos = int(at) + 1
		j := sort.Search(len(segs), func(j int) bool { return segs[j].start > at }) - 1
		if j < 0 {
			continue
		}
		sg := &segs[j]
		if int(at)+len(q) > int(sg.end) || !t.fieldOK(sg.kind) {
			continue
		}
		tier, score, _ := gradeAt(text, &sg.seg, int(at), len(q), t)
		di := int(sg.doc)
		g := &m.grades[ti][di]
		if !m.graded[ti].has(di) || tier > g.tier || (tier == g.tier && int16(score) > g.score) {
			*g = textGrade{tier: tier, score: int16(score), kind: sg.kind}
			m.graded[ti].add(di)
			s.add(di)
		}
	}
}
