package sipmsg

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// SplitList splits a header value on the commas that are outside quoted
// strings and <...> (RFC 3261 §7.3.1); empty elements are dropped.
func SplitList(v string) []string {
	var out []string
	start, inQuote, inAngle := 0, false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '<':
			inAngle = true
		case !inQuote && c == '>':
			inAngle = false
		case !inQuote && !inAngle && c == ',':
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// Values returns every value of the given headers, comma lists split.
func Values(hs []sip.Header) []string {
	var out []string
	for _, h := range hs {
		out = append(out, SplitList(h.Value())...)
	}
	return out
}

// Cancel builds the CANCEL of a sent INVITE (RFC 3261 §9.1): the same
// Request-URI, top Via (so the same branch), Route set, From, To, Call-ID
// and CSeq number, sent the same way (transport, destination, local
// address). reason, when not nil, is added (RFC 3326).
func Cancel(inv *sip.Request, reason sip.Header) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, r := range Headers(inv, "Route") {
		c.AppendHeader(sip.HeaderClone(r))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	if reason != nil {
		c.AppendHeader(reason)
	}
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	c.SetBody(nil)
	return c
}
