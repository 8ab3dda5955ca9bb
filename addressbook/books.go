package addressbook

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/convergo/convergo/addressbook/phone"
	"github.com/convergo/convergo/addressbook/search"
	"github.com/convergo/convergo/store"
)

// Interaction scoring: each call or message adds 1 to a score that halves
// every halfLife; a contact whose score reaches frequentScore is tagged
// "frequent" (three calls or messages in the last few days, or more spread
// over weeks). interactionKeys caps the records kept per user.
const (
	halfLife        = 14 * 24 * time.Hour
	frequentScore   = 2.5
	interactionKeys = 5000
	// interactionTTL is how old a book's interaction scores may get before a
	// refresh rereads them (other nodes record interactions too).
	interactionTTL = time.Minute
	// maxIncremental is how many change events a refresh applies one by one
	// before it rebuilds the book from a full List instead.
	maxIncremental = 2000
)

// book is one user's address book in memory: the live contacts, their
// search index and interaction scores, as of event-log sequence seq.
type book struct {
	user string

	mu        sync.RWMutex // guards the fields below; never held across I/O
	loaded    bool
	seq       uint64
	contacts  map[string]*store.Contact
	ix        *search.Index
	inter     map[string]store.Interaction
	interAt   time.Time
	sorted    []sortEntry // list order, valid while sortedSeq == seq
	sortedSeq uint64
}

// books is the LRU cache of books, at most max users.
type books struct {
	max   int
	mu    sync.Mutex // guards lru and byUser; never held across I/O
	lru   *list.List // of *book, most recently used first
	byUsr map[string]*list.Element
	sf    singleflight.Group
}

func newBooks(max int) *books {
	return &books{max: max, lru: list.New(), byUsr: make(map[string]*list.Element)}
}

// get returns the cached book of user, creating an empty one (and evicting
// the least recently used) when needed.
func (bs *books) get(user string) *book {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if el, ok := bs.byUsr[user]; ok {
		bs.lru.MoveToFront(el)
		return el.Value.(*book)
	}
	b := &book{user: user}
	bs.byUsr[user] = bs.lru.PushFront(b)
	for bs.lru.Len() > bs.max {
		last := bs.lru.Back()
		bs.lru.Remove(last)
		delete(bs.byUsr, last.Value.(*book).user)
	}
	return b
}

func (bs *books) len() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.lru.Len()
}

// book returns user's book brought up to the current end of the change
// feed: contacts written by any node are visible. Concurrent callers for
// one user share one refresh.
func (s *Service) book(ctx context.Context, user string) (*book, error) {
	b := s.books.get(user)
	last, err := s.events.Last(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("addressbook: change feed of %s: %w", user, err)
	}
	b.mu.RLock()
	fresh := b.loaded && b.seq >= last && time.Since(b.interAt) < interactionTTL
	b.mu.RUnlock()
	if fresh {
		return b, nil
	}
	_, err, _ = s.books.sf.Do(user, func() (any, error) { return nil, s.refresh(ctx, b, last) })
	if err != nil {
		return nil, err
	}
	return b, nil
}

// refresh brings b up to at least seq last: incrementally from the change
// feed when it can, else by a full List.
func (s *Service) refresh(ctx context.Context, b *book, last uint64) error {
	b.mu.RLock()
	loaded, seq, interAt := b.loaded, b.seq, b.interAt
	b.mu.RUnlock()
	var inter map[string]store.Interaction
	if !loaded || time.Since(interAt) >= interactionTTL {
		recs, err := s.contacts.Interactions(ctx, b.user)
		if err != nil {
			return fmt.Errorf("addressbook: interactions of %s: %w", b.user, err)
		}
		inter = make(map[string]store.Interaction, len(recs))
		for _, r := range recs {
			inter[r.Key] = r
		}
	}
	if loaded && seq < last {
		err := s.applyChanges(ctx, b, seq, inter)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, errRebuild):
			return err
		}
	} else if loaded {
		b.mu.Lock()
		b.setInteractions(inter, s.phones)
		b.mu.Unlock()
		return nil
	}
	return s.rebuild(ctx, b, inter)
}

