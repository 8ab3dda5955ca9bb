package search

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convergo/convergo/addressbook/phone"
)

// Limits on what ParseQuery accepts.
const (
	MaxQueryBytes = 256 // longer queries are refused, not truncated
	MaxTerms      = 8
)

// Field restricts a term to one kind of field.
type Field uint8

// Fields a term can be restricted to with a qualifier ("tag:work").
const (
	FieldAny Field = iota
	FieldName
	FieldEmail
	FieldOrg
	FieldTag
	FieldPhone
)

var qualifiers = map[string]Field{
	"name": FieldName, "email": FieldEmail, "org": FieldOrg, "tag": FieldTag, "group": FieldTag, "phone": FieldPhone,
}

// Term is one word of a query, every one of which must match.
type Term struct {
	Field  Field
	Text   string // folded; for a phone term the digits
	Plus   bool   // phone term typed in international form (+ or 00)
	E164   string // phone term: its E.164 form when the caller could normalise it (not parsed)
	Phrase bool   // quoted: matched as a whole, never fuzzily
}

// Query is a parsed search query.
type Query struct {
	Terms   []Term
	Starred bool // is:starred
}

// String renders q in the syntax ParseQuery reads, so that
// ParseQuery(q.String()) == q for every parsed query.
func (q Query) String() string {
	var parts []string
	if q.Starred {
		parts = append(parts, "is:starred")
	}
	for _, t := range q.Terms {
		var s string
		switch t.Field {
		case FieldName:
			s = "name:"
		case FieldEmail:
			s = "email:"
		case FieldOrg:
			s = "org:"
		case FieldTag:
			s = "tag:"
		case FieldPhone:
			s = "phone:"
		}
		text := t.Text
		if t.Field == FieldPhone && t.Plus {
			text = "+" + text
		}
		if t.Phrase {
			text = `"` + text + `"`
		}
		parts = append(parts, s+text)
	}
	return strings.Join(parts, " ")
}

// ParseQuery parses a search box input. Syntax: words separated by spaces,
// each optionally qualified (name:, email:, org:, tag: or group:, phone:),
// "quoted phrases", and is:starred. A query whose plain words are made only
// of digits and phone punctuation ("138 0013", "+86 138-0013", "(202)
// 555-0143") is one phone term whatever its spacing. Words without a
// letter or digit are ignored. Empty queries, and queries over
// MaxQueryBytes or MaxTerms, are ErrQuery.
func ParseQuery(s string) (Query, error) {
	var q Query
	if len(s) > MaxQueryBytes {
		return q, fmt.Errorf("%w: longer than %d bytes", ErrQuery, MaxQueryBytes)
	}
	return parse(s)
}

// parse is ParseQuery without the length limit (String may render a
// longer text than it was given: qualifiers are spelled out).
func parse(s string) (Query, error) {
	var q Query
	if !utf8.ValidString(s) {
		return q, fmt.Errorf("%w: not UTF-8", ErrQuery)
	}
	s = Fold(s) // before parsing: a fullwidth colon is a colon
	type word struct {
		field  Field
		plain  bool // unqualified and unquoted
		phrase bool
		text   string
	}
	var words []word
	for rest := s; ; {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		if rest == "" {
			break
		}
		w := word{plain: true}
		body := rest
		if i := strings.IndexByte(rest, ':'); i > 0 && !strings.ContainsFunc(rest[:i], unicode.IsSpace) {
			name := rest[:i]
			if f, ok := qualifiers[name]; ok {
				w.field, w.plain, body = f, false, rest[i+1:]
			} else if name == "is" {
				v, tail := cutWord(rest[i+1:])
				if v != "starred" {
					return q, fmt.Errorf("%w: unknown filter is:%s", ErrQuery, v)
				}
				q.Starred, rest = true, tail
				continue
			}
		}
		if strings.HasPrefix(body, `"`) {
			end := strings.IndexByte(body[1:], '"')
			if end < 0 {
				return q, fmt.Errorf("%w: unterminated quote", ErrQuery)
			}
			w.text, rest = body[1:1+end], body[2+end:]
			w.phrase, w.plain = true, false
		} else {
			w.text, rest = cutWord(body)
		}
		if strings.ContainsFunc(w.text, isWordRune) {
			words = append(words, w)
		}
	}
	plain := make([]string, 0, len(words))
	for _, w := range words {
		if w.plain {
			plain = append(plain, w.text)
		}
	}
	if len(words) > 0 && len(plain) == len(words) && phone.LooksLikeNumber(strings.Join(plain, " ")) {
		q.Terms = []Term{phoneTerm(strings.Join(plain, " "))}
		return q, nil
	}
	for _, w := range words {
		t, ok := makeTerm(w.field, w.text, w.phrase)
		if !ok {
			continue
		}
		if len(q.Terms) == MaxTerms {
			return q, fmt.Errorf("%w: more than %d terms", ErrQuery, MaxTerms)
		}
		q.Terms = append(q.Terms, t)
	}
	if len(q.Terms) == 0 && !q.Starred {
		return q, fmt.Errorf("%w: nothing to search for", ErrQuery)
	}
	return q, nil
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func cutWord(s string) (word, rest string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func phoneTerm(s string) Term {
	s = strings.TrimSpace(s)
	d := phone.Digits(s)
	t := Term{Field: FieldPhone, Text: d}
	switch {
	case strings.HasPrefix(s, "+"):
		t.Plus = true
	case strings.HasPrefix(d, "00") && len(d) > 4:
		t.Plus, t.Text = true, d[2:]
	}
	return t
}

// makeTerm folds text; ok is false when nothing searchable is left.
func makeTerm(field Field, text string, phrase bool) (Term, bool) {
	if field == FieldPhone || (field == FieldAny && !phrase && phone.LooksLikeNumber(text)) {
		t := phoneTerm(text)
		return t, t.Text != ""
	}
	f := strings.Join(strings.Fields(text), " ")
	if !strings.ContainsFunc(f, isWordRune) {
		return Term{}, false
	}
	return Term{Field: field, Text: f, Phrase: phrase}, true
}
