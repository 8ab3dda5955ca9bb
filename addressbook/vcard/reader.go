package vcard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	govcard "github.com/emersion/go-vcard"

	"github.com/convergo/convergo/store"
)

// Item is one card of a stream: the contact it holds, or why it was
// refused. Warnings name fields that were dropped from an accepted card.
type Item struct {
	Index    int // 1-based position of the card in the stream
	Line     int // line of its BEGIN:VCARD (or of the stray text)
	Contact  store.Contact
	Warnings []string
	Err      error // ErrMalformed or ErrTooLarge, wrapped with the reason
}

// Reader reads the cards of a .vcf stream one at a time; memory is
// bounded by the per-card limit, whatever the stream's length.
type Reader struct {
	br      *bufio.Reader
	maxCard int
	line    int      // physical lines read
	pushed  [][]byte // lines read ahead and given back, last first
	n       int      // items returned
}

// NewReader returns a Reader of r that refuses cards longer than maxCard
// bytes (ErrTooLarge, then skips to the card's END).
func NewReader(r io.Reader, maxCard int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), maxCard: maxCard}
}

// physical returns the next line without its line break; long lines are
// cut at limit bytes (too reports that). err is io.EOF at the end.
func (r *Reader) physical(limit int) (line []byte, too bool, err error) {
	if n := len(r.pushed); n > 0 {
		line = r.pushed[n-1]
		r.pushed = r.pushed[:n-1]
		r.line++
		return line, false, nil
	}
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(buf)+len(chunk) > limit {
			too = true
			chunk = chunk[:max(0, limit-len(buf))]
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (!errors.Is(err, io.EOF) || len(buf) == 0) {
			return nil, too, err
		}
		r.line++
		return bytes.TrimRight(buf, "\r\n"), too, nil
	}
}

func (r *Reader) unread(line []byte) {
	r.pushed = append(r.pushed, line)
	r.line--
}

// logical returns the next unfolded line: continuation lines (starting
// with a space or tab, RFC 6350 §3.2) are joined, as are vCard 2.1
// quoted-printable soft line breaks (a value ending in "=").
func (r *Reader) logical(limit int) (line string, too bool, err error) {
	first, too, err := r.physical(limit)
	if err != nil {
		return "", too, err
	}
	var b strings.Builder
	b.Write(first)
	qp := isQuotedPrintable(first)
	for b.Len() <= limit {
		next, t, err := r.physical(limit)
		if err != nil {
			break // EOF ends the line; a read error shows up on the next call
		}
		too = too || t
		switch {
		case len(next) > 0 && (next[0] == ' ' || next[0] == '\t'):
			b.Write(next[1:])
		case qp && strings.HasSuffix(b.String(), "="):
			s := b.String()
			b.Reset()
			b.WriteString(s[:len(s)-1])
			b.Write(next)
		default:
			r.unread(next)
			return b.String(), too || b.Len() > limit, nil
		}
	}
	return b.String(), too || b.Len() > limit, nil
}

func isQuotedPrintable(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return false
	}
	return bytes.Contains(bytes.ToUpper(line[:colon]), []byte("QUOTED-PRINTABLE"))
}

func isBegin(l string) bool { return strings.EqualFold(strings.TrimSpace(l), "BEGIN:VCARD") }
func isEnd(l string) bool   { return strings.EqualFold(strings.TrimSpace(l), "END:VCARD") }

// Next returns the next card, io.EOF after the last one, or another error
// when reading the underlying stream fails. Text outside cards is one
// ErrMalformed item per stretch of it.
func (r *Reader) Next() (Item, error) {
	// Outside a card: skip blank lines, report stray text once.
	stray := 0
	for {
		l, _, err := r.logical(r.maxCard)
		if errors.Is(err, io.EOF) {
			if stray > 0 {
				return r.item(stray, fmt.Errorf("%w: text outside BEGIN:VCARD/END:VCARD", ErrMalformed)), nil
			}
			return Item{}, io.EOF
		}
		if err != nil {
			return Item{}, fmt.Errorf("vcard: read line %d: %w", r.line+1, err)
		}
		if isBegin(l) {
			if stray > 0 {
				r.unreadLogical(l)
				return r.item(stray, fmt.Errorf("%w: text outside BEGIN:VCARD/END:VCARD", ErrMalformed)), nil
			}
			return r.card()
		}
		if strings.TrimSpace(l) != "" && stray == 0 {
			stray = r.line
		}
	}
}

