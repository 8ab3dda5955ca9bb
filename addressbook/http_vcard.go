package addressbook

import (
	"bufio"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/convergo/convergo/addressbook/vcard"
	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// importChunk is how many cards one store transaction writes; a chunk that
// fails as a whole is retried card by card so each card gets its own result.
const importChunk = 200

// ImportResult is the outcome of one card.
type ImportResult struct {
	Index    int      `json:"index"` // 1-based card number in the file
	Line     int      `json:"line"`  // line of its BEGIN:VCARD
	ID       string   `json:"id,omitempty"`
	Status   string   `json:"status"` // created, updated, exists, failed
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"` // fields dropped from an imported card
}

// ImportResponse is the body of POST /v1/contacts:import.
type ImportResponse struct {
	Created int            `json:"created"`
	Updated int            `json:"updated"`
	Exists  int            `json:"exists"`
	Failed  int            `json:"failed"`
	Results []ImportResult `json:"results"`
}

func (resp *ImportResponse) add(r ImportResult) {
	switch r.Status {
	case "created":
		resp.Created++
	case "updated":
		resp.Updated++
	case "exists":
		resp.Exists++
	default:
		resp.Failed++
	}
	resp.Results = append(resp.Results, r)
}

var vcardTypes = []string{"text/vcard", "text/x-vcard", "text/directory"}

// handleImport reads a whole .vcf file card by card. Cards whose UID is
// already in the book are left alone (status "exists") unless
// ?on_conflict=replace, which overwrites them. Malformed cards fail on
// their own; fields that cannot be kept (an invalid email, an oversize
// photo) are dropped with a warning.
func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(vcardTypes, mt) {
		problem.Error(w, http.StatusUnsupportedMediaType, "Content-Type must be text/vcard")
		return
	}
	replace := false
	switch r.URL.Query().Get("on_conflict") {
	case "", "skip":
	case "replace":
		replace = true
	default:
		problem.Error(w, http.StatusBadRequest, "on_conflict must be skip or replace")
		return
	}
	if r.ContentLength > s.cfg.MaxImportBytes {
		tooLarge(w, fmt.Sprintf("vCard file larger than %d bytes", s.cfg.MaxImportBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxImportBytes)
	rd := vcard.NewReader(body, s.maxCardBytes())
	resp := ImportResponse{Results: []ImportResult{}}
	var pending []pendingCard
	flush := func() {
		for _, res := range s.importChunk(r, user, pending, replace) {
			s.metrics.importCards.WithLabelValues(res.Status).Inc()
			resp.add(res)
		}
		pending = pending[:0]
	}
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge(w, fmt.Sprintf("vCard file larger than %d bytes", s.cfg.MaxImportBytes))
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		res := ImportResult{Index: it.Index, Line: it.Line, Warnings: it.Warnings}
		if it.Err != nil {
			res.Status, res.Error = "failed", it.Err.Error()
			s.metrics.importCards.WithLabelValues(res.Status).Inc()
			resp.add(res)
			continue
		}
		c, warnings, err := s.importable(it.Contact)
		res.Warnings = append(res.Warnings, warnings...)
		if err != nil {
			res.Status, res.Error = "failed", err.Error()
			s.metrics.importCards.WithLabelValues(res.Status).Inc()
			resp.add(res)
			continue
		}
		res.ID = c.ID
		pending = append(pending, pendingCard{res: res, c: c})
		if len(pending) == importChunk {
			flush()
		}
	}
	flush()
	slices.SortFunc(resp.Results, func(a, b ImportResult) int { return a.Index - b.Index })
	writeJSON(w, http.StatusOK, resp)
}

// maxCardBytes bounds one card: a base64 photo of max_photo_bytes plus
// room for everything else.
func (s *Service) maxCardBytes() int { return s.cfg.MaxPhotoBytes*4/3 + 256<<10 }

type pendingCard struct {
	res ImportResult
	c   store.Contact
}

var fieldIndex = regexp.MustCompile(`^(phones|emails|uris|tags|groups)\[(\d+)\]`)

// importable normalises an imported card like a REST body, except that
// fields which fail validation on their own are dropped with a warning
// rather than failing the card. The ID comes from the UID (hashed when
// the UID cannot be an ID), so importing the same file twice finds the
// same contacts.
func (s *Service) importable(card store.Contact) (store.Contact, []string, error) {
	c, warnings, err := s.lenient(card)
	if err != nil {
		return c, warnings, err
	}
	c.ID = idForUID(card.UID)
	if card.UID == "" { // no UID: the same card imported twice is the same contact
		data, err := json.Marshal(c)
		if err != nil {
			return c, warnings, err
		}
		c.ID = hashID(string(data))
	}
	if c.UID == c.ID {
		c.UID = ""
	}
	return c, warnings, nil
}

// lenient normalises a card from a vCard (import, CardDAV): like a REST
// body, except that fields which fail validation on their own are dropped
// with a warning, and the vCard properties we have no field for are kept.
func (s *Service) lenient(card store.Contact) (store.Contact, []string, error) {
	in := inputOf(&card)
	var warnings []string
	for attempt := 0; ; attempt++ {
		c, err := s.norm.normalize(in)
		var ve *ValidationError
		if err == nil {
			c.Extra = card.Extra
			return c, warnings, nil
		}
		if !errors.As(err, &ve) || attempt > 0 {
			return store.Contact{}, warnings, err
		}
		drop := map[string]map[int]bool{}
		for _, fe := range ve.Fields {
			warnings = append(warnings, fmt.Sprintf("%s dropped: %s", fe.Field, fe.Problem))
			switch m := fieldIndex.FindStringSubmatch(fe.Field); {
			case m != nil:
				i, _ := strconv.Atoi(m[2])
				if drop[m[1]] == nil {
					drop[m[1]] = map[int]bool{}
				}
				drop[m[1]][i] = true
			case strings.HasPrefix(fe.Field, "photo"):
				in.Photo = nil
			case fe.Field == "birthday":
				in.Birthday = ""
			case fe.Field == "notes":
				in.Notes = ""
			}
		}
		in.Phones = dropAt(in.Phones, drop["phones"])
		in.Emails = dropAt(in.Emails, drop["emails"])
		in.URIs = dropAt(in.URIs, drop["uris"])
		in.Tags = dropAt(in.Tags, drop["tags"])
		in.Groups = dropAt(in.Groups, drop["groups"])
	}
}

func dropAt[T any](list []T, idx map[int]bool) []T {
	if len(idx) == 0 {
		return list
	}
	out := list[:0:0]
	for i, v := range list {
		if !idx[i] {
			out = append(out, v)
		}
	}
	return out
}

// idForUID is the contact ID of an imported card: the UID itself when it
// is a valid ID (after dropping a urn:uuid: prefix), a hash of it when it
// is not.
func idForUID(uid string) string {
	if id := strings.TrimPrefix(strings.ToLower(uid), "urn:uuid:"); len(uid) > len(id) && validID(id) {
		return id
	}
	if validID(uid) {
		return uid
	}
	return hashID(uid)
}

func hashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:16]))
}

