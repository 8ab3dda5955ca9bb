package addressbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/addressbook/carddav"
	"github.com/convergo/convergo/addressbook/phone"
	"github.com/convergo/convergo/internal/problem"
	"github.com/convergo/convergo/store"
)

// Permissions the routes require.
const (
	PermRead  = "addressbook:read"
	PermWrite = "addressbook:write"
)

// Deps are the collaborators of a Service. Contacts, Events and Auth are
// required; the others switch features on.
type Deps struct {
	Contacts  store.Contacts
	Events    Events
	Auth      Authorizer
	Passwords PasswordChecker // CardDAV Basic auth; nil: CardDAV refuses every request
	Users     UserDirectory   // rcs tag and user suggestions; nil: neither
	Groups    GroupPeers      // group suggestions; nil: none
}

// Service owns the address-book API: REST routes, change feed, search
// indexes, vCard exchange and CardDAV. It is safe for concurrent use and
// starts no goroutines; every request's work runs on its own goroutine.
type Service struct {
	cfg      Config
	contacts store.Contacts
	events   Events
	auth     Authorizer
	pw       PasswordChecker
	users    UserDirectory
	groups   GroupPeers
	log      *zap.Logger
	phones   *phone.Normalizer
	norm     *normalizer
	books    *books
	rcs      *rcsCache
	carddav  *carddav.Handler
	metrics  *metrics
	now      func() time.Time
}