// unreadLogical pushes a BEGIN line back; such a line is never folded, so
// the physical line is the logical one.
func (r *Reader) unreadLogical(l string) { r.unread([]byte(l)) }

func (r *Reader) item(line int, err error) Item {
	r.n++
	return Item{Index: r.n, Line: line, Err: err}
}

// card reads up to END:VCARD and decodes what it read.
func (r *Reader) card() (Item, error) {
	begin := r.line
	var raw strings.Builder
	raw.WriteString("BEGIN:VCARD\r\n")
	var bad error
	for {
		l, too, err := r.logical(r.maxCard)
		if errors.Is(err, io.EOF) {
			return r.item(begin, fmt.Errorf("%w: no END:VCARD before the end of the file", ErrMalformed)), nil
		}
		if err != nil {
			return Item{}, fmt.Errorf("vcard: read line %d: %w", r.line+1, err)
		}
		if isBegin(l) { // the card never ended; the next one starts here
			r.unreadLogical(l)
			return r.item(begin, fmt.Errorf("%w: BEGIN:VCARD at line %d before END:VCARD", ErrMalformed, r.line+1)), nil
		}
		if isEnd(l) {
			break
		}
		if bad != nil {
			continue
		}
		switch {
		case too || raw.Len()+len(l) > r.maxCard:
			bad = fmt.Errorf("%w: longer than %d bytes", ErrTooLarge, r.maxCard)
		case strings.TrimSpace(l) == "":
		case !wellFormed(l):
			bad = fmt.Errorf("%w: line %d is not NAME[;PARAMS]:VALUE", ErrMalformed, r.line)
		default:
			raw.WriteString(bareParams(l))
			raw.WriteString("\r\n")
		}
	}
	it := r.item(begin, bad)
	if bad != nil {
		return it, nil
	}
	raw.WriteString("END:VCARD\r\n")
	card, err := govcard.NewDecoder(strings.NewReader(raw.String())).Decode()
	if err != nil {
		it.Err = fmt.Errorf("%w: %w", ErrMalformed, err)
		return it, nil
	}
	it.Contact, it.Warnings, it.Err = FromCard(card)
	return it, nil
}

// wellFormed checks "[group.]name[;params]:value" with a name of letters,
// digits and dashes.
func wellFormed(l string) bool {
	end := strings.IndexAny(l, ";:")
	if end <= 0 || !strings.Contains(l[end:], ":") {
		return false
	}
	name := l[:end]
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		if dot == 0 || dot == len(name)-1 {
			return false
		}
		name = name[dot+1:]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// bareParams rewrites vCard 2.1 parameters without a name ("TEL;CELL;VOICE:")
// to TYPE parameters, which is what they mean (vCard 2.1 §2.4.1) and what
// go-vcard understands.
func bareParams(l string) string {
	semi := strings.IndexByte(l, ';')
	colon := strings.IndexByte(l, ':')
	if semi < 0 || colon < semi {
		return l
	}
	// Find the colon that ends the parameters, outside quotes.
	inQuote, end := false, -1
	for i := semi; i < len(l) && end < 0; i++ {
		switch l[i] {
		case '"':
			inQuote = !inQuote
		case ':':
			if !inQuote {
				end = i
			}
		}
	}
	if end < 0 {
		return l
	}
	params := strings.Split(l[semi+1:end], ";")
	changed := false
	for i, p := range params {
		if p != "" && !strings.ContainsAny(p, "=\"") {
			params[i], changed = "TYPE="+p, true
		}
	}
	if !changed {
		return l
	}
	return l[:semi+1] + strings.Join(params, ";") + l[end:]
}
