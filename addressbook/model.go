package addressbook

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/convergo/convergo/addressbook/phone"
	"github.com/convergo/convergo/addressbook/vcard"
	"github.com/convergo/convergo/store"
)

// Field limits. Names and URIs can end up in SIP headers (display names,
// P-Asserted-Identity), so control characters are refused there.
const (
	maxID        = 128
	maxShort     = 256 // name parts, organisation, title, a phone number as typed
	maxURI       = 512
	maxNotes     = 16 << 10
	maxValues    = 50 // phones, emails, URIs, tags, groups each
	maxTag       = 64
	maxLabel     = 32
	maxEmail     = 254 // RFC 5321 path limit
	maxPhoneChar = 64
)

// reservedIDs are path segments of /v1/contacts/… routes.
var reservedIDs = map[string]bool{"changes": true, "lookup": true, "duplicates": true, "suggestions": true}

// photoTypes are the photo media types accepted.
var photoTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// ContactInput is what a client sends to create or replace a contact.
// Read-only fields of Contact (version, created, e164, auto_tags, …) may be
// sent back and are ignored.
type ContactInput struct {
	ID         string               `json:"id,omitempty"` // create only; generated when empty
	UID        string               `json:"uid,omitempty"`
	Name       store.ContactName    `json:"name"`
	Phones     []PhoneInput         `json:"phones,omitempty"`
	Emails     []store.ContactValue `json:"emails,omitempty"`
	URIs       []store.ContactValue `json:"uris,omitempty"`
	Org        string               `json:"org,omitempty"`
	Department string               `json:"department,omitempty"`
	Title      string               `json:"title,omitempty"`
	Birthday   string               `json:"birthday,omitempty"`
	Notes      string               `json:"notes,omitempty"`
	Photo      *store.ContactPhoto  `json:"photo,omitempty"`
	Tags       []string             `json:"tags,omitempty"`
	Groups     []string             `json:"groups,omitempty"`
	Starred    bool                 `json:"starred,omitempty"`

	// Read-only, ignored.
	Version  uint64          `json:"version,omitempty"`
	Created  *time.Time      `json:"created,omitempty"`
	Updated  *time.Time      `json:"updated,omitempty"`
	AutoTags []string        `json:"auto_tags,omitempty"`
	Match    json.RawMessage `json:"match,omitempty"`
}

// PhoneInput is a phone number as sent; e164 and valid are computed.
type PhoneInput struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
	Pref  bool   `json:"pref,omitempty"`
	E164  string `json:"e164,omitempty"`  // ignored
	Valid *bool  `json:"valid,omitempty"` // ignored
}

// Contact is the API representation of a contact.
type Contact struct {
	ID         string               `json:"id"`
	Version    uint64               `json:"version"`
	Created    time.Time            `json:"created"`
	Updated    time.Time            `json:"updated"`
	UID        string               `json:"uid,omitempty"`
	Name       store.ContactName    `json:"name"`
	Phones     []store.ContactPhone `json:"phones,omitempty"`
	Emails     []store.ContactValue `json:"emails,omitempty"`
	URIs       []store.ContactValue `json:"uris,omitempty"`
	Org        string               `json:"org,omitempty"`
	Department string               `json:"department,omitempty"`
	Title      string               `json:"title,omitempty"`
	Birthday   string               `json:"birthday,omitempty"`
	Notes      string               `json:"notes,omitempty"`
	Photo      *store.ContactPhoto  `json:"photo,omitempty"`
	Tags       []string             `json:"tags,omitempty"`
	Groups     []string             `json:"groups,omitempty"`
	Starred    bool                 `json:"starred,omitempty"`
	// AutoTags are computed, never stored: "frequent", "rcs" and
	// "org:<organisation>".
	AutoTags []string `json:"auto_tags,omitempty"`
	// Match says how a search hit matched (search results only).
	Match *Match `json:"match,omitempty"`
}

// Match describes a search hit.
type Match struct {
	Tier  string `json:"tier"`  // exact, prefix, substring, fuzzy
	Field string `json:"field"` // name, pinyin, phone, email, org, tag
}

