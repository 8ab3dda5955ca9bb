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
	if reason == nil {
		return inInviteTransaction(sip.CANCEL, inv, inv.To())
	}
	return inInviteTransaction(sip.CANCEL, inv, inv.To(), reason)
}

// AckNon2xx builds the ACK of a non-2xx final response res to a sent
// INVITE inv (RFC 3261 §17.1.1.3), as its client transaction would: the
// INVITE's Request-URI, top Via (so the same branch), Route set, From,
// Call-ID and CSeq number, the response's To (with its tag), sent the
// same way as the INVITE.
func AckNon2xx(inv *sip.Request, res *sip.Response) *sip.Request {
	return inInviteTransaction(sip.ACK, inv, res.To())
}

// inInviteTransaction builds a method request that belongs to inv's
// transaction (CANCEL, ACK of a non-2xx): inv's Request-URI, top Via,
// Route set, From, Call-ID and CSeq number, the given To, then extra; sent
// the way inv was, without a body.
func inInviteTransaction(method sip.RequestMethod, inv *sip.Request, to *sip.ToHeader, extra ...sip.Header) *sip.Request {
	r := sip.NewRequest(method, *inv.Recipient.Clone())
	r.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range Headers(inv, "Route") {
		r.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	r.AppendHeader(sip.HeaderClone(inv.From()))
	r.AppendHeader(sip.HeaderClone(to))
	r.AppendHeader(sip.HeaderClone(inv.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
	for _, h := range extra {
		r.AppendHeader(h)
	}
	r.SetTransport(inv.Transport())
	r.SetDestination(inv.Destination())
	r.Laddr = inv.Laddr
	r.SetBody(nil)
	return r
}
