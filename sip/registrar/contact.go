package registrar

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/store"
)

// Limits on what one Contact may carry.
const (
	maxURILen      = 1024
	maxInstanceLen = 256
	maxParams      = 32
	maxParamLen    = 512
)

// contactSpec is one validated Contact of a REGISTER (or of an embedded
// message of a third-party REGISTER).
type contactSpec struct {
	uri      sip.Uri           // contact URI, URI parameters kept
	instance string            // +sip.instance without quotes and <>
	regID    int               // RFC 5626 reg-id; 0 when absent or without instance
	expires  int64             // expires parameter in seconds; -1 when absent
	pubGRUU  string            // pub-gruu parameter (only from an S-CSCF's 200)
	params   map[string]string // other header parameters: feature tags, q
	key      string            // store.BindingKey
}

// parseContact validates one Contact header value. Errors are 400s whose
// reason names the problem.
func parseContact(h *sip.ContactHeader) (contactSpec, error) {
	c := contactSpec{expires: -1}
	u := h.Address
	switch {
	case u.Wildcard:
		return c, badRequest("Invalid Contact: * Must Be Alone", errors.New("wildcard contact among others"))
	case u.Scheme != "sip" && u.Scheme != "sips":
		return c, badRequest("Invalid Contact URI Scheme", errors.New("contact scheme "+strconv.Quote(u.Scheme)))
	case u.Host == "":
		return c, badRequest("Invalid Contact URI: Missing Host", nil)
	case !validHost(u.Host):
		return c, badRequest("Invalid Contact URI: Bad Host", errors.New("contact host "+strconv.Quote(u.Host)))
	case !validUser(u.User) || !validUser(u.Password):
		return c, badRequest("Invalid Contact URI: Bad User", errors.New("contact user "+strconv.Quote(u.User)))
	}
	c.uri = *u.Clone()
	c.uri.Headers = nil // RFC 3261 §10.3: URI headers are not part of a binding
	if s := c.uri.String(); len(s) > maxURILen || strings.ContainsAny(s, "\r\n\x00") {
		return c, badRequest("Invalid Contact URI: Too Long", nil)
	}
	params := contactParams(h.Params)
	if len(params) > maxParams {
		return c, badRequest("Invalid Contact: Too Many Parameters", nil)
	}
	var regIDRaw string
	hasRegID := false
	for _, kv := range params {
		k := strings.ToLower(kv.K)
		if len(kv.K)+len(kv.V) > maxParamLen || strings.ContainsAny(kv.K+kv.V, "\r\n\x00") {
			return c, badRequest("Invalid Contact: Parameter Too Long", nil)
		}
		switch k {
		case "expires":
			v, err := parseDelta(kv.V)
			if err != nil {
				return c, badRequest("Invalid Contact Expires", err)
			}
			c.expires = v
		case "+sip.instance":
			inst, err := normalizeInstance(kv.V)
			if err != nil {
				return c, badRequest("Invalid +sip.instance", err)
			}
			c.instance = inst
		case "reg-id":
			regIDRaw, hasRegID = kv.V, true
		case "pub-gruu":
			c.pubGRUU = strings.Trim(kv.V, `"`)
		case "temp-gruu", "received":
			// Registrar-assigned (RFC 5627) or a hint we never trust.
		default:
			if c.params == nil {
				c.params = make(map[string]string)
			}
			c.params[k] = kv.V
		}
	}
	if hasRegID {
		n, err := strconv.Atoi(regIDRaw)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return c, badRequest("Invalid reg-id", errors.New("reg-id "+strconv.Quote(regIDRaw)))
		}
		if c.instance != "" { // RFC 5626 §6: reg-id without +sip.instance is ignored
			c.regID = n
		}
	}
	// The URI is stored as text and parsed again to build requests and
	// responses: refuse what does not survive that (sipgo's printer and
	// parser disagree on some exotic inputs).
	var back sip.Uri
	backParams := sip.NewParams()
	if _, err := sip.ParseAddressValue("<"+c.uri.String()+">", &back, &backParams); err != nil || keyURI(back) != keyURI(c.uri) {
		return c, badRequest("Invalid Contact URI", errors.New("contact URI does not round-trip"))
	}
	c.key = store.BindingKey(c.instance, c.regID, keyURI(c.uri))
	return c, nil
}

