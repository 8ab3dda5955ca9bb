package registrar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/sip/sipmsg"
	"github.com/convergo/convergo/store"
)

// Limits on third-party REGISTER bodies (the guard already caps the size).
const (
	maxParts         = 16 // body parts looked at, nested ones included
	maxMultipartNest = 2
	maxDevices       = 64
	maxPartBytes     = 64 << 10
)

// Result labels of convergo_registrar_third_party_registrations_total.
const (
	tpRegistered   = "registered"
	tpDeregistered = "deregistered"
	tpBad          = "bad_request"
	tpError        = "error"
)

// device is one contact learned from the message/sip bodies of a
// third-party REGISTER.
type device struct {
	spec contactSpec
	// fromResponse: seen in the S-CSCF's 200, whose expires is the granted
	// one; a UE REGISTER's expires is only a request (but 0 is a removal).
	fromResponse bool
	path         []string // Path of the UE's REGISTER (P-CSCF hops)
	callID       string
	cseq         uint32
}

func (r *Registrar) thirdParty(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, info isc.Info) error {
	result, err := r.thirdPartyRegister(ctx, req, tx, info)
	r.metrics.thirdParty.WithLabelValues(result).Inc()
	return err
}

// thirdPartyRegister handles a REGISTER from the trust domain (TS 24.229
// §5.4.1.7): no authentication, answered 200 with the same expiry.
func (r *Registrar) thirdPartyRegister(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, info isc.Info) (string, error) {
	aor, err := toAOR(req)
	if err != nil {
		return tpBad, err
	}
	expires := int64(-1)
	if h := sipmsg.Header(req, "Expires"); h != nil {
		if expires, err = parseDelta(h.Value()); err != nil {
			return tpBad, badRequest("Invalid Expires", err)
		}
	}
	scscf, err := scscfRoute(req)
	if err != nil {
		return tpBad, err
	}
	if expires < 0 {
		expires = int64(r.cfg.DefaultExpires / time.Second)
		if c := req.Contact(); c != nil {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := parseDelta(v); err == nil {
					expires = n
				}
			}
		}
	}
	now := r.now()
	current, err := r.bindings.List(ctx, aor)
	if err != nil {
		return tpError, internal(fmt.Errorf("registrar: list %s: %w", aor, err))
	}
	if expires == 0 {
		// De-registration removes what third-party registrations brought;
		// it does not prove every device of the user is gone (TS 24.229
		// §5.7.1.1 NOTE), but none is reachable through the S-CSCF either.
		var events []Event
		for _, b := range current {
			if b.Source != SourceISC {
				continue
			}
			if err := r.bindings.Delete(ctx, aor, b.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				r.emitAll(events)
				return tpError, internal(fmt.Errorf("registrar: delete %s %s: %w", aor, b.Key, err))
			}
			events = append(events, Event{Kind: Removed, Binding: b})
		}
		r.emitAll(events)
		return tpDeregistered, r.respondThirdParty(req, tx, 0)
	}

	var ct string
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	devices, err := parseThirdPartyBody(ct, req.Body())
	if err != nil {
		return tpBad, &StatusError{Code: sip.StatusBadRequest, Reason: "Invalid message/sip Body",
			Headers: []sip.Header{warning(err)}, Err: errors.Join(ErrBadRequest, err)}
	}
	_, node, _, _ := r.self()
	var events []Event
	written := map[string]bool{}
	for _, d := range devices {
		var old *store.Binding
		for i := range current {
			if current[i].Key == d.spec.key {
				old = &current[i]
			}
		}
		if d.spec.expires == 0 {
			written[d.spec.key] = true
			if old == nil {
				continue
			}
			if err := r.bindings.Delete(ctx, aor, d.spec.key); err != nil && !errors.Is(err, store.ErrNotFound) {
				r.emitAll(events)
				return tpError, internal(fmt.Errorf("registrar: delete %s %s: %w", aor, d.spec.key, err))
			}
			events = append(events, Event{Kind: Removed, Binding: *old})
			continue
		}
		secs := expires
		if d.fromResponse && d.spec.expires > 0 {
			secs = d.spec.expires
		}
		b := store.Binding{
			AOR: aor, Key: d.spec.key, Contact: d.spec.uri.String(), Instance: d.spec.instance, RegID: d.spec.regID,
			CallID: d.callID, CSeq: d.cseq, Expires: now.Add(time.Duration(secs) * time.Second),
			Received: req.Source(), Transport: strings.ToLower(req.Transport()), Node: node,
			Path: []string{scscf}, Params: map[string]string{}, Source: SourceISC, Created: now,
		}
		for k, v := range d.spec.params {
			b.Params[k] = v
		}
		if d.spec.pubGRUU != "" {
			b.Params["gruu"] = d.spec.pubGRUU
		}
		if info.ICID != "" {
			b.Params["icid"] = info.ICID
		}
		if len(d.path) > 0 {
			b.Params["path"] = strings.Join(d.path, ", ")
		}
		if b.CallID == "" {
			b.CallID, b.CSeq = req.CallID().Value(), req.CSeq().SeqNo
		}
		kind := Added
		if old != nil {
			kind, b.Created = Refreshed, old.Created
			if g := old.Params["gruu"]; g != "" && b.Params["gruu"] == "" && old.Instance == b.Instance {
				b.Params["gruu"] = g // a pub-GRUU is stable (RFC 5627 §3.2)
			}
		}
		if err := r.bindings.Put(ctx, b); err != nil {
			r.emitAll(events)
			return tpError, internal(fmt.Errorf("registrar: put %s %s: %w", aor, b.Key, err))
		}
		written[b.Key] = true
		events = append(events, Event{Kind: kind, Binding: b})
	}
	if len(devices) > 0 {
		live, err := r.bindings.List(ctx, aor)
		if err != nil {
			r.emitAll(events)
			return tpError, internal(fmt.Errorf("registrar: list %s: %w", aor, err))
		}
		_, evicted, err := r.evict(ctx, live, SourceISC, written)
		events = append(events, evicted...)
		if err != nil {
			r.emitAll(events)
			return tpError, err
		}
	}
	r.emitAll(events)
	return tpRegistered, r.respondThirdParty(req, tx, expires)
}

