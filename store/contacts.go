package store

import (
	"context"
	"errors"
	"math"
	"time"
)

// ErrContactLimit is returned by Contacts.Apply when the creates of a call
// would take the user's live contacts past the limit given; nothing is written.
var ErrContactLimit = errors.New("store: contact limit reached")

// Event types of the contact change feed. Contacts.Apply appends one event
// per operation to the user's EventLog, in the same atomic step as the
// write, with Data holding a JSON ContactChange.
const (
	EventContactUpsert = "contact.upsert"
	EventContactDelete = "contact.delete"
)

// Contacts stores per-user address books. Every write goes through Apply,
// which checks versions, writes the contacts and appends their change
// events to the user's EventLog atomically (one bbolt transaction, one Redis
// script), so the event log is the contacts' change feed: a reader that saw
// seq N of the log has seen every contact write up to N. Deleting leaves a
// tombstone (Deleted set, no content) that keeps the version counting, so a
// re-created ID never reuses an ETag.
type Contacts interface {
	// Get returns the contact id of user, a tombstone included (Deleted
	// set); ErrNotFound if the ID was never written.
	Get(ctx context.Context, user, id string) (Contact, error)
	// GetMany returns the contacts (tombstones included) of the ids that
	// exist, in the order of ids; unknown ids are left out.
	GetMany(ctx context.Context, user string, ids []string) ([]Contact, error)
	// List returns every live contact of user (no tombstones, any order)
	// and the sequence of user's EventLog at the same instant.
	List(ctx context.Context, user string) ([]Contact, uint64, error)
	// Count returns how many live contacts user has.
	Count(ctx context.Context, user string) (int, error)
	// Apply performs ops in order, all or nothing, and returns the stored
	// result of each (the new contact, or the tombstone of a delete) with
	// Version, Created, Updated and Seq set. A put with Expect 0 creates
	// (ErrExists if a live contact has the ID); with Expect > 0 it replaces
	// that version (ErrConflict on another version, ErrNotFound if the
	// contact is absent or deleted). A delete needs the live version
	// (ErrConflict, ErrNotFound likewise). limit > 0 caps the live contacts
	// after the call (ErrContactLimit). Errors name the ID that failed.
	Apply(ctx context.Context, user string, ops []ContactOp, limit int) ([]Contact, error)
	// RecordInteraction adds n (at least 1) interactions with key (a
	// contact ID or a peer URI) at time at: Count+n, Last = max(Last, at)
	// and Score decayed with halfLife to at, plus n. At most maxKeys keys
	// are kept per user; the least recently used are dropped.
	RecordInteraction(ctx context.Context, user, key string, at time.Time, n int, halfLife time.Duration, maxKeys int) (Interaction, error)
	// Interactions returns every interaction record of user, any order.
	Interactions(ctx context.Context, user string) ([]Interaction, error)
}

// ContactOp is one write of Contacts.Apply.
type ContactOp struct {
	// Delete turns the op into a delete of Contact.ID; only ID and
	// MergedInto of Contact are used.
	Delete bool `json:"delete,omitempty"`
	// Expect is the version the caller read: 0 creates (put only).
	Expect uint64 `json:"expect"`
	// Contact is the new state. The store sets Version, Created (kept from
	// the stored contact on replace), Updated, Seq and clears Deleted.
	Contact Contact `json:"contact"`
}

// ContactChange is the Data of a contact change event.
type ContactChange struct {
	ID         string `json:"id"`
	Version    uint64 `json:"version"`
	MergedInto string `json:"merged_into,omitempty"`
}

