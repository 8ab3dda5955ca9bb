package vcard

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	govcard "github.com/emersion/go-vcard"

	"github.com/convergo/convergo/store"
)

// Extension properties (RFC 6350 §6.10) for what vCard has no field for,
// plus the phonetic names Apple and Android write.
const (
	fieldTag            = "X-CONVERGO-TAG"
	fieldStarred        = "X-CONVERGO-STARRED"
	fieldPhoneticGiven  = "X-PHONETIC-FIRST-NAME"
	fieldPhoneticFamily = "X-PHONETIC-LAST-NAME"
	fieldSIP            = "X-SIP" // Android's SIP address
)

// Versions Encode writes.
const (
	V3 = "3.0"
	V4 = "4.0"
)

// FromCard maps a decoded card to a contact. Values are cleaned (see the
// package documentation); fields that cannot be kept are named in
// warnings. A card with neither a name, an organisation, a number, an
// email nor a URI is ErrMalformed.
func FromCard(card govcard.Card) (c store.Contact, warnings []string, err error) {
	switch v := card.Value(govcard.FieldVersion); v {
	case "", "2.1", V3, V4:
	default:
		return c, nil, fmt.Errorf("%w: unsupported VERSION %q", ErrMalformed, clean(v, false))
	}
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	text := func(f *govcard.Field, multiline bool) string {
		s, ok := decodeValue(f)
		if !ok {
			warn("%s: unsupported encoding or charset, kept as is", "value")
		}
		return cleanText(s, multiline)
	}
	if f := card.Get(govcard.FieldUID); f != nil {
		c.UID = text(f, false)
	}
	if f := card.Preferred(govcard.FieldFormattedName); f != nil {
		c.Name.Display = text(f, false)
	}
	if f := card.Preferred(govcard.FieldName); f != nil {
		parts := components(f, 5)
		c.Name.Family, c.Name.Given, c.Name.Middle = parts[0], parts[1], parts[2]
		c.Name.Prefix, c.Name.Suffix = parts[3], parts[4]
	}
	if f := card.Get(fieldPhoneticGiven); f != nil {
		c.Name.PhoneticGiven = text(f, false)
	}
	if f := card.Get(fieldPhoneticFamily); f != nil {
		c.Name.PhoneticFamily = text(f, false)
	}
	for _, f := range card[govcard.FieldTelephone] {
		v := text(f, false)
		low := strings.ToLower(v)
		switch {
		case v == "":
		case strings.HasPrefix(low, "sip:") || strings.HasPrefix(low, "sips:"):
			c.URIs = append(c.URIs, store.ContactValue{Value: v, Label: label(f), Pref: pref(f)})
		default:
			if strings.HasPrefix(low, "tel:") {
				v = strings.TrimSpace(v[len("tel:"):])
			}
			c.Phones = append(c.Phones, store.ContactPhone{Value: v, Label: label(f), Pref: pref(f)})
		}
	}
	for _, f := range card[govcard.FieldEmail] {
		if v := strings.TrimSpace(strings.TrimPrefix(text(f, false), "mailto:")); v != "" {
			c.Emails = append(c.Emails, store.ContactValue{Value: v, Label: label(f), Pref: pref(f)})
		}
	}
	for _, f := range card[govcard.FieldIMPP] {
		if v := text(f, false); v != "" {
			c.URIs = append(c.URIs, store.ContactValue{Value: v, Label: label(f), Pref: pref(f)})
		}
	}
	for _, f := range card[fieldSIP] {
		v := text(f, false)
		if v != "" && !strings.Contains(v, ":") {
			v = "sip:" + v
		}
		if v != "" {
			c.URIs = append(c.URIs, store.ContactValue{Value: v, Label: label(f), Pref: pref(f)})
		}
	}
	if f := card.Preferred(govcard.FieldOrganization); f != nil {
		parts := components(f, 2)
		c.Org, c.Department = parts[0], parts[1]
	}
	if f := card.Preferred(govcard.FieldTitle); f != nil {
		c.Title = text(f, false)
	}
	if f := card.Get(govcard.FieldBirthday); f != nil {
		raw := text(f, false)
		if b, ok := ParseBirthday(raw); ok {
			c.Birthday = b
		} else if raw != "" {
			warn("BDAY %q is not a date, dropped", raw)
		}
	}
	var notes []string
	for _, f := range card[govcard.FieldNote] {
		if v := text(f, true); v != "" {
			notes = append(notes, v)
		}
	}
	c.Notes = strings.Join(notes, "\n")
	if f := card.Get(govcard.FieldPhoto); f != nil {
		p, err := photo(f)
		if err != nil {
			warn("PHOTO dropped: %v", err)
		} else {
			c.Photo = p
		}
	}
	for _, f := range card[govcard.FieldCategories] {
		for _, g := range splitList(text(f, false)) {
			if !slices.Contains(c.Groups, g) {
				c.Groups = append(c.Groups, g)
			}
		}
	}
	for _, f := range card[fieldTag] {
		if t := text(f, false); t != "" && !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	if f := card.Get(fieldStarred); f != nil {
		c.Starred = strings.TrimSpace(f.Value) == "1" || strings.EqualFold(strings.TrimSpace(f.Value), "true")
	}
	if c.Name == (store.ContactName{}) && c.Org == "" && len(c.Phones) == 0 && len(c.Emails) == 0 && len(c.URIs) == 0 {
		return store.Contact{}, warnings, fmt.Errorf("%w: no name, organisation, number, email or URI", ErrMalformed)
	}
	c.Extra, warnings = extras(card, warnings)
	return c, warnings, nil
}

// mapped are the properties FromCard turns into fields; regenerated ones
// (PRODID, REV) are dropped; everything else is kept in Contact.Extra.
var mapped = map[string]bool{
	govcard.FieldVersion: true, govcard.FieldUID: true, govcard.FieldFormattedName: true, govcard.FieldName: true,
	govcard.FieldTelephone: true, govcard.FieldEmail: true, govcard.FieldIMPP: true, fieldSIP: true,
	govcard.FieldOrganization: true, govcard.FieldTitle: true, govcard.FieldBirthday: true, govcard.FieldNote: true,
	govcard.FieldPhoto: true, govcard.FieldCategories: true, fieldTag: true, fieldStarred: true,
	fieldPhoneticGiven: true, fieldPhoneticFamily: true, govcard.FieldProductID: true, govcard.FieldRevision: true,
}

// Limits on the properties kept verbatim.
const (
	MaxExtra      = 100
	MaxExtraBytes = 32 << 10
)

// extras collects the unmapped properties, cleaned so that they encode and
// decode unchanged, in a stable order (by name, then as in the card).
func extras(card govcard.Card, warnings []string) ([]store.ContactExtra, []string) {
	names := make([]string, 0, len(card))
	for k := range card {
		if !mapped[k] && k != "BEGIN" && k != "END" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []store.ContactExtra
	size, dropped := 0, 0
	for _, k := range names {
		if !isToken(strings.ToLower(k)) {
			dropped += len(card[k])
			continue
		}
		for _, f := range card[k] {
			e := store.ContactExtra{Group: f.Group, Name: k, Value: clean(f.Value, true)}
			if e.Group != "" && !isToken(strings.ToLower(e.Group)) {
				e.Group = ""
			}
			for pk, pvs := range f.Params {
				if !isToken(strings.ToLower(pk)) {
					continue
				}
				for _, pv := range pvs {
					pv = strings.Map(func(r rune) rune {
						if unicode.IsControl(r) || strings.ContainsRune(`;:",\`, r) {
							return -1
						}
						return r
					}, pv)
					if pv = strings.TrimSpace(pv); pv != "" {
						if e.Params == nil {
							e.Params = map[string][]string{}
						}
						e.Params[pk] = append(e.Params[pk], pv)
					}
				}
			}
			size += len(e.Name) + len(e.Value)
			if len(out) == MaxExtra || size > MaxExtraBytes {
				dropped++
				continue
			}
			out = append(out, e)
		}
	}
	if dropped > 0 {
		warnings = append(warnings, fmt.Sprintf("%d other properties dropped (too many, too long or malformed)", dropped))
	}
	return out, warnings
}

// decodeValue undoes a vCard 2.1 ENCODING=QUOTED-PRINTABLE and converts a
// CHARSET=ISO-8859-1 value; ok is false for other charsets.
func decodeValue(f *govcard.Field) (string, bool) {
	v := f.Value
	if strings.EqualFold(f.Params.Get("ENCODING"), "QUOTED-PRINTABLE") {
		b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(v)))
		if err == nil {
			v = string(b)
		}
	}
	switch cs := strings.ToUpper(f.Params.Get("CHARSET")); cs {
	case "", "UTF-8", "US-ASCII":
		return v, true
	case "ISO-8859-1", "LATIN1":
		r := make([]rune, len(v))
		for i := 0; i < len(v); i++ {
			r[i] = rune(v[i])
		}
		return string(r), true
	default:
		return v, false
	}
}

// unescaper undoes the escapes go-vcard leaves: \; \: and \N (RFC 6350
// §3.4; go-vcard already handled \\ \n and \,).
var unescaper = strings.NewReplacer(`\;`, ";", `\:`, ":", `\N`, "\n")

// cleanText is clean plus unescaping, repeated until nothing changes, so
// that what we store encodes and decodes to itself.
func cleanText(s string, multiline bool) string {
	s = clean(s, multiline)
	for strings.ContainsRune(s, '\\') {
		u := clean(unescaper.Replace(s), multiline)
		if u == s {
			break
		}
		s = u
	}
	return s
}

// components splits a structured value (N, ORG) into at least n parts at
// semicolons that are not escaped, and cleans each part.
func components(f *govcard.Field, n int) []string {
	v, _ := decodeValue(f)
	var parts []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ';':
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	parts = append(parts, v[start:])
	for i := range parts {
		parts[i] = structured(cleanText(parts[i], false)) // as Encode will write it
	}
	for len(parts) < n {
		parts = append(parts, "")
	}
	return parts
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// clean strips control characters and trims spaces; multiline keeps line
// breaks and tabs (NOTE), normalised to \n.
func clean(s string, multiline bool) string {
	s = strings.ToValidUTF8(s, "")
	if multiline {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			return r
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			if r == '\n' || r == '\r' || r == '\t' {
				return ' '
			}
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// typeLabels maps vCard TYPE values to our labels; other TYPE values that
// are plain tokens become labels as they are.
var typeLabels = map[string]string{"cell": "mobile", "home": "home", "work": "work", "fax": "fax",
	"pager": "pager", "main": "main", "other": "other", "iphone": "mobile", "text": "text", "video": "video"}

// noLabel are TYPE values that say nothing a user would call a label.
var noLabel = map[string]bool{"voice": true, "pref": true, "internet": true, "x400": true, "msg": true}

func label(f *govcard.Field) string {
	for _, t := range f.Params.Types() {
		for _, v := range strings.Split(strings.ToLower(t), ",") {
			v = strings.TrimSpace(v)
			if noLabel[v] || v == "" {
				continue
			}
			if l, ok := typeLabels[v]; ok {
				return l
			}
			if isToken(v) {
				return v
			}
		}
	}
	return ""
}

// isToken reports whether s can be written as a TYPE value unquoted.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func pref(f *govcard.Field) bool {
	if p := f.Params.Get(govcard.ParamPreferred); p != "" {
		return p == "1"
	}
	for _, t := range f.Params.Types() {
		if strings.EqualFold(t, "pref") {
			return true
		}
	}
	return false
}

// ParseBirthday accepts the date forms vCard writers use (RFC 6350
// §4.3.1 and RFC 2426 §3.1.5): 1985-04-12, 19850412, --0412, --04-12,
// 1985-04-12T… ; it returns YYYY-MM-DD, or --MM-DD without a year.
func ParseBirthday(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, 'T'); i > 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "--") {
		md := strings.ReplaceAll(s[2:], "-", "")
		if len(md) != 4 {
			return "", false
		}
		if _, err := time.Parse("0102", md); err != nil && md != "0229" {
			return "", false
		}
		return "--" + md[:2] + "-" + md[2:], true
	}
	for _, layout := range [...]string{"2006-01-02", "20060102"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02"), true
		}
	}
	return "", false
}

// photo decodes an inline PHOTO: a data: URI (4.0) or ENCODING=b/BASE64
// with TYPE (3.0, 2.1). Photos by reference are not fetched.
func photo(f *govcard.Field) (*store.ContactPhoto, error) {
	v := strings.TrimSpace(f.Value)
	if rest, ok := strings.CutPrefix(v, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, fmt.Errorf("data URI is not base64")
		}
		b, err := decodeBase64(data)
		if err != nil {
			return nil, err
		}
		mt := strings.ToLower(strings.TrimSuffix(meta, ";base64"))
		if sub, ok := strings.CutPrefix(mt, "image/"); !ok || !isToken(sub) {
			return nil, fmt.Errorf("media type %q is not an image type", clean(mt, false))
		}
		return &store.ContactPhoto{MediaType: mt, Data: b}, nil
	}
	enc := strings.ToLower(f.Params.Get("ENCODING"))
	if enc != "b" && enc != "base64" {
		return nil, fmt.Errorf("not inline (photo by reference is not fetched)")
	}
	b, err := decodeBase64(v)
	if err != nil {
		return nil, err
	}
	mt := "image/jpeg"
	if t := f.Params.Types(); len(t) > 0 && isToken(strings.ToLower(t[0])) {
		mt = "image/" + strings.ToLower(t[0])
	}
	return &store.ContactPhoto{MediaType: mt, Data: b}, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty")
	}
	return b, nil
}

// ToCard maps c to a card of version V3 or V4.
func ToCard(c store.Contact, version string) govcard.Card {
	card := make(govcard.Card)
	card.SetValue(govcard.FieldVersion, version)
	uid := c.UID
	if uid == "" {
		uid = c.ID
	}
	card.SetValue(govcard.FieldUID, uid)
	card.SetValue(govcard.FieldFormattedName, FormattedName(c))
	n := c.Name
	card.Set(govcard.FieldName, &govcard.Field{Value: strings.Join([]string{
		structured(n.Family), structured(n.Given), structured(n.Middle), structured(n.Prefix), structured(n.Suffix),
	}, ";")})
	if n.PhoneticGiven != "" {
		card.SetValue(fieldPhoneticGiven, n.PhoneticGiven)
	}
	if n.PhoneticFamily != "" {
		card.SetValue(fieldPhoneticFamily, n.PhoneticFamily)
	}
	for _, p := range c.Phones {
		card.Add(govcard.FieldTelephone, valueField(p.Value, p.Label, p.Pref, version))
	}
	for _, e := range c.Emails {
		card.Add(govcard.FieldEmail, valueField(e.Value, e.Label, e.Pref, version))
	}
	for _, u := range c.URIs {
		card.Add(govcard.FieldIMPP, valueField(u.Value, u.Label, u.Pref, version))
	}
	if c.Org != "" || c.Department != "" {
		card.SetValue(govcard.FieldOrganization, structured(c.Org)+";"+structured(c.Department))
	}
	if c.Title != "" {
		card.SetValue(govcard.FieldTitle, c.Title)
	}
	if c.Birthday != "" {
		b := c.Birthday
		if version == V4 {
			b = strings.ReplaceAll(b, "-", "")
			if strings.HasPrefix(c.Birthday, "--") {
				b = "--" + b
			}
		}
		card.SetValue(govcard.FieldBirthday, b)
	}
	if c.Notes != "" {
		card.SetValue(govcard.FieldNote, c.Notes)
	}
	if c.Photo != nil && len(c.Photo.Data) > 0 {
		data := base64.StdEncoding.EncodeToString(c.Photo.Data)
		if version == V4 {
			card.SetValue(govcard.FieldPhoto, "data:"+c.Photo.MediaType+";base64,"+data)
		} else {
			f := &govcard.Field{Value: data, Params: govcard.Params{}}
			f.Params.Set("ENCODING", "b")
			if sub, ok := strings.CutPrefix(c.Photo.MediaType, "image/"); ok && isToken(sub) {
				f.Params.Set(govcard.ParamType, strings.ToUpper(sub))
			}
			card.Set(govcard.FieldPhoto, f)
		}
	}
	for _, g := range c.Groups {
		card.AddValue(govcard.FieldCategories, g)
	}
	for _, t := range c.Tags {
		card.AddValue(fieldTag, t)
	}
	if c.Starred {
		card.SetValue(fieldStarred, "1")
	}
	for _, e := range c.Extra {
		if mapped[e.Name] || e.Name == "BEGIN" || e.Name == "END" {
			continue // never shadow a field we write, never split the card
		}
		card.Add(e.Name, &govcard.Field{Group: e.Group, Value: e.Value, Params: govcard.Params(e.Params)})
	}
	if !c.Updated.IsZero() {
		card.SetRevision(c.Updated.UTC())
	}
	return card
}

// FormattedName is the FN of c: the display name, else the structured
// name put together, else the organisation, else the first number, email
// or URI (FN is mandatory in vCard).
func FormattedName(c store.Contact) string {
	if c.Name.Display != "" {
		return c.Name.Display
	}
	n := strings.Join(strings.Fields(strings.Join([]string{c.Name.Prefix, c.Name.Given, c.Name.Middle, c.Name.Family, c.Name.Suffix}, " ")), " ")
	if hasHan(c.Name.Family + c.Name.Given) { // Chinese order: family name first, no spaces
		n = c.Name.Prefix + c.Name.Family + c.Name.Middle + c.Name.Given + c.Name.Suffix
	}
	switch {
	case n != "":
		return n
	case c.Org != "":
		return c.Org
	case len(c.Phones) > 0:
		return c.Phones[0].Value
	case len(c.Emails) > 0:
		return c.Emails[0].Value
	case len(c.URIs) > 0:
		return c.URIs[0].Value
	}
	return ""
}

// structured makes s safe as one component of N or ORG: go-vcard does not
// escape semicolons, so they become commas (escaped by go-vcard), and
// backslashes, which would escape the separator, are dropped.
func structured(s string) string {
	return strings.TrimSpace(strings.NewReplacer(";", ",", `\`, "").Replace(s))
}

func valueField(value, lbl string, pref bool, version string) *govcard.Field {
	f := &govcard.Field{Value: value, Params: govcard.Params{}}
	var types []string
	if lbl != "" && isToken(lbl) {
		t := lbl
		if lbl == "mobile" {
			t = "cell"
		}
		types = append(types, t)
	}
	if pref {
		if version == V4 {
			f.Params.Set(govcard.ParamPreferred, "1")
		} else {
			types = append(types, "pref")
		}
	}
	for _, t := range types {
		f.Params.Add(govcard.ParamType, t)
	}
	if len(f.Params) == 0 {
		f.Params = nil
	}
	return f
}

// Encode writes c as one card, lines folded at 75 octets (RFC 6350 §3.2).
func Encode(w io.Writer, c store.Contact, version string) error {
	var b strings.Builder
	if err := govcard.NewEncoder(&b).Encode(ToCard(c, version)); err != nil {
		return fmt.Errorf("vcard: encode %s: %w", c.ID, err)
	}
	if _, err := io.WriteString(w, fold(b.String())); err != nil {
		return fmt.Errorf("vcard: write %s: %w", c.ID, err)
	}
	return nil
}

// fold breaks the CRLF-terminated lines of s longer than 75 octets,
// never inside a UTF-8 sequence.
func fold(s string) string {
	const limit = 75
	var b strings.Builder
	b.Grow(len(s) + len(s)/limit*3)
	for line := range strings.SplitSeq(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		width := limit
		for len(line) > width {
			cut := width
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			b.WriteString(line[:cut])
			b.WriteString("\r\n ")
			line = line[cut:]
			width = limit - 1 // the leading space counts
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}

func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}
