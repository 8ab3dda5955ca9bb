package addressbook

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"

	"github.com/convergo/convergo/internal/problem"
)

// Sync tokens are opaque to clients: base64url of a version byte, the
// event-log sequence, and 8 bytes of SHA-256 of the user ID, so a token of
// another user (or a mangled one) is refused with 410 instead of being
// applied to the wrong log. They carry no secret: a token only selects a
// position in the caller's own, already authorised change feed.
const tokenVersion = 1

func userTag(user string) []byte {
	h := sha256.Sum256([]byte("convergo-addressbook-sync\x00" + user))
	return h[:8]
}

// encodeToken returns the sync token for position seq of user's feed.
func encodeToken(user string, seq uint64) string {
	b := make([]byte, 0, 17)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, userTag(user)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns the position a token names; ErrSyncToken when it is
// malformed or belongs to another user.
func decodeToken(user, token string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 17 || b[0] != tokenVersion {
		return 0, fmt.Errorf("%w: malformed", ErrSyncToken)
	}
	tag := userTag(user)
	for i := range tag {
		if b[9+i] != tag[i] {
			return 0, fmt.Errorf("%w: issued to another user", ErrSyncToken)
		}
	}
	return binary.BigEndian.Uint64(b[1:9]), nil
}

// Change is one entry of GET /v1/contacts/changes: the contact as it is
// now, or a tombstone.
type Change struct {
	ID         string   `json:"id"`
	Version    uint64   `json:"version"`
	Deleted    bool     `json:"deleted,omitempty"`
	MergedInto string   `json:"merged_into,omitempty"` // deleted by a merge into this contact
	Contact    *Contact `json:"contact,omitempty"`     // absent for tombstones
}

// ChangesResponse is the body of GET /v1/contacts/changes.
type ChangesResponse struct {
	Changes   []Change `json:"changes"`
	SyncToken string   `json:"sync_token"` // pass as ?since= next time
	More      bool     `json:"more"`       // more changes are waiting: ask again at once
}

// Page sizes of the change feed.
const (
	defaultChangesLimit = 200
	maxChangesLimit     = 1000
	feedReadBatch       = 500
)

// changes collects up to limit contact changes of user after seq. It
// returns the changed IDs in feed order (each once), the position to
// continue from, and whether the feed goes on.
func (s *Service) changes(ctx context.Context, user string, after uint64, limit int) (ids []string, next uint64, more bool, err error) {
	last, err := s.events.Last(ctx, user)
	if err != nil {
		return nil, 0, false, fmt.Errorf("addressbook: change feed of %s: %w", user, err)
	}
	if after > last {
		return nil, 0, false, fmt.Errorf("%w: ahead of the feed", ErrSyncToken)
	}
	seen := map[string]bool{}
	next = after
	for next < last && len(ids) < limit {
		evs, err := s.events.Read(ctx, user, next, feedReadBatch)
		if err != nil {
			return nil, 0, false, fmt.Errorf("addressbook: read change feed of %s: %w", user, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			id, ok := changedID(e)
			if ok && !seen[id] {
				if len(ids) == limit {
					return ids, next, true, nil
				}
				seen[id] = true
				ids = append(ids, id)
			}
			next = e.Seq
		}
	}
	return ids, next, next < last, nil
}

func (s *Service) handleChanges(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(r, "limit", defaultChangesLimit, maxChangesLimit)
	if !ok {
		problem.Error(w, http.StatusBadRequest, "limit must be a positive integer")
		return
	}
	var after uint64
	if tok := r.URL.Query().Get("since"); tok != "" {
		var err error
		if after, err = decodeToken(user, tok); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ids, next, more, err := s.changes(r.Context(), user, after, limit)
	if err != nil {
		s.fail(w, r, err) // store.ErrCursorExpired → 410 as well
		return
	}
	cs, err := s.contacts.GetMany(r.Context(), user, ids)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := ChangesResponse{Changes: make([]Change, 0, len(cs)), SyncToken: encodeToken(user, next), More: more}
	for i := range cs {
		c := &cs[i]
		ch := Change{ID: c.ID, Version: c.Version, Deleted: c.Deleted, MergedInto: c.MergedInto}
		if !c.Deleted {
			v := s.view(r.Context(), user, c)
			ch.Contact = &v
		}
		resp.Changes = append(resp.Changes, ch)
	}
	writeJSON(w, http.StatusOK, resp)
}