// errRebuild: the incremental refresh gave up; rebuild from List.
var errRebuild = errors.New("rebuild")

func (s *Service) rebuild(ctx context.Context, b *book, inter map[string]store.Interaction) error {
	cs, seq, err := s.contacts.List(ctx, b.user)
	if err != nil {
		return fmt.Errorf("addressbook: list contacts of %s: %w", b.user, err)
	}
	if inter == nil {
		b.mu.RLock()
		inter = b.inter
		b.mu.RUnlock()
	}
	start := time.Now()
	ix := search.New()
	contacts := make(map[string]*store.Contact, len(cs))
	for i := range cs {
		c := &cs[i]
		contacts[c.ID] = c
		ix.Put(c.ID, fieldsOf(c, inter, s.phones))
	}
	ix.Commit()
	s.metrics.indexBuilds.Inc()
	s.metrics.indexBuild.Observe(time.Since(start).Seconds())
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loaded, b.seq, b.contacts, b.ix = true, seq, contacts, ix
	b.inter, b.interAt = inter, time.Now()
	return nil
}

// applyChanges reads the change feed after seq and applies the contacts
// it names; errRebuild when the feed was trimmed or is too long.
func (s *Service) applyChanges(ctx context.Context, b *book, seq uint64, inter map[string]store.Interaction) error {
	var ids []string
	seen := map[string]bool{}
	after := seq
	for {
		evs, err := s.events.Read(ctx, b.user, after, 500)
		if errors.Is(err, store.ErrCursorExpired) {
			return errRebuild
		}
		if err != nil {
			return fmt.Errorf("addressbook: read change feed of %s: %w", b.user, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.Seq
			if id, ok := changedID(e); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if len(ids) > maxIncremental {
			return errRebuild
		}
	}
	cs, err := s.contacts.GetMany(ctx, b.user, ids)
	if err != nil {
		return fmt.Errorf("addressbook: get changed contacts of %s: %w", b.user, err)
	}
	got := make(map[string]*store.Contact, len(cs))
	for i := range cs {
		got[cs[i].ID] = &cs[i]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seq != seq { // someone else refreshed meanwhile; theirs is as good
		return nil
	}
	if inter != nil {
		b.inter, b.interAt = inter, time.Now()
	}
	for _, id := range ids {
		c := got[id]
		if c == nil || c.Deleted {
			delete(b.contacts, id)
			b.ix.Delete(id)
			continue
		}
		b.contacts[id] = c
		b.ix.Put(id, fieldsOf(c, b.inter, s.phones))
	}
	if inter != nil {
		b.setInteractionsLocked(s.phones)
	}
	b.ix.Commit()
	b.seq = after
	return nil
}

// changedID returns the contact a change-feed event is about.
func changedID(e store.Event) (string, bool) {
	if e.Type != store.EventContactUpsert && e.Type != store.EventContactDelete {
		return "", false
	}
	var ch store.ContactChange
	if err := json.Unmarshal(e.Data, &ch); err != nil || ch.ID == "" {
		return "", false
	}
	return ch.ID, true
}

// setInteractions replaces the scores and re-ranks every contact; b.mu held.
func (b *book) setInteractions(inter map[string]store.Interaction, ph *phone.Normalizer) {
	if inter == nil {
		return
	}
	b.inter, b.interAt = inter, time.Now()
	b.setInteractionsLocked(ph)
}

func (b *book) setInteractionsLocked(ph *phone.Normalizer) {
	now := time.Now()
	for id, c := range b.contacts {
		b.ix.SetFrequency(id, frequency(c, b.inter, ph, now))
	}
}

// recordLocal applies an interaction this node just stored.
func (b *book) recordLocal(rec store.Interaction, ph *phone.Normalizer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.loaded {
		return
	}
	if b.inter == nil {
		b.inter = map[string]store.Interaction{}
	}
	b.inter[rec.Key] = rec
	now := time.Now()
	for id, c := range b.contacts {
		if id == rec.Key || containsKey(peerKeys(c, ph), rec.Key) {
			b.ix.SetFrequency(id, frequency(c, b.inter, ph, now))
		}
	}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// decayed is the score of r at now.
func decayed(r store.Interaction, now time.Time) float64 {
	age := now.Sub(r.Last)
	if age <= 0 {
		return r.Score
	}
	return r.Score * math.Exp2(-float64(age)/float64(halfLife))
}

// frequency is the interaction score of c: its own records plus those of
// its numbers and URIs (calls and messages recorded by peer identity).
func frequency(c *store.Contact, inter map[string]store.Interaction, ph *phone.Normalizer, now time.Time) float64 {
	if len(inter) == 0 {
		return 0
	}
	f := 0.0
	if r, ok := inter[c.ID]; ok {
		f += decayed(r, now)
	}
	for _, k := range peerKeys(c, ph) {
		if r, ok := inter[k]; ok {
			f += decayed(r, now)
		}
	}
	return f
}

// peerKeys are the canonical identities of c's numbers and URIs.
func peerKeys(c *store.Contact, ph *phone.Normalizer) []string {
	var keys []string
	for _, p := range c.Phones {
		if p.E164 != "" {
			keys = append(keys, "tel:"+p.E164)
		}
	}
	for _, u := range c.URIs {
		if k := canonicalPeer(u.Value, ph); k != "" && !containsKey(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// canonicalPeer maps a sip:, sips: or tel: URI to the key interactions
// and suggestions use: tel:+E164 for numbers (also a SIP URI whose user
// part is a number), else sip:user@host in lower case without parameters.
func canonicalPeer(uri string, ph *phone.Normalizer) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	switch strings.ToLower(scheme) {
	case "tel":
		if n := ph.Parse(rest); n.E164 != "" {
			return "tel:" + n.E164
		}
		return ""
	case "sip", "sips":
		user, host, found := strings.Cut(rest, "@")
		if found && strings.HasPrefix(user, "+") {
			if n := ph.Parse(user); n.E164 != "" {
				return "tel:" + n.E164
			}
		}
		if !found {
			return ""
		}
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		}
		return "sip:" + strings.ToLower(user) + "@" + strings.ToLower(host)
	}
	return ""
}

// fieldsOf is what the search index keeps of c.
func fieldsOf(c *store.Contact, inter map[string]store.Interaction, ph *phone.Normalizer) search.Fields {
	n := c.Name
	f := search.Fields{
		Names: []string{n.Display, n.Given, n.Family, n.Middle, n.PhoneticGiven, n.PhoneticFamily,
			strings.TrimSpace(n.Given + " " + n.Family), strings.TrimSpace(n.Family + n.Given),
			strings.TrimSpace(n.PhoneticGiven + " " + n.PhoneticFamily)},
		Orgs:      []string{c.Org, c.Department, c.Title},
		Starred:   c.Starred,
		Frequency: frequency(c, inter, ph, time.Now()),
		SortName:  n.Display,
	}
	for _, e := range c.Emails {
		f.Emails = append(f.Emails, e.Value)
	}
	for _, u := range c.URIs {
		f.Emails = append(f.Emails, u.Value)
	}
	f.Tags = append(append(f.Tags, c.Tags...), c.Groups...)
	for _, p := range c.Phones {
		f.Phones = append(f.Phones, search.Phone{E164: p.E164, NSN: phone.NSNOf(p.E164), Raw: phone.Digits(p.Value)})
	}
	return f
}

// snapshot runs fn with b read-locked.
func (b *book) snapshot(fn func()) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	fn()
}

// peek returns user's cached book without refreshing it, or nil.
func (bs *books) peek(user string) *book {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if el, ok := bs.byUsr[user]; ok {
		return el.Value.(*book)
	}
	return nil
}
