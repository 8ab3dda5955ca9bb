package addressbook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/convergo/convergo/addressbook/search"
	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// Page sizes of GET /v1/contacts.
const (
	defaultListLimit   = 100
	maxListLimit       = 1000
	defaultSearchLimit = 20
	maxSearchLimit     = 200
)

// ListResponse is the body of GET /v1/contacts.
type ListResponse struct {
	Contacts []Contact `json:"contacts"`
	// NextCursor fetches the next page (?cursor=); empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
	// SyncToken (first page only) is where GET /v1/contacts/changes
	// continues after a full listing: changes made while paging show up there.
	SyncToken string `json:"sync_token,omitempty"`
	// Total is the number of contacts in the book, or of search matches.
	Total int `json:"total"`
}

func queryInt(r *http.Request, name string, def, max int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, false
	}
	return min(n, max), true
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	if q := r.URL.Query().Get("q"); q != "" || r.URL.Query().Has("q") {
		s.handleSearch(w, r, user, q)
		return
	}
	limit, ok := queryInt(r, "limit", defaultListLimit, maxListLimit)
	if !ok {
		problem.Error(w, http.StatusBadRequest, "limit must be a positive integer")
		return
	}
	var after string
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil {
			problem.Error(w, http.StatusBadRequest, "malformed cursor")
			return
		}
		after = string(raw)
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		page  []*store.Contact
		total int
		seq   uint64
		next  string
	)
	b.mu.Lock() // the sorted order is built lazily
	sorted := b.sortedKeys()
	total, seq = len(sorted), b.seq
	i, _ := slices.BinarySearchFunc(sorted, after, func(e sortEntry, k string) int { return cmp.Compare(e.key, k) })
	if after != "" && i < len(sorted) && sorted[i].key == after {
		i++
	}
	for ; i < len(sorted) && len(page) < limit; i++ {
		page = append(page, b.contacts[sorted[i].id])
	}
	if i < len(sorted) && len(page) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(sorted[i-1].key))
	}
	b.mu.Unlock()
	resp := ListResponse{Contacts: make([]Contact, 0, len(page)), NextCursor: next, Total: total}
	if after == "" {
		resp.SyncToken = encodeToken(user, seq)
	}
	for _, c := range page {
		resp.Contacts = append(resp.Contacts, s.view(r.Context(), user, c))
	}
	writeJSON(w, http.StatusOK, resp)
}

// sortEntry orders the book for listing: folded display name, then ID.
type sortEntry struct{ key, id string }

// sortedKeys returns the book in list order, building it when the book
// changed; b.mu must be held for writing.
func (b *book) sortedKeys() []sortEntry {
	if b.sorted != nil && b.sortedSeq == b.seq {
		return b.sorted
	}
	out := make([]sortEntry, 0, len(b.contacts))
	for id, c := range b.contacts {
		out = append(out, sortEntry{key: search.Fold(c.Name.Display) + "\x00" + id, id: id})
	}
	slices.SortFunc(out, func(a, b sortEntry) int { return cmp.Compare(a.key, b.key) })
	b.sorted, b.sortedSeq = out, b.seq
	return out
}