// respondThirdParty answers 200 with the same expiry (TS 24.229 §5.7.1.1),
// echoing the S-CSCF's Contact with it.
func (r *Registrar) respondThirdParty(req *sip.Request, tx sip.ServerTransaction, expires int64) error {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	if c := req.Contact(); c != nil && !c.Address.Wildcard {
		echo := c.Clone()
		echo.Params.Add("expires", strconv.FormatInt(expires, 10))
		res.AppendHeader(echo)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.FormatInt(expires, 10)))
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("registrar: respond: %w", err)
	}
	return nil
}

// scscfRoute returns the S-CSCF as a loose route: the third-party
// REGISTER's Contact, else its From (TS 24.229 §5.4.1.7 sets both to the
// S-CSCF URI).
func scscfRoute(req *sip.Request) (string, error) {
	var u sip.Uri
	switch {
	case req.Contact() != nil && !req.Contact().Address.Wildcard:
		u = *req.Contact().Address.Clone()
	case req.From() != nil:
		u = *req.From().Address.Clone()
	}
	if (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" || !validHost(u.Host) {
		return "", badRequest("Invalid S-CSCF URI", errors.New("third-party REGISTER needs a sip Contact or From naming the S-CSCF"))
	}
	u.Headers = nil
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	u.UriParams.Remove("expires")
	u.UriParams.Add("lr", "")
	return "<" + u.String() + ">", nil
}

// warning builds a Warning header (RFC 3261 §20.43, code 399) carrying a
// short, sanitised explanation.
func warning(err error) sip.Header {
	text := err.Error()
	if len(text) > 200 {
		text = text[:200]
	}
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, text)
	return sip.NewHeader("Warning", `399 convergo "`+text+`"`)
}

// parseThirdPartyBody extracts the devices of a third-party REGISTER body:
// message/sip (the UE's REGISTER or the S-CSCF's 200 OK), or multipart/*
// holding such parts (other parts, e.g. application/3gpp-ims+xml, are
// skipped). An empty body or one of another type teaches nothing and is
// not an error; an unparsable message/sip part is.
func parseThirdPartyBody(contentType string, body []byte) ([]device, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if strings.TrimSpace(contentType) == "" {
		return nil, nil
	}
	p := &bodyParser{}
	if err := p.part(contentType, body, 0); err != nil {
		return nil, err
	}
	return p.merge(), nil
}

type bodyParser struct {
	parts     int
	registers []device
	responses []device
}

func (p *bodyParser) part(contentType string, body []byte, depth int) error {
	p.parts++
	if p.parts > maxParts {
		return fmt.Errorf("more than %d body parts", maxParts)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	switch {
	case mt == "message/sip":
		return p.message(body)
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= maxMultipartNest {
			return errors.New("multipart nested too deep")
		}
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("%s without boundary", mt)
		}
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		found := false
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			found = true
			data, err := io.ReadAll(io.LimitReader(part, maxPartBytes+1))
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if len(data) > maxPartBytes {
				return errors.New("body part too large")
			}
			ct := part.Header.Get("Content-Type")
			if ct == "" {
				ct = "text/plain" // RFC 2046 §5.1.1 default
			}
			if err := p.part(ct, data, depth+1); err != nil {
				return err
			}
		}
		if !found {
			return errors.New("multipart without parts")
		}
		return nil
	default:
		return nil // application/3gpp-ims+xml service info and the like
	}
}

