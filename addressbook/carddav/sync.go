package carddav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/convergo/convergo/addressbook/vcard"
	"github.com/convergo/convergo/store"
)

// Namespaces of the properties served here.
const (
	nsDAV  = "DAV:"
	nsCard = "urn:ietf:params:xml:ns:carddav"
	nsCS   = "http://calendarserver.org/ns/" // getctag, read by older clients
)

// tokenPrefix makes the change-feed token a URI, as RFC 6578 §3.2 wants.
const tokenPrefix = "https://convergo.dev/ns/sync/"

// propReq is the prop list of a PROPFIND or REPORT body.
type propReq struct {
	Names []struct {
		XMLName xml.Name
	} `xml:",any"`
}

type propfindReq struct {
	XMLName  xml.Name  `xml:"DAV: propfind"`
	AllProp  *struct{} `xml:"DAV: allprop"`
	PropName *struct{} `xml:"DAV: propname"`
	Prop     *propReq  `xml:"DAV: prop"`
}

type syncReq struct {
	XMLName   xml.Name `xml:"DAV: sync-collection"`
	SyncToken string   `xml:"DAV: sync-token"`
	SyncLevel string   `xml:"DAV: sync-level"`
	Limit     *struct {
		NResults int `xml:"DAV: nresults"`
	} `xml:"DAV: limit"`
	Prop *propReq `xml:"DAV: prop"`
}

func (p *propReq) names() []xml.Name {
	if p == nil {
		return nil
	}
	out := make([]xml.Name, 0, len(p.Names))
	for _, n := range p.Names {
		out = append(out, n.XMLName)
	}
	return out
}

// ms builds a DAV:multistatus body (RFC 4918 §14.16).
type ms struct{ b strings.Builder }

