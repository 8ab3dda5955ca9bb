package b2bua

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/emiago/sipgo/sip"
)

// hasControl reports whether s holds a byte that must never reach a header
// line: CR, LF, NUL, any other C0 control except HTAB, or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return true
		}
	}
	return false
}

// parseURI parses a SIP or SIPS URI given bare or as "<uri>", refusing
// anything that could change the shape of the message it is written into.
func parseURI(s string) (sip.Uri, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	var u sip.Uri
	if s == "" {
		return u, fmt.Errorf("%w: empty uri", ErrInvalidTarget)
	}
	if hasControl(s) || strings.ContainsAny(s, " \t<>,\"\\") {
		return u, fmt.Errorf("%w: uri %q: forbidden character", ErrInvalidTarget, s)
	}
	if err := sip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("%w: uri %q: %w", ErrInvalidTarget, s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
	default:
		return u, fmt.Errorf("%w: uri %q: scheme must be sip or sips", ErrInvalidTarget, s)
	}
	if u.Host == "" || u.Wildcard {
		return u, fmt.Errorf("%w: uri %q: no host", ErrInvalidTarget, s)
	}
	return u, nil
}

// transportName maps a configured or URI transport to sipgo's upper-case
// network name; "" means unknown.
func transportName(s string) string {
	switch strings.ToLower(s) {
	case "udp":
		return "UDP"
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	case "ws":
		return "WS"
	case "wss":
		return "WSS"
	}
	return ""
}

// target is a validated Target, ready to build a B-leg from.
type target struct {
	Target
	uri       sip.Uri
	route     []sip.Uri
	dest      string
	transport string // UDP, TCP, TLS, WS, WSS
}

// parseTarget validates every value of t that will be written into a
// request. It never trusts stored data: a binding could hold anything.
func parseTarget(t Target) (target, error) {
	pt := target{Target: t}
	var err error
	if pt.uri, err = parseURI(t.RequestURI); err != nil {
		return pt, fmt.Errorf("request uri: %w", err)
	}
	for i, r := range t.Route {
		u, err := parseURI(r)
		if err != nil {
			return pt, fmt.Errorf("route[%d]: %w", i, err)
		}
		pt.route = append(pt.route, u)
	}
	if t.Destination != "" {
		host, port, err := net.SplitHostPort(t.Destination)
		if err != nil || host == "" || hasControl(t.Destination) || strings.ContainsAny(host, " ,;<>\"") {
			return pt, fmt.Errorf("%w: destination %q: want host:port", ErrInvalidTarget, t.Destination)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return pt, fmt.Errorf("%w: destination %q: bad port", ErrInvalidTarget, t.Destination)
		}
		pt.dest = net.JoinHostPort(host, port)
	}
	switch {
	case t.Transport != "":
		pt.transport = transportName(t.Transport)
		if pt.transport == "" {
			return pt, fmt.Errorf("%w: transport %q: want udp, tcp, tls, ws or wss", ErrInvalidTarget, t.Transport)
		}
	default:
		u := pt.uri
		if len(pt.route) > 0 {
			u = pt.route[0]
		}
		pt.transport = "UDP"
		if v, ok := u.UriParams.Get("transport"); ok {
			if tp := transportName(v); tp != "" {
				pt.transport = tp
			}
		}
		if strings.EqualFold(u.Scheme, "sips") && pt.transport == "TCP" {
			pt.transport = "TLS"
		}
	}
	return pt, nil
}

// CanonicalAOR returns the address-of-record of a SIP URI as the registrar
// keys it: "sip:user@host", host lower-cased, sips folded to sip, port,
// parameters and headers dropped.
func CanonicalAOR(u sip.Uri) (string, error) {
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips", "":
	default:
		return "", &StatusError{Code: 416, Reason: "Unsupported URI Scheme",
			Err: fmt.Errorf("%w: scheme %q", ErrBadRequest, u.Scheme)}
	}
	if u.User == "" || u.Host == "" || hasControl(u.User) || hasControl(u.Host) ||
		strings.ContainsAny(u.User, " <>\"@;?:/") || strings.ContainsAny(u.Host, " <>\"@;?,/") {
		return "", &StatusError{Code: sip.StatusNotFound, Reason: "Not Found",
			Err: fmt.Errorf("%w: no user in request uri", ErrBadRequest)}
	}
	return "sip:" + u.User + "@" + strings.ToLower(u.Host), nil
}

// reasonHeader builds an RFC 3326 Reason header.
func reasonHeader(code int, text string) sip.Header {
	return sip.NewHeader("Reason", "SIP;cause="+strconv.Itoa(code)+`;text="`+quotedText(text)+`"`)
}

// quotedText keeps what is safe inside a quoted-string.
func quotedText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// copyHeaders appends to dst a clone of every header of src named in names,
// skipping values that could inject lines.
func copyHeaders(dst sip.Message, src sip.Message, names ...string) {
	for _, name := range names {
		for _, h := range sipmsg.Headers(src, name) {
			if hasControl(h.Value()) {
				continue
			}
			dst.AppendHeader(sip.HeaderClone(h))
		}
	}
}