// Contact is one address-book entry of a user. The addressbook package
// owns the rules for its fields (normalisation, limits); the store checks
// only what Validate checks.
type Contact struct {
	ID         string         `json:"id"`
	Version    uint64         `json:"version"`               // 1 on create, +1 per write, kept by tombstones
	Seq        uint64         `json:"seq"`                   // EventLog seq of the event that wrote this version
	Deleted    bool           `json:"deleted,omitempty"`     // tombstone: no content below ID..MergedInto
	MergedInto string         `json:"merged_into,omitempty"` // tombstone of a merge: the surviving contact
	Created    time.Time      `json:"created"`
	Updated    time.Time      `json:"updated"`
	UID        string         `json:"uid,omitempty"` // vCard UID when it differs from ID
	Name       ContactName    `json:"name"`
	Phones     []ContactPhone `json:"phones,omitempty"`
	Emails     []ContactValue `json:"emails,omitempty"`
	URIs       []ContactValue `json:"uris,omitempty"` // sip:, sips:, tel: and other URIs
	Org        string         `json:"org,omitempty"`
	Department string         `json:"department,omitempty"`
	Title      string         `json:"title,omitempty"`
	Birthday   string         `json:"birthday,omitempty"` // YYYY-MM-DD or --MM-DD
	Notes      string         `json:"notes,omitempty"`
	Photo      *ContactPhoto  `json:"photo,omitempty"`
	Tags       []string       `json:"tags,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Starred    bool           `json:"starred,omitempty"`
	// Extra keeps the vCard properties convergo has no field for (ADR,
	// NICKNAME, URL, X-…), so that a card synced through CardDAV or
	// imported comes back out with them.
	Extra []ContactExtra `json:"extra,omitempty"`
}

// ContactExtra is one vCard property kept verbatim.
type ContactExtra struct {
	Group  string              `json:"group,omitempty"`
	Name   string              `json:"name"`
	Params map[string][]string `json:"params,omitempty"`
	Value  string              `json:"value"`
}

// ContactName is a structured name.
type ContactName struct {
	Display        string `json:"display,omitempty"`
	Given          string `json:"given,omitempty"`
	Family         string `json:"family,omitempty"`
	Middle         string `json:"middle,omitempty"`
	Prefix         string `json:"prefix,omitempty"`
	Suffix         string `json:"suffix,omitempty"`
	PhoneticGiven  string `json:"phonetic_given,omitempty"`
	PhoneticFamily string `json:"phonetic_family,omitempty"`
}

// ContactPhone is a phone number as typed plus its E.164 form when it
// could be normalised.
type ContactPhone struct {
	Value string `json:"value"`           // as typed, never dropped
	E164  string `json:"e164,omitempty"`  // +8613800138000; empty when not a possible number
	Valid bool   `json:"valid"`           // libphonenumber says the number is valid
	Label string `json:"label,omitempty"` // mobile, home, work, …
	Pref  bool   `json:"pref,omitempty"`
}

// ContactValue is a labelled value (email address, URI).
type ContactValue struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
	Pref  bool   `json:"pref,omitempty"`
}

// ContactPhoto is an inline photo.
type ContactPhoto struct {
	MediaType string `json:"media_type"` // image/jpeg, image/png, …
	Data      []byte `json:"data"`       // raw bytes (base64 in JSON)
}

// Interaction counts calls and messages between a user and one peer.
type Interaction struct {
	Key   string    `json:"key"`   // contact ID or peer URI
	Count uint64    `json:"count"` // all interactions ever recorded
	Score float64   `json:"score"` // decayed count as of Last
	Last  time.Time `json:"last"`
}

// Validate checks the fields every backend relies on.
func (c Contact) Validate() error {
	if c.ID == "" {
		return wrapInvalid("contact needs an id")
	}
	return nil
}

// NextInteraction returns r after n more interactions at time at: Count
// plus n, and Score decayed with halfLife to the later of Last and at,
// plus the new interactions' weight (n if they are the latest, less if
// they are older than Last). Both backends use it, so they score alike.
func NextInteraction(r Interaction, at time.Time, n int, halfLife time.Duration) Interaction {
	decay := func(d time.Duration) float64 {
		if halfLife <= 0 || d <= 0 {
			return 1
		}
		return math.Exp2(-float64(d) / float64(halfLife))
	}
	w := float64(n)
	r.Count += uint64(n)
	switch {
	case r.Last.IsZero():
		r.Score, r.Last = w, at
	case at.After(r.Last):
		r.Score = r.Score*decay(at.Sub(r.Last)) + w
		r.Last = at
	default:
		r.Score += w * decay(r.Last.Sub(at))
	}
	return r
}