func newMS() *ms {
	m := &ms{}
	m.b.WriteString(xml.Header)
	m.b.WriteString(`<d:multistatus xmlns:d="DAV:" xmlns:card="` + nsCard + `" xmlns:cs="` + nsCS + `">`)
	return m
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// prefixed writes the element name with the prefix of its namespace, or
// declares the namespace on the element for any other one.
func qname(n xml.Name) (open, close string) {
	switch n.Space {
	case nsDAV:
		return "d:" + n.Local, "d:" + n.Local
	case nsCard:
		return "card:" + n.Local, "card:" + n.Local
	case nsCS:
		return "cs:" + n.Local, "cs:" + n.Local
	}
	return `x:` + n.Local + ` xmlns:x="` + esc(n.Space) + `"`, "x:" + n.Local
}

// prop is one property: its name and inner XML.
type prop struct {
	name  xml.Name
	inner string
}

// response writes one DAV:response with a 200 propstat for found and a
// 404 propstat for missing names.
func (m *ms) response(href string, found []prop, missing []xml.Name) {
	m.b.WriteString("<d:response><d:href>" + esc(href) + "</d:href>")
	if len(found) > 0 {
		m.b.WriteString("<d:propstat><d:prop>")
		for _, p := range found {
			open, close := qname(p.name)
			m.b.WriteString("<" + open + ">" + p.inner + "</" + close + ">")
		}
		m.b.WriteString("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>")
	}
	if len(missing) > 0 {
		m.b.WriteString("<d:propstat><d:prop>")
		for _, n := range missing {
			open, _ := qname(n)
			m.b.WriteString("<" + open + "/>")
		}
		m.b.WriteString("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
	}
	m.b.WriteString("</d:response>")
}

// status writes a DAV:response carrying only a status (a deleted member,
// or the truncation marker of RFC 6578 §3.6).
func (m *ms) status(href string, code int) {
	m.b.WriteString("<d:response><d:href>" + esc(href) + "</d:href><d:status>HTTP/1.1 " +
		strconv.Itoa(code) + " " + http.StatusText(code) + "</d:status></d:response>")
}

func (m *ms) send(w http.ResponseWriter, token string) {
	if token != "" {
		m.b.WriteString("<d:sync-token>" + esc(tokenPrefix+token) + "</d:sync-token>")
	}
	m.b.WriteString("</d:multistatus>")
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write([]byte(m.b.String()))
}

func davName(local string) xml.Name  { return xml.Name{Space: nsDAV, Local: local} }
func cardName(local string) xml.Name { return xml.Name{Space: nsCard, Local: local} }

// bookProps returns the properties of the address-book collection.
func (h *Handler) bookProps(user, token string, canWrite bool) []prop {
	href := "<d:href>" + esc(h.principal(user)) + "</d:href>"
	privs := "<d:privilege><d:read/></d:privilege><d:privilege><d:read-current-user-privilege-set/></d:privilege>"
	if canWrite {
		privs += "<d:privilege><d:write/></d:privilege><d:privilege><d:write-content/></d:privilege>" +
			"<d:privilege><d:bind/></d:privilege><d:privilege><d:unbind/></d:privilege>"
	}
	reports := ""
	for _, r := range []string{"card:addressbook-query", "card:addressbook-multiget", "d:sync-collection"} {
		reports += "<d:supported-report><d:report><" + r + "/></d:report></d:supported-report>"
	}
	props := []prop{
		{davName("resourcetype"), "<d:collection/><card:addressbook/>"},
		{davName("displayname"), esc(h.cfg.BookName)},
		{davName("current-user-principal"), href},
		{davName("owner"), href},
		{davName("sync-token"), esc(tokenPrefix + token)},
		{xml.Name{Space: nsCS, Local: "getctag"}, esc(token)},
		{davName("supported-report-set"), reports},
		{davName("current-user-privilege-set"), privs},
		{cardName("addressbook-description"), "convergo network address book"},
		{cardName("supported-address-data"), `<card:address-data-type content-type="text/vcard" version="3.0"/>` +
			`<card:address-data-type content-type="text/vcard" version="4.0"/>`},
	}
	if h.cfg.MaxCardBytes > 0 {
		props = append(props, prop{cardName("max-resource-size"), strconv.FormatInt(h.cfg.MaxCardBytes, 10)})
	}
	return props
}

// memberProps returns the properties of one card; addressData also
// includes its vCard (REPORT only, RFC 6352 §10.4).
func (h *Handler) memberProps(c *store.Contact, addressData bool) []prop {
	props := []prop{
		{davName("getetag"), esc(`"` + strconv.FormatUint(c.Version, 10) + `"`)},
		{davName("getcontenttype"), "text/vcard; charset=utf-8"},
		{davName("resourcetype"), ""},
		{davName("getlastmodified"), esc(c.Updated.UTC().Format(http.TimeFormat))},
	}
	if addressData {
		var b strings.Builder
		if err := vcard.Encode(&b, *c, vcard.V3); err == nil {
			props = append(props, prop{cardName("address-data"), esc(b.String())})
		}
	}
	return props
}

// pick splits props into those named in want (all for allprop) and the
// names nobody serves; names only is PROPFIND propname.
func pick(props []prop, want []xml.Name, all, namesOnly bool) ([]prop, []xml.Name) {
	if all || namesOnly {
		out := make([]prop, 0, len(props))
		for _, p := range props {
			if namesOnly {
				p.inner = ""
			}
			out = append(out, p)
		}
		return out, nil
	}
	var found []prop
	var missing []xml.Name
	for _, n := range want {
		hit := false
		for _, p := range props {
			if p.name == n {
				found, hit = append(found, p), true
				break
			}
		}
		if !hit {
			missing = append(missing, n)
		}
	}
	return found, missing
}

// propfindBook answers PROPFIND on the address book (Depth 0 or 1), with
// the sync-token and supported-report-set go-webdav does not provide.
func (h *Handler) propfindBook(w http.ResponseWriter, r *http.Request, user string, canWrite bool, body []byte) {
	var req propfindReq
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xml.Unmarshal(body, &req); err != nil {
			http.Error(w, "malformed PROPFIND body", http.StatusBadRequest)
			return
		}
	}
	all := req.Prop == nil && req.PropName == nil // an empty body is allprop (RFC 4918 §9.1)
	names := req.Prop.names()
	depth := r.Header.Get("Depth")
	if depth == "" || depth == "infinity" {
		depth = "1" // a flat collection: infinity lists the same members
	}
	cs, token, err := h.book.Snapshot(r.Context(), user)
	if err != nil {
		h.log.Error("carddav propfind failed", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	m := newMS()
	found, missing := pick(h.bookProps(user, token, canWrite), names, all, req.PropName != nil)
	m.response(h.bookPath(user), found, missing)
	if depth != "0" {
		for i := range cs {
			found, missing := pick(h.memberProps(&cs[i], false), names, all, req.PropName != nil)
			m.response(h.objectPath(user, cs[i].ID), found, missing)
		}
	}
	m.send(w, "")
}

// syncCollection answers the sync-collection REPORT (RFC 6578 §3.2): with
// no token every card, else what changed after it (deleted cards as 404
// responses), and the new token.
func (h *Handler) syncCollection(w http.ResponseWriter, r *http.Request, user string, body []byte) {
	var req syncReq
	if err := xml.Unmarshal(body, &req); err != nil {
		http.Error(w, "malformed sync-collection body", http.StatusBadRequest)
		return
	}
	if lvl := strings.TrimSpace(req.SyncLevel); lvl != "1" && lvl != "infinite" {
		http.Error(w, "sync-level must be 1 or infinite", http.StatusBadRequest)
		return
	}
	names := req.Prop.names()
	wantData := false
	for _, n := range names {
		wantData = wantData || n == cardName("address-data")
	}
	token := strings.TrimSpace(req.SyncToken)
	m := newMS()
	var next string
	if token == "" {
		cs, tok, err := h.book.Snapshot(r.Context(), user)
		if err != nil {
			h.serverError(w, err)
			return
		}
		for i := range cs {
			found, missing := pick(h.memberProps(&cs[i], wantData), names, false, false)
			m.response(h.objectPath(user, cs[i].ID), found, missing)
		}
		next = tok
	} else {
		raw, ok := strings.CutPrefix(token, tokenPrefix)
		if !ok {
			h.invalidToken(w)
			return
		}
		limit := 0
		if req.Limit != nil && req.Limit.NResults > 0 {
			limit = req.Limit.NResults
		}
		cs, tok, more, err := h.book.Changes(r.Context(), user, raw, limit)
		if errors.Is(err, ErrSyncToken) {
			h.invalidToken(w)
			return
		}
		if err != nil {
			h.serverError(w, err)
			return
		}
		for i := range cs {
			if cs[i].Deleted {
				m.status(h.objectPath(user, cs[i].ID), http.StatusNotFound)
				continue
			}
			found, missing := pick(h.memberProps(&cs[i], wantData), names, false, false)
			m.response(h.objectPath(user, cs[i].ID), found, missing)
		}
		if more {
			m.status(h.bookPath(user), http.StatusInsufficientStorage) // truncated: ask again with the new token
		}
		next = tok
	}
	m.send(w, next)
}

// invalidToken is the DAV:valid-sync-token precondition failure (RFC 6578 §3.2).
func (h *Handler) invalidToken(w http.ResponseWriter) {
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(xml.Header + `<d:error xmlns:d="DAV:"><d:valid-sync-token/></d:error>`))
}

func (h *Handler) serverError(w http.ResponseWriter, err error) {
	h.log.Error("carddav sync failed", zap.Error(err))
	http.Error(w, "internal error", http.StatusInternalServerError)
}
