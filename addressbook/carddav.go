package addressbook

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/convergo/convergo/addressbook/carddav"
	"github.com/convergo/convergo/store"
)

// cardBook adapts the Service to the carddav package's consumer interfaces.
type cardBook struct{ s *Service }

var (
	_ carddav.Authenticator = cardBook{}
	_ carddav.Book          = cardBook{}
	_ carddav.Writer        = cardBook{}
)

// errNoPasswords: CardDAV without a PasswordChecker refuses everyone.
var errNoPasswords = errors.New("addressbook: CardDAV has no password checker")

// Authenticate checks Basic credentials through the PasswordChecker and
// the addressbook permissions of the account.
func (a cardBook) Authenticate(ctx context.Context, username, password string, src netip.Addr) (string, bool, error) {
	if a.s.pw == nil {
		return "", false, errNoPasswords
	}
	sub, err := a.s.pw.CheckPassword(ctx, username, password, src)
	if err != nil {
		return "", false, err
	}
	if sub.UserID == "" || !slices.Contains(sub.Perms, PermRead) {
		return "", false, fmt.Errorf("addressbook: %s lacks %s", username, PermRead)
	}
	return sub.UserID, slices.Contains(sub.Perms, PermWrite), nil
}

// Snapshot returns the live contacts of the (refreshed) book and its token.
func (a cardBook) Snapshot(ctx context.Context, user string) ([]store.Contact, string, error) {
	b, err := a.s.book(ctx, user)
	if err != nil {
		return nil, "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]store.Contact, 0, len(b.contacts))
	for _, e := range b.sortedKeys() {
		out = append(out, *b.contacts[e.id])
	}
	return out, encodeToken(user, b.seq), nil
}

// Get returns one contact, tombstones included.
func (a cardBook) Get(ctx context.Context, user, id string) (store.Contact, error) {
	return a.s.contacts.Get(ctx, user, id)
}

// Changes is GET /v1/contacts/changes for CardDAV.
func (a cardBook) Changes(ctx context.Context, user, token string, limit int) ([]store.Contact, string, bool, error) {
	after, err := decodeToken(user, token)
	if err != nil {
		return nil, "", false, fmt.Errorf("%w: %w", carddav.ErrSyncToken, err)
	}
	if limit <= 0 {
		limit = maxChangesLimit * 100
	}
	ids, next, more, err := a.s.changes(ctx, user, after, limit)
	if errors.Is(err, ErrSyncToken) || errors.Is(err, store.ErrCursorExpired) {
		return nil, "", false, fmt.Errorf("%w: %w", carddav.ErrSyncToken, err)
	}
	if err != nil {
		return nil, "", false, err
	}
	cs, err := a.s.contacts.GetMany(ctx, user, ids)
	if err != nil {
		return nil, "", false, err
	}
	return cs, encodeToken(user, next), more, nil
}

// Put validates a card like an import and stores it under c.ID.
func (a cardBook) Put(ctx context.Context, user string, card store.Contact, expect uint64) (store.Contact, error) {
	if !validID(card.ID) {
		return store.Contact{}, fmt.Errorf("%w: %q cannot name a contact", carddav.ErrInvalid, card.ID)
	}
	c, _, err := a.s.lenient(card)
	if err != nil {
		return store.Contact{}, fmt.Errorf("%w: %w", carddav.ErrInvalid, err)
	}
	c.ID = card.ID
	if c.UID == c.ID {
		c.UID = ""
	}
	out, err := a.s.contacts.Apply(ctx, user, []store.ContactOp{{Contact: c, Expect: expect}}, a.s.cfg.MaxContacts)
	if err != nil {
		return store.Contact{}, err
	}
	return out[0], nil
}

// Delete deletes version expect of contact id.
func (a cardBook) Delete(ctx context.Context, user, id string, expect uint64) error {
	_, err := a.s.contacts.Apply(ctx, user, []store.ContactOp{{Delete: true, Contact: store.Contact{ID: id}, Expect: expect}}, 0)
	return err
}