func (s *Service) handleSearch(w http.ResponseWriter, r *http.Request, user, raw string) {
	q, err := search.ParseQuery(raw)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, ok := queryInt(r, "limit", defaultSearchLimit, maxSearchLimit)
	if !ok {
		problem.Error(w, http.StatusBadRequest, "limit must be a positive integer")
		return
	}
	for i := range q.Terms { // a whole number typed in any format matches its E.164 form
		if t := &q.Terms[i]; t.Field == search.FieldPhone && len(t.Text) >= 6 {
			in := t.Text
			if t.Plus {
				in = "+" + in
			}
			t.E164 = s.phones.Parse(in).E164
		}
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start := time.Now()
	var (
		hits  []search.Hit
		total int
		found []*store.Contact
	)
	b.snapshot(func() {
		hits, total = b.ix.Search(q, limit)
		for _, h := range hits {
			found = append(found, b.contacts[h.ID])
		}
	})
	s.metrics.searches.Observe(time.Since(start).Seconds())
	resp := ListResponse{Contacts: make([]Contact, 0, len(hits)), Total: total}
	for i, c := range found {
		v := s.view(r.Context(), user, c)
		v.Match = &Match{Tier: hits[i].Tier.String(), Field: hits[i].Field}
		resp.Contacts = append(resp.Contacts, v)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	c, err := s.contacts.Get(r.Context(), user, r.PathValue("id"))
	if err == nil && c.Deleted {
		err = ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == "*" || bytes.Contains([]byte(inm), []byte(etag(c.Version)))) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, s.view(r.Context(), user, &c))
}

// put stores one contact and returns what was stored.
func (s *Service) put(r *http.Request, user string, c store.Contact, expect uint64) (store.Contact, error) {
	out, err := s.contacts.Apply(r.Context(), user, []store.ContactOp{{Contact: c, Expect: expect}}, s.cfg.MaxContacts)
	if err != nil {
		return store.Contact{}, err
	}
	return out[0], nil
}

func (s *Service) writeContact(w http.ResponseWriter, r *http.Request, user string, c *store.Contact, status int) {
	w.Header().Set("ETag", etag(c.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/contacts/"+url.PathEscape(c.ID))
	}
	writeJSON(w, status, s.view(r.Context(), user, c))
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	var in ContactInput
	if !decodeJSON(w, r, &in, s.cfg.MaxBodyBytes) {
		return
	}
	c, err := s.norm.normalize(in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case in.ID == "":
		c.ID = newID()
	case validID(in.ID):
		c.ID = in.ID // a device that created the contact offline keeps its ID
	default:
		s.fail(w, r, &ValidationError{Fields: []FieldError{{Field: "id", Problem: "must be 1-128 of A-Z a-z 0-9 - _ . ~ @ and not a reserved word"}}})
		return
	}
	stored, err := s.put(r, user, c, 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeContact(w, r, user, &stored, http.StatusCreated)
}

// precondition returns the version a write must find, from If-Match:
// the named version, or the current one for "*". It answers 428 itself.
func (s *Service) precondition(w http.ResponseWriter, r *http.Request, user, id string) (uint64, bool) {
	v, star, ok := ifMatch(r)
	if !ok {
		s.fail(w, r, ErrIfMatchRequired)
		return 0, false
	}
	if !star {
		if v == 0 {
			s.conflict(w, r, user, id) // a tag that is none of our versions
			return 0, false
		}
		return v, true
	}
	c, err := s.contacts.Get(r.Context(), user, id)
	if err == nil && c.Deleted {
		err = ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	return c.Version, true
}

// replace stores c over version expect, answering 412 with the current
// representation on a stale version.
func (s *Service) replace(w http.ResponseWriter, r *http.Request, user string, c store.Contact, expect uint64) {
	stored, err := s.put(r, user, c, expect)
	switch {
	case errors.Is(err, store.ErrConflict):
		s.conflict(w, r, user, c.ID)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.writeContact(w, r, user, &stored, http.StatusOK)
	}
}

// writeTarget is the prologue of every write to /v1/contacts/{id}: the
// caller, the contact id and the version its If-Match names. It answers
// the request itself (401, 428, 412, 404) when ok is false.
func (s *Service) writeTarget(w http.ResponseWriter, r *http.Request) (user, id string, expect uint64, ok bool) {
	if user, ok = s.user(w, r); !ok {
		return "", "", 0, false
	}
	id = r.PathValue("id")
	if expect, ok = s.precondition(w, r, user, id); !ok {
		return "", "", 0, false
	}
	return user, id, expect, true
}

func (s *Service) handlePut(w http.ResponseWriter, r *http.Request) {
	user, id, expect, ok := s.writeTarget(w, r)
	if !ok {
		return
	}
	var in ContactInput
	if !decodeJSON(w, r, &in, s.cfg.MaxBodyBytes) {
		return
	}
	if in.ID != "" && in.ID != id {
		problem.Error(w, http.StatusBadRequest, "id in the body differs from the URL")
		return
	}
	c, err := s.norm.normalize(in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.ID = id
	s.keepExtra(r.Context(), user, &c, expect)
	s.replace(w, r, user, c, expect)
}

// keepExtra carries the vCard-only properties (ADR, NICKNAME, …) of the
// version being replaced over to c: REST clients do not see them and must
// not erase what a CardDAV client stored. If the version moved on, the
// write fails on its version anyway.
func (s *Service) keepExtra(ctx context.Context, user string, c *store.Contact, expect uint64) {
	if cur, err := s.contacts.Get(ctx, user, c.ID); err == nil && cur.Version == expect {
		c.Extra = cur.Extra
	}
}

func (s *Service) handlePatch(w http.ResponseWriter, r *http.Request) {
	user, id, expect, ok := s.writeTarget(w, r)
	if !ok {
		return
	}
	var patch json.RawMessage
	if !decodeJSON(w, r, &patch, s.cfg.MaxBodyBytes, "application/merge-patch+json", "application/json") {
		return
	}
	cur, err := s.contacts.Get(r.Context(), user, id)
	if err == nil && cur.Deleted {
		err = ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cur.Version != expect {
		s.conflict(w, r, user, id)
		return
	}
	merged, err := mergePatch(inputOf(&cur), patch)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, "patch: "+err.Error())
		return
	}
	c, err := s.norm.normalize(merged)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.ID = id
	c.Extra = cur.Extra
	s.replace(w, r, user, c, expect)
}

// mergePatch applies an RFC 7396 JSON merge patch to in.
func mergePatch(in ContactInput, patch json.RawMessage) (ContactInput, error) {
	doc, err := json.Marshal(in)
	if err != nil {
		return in, err
	}
	var target any
	if err := json.Unmarshal(doc, &target); err != nil {
		return in, err
	}
	var p any
	if err := json.Unmarshal(patch, &p); err != nil {
		return in, err
	}
	if _, ok := p.(map[string]any); !ok {
		return in, errors.New("a contact patch must be a JSON object")
	}
	merged, err := json.Marshal(applyMerge(target, p))
	if err != nil {
		return in, err
	}
	var out ContactInput
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return in, err
	}
	return out, nil
}

// applyMerge is the MergePatch function of RFC 7396 §2.
func applyMerge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = applyMerge(t[k], v)
		}
	}
	return t
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) {
	user, id, expect, ok := s.writeTarget(w, r)
	if !ok {
		return
	}
	_, err := s.contacts.Apply(r.Context(), user, []store.ContactOp{{Delete: true, Contact: store.Contact{ID: id}, Expect: expect}}, 0)
	switch {
	case errors.Is(err, store.ErrConflict):
		s.conflict(w, r, user, id)
	case err != nil:
		s.fail(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
