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

// AckNon2xx builds the ACK of a non-2xx final response res to a sent
// INVITE inv (RFC 3261 §17.1.1.3), as its client transaction would: the
// INVITE's Request-URI, top Via (so the same branch), Route set, From,
// Call-ID and CSeq number, the response's To (with its tag), sent the
// same way as the INVITE.
func AckNon2xx(inv *sip.Request, res *sip.Response) *sip.Request {
	a := sip.NewRequest(sip.ACK, *inv.Recipient.Clone())
	a.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, r := range Headers(inv, "Route") {
		a.AppendHeader(sip.HeaderClone(r))
	}
	mf := sip.MaxForwardsHeader(70)
	a.AppendHeader(&mf)
	a.AppendHeader(sip.HeaderClone(inv.From()))
	a.AppendHeader(sip.HeaderClone(res.To()))
	a.AppendHeader(sip.HeaderClone(inv.CallID()))
	a.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	a.SetTransport(inv.Transport())
	a.SetDestination(inv.Destination())
	a.Laddr = inv.Laddr
	a.SetBody(nil)
	return a
}
