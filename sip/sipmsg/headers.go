package sipmsg

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// all returns m's headers in order; ok is false for a Message that is
// neither a *sip.Request nor a *sip.Response (sip.Message has no Headers).
func all(m sip.Message) (hs []sip.Header, ok bool) {
	switch m := m.(type) {
	case *sip.Request:
		return m.Headers(), true
	case *sip.Response:
		return m.Headers(), true
	}
	return nil, false
}

// Header returns the first header of m named name (ASCII case-insensitive),
// or nil. sipgo's GetHeader lower-cases the name and every header name it
// passes, which allocates for any name with a hyphen or a capital that it
// does not special-case (most of them); this compares in place.
func Header(m sip.Message, name string) sip.Header {
	hs, ok := all(m)
	if !ok {
		if g := m.GetHeaders(name); len(g) > 0 {
			return g[0]
		}
		return nil
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// Headers returns every header of m named name, in message order, or nil;
// GetHeader's allocation-free twin for repeated headers.
func Headers(m sip.Message, name string) []sip.Header {
	hs, ok := all(m)
	if !ok {
		return m.GetHeaders(name)
	}
	var out []sip.Header
	for _, h := range hs {
		if strings.EqualFold(h.Name(), name) {
			out = append(out, h)
		}
	}
	return out
}