// message parses one message/sip part: a REGISTER or a 2xx to one.
func (p *bodyParser) message(data []byte) error {
	msg, err := sip.ParseMessage(normalizeEmbedded(data))
	if err != nil {
		return fmt.Errorf("message/sip: %w", err)
	}
	var (
		hs           []sip.Header
		fromResponse bool
		pathHdrs     []sip.Header
		callID       string
		cseq         uint32
		hdrExpires   = int64(-1)
	)
	switch m := msg.(type) {
	case *sip.Request:
		if m.Method != sip.REGISTER {
			return fmt.Errorf("message/sip: %s is not a REGISTER", m.Method)
		}
		hs, pathHdrs = sipmsg.Headers(m, "Contact"), sipmsg.Headers(m, "Path")
		if h := sipmsg.Header(m, "Expires"); h != nil {
			if hdrExpires, err = parseDelta(h.Value()); err != nil {
				return fmt.Errorf("message/sip: Expires: %w", err)
			}
		}
		if m.CallID() != nil {
			callID = m.CallID().Value()
		}
		if m.CSeq() != nil {
			cseq = m.CSeq().SeqNo
		}
	case *sip.Response:
		if m.StatusCode < 200 || m.StatusCode >= 300 || m.CSeq() == nil || m.CSeq().MethodName != sip.REGISTER {
			return fmt.Errorf("message/sip: %d is not a 2xx to REGISTER", m.StatusCode)
		}
		hs, fromResponse = sipmsg.Headers(m, "Contact"), true
		if m.CallID() != nil {
			callID = m.CallID().Value()
		}
		cseq = m.CSeq().SeqNo
	default:
		return errors.New("message/sip: not a SIP message")
	}
	for _, h := range hs {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			return errors.New("message/sip: unparsable Contact")
		}
		if ch.Address.Wildcard {
			continue // de-registration of all: the outer Expires: 0 carries it
		}
		spec, err := parseContact(ch)
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) {
				return fmt.Errorf("message/sip: %s", se.Reason)
			}
			return fmt.Errorf("message/sip: %w", err)
		}
		if spec.expires < 0 && !fromResponse {
			spec.expires = hdrExpires
		}
		d := device{spec: spec, fromResponse: fromResponse, callID: callID, cseq: cseq}
		if !fromResponse {
			d.path = sipmsg.Values(pathHdrs)
		}
		if fromResponse {
			p.responses = append(p.responses, d)
		} else {
			p.registers = append(p.registers, d)
		}
		if len(p.registers)+len(p.responses) > maxDevices {
			return fmt.Errorf("message/sip: more than %d contacts", maxDevices)
		}
	}
	return nil
}

// merge combines the UE's REGISTER and the S-CSCF's 200 by binding key: the
// 200 gives the granted expiry and the pub-gruu, the REGISTER the feature
// tags, Path, Call-ID and CSeq of the device.
func (p *bodyParser) merge() []device {
	var out []device
	index := map[string]int{}
	add := func(d device) {
		i, ok := index[d.spec.key]
		if !ok {
			index[d.spec.key] = len(out)
			out = append(out, d)
			return
		}
		cur := &out[i]
		if d.fromResponse {
			if len(d.spec.params) == 0 {
				d.spec.params = cur.spec.params
			}
			if !cur.fromResponse {
				d.path, d.callID, d.cseq = cur.path, cur.callID, cur.cseq
			}
			*cur = d
			return
		}
		if cur.fromResponse { // REGISTER after its 200: enrich only
			if len(cur.spec.params) == 0 {
				cur.spec.params = d.spec.params
			}
			cur.path, cur.callID, cur.cseq = d.path, d.callID, d.cseq
			return
		}
		if d.spec.expires == 0 && cur.spec.expires != 0 {
			return // the same device twice, one copy dead: keep the live one
		}
		*cur = d
	}
	for _, d := range p.registers {
		add(d)
	}
	for _, d := range p.responses {
		add(d)
	}
	return out
}

// normalizeEmbedded makes an embedded message parseable: LF-only line ends
// become CRLF, and a header section that lost its final empty line (the
// CRLF before a multipart boundary belongs to the boundary) gets it back.
func normalizeEmbedded(data []byte) []byte {
	if !bytes.Contains(data, []byte("\r\n")) {
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	data = bytes.TrimLeft(data, "\r\n")
	if !bytes.Contains(data, []byte("\r\n\r\n")) {
		if bytes.HasSuffix(data, []byte("\r\n")) {
			data = append(bytes.Clone(data), '\r', '\n')
		} else {
			data = append(bytes.Clone(data), "\r\n\r\n"...)
		}
	}
	return data
}