func viewOf(c *store.Contact) Contact {
	return Contact{
		ID: c.ID, Version: c.Version, Created: c.Created, Updated: c.Updated, UID: c.UID, Name: c.Name,
		Phones: c.Phones, Emails: c.Emails, URIs: c.URIs, Org: c.Org, Department: c.Department, Title: c.Title,
		Birthday: c.Birthday, Notes: c.Notes, Photo: c.Photo, Tags: c.Tags, Groups: c.Groups, Starred: c.Starred,
	}
}

// inputOf is the ContactInput that would recreate c (PATCH applies to it).
func inputOf(c *store.Contact) ContactInput {
	in := ContactInput{UID: c.UID, Name: c.Name, Emails: c.Emails, URIs: c.URIs, Org: c.Org,
		Department: c.Department, Title: c.Title, Birthday: c.Birthday, Notes: c.Notes, Photo: c.Photo,
		Tags: c.Tags, Groups: c.Groups, Starred: c.Starred}
	for _, p := range c.Phones {
		in.Phones = append(in.Phones, PhoneInput{Value: p.Value, Label: p.Label, Pref: p.Pref})
	}
	return in
}

// newID returns a random contact ID (26 base32 characters, lower case).
func newID() string { return strings.ToLower(rand.Text()) }

// validID reports whether id can name a contact: 1–128 characters from
// the URL-safe set plus @, not a reserved route segment.
func validID(id string) bool {
	if id == "" || len(id) > maxID || reservedIDs[id] {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '@') {
			return false
		}
	}
	return id != "." && id != ".."
}

// normalizer turns client input into a stored contact.
type normalizer struct {
	phones   *phone.Normalizer
	maxPhoto int
}

// checker collects field errors.
type checker struct {
	errs       []FieldError
	photoLarge bool
}

func (ck *checker) add(field, format string, args ...any) {
	ck.errs = append(ck.errs, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (ck *checker) err() error {
	if len(ck.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: ck.errs, PhotoLarge: ck.photoLarge}
}

// line checks a single-line text field: valid UTF-8, no control or line
// separator characters (they would end a SIP header), at most max bytes.
func (ck *checker) line(field, s string, max int) string {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		ck.add(field, "is not valid UTF-8")
	case len(s) > max:
		ck.add(field, "is longer than %d bytes", max)
	case strings.ContainsFunc(s, isBreaking):
		ck.add(field, "contains a control or line-break character")
	}
	return s
}

func isBreaking(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

func (ck *checker) label(field, s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return ""
	}
	if len(s) > maxLabel || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) {
		ck.add(field, "must be up to %d letters, digits or dashes (mobile, home, work, …)", maxLabel)
	}
	return s
}