// contactParams undoes a sipgo v1.7.3 parser flaw: header parameters are
// split on every ';', also inside quoted strings, so
// pub-gruu="sip:a@b;gr=urn:x" arrives as pub-gruu=`"sip:a@b` and
// gr=`urn:x"`. Parameters are re-joined until the quote closes.
func contactParams(ps sip.HeaderParams) sip.HeaderParams {
	out := make(sip.HeaderParams, 0, len(ps))
	for i := 0; i < len(ps); i++ {
		kv := ps[i]
		if strings.HasPrefix(kv.V, `"`) {
			v := kv.V
			for !closedQuote(v) && i+1 < len(ps) {
				i++
				v += ";" + ps[i].K
				if ps[i].V != "" {
					v += "=" + ps[i].V
				}
			}
			kv.V = v
		}
		out = append(out, kv)
	}
	return out
}

// closedQuote reports whether the quoted string v starts with is closed.
func closedQuote(v string) bool {
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	escaped := false
	for i := 1; i < len(v); i++ {
		switch {
		case escaped:
			escaped = false
		case v[i] == '\\':
			escaped = true
		case v[i] == '"':
			return true
		}
	}
	return false
}

// keyURI is the contact URI in the form used as a binding key: scheme and
// host lower-cased (RFC 3261 §19.1.4 compares them without case).
func keyURI(u sip.Uri) string {
	k := *u.Clone()
	k.Scheme = strings.ToLower(k.Scheme)
	k.Host = strings.ToLower(k.Host)
	return k.String()
}

// validHost accepts a hostname, an IPv4 address or a bracketed IPv6 address.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	if strings.HasPrefix(h, "[") {
		return strings.HasSuffix(h, "]") && len(h) > 2 && strings.Trim(h[1:len(h)-1], "0123456789abcdefABCDEF:.%") == ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validUser accepts the characters of an RFC 3261 §25.1 user part:
// unreserved, escaped (%XX) and user-unreserved.
func validUser(u string) bool {
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~*'()&=+$,;?/%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// normalizeInstance strips the quotes and angle brackets around a
// +sip.instance value (RFC 5626 §4.1: "<urn:...>" inside a quoted string;
// vendors differ) and rejects what cannot be a URN.
func normalizeInstance(v string) (string, error) {
	s := strings.TrimSpace(v)
	s = strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	switch {
	case s == "":
		return "", errors.New("empty instance")
	case len(s) > maxInstanceLen:
		return "", errors.New("instance too long")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>;,\`, c) >= 0 {
			return "", errors.New("instance has a forbidden character")
		}
	}
	return s, nil
}

// parseDelta parses delta-seconds (RFC 3261 §25.1). Values beyond 2^32-1
// are taken as 2^32-1, as the RFC asks of expiry values.
func parseDelta(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 20 || strings.Trim(v, "0123456789") != "" {
		return 0, errors.New("not delta-seconds: " + strconv.Quote(v))
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint32 {
		return math.MaxUint32, nil
	}
	return int64(n), nil
}

// pubGRUU is the public GRUU of an instance of aor (RFC 5627 §3.1).
func pubGRUU(aor, instance string) string { return aor + ";gr=" + instance }

// contactHeader renders a binding for the Contact list of a 200: the URI,
// its remaining expiry, +sip.instance and reg-id (RFC 5626 §6), and the
// pub-gruu when gruu is true (RFC 5627 §5.1).
func contactHeader(b store.Binding, remaining int64, gruu bool) *sip.ContactHeader {
	h := &sip.ContactHeader{Params: sip.NewParams()}
	if err := sip.ParseUri(b.Contact, &h.Address); err != nil {
		h.Address = sip.Uri{Scheme: "sip", Host: "invalid"} // stored contacts were validated
	}
	h.Params.Add("expires", strconv.FormatInt(remaining, 10))
	if b.Instance != "" {
		h.Params.Add("+sip.instance", `"<`+b.Instance+`>"`)
		if b.RegID > 0 {
			h.Params.Add("reg-id", strconv.Itoa(b.RegID))
		}
		gr := b.Params["gruu"]
		if gr == "" {
			gr = pubGRUU(b.AOR, b.Instance)
		}
		if gruu {
			h.Params.Add("pub-gruu", `"`+gr+`"`)
		}
	}
	return h
}

// hasOptionTag reports whether a Supported/Require header lists tag.
func hasOptionTag(hs []sip.Header, tag string) bool {
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}
