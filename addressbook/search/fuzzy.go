package search

import (
	"math/bits"
	"slices"
	"strings"
	"unicode"

	"github.com/mozillazg/go-pinyin"
)

// maxEdits is the typo tolerance for a query word of n runes: none below 4
// (too many short names are one edit apart), 1 up to 7, 2 from 8.
func maxEdits(n int) int {
	switch {
	case n < 4:
		return 0
	case n < 8:
		return 1
	default:
		return 2
	}
}

// runeMask is a 64-bit signature of the distinct runes of s: a–z and 0–9
// have their own bit, anything else shares hashed bits. Every rune of a
// that b lacks costs at least one edit, so popcount(ma &^ mb) > k rules
// a distance <= k out without computing it.
func runeMask(s []rune) uint64 {
	var m uint64
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			m |= 1 << (r - 'a')
		case r >= '0' && r <= '9':
			m |= 1 << (26 + r - '0')
		default:
			m |= 1 << (36 + uint(r)%28)
		}
	}
	return m
}

func maskRulesOut(qa, ta uint64, k int) bool {
	return bits.OnesCount64(qa&^ta) > k || bits.OnesCount64(ta&^qa) > k
}

// withinEdits reports whether the optimal-string-alignment distance of a
// and b (Levenshtein plus adjacent transpositions, the commonest typo) is
// at most k, filling only the diagonal band of width 2k+1 (Ukkonen) and
// stopping as soon as a whole row exceeds k. buf is reused scratch space.
func withinEdits(a, b []rune, k int, buf []int) (int, bool) {
	if d := len(a) - len(b); d > k || -d > k {
		return 0, false
	}
	n := len(b)
	if cap(buf) < 3*(n+1) {
		buf = make([]int, 3*(n+1))
	}
	pp, prev, cur := buf[:n+1], buf[n+1:2*(n+1)], buf[2*(n+1):3*(n+1)]
	const inf = 1 << 20
	for j := range prev {
		pp[j] = inf
		if j <= k {
			prev[j] = j
		} else {
			prev[j] = inf
		}
	}
	for i := 1; i <= len(a); i++ {
		lo, hi := max(1, i-k), min(n, i+k)
		for j := range cur {
			cur[j] = inf
		}
		if i <= k {
			cur[0] = i
		}
		rowMin := cur[0]
		for j := lo; j <= hi; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j-1]+cost, prev[j]+1, cur[j-1]+1)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, pp[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > k {
			return 0, false
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[n], prev[n] <= k
}

// maxPinyinChars and maxReadings bound the pinyin kept per name.
const (
	maxPinyinChars = 16
	maxReadings    = 3
)

// spelling is one way to type a character: its full reading or an initial.
type spelling struct {
	s    string
	full bool
}

// pyName is the pinyin of one Chinese name: per character, its spellings.
type pyName struct {
	chars   [][]spelling
	first   uint32 // letters (bit c-'a') that start some spelling of some character
	letters uint32 // every letter of every spelling
}

func letterMask(s string) uint32 {
	var m uint32
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			m |= 1 << (c - 'a')
		}
	}
	return m
}

// pinyinOf returns the pinyin of the Han characters of s in order, each
// with its toneless readings (heteronyms included, at most maxReadings:
// 曾 gives zeng and ceng) and their initials (zh, ch, sh as two letters or
// one, anything else its first letter). Other characters are skipped.
func pinyinOf(s string) pyName {
	args := pinyin.NewArgs()
	args.Style = pinyin.Normal
	args.Heteronym = true
	var out pyName
	for _, r := range s {
		if !isHan(r) {
			continue
		}
		readings := pinyin.SinglePinyin(r, args)
		if len(readings) == 0 {
			continue
		}
		if len(readings) > maxReadings {
			readings = readings[:maxReadings]
		}
		var sp []spelling
		add := func(x spelling) {
			if x.s != "" && !slices.Contains(sp, x) {
				sp = append(sp, x)
			}
		}
		for _, rd := range readings {
			if !isASCIILetters(rd) {
				continue
			}
			add(spelling{s: rd, full: true})
			for _, p := range [...]string{"zh", "ch", "sh"} {
				if strings.HasPrefix(rd, p) && len(rd) > 2 {
					add(spelling{s: p})
				}
			}
			if len(rd) > 1 {
				add(spelling{s: rd[:1]})
			}
			out.first |= 1 << (rd[0] - 'a')
			out.letters |= letterMask(rd)
		}
		if len(sp) == 0 {
			continue
		}
		out.chars = append(out.chars, sp)
		if len(out.chars) == maxPinyinChars {
			break
		}
	}
	return out
}

// pinyinBudget bounds the steps of one pinyin match: heteronyms and
// initials branch, and a crafted query must not make that exponential.
const pinyinBudget = 4096

// matchPinyin matches q (ASCII letters) against the pinyin of a name,
// each character spelled in full or by its initial, so "zhangsan",
// "zhangs", "zs" and "zhs" all find 张三. It returns the best tier: exact
// when q spells the whole name from its first character, prefix when it
// spells a prefix, substring when it starts later.
func matchPinyin(py *pyName, q string) Tier {
	if q == "" || py.first&(1<<(q[0]-'a')) == 0 || letterMask(q)&^py.letters != 0 {
		return TierNone
	}
	best := TierNone
	m := pinyinMatcher{chars: py.chars, budget: pinyinBudget}
	for start := range py.chars {
		end, partial, ok := m.from(start, q)
		if !ok {
			continue
		}
		t := TierSubstring
		if start == 0 {
			t = TierPrefix
			if end == len(py.chars) && !partial {
				t = TierExact
			}
		}
		best = max(best, t)
		if best == TierExact || m.budget <= 0 {
			break
		}
	}
	return best
}

type pinyinMatcher struct {
	chars  [][]spelling
	budget int
}

// from consumes q from character i on. It returns the index after the
// last character touched, whether that character was only partly spelled,
// and whether q was consumed entirely. The best completion is preferred:
// one that ends on a character boundary, then the one that reaches furthest.
func (m *pinyinMatcher) from(i int, q string) (end int, partial, ok bool) {
	if q == "" {
		return i, false, true
	}
	if m.budget--; i == len(m.chars) || m.budget <= 0 {
		return 0, false, false
	}
	for _, sp := range m.chars[i] {
		var e int
		var p, found bool
		switch {
		case strings.HasPrefix(q, sp.s):
			e, p, found = m.from(i+1, q[len(sp.s):])
		case sp.full && strings.HasPrefix(sp.s, q):
			e, p, found = i+1, true, true
		}
		if found && (!ok || (!p && partial) || (p == partial && e > end)) {
			end, partial, ok = e, p, true
		}
	}
	return end, partial, ok
}

// PinyinKey returns s spelled in Latin letters for comparing names across
// scripts: Han characters by their first pinyin reading, everything else
// folded; spaces and punctuation dropped. 张三 and "Zhang San" give the
// same key, zhangsan.
func PinyinKey(s string) string {
	var b strings.Builder
	args := pinyin.NewArgs()
	for _, r := range Fold(s) {
		switch {
		case isHan(r):
			if py := pinyin.SinglePinyin(r, args); len(py) > 0 {
				b.WriteString(py[0])
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Distance returns the optimal-string-alignment distance of a and b
// (edits and adjacent transpositions) when it is at most max; ok is false
// otherwise.
func Distance(a, b string, max int) (d int, ok bool) {
	return withinEdits([]rune(a), []rune(b), max, nil)
}