// New returns a Service; cfg gets its defaults. reg may be nil.
func New(cfg Config, deps Deps, log *zap.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("addressbook: config: %w", err)
	}
	cfg = cfg.WithDefaults()
	if deps.Contacts == nil || deps.Events == nil || deps.Auth == nil {
		return nil, errors.New("addressbook: Contacts, Events and Auth are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	ph, err := phone.NewNormalizer(cfg.DefaultRegion)
	if err != nil {
		return nil, fmt.Errorf("addressbook: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, contacts: deps.Contacts, events: deps.Events, auth: deps.Auth, pw: deps.Passwords,
		users: deps.Users, groups: deps.Groups, log: log.Named("addressbook"), phones: ph,
		norm:    &normalizer{phones: ph, maxPhoto: cfg.MaxPhotoBytes},
		books:   newBooks(cfg.IndexCacheUsers),
		rcs:     newRCSCache(rcsCacheSize, rcsCacheTTL),
		metrics: m,
		now:     time.Now,
	}
	m.cachedUsers = func() float64 { return float64(s.books.len()) }
	cb := cardBook{s}
	s.carddav = carddav.New(carddav.Config{MaxCardBytes: int64(s.maxCardBytes())}, cb, cb, cb, s.log)
	return s, nil
}

// Routes registers the REST API on mux (Go 1.22 patterns). The literal
// segments (changes, lookup, duplicates, suggestions) are more specific
// than {id}, and the ":batch"-style paths are distinct segments.
//
//	GET    /v1/contacts                   list (keyset pages) or search (?q=)
//	POST   /v1/contacts                   create
//	GET    /v1/contacts/{id}              read (ETag = version)
//	PUT    /v1/contacts/{id}              replace (If-Match)
//	PATCH  /v1/contacts/{id}              merge patch, RFC 7396 (If-Match)
//	DELETE /v1/contacts/{id}              delete (If-Match), leaves a tombstone
//	POST   /v1/contacts:batch             bulk upserts and deletes, per-item results
//	GET    /v1/contacts/changes           incremental sync (?since=TOKEN)
//	GET    /v1/contacts/lookup            caller ID (?number=)
//	GET    /v1/contacts/duplicates        likely duplicates with scores
//	POST   /v1/contacts:merge             merge duplicates
//	POST   /v1/contacts/{id}/interactions record a call or message
//	GET    /v1/contacts/suggestions       people to add, with reasons
//	POST   /v1/contacts:import            vCard 3.0/4.0 file, per-card results
//	GET    /v1/contacts:export            the whole book as vCard (?version=3.0|4.0)
//	*      /carddav/…, /.well-known/carddav  CardDAV (Basic auth through Deps.Passwords)
func (s *Service) Routes(mux *http.ServeMux) {
	read := func(h http.HandlerFunc) http.Handler { return s.auth.Require(PermRead, h) }
	write := func(h http.HandlerFunc) http.Handler { return s.auth.Require(PermWrite, h) }
	mux.Handle("GET /v1/contacts", read(s.handleList))
	mux.Handle("POST /v1/contacts", write(s.handleCreate))
	mux.Handle("GET /v1/contacts/{id}", read(s.handleGet))
	mux.Handle("PUT /v1/contacts/{id}", write(s.handlePut))
	mux.Handle("PATCH /v1/contacts/{id}", write(s.handlePatch))
	mux.Handle("DELETE /v1/contacts/{id}", write(s.handleDelete))
	mux.Handle("POST /v1/contacts:batch", write(s.handleBatch))
	mux.Handle("GET /v1/contacts/changes", read(s.handleChanges))
	mux.Handle("GET /v1/contacts/lookup", read(s.handleLookup))
	mux.Handle("GET /v1/contacts/duplicates", read(s.handleDuplicates))
	mux.Handle("POST /v1/contacts:merge", write(s.handleMerge))
	mux.Handle("POST /v1/contacts/{id}/interactions", write(s.handleInteraction))
	mux.Handle("GET /v1/contacts/suggestions", read(s.handleSuggestions))
	mux.Handle("POST /v1/contacts:import", write(s.handleImport))
	mux.Handle("GET /v1/contacts:export", read(s.handleExport))
	s.carddav.Routes(mux)
}

// user returns the owner of the book a request acts on: the caller.
func (s *Service) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	sub, ok := s.auth.Subject(r.Context())
	if !ok || sub.UserID == "" {
		problem.Error(w, http.StatusUnauthorized, "not authenticated")
		return "", false
	}
	return sub.UserID, true
}

// decodeJSON reads one JSON value of at most max bytes into dst, refusing
// unknown fields, and writes the problem (415, 413, 400) when it cannot.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, max int64, types ...string) bool {
	if len(types) == 0 {
		types = []string{"application/json"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !contains(types, mt) {
		problem.Error(w, http.StatusUnsupportedMediaType, "Content-Type must be "+strings.Join(types, " or "))
		return false
	}
	if r.ContentLength > max {
		tooLarge(w, fmt.Sprintf("body larger than %d bytes", max))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil {
		if err = dec.Decode(&struct{}{}); errors.Is(err, io.EOF) {
			return true
		} else if err == nil {
			err = errors.New("trailing data after the JSON value")
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		tooLarge(w, fmt.Sprintf("body larger than %d bytes", max))
		return false
	}
	problem.Error(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func tooLarge(w http.ResponseWriter, detail string) {
	problem.Write(w, problem.Details{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// etag is the strong entity tag of a contact version (RFC 9110 §8.8.3).
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// ifMatch parses If-Match: the version it names, any for "*", ok false
// when the header is absent. A tag that is not one of our versions (weak,
// or foreign) yields version 0, which never matches.
func ifMatch(r *http.Request) (version uint64, any, ok bool) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, false, false
	}
	if v == "*" {
		return 0, true, true
	}
	// A list: the first tag that parses decides (clients send one).
	for _, tag := range strings.Split(v, ",") {
		tag = strings.TrimSpace(tag)
		if n, err := strconv.ParseUint(strings.Trim(tag, `"`), 10, 64); err == nil && strings.HasPrefix(tag, `"`) &&
			strings.HasSuffix(tag, `"`) && len(tag) > 2 {
			return n, false, true
		}
	}
	return 0, false, true
}

// fail is the one place where an error of these routes becomes a status.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve) && ve.PhotoLarge:
		problem.Write(w, problem.Details{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail:     fmt.Sprintf("photo larger than %d bytes", s.cfg.MaxPhotoBytes),
			Extensions: map[string]any{"errors": ve.Fields}})
	case errors.As(err, &ve):
		problem.Write(w, problem.Details{Type: ProblemInvalidContact, Title: "Invalid contact",
			Status: http.StatusBadRequest, Detail: "the contact has invalid fields",
			Extensions: map[string]any{"errors": ve.Fields}})
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		problem.Error(w, http.StatusNotFound, "no such contact")
	case errors.Is(err, ErrIfMatchRequired):
		problem.Write(w, problem.Details{Type: ProblemIfMatchRequired, Status: http.StatusPreconditionRequired,
			Detail: "send If-Match with the ETag you last read (RFC 6585 §3)"})
	case errors.Is(err, store.ErrContactLimit):
		problem.Write(w, problem.Details{Type: ProblemContactLimit, Title: "Contact limit reached",
			Status: http.StatusConflict, Detail: fmt.Sprintf("an address book holds at most %d contacts", s.cfg.MaxContacts)})
	case errors.Is(err, store.ErrExists):
		problem.Write(w, problem.Details{Type: ProblemContactExists, Status: http.StatusConflict,
			Detail: "a contact with this id exists; read it and send If-Match"})
	case errors.Is(err, ErrSyncToken), errors.Is(err, store.ErrCursorExpired):
		problem.Write(w, problem.Details{Type: ProblemSyncTokenExpired, Title: "Sync token expired",
			Status: http.StatusGone, Detail: "the sync token is unknown or too old; list all contacts and sync from the new token"})
	case errors.Is(err, context.Canceled):
		problem.Error(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.log.Error("addressbook request failed", zap.String("route", r.Pattern), zap.Error(err))
		problem.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// conflict answers 412 with the current representation (and its ETag) so
// the client can merge and retry with the new version.
func (s *Service) conflict(w http.ResponseWriter, r *http.Request, user, id string) {
	s.metrics.conflicts.Inc()
	c, err := s.contacts.Get(r.Context(), user, id)
	if err != nil || c.Deleted {
		s.fail(w, r, ErrNotFound)
		return
	}
	v := s.view(r.Context(), user, &c)
	w.Header().Set("ETag", etag(c.Version))
	problem.Write(w, problem.Details{Type: ProblemVersionMismatch, Title: "Version mismatch",
		Status:     http.StatusPreconditionFailed,
		Detail:     fmt.Sprintf("the contact is at version %d; merge your change into current and retry with If-Match: %s", c.Version, etag(c.Version)),
		Extensions: map[string]any{"current": v}})
}
