package auth

import (
	"errors"
	"strings"
)

// Limits of ParseAuthorization.
const (
	maxAuthorizationLen = 8 << 10
	maxAuthParams       = 32
)

// Credentials is one parsed Authorization header value (RFC 7235 §2.1,
// RFC 3261 §25.1): a scheme followed by either a token68 (Bearer) or a
// comma-separated list of auth-params (Digest).
type Credentials struct {
	Scheme string  // as sent; compare with Is
	Token  string  // token68 form; empty when Params are used
	Params []Param // in the order sent; names are unique ignoring case
}

// Param is one auth-param. Value has quoting and escapes removed.
type Param struct {
	Name   string
	Value  string
	Quoted bool // sent as a quoted-string
}

var (
	errAuthSyntax   = errors.New("auth: malformed Authorization header")
	errAuthTooLong  = errors.New("auth: Authorization header too long")
	errAuthDupParam = errors.New("auth: duplicate auth-param")
)

// ParseAuthorization parses an Authorization (or WWW-Authenticate) value.
// Whitespace is SP or HTAB; control characters are refused even inside
// quoted strings. Empty list elements are skipped (RFC 9110 §5.6.1).
func ParseAuthorization(v string) (Credentials, error) {
	var c Credentials
	if len(v) > maxAuthorizationLen {
		return c, errAuthTooLong
	}
	p := authParser{s: v}
	p.skipWS()
	c.Scheme = p.token()
	if c.Scheme == "" {
		return c, errAuthSyntax
	}
	if p.done() {
		return c, nil
	}
	if !p.ws() {
		return c, errAuthSyntax
	}
	p.skipWS()
	if p.done() {
		return c, nil
	}
	if rest := strings.TrimRight(p.s[p.i:], " \t"); isToken68(rest) {
		c.Token = rest
		return c, nil
	}
	for {
		p.skipWS()
		if p.done() {
			break
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		name := p.token()
		if name == "" {
			return Credentials{}, errAuthSyntax
		}
		p.skipWS()
		if p.peek() != '=' {
			return Credentials{}, errAuthSyntax
		}
		p.i++
		p.skipWS()
		prm := Param{Name: name}
		if p.peek() == '"' {
			val, ok := p.quoted()
			if !ok {
				return Credentials{}, errAuthSyntax
			}
			prm.Value, prm.Quoted = val, true
		} else if prm.Value = p.token(); prm.Value == "" {
			return Credentials{}, errAuthSyntax
		}
		for _, q := range c.Params {
			if strings.EqualFold(q.Name, name) {
				return Credentials{}, errAuthDupParam
			}
		}
		if len(c.Params) == maxAuthParams {
			return Credentials{}, errAuthSyntax
		}
		c.Params = append(c.Params, prm)
		p.skipWS()
		if !p.done() && p.peek() != ',' {
			return Credentials{}, errAuthSyntax
		}
	}
	if len(c.Params) == 0 { // only commas after the scheme
		return Credentials{}, errAuthSyntax
	}
	return c, nil
}

// Is reports whether the scheme is name, ignoring case.
func (c Credentials) Is(name string) bool { return strings.EqualFold(c.Scheme, name) }

// Param returns the value of the auth-param name (ignoring case).
func (c Credentials) Param(name string) (string, bool) {
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// String serialises c. A Value is quoted when Quoted is set or when it is
// not a token; '"' and '\' are escaped. ParseAuthorization(c.String())
// returns c for every c that ParseAuthorization returned.
func (c Credentials) String() string {
	var b strings.Builder
	b.WriteString(c.Scheme)
	if c.Token != "" {
		b.WriteByte(' ')
		b.WriteString(c.Token)
		return b.String()
	}
	for i, p := range c.Params {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		if !p.Quoted && isToken(p.Value) {
			b.WriteString(p.Value)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(p.Value); j++ {
			if ch := p.Value[j]; ch == '"' || ch == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p.Value[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

type authParser struct {
	s string
	i int
}

func (p *authParser) done() bool { return p.i >= len(p.s) }

func (p *authParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

// ws consumes at least one SP/HTAB and reports whether it did.
func (p *authParser) ws() bool {
	start := p.i
	p.skipWS()
	return p.i > start
}

func (p *authParser) skipWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *authParser) token() string {
	start := p.i
	for !p.done() && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string (RFC 9110 §5.6.4) starting at '"'.
func (p *authParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		ch := p.s[p.i]
		p.i++
		switch {
		case ch == '"':
			return b.String(), true
		case ch == '\\':
			if p.done() || !isQuotedPairChar(p.s[p.i]) {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case isQDText(ch):
			b.WriteByte(ch)
		default:
			return "", false
		}
	}
	return "", false
}

// isTChar: RFC 9110 §5.6.2 tchar.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}

// isToken68: RFC 9110 §11.2, 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// isQDText: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
func isQDText(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar: HTAB / SP / VCHAR / obs-text.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c == ' ' || c >= 0x21 && c <= 0x7e || c >= 0x80
}
