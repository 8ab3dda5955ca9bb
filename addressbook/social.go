package addressbook

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/convergo/convergo/addressbook/phone"
	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// LookupResponse is the body of GET /v1/contacts/lookup.
type LookupResponse struct {
	Number   string    `json:"number"`
	E164     string    `json:"e164,omitempty"`
	Contacts []Contact `json:"contacts"` // best first; empty when nobody has the number
}

// handleLookup is caller ID: ?number= in any format (national,
// international, tel: or sip: URI with a number); a sip: URI without a
// number matches saved URIs.
func (s *Service) handleLookup(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	raw := strings.TrimSpace(r.URL.Query().Get("number"))
	if raw == "" || len(raw) > 512 {
		problem.Error(w, http.StatusBadRequest, "number is required (at most 512 characters)")
		return
	}
	var e164, digits, uriKey string
	if k := canonicalPeer(raw, s.phones); strings.HasPrefix(k, "tel:") {
		e164 = strings.TrimPrefix(k, "tel:")
		digits = phone.Digits(e164)
	} else if k != "" {
		uriKey = k
	} else {
		e164, digits = s.phones.Parse(raw).E164, phone.Digits(raw)
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var found []*store.Contact
	b.snapshot(func() {
		if uriKey != "" {
			for _, c := range b.contacts {
				if containsKey(peerKeys(c, s.phones), uriKey) {
					found = append(found, c)
				}
			}
			slices.SortFunc(found, func(a, b *store.Contact) int { return cmp.Compare(a.ID, b.ID) })
			return
		}
		for _, id := range b.ix.LookupNumber(e164, digits) {
			found = append(found, b.contacts[id])
		}
	})
	resp := LookupResponse{Number: raw, E164: e164, Contacts: make([]Contact, 0, len(found))}
	for _, c := range found {
		resp.Contacts = append(resp.Contacts, s.view(r.Context(), user, c))
	}
	writeJSON(w, http.StatusOK, resp)
}

// InteractionRequest is the body of POST /v1/contacts/{id}/interactions.
type InteractionRequest struct {
	Kind string    `json:"kind"`        // call or message
	At   time.Time `json:"at,omitzero"` // default now; future times are clamped to now
}

// InteractionResponse reports the contact's interaction state after the call.
type InteractionResponse struct {
	ID       string  `json:"id"`
	Count    uint64  `json:"count"`
	Score    float64 `json:"score"`
	Frequent bool    `json:"frequent"`
}

func (s *Service) handleInteraction(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	var req InteractionRequest
	if !decodeJSON(w, r, &req, 4<<10) {
		return
	}
	if req.Kind != "call" && req.Kind != "message" {
		problem.Error(w, http.StatusBadRequest, `kind must be "call" or "message"`)
		return
	}
	id := r.PathValue("id")
	c, err := s.contacts.Get(r.Context(), user, id)
	if err == nil && c.Deleted {
		err = ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.record(r.Context(), user, id, req.At, 1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	score := decayed(rec, s.now())
	if b := s.books.peek(user); b != nil {
		b.mu.RLock()
		if b.loaded {
			score = frequency(&c, b.inter, s.phones, s.now())
		}
		b.mu.RUnlock()
	}
	writeJSON(w, http.StatusOK, InteractionResponse{ID: id, Count: rec.Count, Score: score, Frequent: score >= frequentScore})
}

// record stores n interactions under key and applies them to the cached book.
func (s *Service) record(ctx context.Context, user, key string, at time.Time, n int) (store.Interaction, error) {
	now := s.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	rec, err := s.contacts.RecordInteraction(ctx, user, key, at, n, halfLife, interactionKeys)
	if err != nil {
		return rec, fmt.Errorf("addressbook: record interaction of %s: %w", user, err)
	}
	if b := s.books.peek(user); b != nil {
		b.recordLocal(rec, s.phones)
	}
	return rec, nil
}

// RecordPeerInteraction records n (at least 1) calls or messages at time
// at between user and peer, a sip:, sips: or tel: URI (saved or not): it
// feeds the "frequent" tag and the suggestions. The calling and messaging
// domains call it through cmd/convergo. It is safe for concurrent use.
func (s *Service) RecordPeerInteraction(ctx context.Context, user, peer string, at time.Time, n int) error {
	key := canonicalPeer(peer, s.phones)
	if key == "" {
		return fmt.Errorf("addressbook: %q is not a sip:, sips: or tel: URI", peer)
	}
	_, err := s.record(ctx, user, key, at, n)
	return err
}

// Suggestion is one person the user may want to save.
type Suggestion struct {
	Identity string  `json:"identity"` // tel:+… or sip:user@host
	Kind     string  `json:"kind"`     // interactions or groups
	Reason   string  `json:"reason"`
	Score    float64 `json:"score"`
}

// SuggestionsResponse is the body of GET /v1/contacts/suggestions.
type SuggestionsResponse struct {
	Suggestions []Suggestion `json:"suggestions"`
}

// Suggestion thresholds: a peer must have this decayed interaction score,
// or share this many group chats, to be suggested.
const (
	minSuggestScore   = 1.0
	minSharedGroups   = 2
	maxSuggestions    = 50
	maxGroupsInReason = 3
)

func (s *Service) handleSuggestions(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	b, err := s.book(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	saved := map[string]bool{}
	type peer struct {
		key   string
		rec   store.Interaction
		score float64
	}
	var peers []peer
	b.snapshot(func() {
		for _, c := range b.contacts {
			for _, k := range peerKeys(c, s.phones) {
				saved[k] = true
			}
		}
		for k, rec := range b.inter {
			if strings.Contains(k, ":") && !saved[k] {
				if sc := decayed(rec, now); sc >= minSuggestScore {
					peers = append(peers, peer{k, rec, sc})
				}
			}
		}
	})
	var out []Suggestion
	for _, p := range peers {
		if uid := s.lookupUser(r.Context(), p.key); uid == "" || uid == user {
			continue
		}
		out = append(out, Suggestion{Identity: p.key, Kind: "interactions", Score: p.score,
			Reason: fmt.Sprintf("you exchanged %d calls or messages, the last on %s, but have not saved them",
				p.rec.Count, p.rec.Last.UTC().Format("2006-01-02"))})
	}
	if s.groups != nil {
		shared, err := s.groups.SharedGroups(r.Context(), user)
		if err != nil {
			s.fail(w, r, fmt.Errorf("addressbook: shared groups of %s: %w", user, err))
			return
		}
		for ident, groups := range shared {
			k := canonicalPeer(ident, s.phones)
			if k == "" || saved[k] || len(groups) < minSharedGroups || s.lookupUser(r.Context(), k) == user {
				continue
			}
			names := slices.Sorted(slices.Values(groups))
			more := ""
			if len(names) > maxGroupsInReason {
				more = fmt.Sprintf(" and %d more", len(names)-maxGroupsInReason)
				names = names[:maxGroupsInReason]
			}
			out = append(out, Suggestion{Identity: k, Kind: "groups", Score: float64(len(groups)),
				Reason: fmt.Sprintf("shares %d group chats with you (%s%s)", len(groups), strings.Join(names, ", "), more)})
		}
	}
	slices.SortFunc(out, func(a, b Suggestion) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity, b.Identity)
	})
	if len(out) > maxSuggestions {
		out = out[:maxSuggestions]
	}
	writeJSON(w, http.StatusOK, SuggestionsResponse{Suggestions: append([]Suggestion{}, out...)})
}