// normalize validates in and returns the contact to store (ID, Version
// and timestamps are the caller's). Every problem is reported at once.
func (n *normalizer) normalize(in ContactInput) (store.Contact, error) {
	var ck checker
	c := store.Contact{
		UID: ck.line("uid", in.UID, maxURI),
		Name: store.ContactName{
			Display:        ck.line("name.display", in.Name.Display, maxShort),
			Given:          ck.line("name.given", in.Name.Given, maxShort),
			Family:         ck.line("name.family", in.Name.Family, maxShort),
			Middle:         ck.line("name.middle", in.Name.Middle, maxShort),
			Prefix:         ck.line("name.prefix", in.Name.Prefix, maxShort),
			Suffix:         ck.line("name.suffix", in.Name.Suffix, maxShort),
			PhoneticGiven:  ck.line("name.phonetic_given", in.Name.PhoneticGiven, maxShort),
			PhoneticFamily: ck.line("name.phonetic_family", in.Name.PhoneticFamily, maxShort),
		},
		Org:        ck.line("org", in.Org, maxShort),
		Department: ck.line("department", in.Department, maxShort),
		Title:      ck.line("title", in.Title, maxShort),
		Starred:    in.Starred,
	}
	if len(in.Phones) > maxValues {
		ck.add("phones", "more than %d numbers", maxValues)
	}
	for i, p := range in.Phones {
		f := fmt.Sprintf("phones[%d]", i)
		v := ck.line(f+".value", p.Value, maxPhoneChar)
		if v == "" {
			ck.add(f+".value", "is empty")
			continue
		}
		num := n.phones.Parse(v) // invalid numbers are kept as typed and flagged
		c.Phones = append(c.Phones, store.ContactPhone{Value: v, E164: num.E164, Valid: num.Valid,
			Label: ck.label(f+".label", p.Label), Pref: p.Pref})
	}
	if len(in.Emails) > maxValues {
		ck.add("emails", "more than %d addresses", maxValues)
	}
	for i, e := range in.Emails {
		f := fmt.Sprintf("emails[%d]", i)
		v := ck.line(f+".value", e.Value, maxEmail)
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v || a.Name != "" || !strings.Contains(v, "@") {
			ck.add(f+".value", "is not an email address (local@domain)")
		}
		c.Emails = append(c.Emails, store.ContactValue{Value: v, Label: ck.label(f+".label", e.Label), Pref: e.Pref})
	}
	if len(in.URIs) > maxValues {
		ck.add("uris", "more than %d URIs", maxValues)
	}
	for i, u := range in.URIs {
		f := fmt.Sprintf("uris[%d]", i)
		v := ck.line(f+".value", u.Value, maxURI)
		if p := checkURI(v); p != "" {
			ck.add(f+".value", "%s", p)
		}
		c.URIs = append(c.URIs, store.ContactValue{Value: v, Label: ck.label(f+".label", u.Label), Pref: u.Pref})
	}
	if in.Birthday != "" {
		if b, ok := vcard.ParseBirthday(in.Birthday); ok {
			c.Birthday = b
		} else {
			ck.add("birthday", "must be YYYY-MM-DD or --MM-DD")
		}
	}
	notes := strings.ReplaceAll(in.Notes, "\r\n", "\n")
	switch {
	case !utf8.ValidString(notes):
		ck.add("notes", "is not valid UTF-8")
	case len(notes) > maxNotes:
		ck.add("notes", "is longer than %d bytes", maxNotes)
	case strings.ContainsFunc(notes, func(r rune) bool { return r != '\n' && r != '\t' && isBreaking(r) }):
		ck.add("notes", "contains a control character")
	}
	c.Notes = strings.TrimSpace(notes)
	if p := in.Photo; p != nil {
		switch {
		case len(p.Data) == 0:
			ck.add("photo.data", "is empty")
		case len(p.Data) > n.maxPhoto:
			ck.add("photo.data", "is %d bytes, more than %d", len(p.Data), n.maxPhoto)
			ck.photoLarge = true
		case !photoTypes[strings.ToLower(p.MediaType)]:
			ck.add("photo.media_type", "must be image/jpeg, image/png, image/gif or image/webp")
		default:
			c.Photo = &store.ContactPhoto{MediaType: strings.ToLower(p.MediaType), Data: p.Data}
		}
	}
	c.Tags = ck.names("tags", in.Tags)
	c.Groups = ck.names("groups", in.Groups)
	if c.Name == (store.ContactName{}) && c.Org == "" && len(c.Phones) == 0 && len(in.Emails) == 0 && len(in.URIs) == 0 {
		ck.add("name", "a contact needs a name, an organisation, a number, an email or a URI")
	}
	if c.Name.Display == "" {
		c.Name.Display = vcard.FormattedName(c)
	}
	return c, ck.err()
}

// names checks a tag or group list and drops duplicates.
func (ck *checker) names(field string, in []string) []string {
	if len(in) > maxValues {
		ck.add(field, "more than %d entries", maxValues)
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i, t := range in {
		t = ck.line(fmt.Sprintf("%s[%d]", field, i), t, maxTag)
		if t == "" || strings.Contains(t, ",") {
			ck.add(fmt.Sprintf("%s[%d]", field, i), "must be non-empty and without commas")
			continue
		}
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}

// checkURI accepts sip:, sips: and tel: URIs (RFC 3261 §19.1, RFC 3966)
// and other absolute URIs (xmpp:, im:, …) without characters that could
// break out of a SIP header or a name-addr. It returns the problem or "".
func checkURI(v string) string {
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok || scheme == "" || rest == "" {
		return "must be an absolute URI such as sip:alice@example.net or tel:+15551230001"
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "has an invalid scheme"
		}
	}
	if strings.ContainsAny(v, " <>\"\\{}|^`") {
		return "contains a character not allowed in a URI"
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips":
		user, host, found := strings.Cut(rest, "@")
		if !found {
			host = user
		}
		if host == "" || (found && user == "") {
			return "must be sip:user@host"
		}
	case "tel":
		if phone.Digits(rest) == "" {
			return "must be tel: followed by a number"
		}
	}
	return ""
}