// Headers a B-leg INVITE takes from the caller's INVITE. Identity
// (P-Asserted-Identity) and charging come only from the Classifier.
var inviteCopied = []string{
	"Accept-Contact", "Conversation-ID", "Contribution-ID", "InReplyTo-Contribution-ID",
	"Session-Expires", "Min-SE", "Privacy", "Subject", "Priority", "Accept", "Content-Disposition",
}

// Headers relayed with an in-dialog request, and with responses.
var (
	requestCopied = []string{
		"Content-Disposition", "Event", "Subscription-State", "Refer-To", "Referred-By", "Refer-Sub",
		"Session-Expires", "Min-SE", "Reason", "Info-Package", "Recv-Info", "Accept", "Allow-Events", "Privacy",
	}
	responseCopied = []string{
		"Content-Disposition", "Session-Expires", "Min-SE", "Retry-After", "Warning", "Reason",
		"Unsupported", "Allow-Events", "Accept", "Recv-Info",
	}
)

// Option tags this package lets cross between legs. 100rel and
// precondition never cross: we do not send reliable provisionals upstream
// (RFC 3262 is handled per leg), and preconditions need them.
var optionTags = map[string]bool{"timer": true, "replaces": true, "norefersub": true, "histinfo": true}

// filteredTags returns the option tags of every name header of src that we
// pass on, joined, or "".
func filteredTags(src sip.Message, name string) string {
	var out []string
	for _, h := range sipmsg.Headers(src, name) {
		for _, t := range strings.Split(h.Value(), ",") {
			t = strings.ToLower(strings.TrimSpace(t))
			if optionTags[t] && !containsString(out, t) {
				out = append(out, t)
			}
		}
	}
	return strings.Join(out, ", ")
}

// copyTags relays the Supported and Require option tags we support.
func copyTags(dst, src sip.Message) {
	for _, name := range []string{"Supported", "Require"} {
		if v := filteredTags(src, name); v != "" {
			dst.AppendHeader(sip.NewHeader(name, v))
		}
	}
}

// unsupportedRequire returns the Require option tags of req we cannot
// honour (RFC 3261 §8.2.2.3), joined, or "".
func unsupportedRequire(req *sip.Request) string {
	var out []string
	for _, h := range sipmsg.Headers(req, "Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			t = strings.TrimSpace(t)
			if t == "" || strings.EqualFold(t, "timer") {
				continue
			}
			if hasControl(t) || strings.ContainsAny(t, " ;<>\"") {
				t = "unknown"
			}
			out = append(out, t)
		}
	}
	return strings.Join(out, ", ")
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hasTag reports whether h lists option tag (case-insensitive) in any of
// msg's headers named name.
func hasTag(msg sip.Message, name, tag string) bool {
	for _, h := range sipmsg.Headers(msg, name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// sdpBody returns the body of msg when it is an SDP (application/sdp), else
// nil. Other bodies (multipart, DTMF relay) cross unchanged.
func sdpBody(msg sip.Message) []byte {
	body := msg.Body()
	if len(body) == 0 {
		return nil
	}
	ct := contentType(msg)
	if ct == nil {
		return nil
	}
	v := ct.Value()
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	if !strings.EqualFold(strings.TrimSpace(v), "application/sdp") {
		return nil
	}
	return body
}

var sdpType = sip.ContentTypeHeader("application/sdp")

// contentType returns the Content-Type header of msg, or nil.
func contentType(msg sip.Message) sip.Header {
	if msg == nil {
		return nil
	}
	if hs := sipmsg.Headers(msg, "Content-Type"); len(hs) > 0 {
		return hs[0]
	}
	return nil
}

// setBody puts body on msg with the Content-Type of src (or SDP when sdp).
func setBody(dst, src sip.Message, body []byte, sdp bool) {
	if len(body) == 0 {
		return
	}
	switch {
	case sdp:
		ct := sdpType
		dst.AppendHeader(&ct)
	default:
		if ct := contentType(src); ct != nil && !hasControl(ct.Value()) {
			dst.AppendHeader(sip.HeaderClone(ct))
		}
	}
	dst.SetBody(body)
}

// routeSet returns the URIs of every header named name in msg, in order,
// or reversed (a UAC builds its route set from Record-Route bottom-up,
// RFC 3261 §12.1.2).
func routeSet(msg sip.Message, name string, reverse bool) []sip.Uri {
	hs := sipmsg.Headers(msg, name)
	if len(hs) == 0 {
		return nil
	}
	out := make([]sip.Uri, 0, len(hs))
	for _, h := range hs {
		var u sip.Uri
		switch r := h.(type) {
		case *sip.RecordRouteHeader:
			u = r.Address
		case *sip.RouteHeader:
			u = r.Address
		default:
			continue
		}
		out = append(out, *u.Clone())
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// tagOf returns the tag parameter of a From or To header, or "".
func tagOf(params sip.HeaderParams) string {
	v, _ := params.Get("tag")
	return v
}
