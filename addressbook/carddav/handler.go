package carddav

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"

	gocarddav "github.com/emersion/go-webdav/carddav"
	"go.uber.org/zap"

	"github.com/convergo/convergo/internal/problem"
)

// Defaults of Config.
const (
	DefaultPrefix   = "/carddav"
	DefaultRealm    = "convergo"
	DefaultBookName = "Contacts"
	// maxReportBytes caps the XML body of PROPFIND and REPORT requests.
	maxReportBytes = 1 << 20
)

// Config tunes a Handler; zero fields get the defaults.
type Config struct {
	Prefix       string // mount point, no trailing slash; default /carddav
	Realm        string // Basic realm; default convergo
	BookName     string // display name of the address book; default Contacts
	MaxCardBytes int64  // largest card a PUT may send (the collection's max-resource-size)
}

// Handler serves CardDAV for every user under Config.Prefix plus the
// /.well-known/carddav redirect (RFC 6764 §5). Safe for concurrent use.
type Handler struct {
	cfg    Config
	auth   Authenticator
	book   Book
	writer Writer
	log    *zap.Logger
	dav    *gocarddav.Handler
}

// New returns a Handler.
func New(cfg Config, auth Authenticator, book Book, writer Writer, log *zap.Logger) *Handler {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.BookName == "" {
		cfg.BookName = DefaultBookName
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{cfg: cfg, auth: auth, book: book, writer: writer, log: log.Named("carddav")}
	h.dav = &gocarddav.Handler{Backend: &davBackend{h: h}, Prefix: cfg.Prefix}
	return h
}

// Routes registers the handler on mux: Prefix/ and /.well-known/carddav.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle(h.cfg.Prefix+"/", h)
	mux.Handle("/.well-known/carddav", h)
}

type ctxKey int

const (
	keyUser ctxKey = iota
	keyIfMatch
	keyWrite
)

func userFrom(ctx context.Context) string {
	u, _ := ctx.Value(keyUser).(string)
	return u
}

// ServeHTTP authenticates, checks that the path belongs to the caller,
// then serves sync-collection and the address-book PROPFIND itself and
// everything else through go-webdav.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/carddav" {
		http.Redirect(w, r, h.cfg.Prefix+"/", http.StatusMovedPermanently)
		return
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		h.challenge(w)
		return
	}
	src, _ := netip.ParseAddrPort(r.RemoteAddr)
	user, canWrite, err := h.auth.Authenticate(r.Context(), name, pass, src.Addr())
	if err != nil {
		h.challenge(w)
		return
	}
	switch r.Method {
	case http.MethodPut, http.MethodDelete, "PROPPATCH", "MKCOL", "COPY", "MOVE":
		if !canWrite {
			problem.Error(w, http.StatusForbidden, "this account may not change the address book")
			return
		}
	}
	p := path.Clean(r.URL.Path)
	rest, ok := strings.CutPrefix(p, h.cfg.Prefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		http.NotFound(w, r)
		return
	}
	if segs := strings.Split(strings.Trim(rest, "/"), "/"); segs[0] != "" {
		if owner, err := url.PathUnescape(segs[0]); err != nil || owner != user {
			http.NotFound(w, r) // another user's book: do not say it exists
			return
		}
	}
	ctx := context.WithValue(r.Context(), keyUser, user)
	ctx = context.WithValue(ctx, keyIfMatch, r.Header.Get("If-Match"))
	ctx = context.WithValue(ctx, keyWrite, canWrite)
	r = r.WithContext(ctx)
	if h.isBook(p) && (r.Method == "PROPFIND" || r.Method == "REPORT") {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBytes))
		if err != nil {
			http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		switch {
		case r.Method == "PROPFIND":
			h.propfindBook(w, r, user, canWrite, body)
			return
		case rootElement(body) == (xml.Name{Space: "DAV:", Local: "sync-collection"}):
			h.syncCollection(w, r, user, body)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	h.dav.ServeHTTP(w, r)
}

func (h *Handler) challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+h.cfg.Realm+`", charset="UTF-8"`) // RFC 7617
	problem.Error(w, http.StatusUnauthorized, "CardDAV needs Basic credentials")
}

// rootElement returns the name of the first element of an XML document.
func rootElement(body []byte) xml.Name {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.Name{}
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name
		}
	}
}

// Paths.

func (h *Handler) principal(user string) string {
	return h.cfg.Prefix + "/" + url.PathEscape(user) + "/"
}
func (h *Handler) homeSet(user string) string  { return h.principal(user) + "addressbooks/" }
func (h *Handler) bookPath(user string) string { return h.homeSet(user) + "default/" }
func (h *Handler) objectPath(user, id string) string {
	return h.bookPath(user) + url.PathEscape(id) + ".vcf"
}

// isBook reports whether the cleaned path p is some user's address book.
func (h *Handler) isBook(p string) bool {
	rest, ok := strings.CutPrefix(p, h.cfg.Prefix+"/")
	if !ok {
		return false
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	return len(segs) == 3 && segs[1] == "addressbooks" && segs[2] == "default"
}

// objectID returns the contact ID of an address-object path of user.
func (h *Handler) objectID(user, p string) (string, bool) {
	name, ok := strings.CutPrefix(path.Clean(p), strings.TrimSuffix(h.bookPath(user), "/")+"/")
	if !ok || strings.Contains(name, "/") {
		return "", false
	}
	name = strings.TrimSuffix(name, ".vcf")
	id, err := url.PathUnescape(name)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}
