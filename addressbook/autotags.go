package addressbook

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convergo/convergo/store"
)

// The rcs cache remembers whether an identity belongs to a convergo user,
// so that tagging a page of contacts costs no lookups most of the time.
const (
	rcsCacheSize = 10000
	rcsCacheTTL  = 5 * time.Minute
)

type rcsEntry struct {
	key     string
	user    string // "" when no user has the identity
	expires time.Time
}

// rcsCache is an LRU with expiry; safe for concurrent use.
type rcsCache struct {
	max int
	ttl time.Duration
	mu  sync.Mutex // never held across I/O
	lru *list.List // of *rcsEntry, most recent first
	m   map[string]*list.Element
}

func newRCSCache(max int, ttl time.Duration) *rcsCache {
	return &rcsCache{max: max, ttl: ttl, lru: list.New(), m: make(map[string]*list.Element)}
}

func (c *rcsCache) get(key string, now time.Time) (user string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.m[key]
	if !found {
		return "", false
	}
	e := el.Value.(*rcsEntry)
	if now.After(e.expires) {
		c.lru.Remove(el)
		delete(c.m, key)
		return "", false
	}
	c.lru.MoveToFront(el)
	return e.user, true
}

func (c *rcsCache) put(key, user string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, found := c.m[key]; found {
		c.lru.Remove(el)
	}
	c.m[key] = c.lru.PushFront(&rcsEntry{key: key, user: user, expires: now.Add(c.ttl)})
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.m, last.Value.(*rcsEntry).key)
	}
}

// lookupUser resolves a canonical identity to a convergo user ID, through
// the cache; "" when none (or no directory). Lookup failures count as
// "not a user" for this request and are not cached.
func (s *Service) lookupUser(ctx context.Context, key string) string {
	if s.users == nil || key == "" {
		return ""
	}
	now := s.now()
	if u, ok := s.rcs.get(key, now); ok {
		return u
	}
	user, ok, err := s.users.LookupIdentity(ctx, key)
	if err != nil {
		return ""
	}
	if !ok {
		user = ""
	}
	s.rcs.put(key, user, now)
	return user
}

// view is the API representation of c with its automatic tags.
func (s *Service) view(ctx context.Context, user string, c *store.Contact) Contact {
	v := viewOf(c)
	var freq float64
	b := s.books.peek(user)
	if b == nil {
		// A single-contact read must show the same tags as a list: load
		// the user's book (then cached) for its interaction scores.
		if lb, err := s.book(ctx, user); err == nil {
			b = lb
		}
	}
	if b != nil {
		b.mu.RLock()
		freq = frequency(c, b.inter, s.phones, s.now())
		b.mu.RUnlock()
	}
	v.AutoTags = s.autoTags(ctx, c, freq)
	return v
}

// autoTags computes the tags nobody typed: frequent (interaction score),
// rcs (a number or URI belongs to a convergo user, so chat and calls reach
// them in-network) and org:<organisation> (organisation groups).
func (s *Service) autoTags(ctx context.Context, c *store.Contact, freq float64) []string {
	var tags []string
	if freq >= frequentScore {
		tags = append(tags, "frequent")
	}
	for _, k := range peerKeys(c, s.phones) {
		if s.lookupUser(ctx, k) != "" {
			tags = append(tags, "rcs")
			break
		}
	}
	if c.Org != "" {
		tags = append(tags, "org:"+strings.ToLower(c.Org))
	}
	return slices.Clip(tags)
}