// importChunk writes cards in one transaction when it can, else one by one.
func (s *Service) importChunk(r *http.Request, user string, cards []pendingCard, replace bool) []ImportResult {
	if len(cards) == 0 {
		return nil
	}
	ids := make([]string, len(cards))
	for i, p := range cards {
		ids[i] = p.c.ID
	}
	existing := map[string]store.Contact{}
	if cs, err := s.contacts.GetMany(r.Context(), user, ids); err == nil {
		for _, c := range cs {
			if !c.Deleted {
				existing[c.ID] = c
			}
		}
	}
	var (
		ops     []store.ContactOp
		results = make([]ImportResult, len(cards))
		inOps   []int // index in cards of each op
		seen    = map[string]bool{}
	)
	for i, p := range cards {
		res := p.res
		cur, exists := existing[p.c.ID]
		switch {
		case seen[p.c.ID]:
			res.Status, res.Error = "failed", "the same UID appears earlier in the file"
		case exists && !replace:
			res.Status = "exists"
		default:
			seen[p.c.ID] = true
			ops = append(ops, store.ContactOp{Contact: p.c, Expect: cur.Version})
			inOps = append(inOps, i)
			res.Status = "created"
			if exists {
				res.Status = "updated"
			}
		}
		results[i] = res
	}
	if len(ops) == 0 {
		return results
	}
	if _, err := s.contacts.Apply(r.Context(), user, ops, s.cfg.MaxContacts); err == nil {
		return results
	}
	for k, op := range ops { // one by one, so each card gets its own outcome
		res := &results[inOps[k]]
		_, err := s.contacts.Apply(r.Context(), user, []store.ContactOp{op}, s.cfg.MaxContacts)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
			res.Status, res.Error = "failed", "changed by someone else during the import; import again"
		case errors.Is(err, store.ErrContactLimit):
			res.Status, res.Error = "failed", fmt.Sprintf("contact limit %d reached", s.cfg.MaxContacts)
		default:
			res.Status, res.Error = "failed", "internal error"
			s.log.Error("import card failed", zap.Error(err))
		}
	}
	return results
}

// handleExport writes the whole book as one vCard file, in list order.
func (s *Service) handleExport(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	version := r.URL.Query().Get("version")
	switch version {
	case "":
		version = vcard.V4
	case vcard.V3, vcard.V4:
	default:
		problem.Error(w, http.StatusBadRequest, "version must be 3.0 or 4.0")
		return
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var cs []*store.Contact
	b.mu.Lock()
	for _, e := range b.sortedKeys() {
		cs = append(cs, b.contacts[e.id])
	}
	b.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/vcard; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="contacts.vcf"`)
	h.Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, c := range cs {
		if err := vcard.Encode(bw, *c, version); err != nil {
			return // the client went away; the status is already sent
		}
	}
	_ = bw.Flush()
}
