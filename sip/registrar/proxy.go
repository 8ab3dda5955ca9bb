package registrar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/sip/sipmsg"
)

// cancelTimeout bounds the CANCEL transaction of a proxied INVITE (64·T1).
const cancelTimeout = 32 * time.Second

// Handler is the shape of every convergo SIP handler (csip.Handler has the
// same underlying type).
type Handler = func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error

// Intercept wraps next: a request whose top Route is one of this node's
// flow URIs (a Path or Record-Route this node wrote) is proxied over that
// flow when it comes from the trust domain (another node: list the nodes
// in isc.trusted_peers; anyone else gets 403), or onward when it arrives
// over the flow itself; any other request goes to next. Register it for
// every method except REGISTER and CANCEL (INVITE, ACK, BYE, re-INVITE,
// UPDATE, INFO, PRACK, MESSAGE, SUBSCRIBE, NOTIFY, REFER, OPTIONS), behind
// the isc middleware, which supplies the trust decision and polices the
// P-headers of untrusted devices first.
func (r *Registrar) Intercept(next Handler) Handler {
	return func(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) error {
		if route := req.Route(); route != nil {
			if aor, key, ok := r.ownFlowRoute(route.Address); ok {
				return r.proxy(ctx, req, tx, aor, key)
			}
		}
		return next(ctx, req, tx)
	}
}

// proxy forwards req statefully as an RFC 3261 §16 proxy: our Route popped,
// Max-Forwards decremented, a Via added, Record-Route with the same flow
// URI on dialog-creating requests toward the device, responses relayed
// without our Via, CANCEL forwarded after a provisional. A request whose
// flow is gone is answered 430 Flow Failed (RFC 5626 §5.3).
func (r *Registrar) proxy(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, aor, key string) error {
	addr, node, client, _ := r.self()
	b, found, err := r.binding(ctx, aor, key)
	if err != nil {
		r.metrics.proxied.WithLabelValues("error").Inc()
		return internal(fmt.Errorf("registrar: proxy: look up %s: %w", aor, err))
	}
	info, _ := isc.FromContext(ctx)
	fromFlow := found && sameHostPort(req.Source(), b.Received) && strings.EqualFold(req.Transport(), b.Transport)
	if !fromFlow && !info.Trusted {
		// The token is derivable from the AOR and instance: only another
		// node (or the S-CSCF) may use it to reach a device, never a
		// stranger bypassing call control.
		r.metrics.proxied.WithLabelValues("forbidden").Inc()
		return &StatusError{Code: sip.StatusForbidden, Reason: "Forbidden (Flow Route From Untrusted Source)",
			Err: fmt.Errorf("%w: flow route from %s", ErrForbidden, req.Source())}
	}
	if !found || b.Source != SourceDirect || b.Node != node {
		r.metrics.proxied.WithLabelValues("flow_failed").Inc()
		return flowFailed(fmt.Errorf("no binding %s %s on this node", aor, key))
	}
	fwd := req.Clone()
	fwd.RemoveHeader("Route") // RFC 3261 §16.4: pop our own entry
	if fromFlow {
		// The device sends within a dialog we record-routed: onward by the
		// remaining Route or the Request-URI (RFC 3261 §16.6 steps 6-7).
		dest, transport, err := nextHop(fwd)
		if err != nil {
			r.metrics.proxied.WithLabelValues("error").Inc()
			return &StatusError{Code: sip.StatusBadRequest, Reason: "Bad Request (No Next Hop)", Err: err}
		}
		fwd.SetDestination(dest)
		fwd.SetTransport(transport)
	} else {
		if !r.flowAlive(b.Transport, b.Received) {
			r.metrics.proxied.WithLabelValues("flow_failed").Inc()
			return flowFailed(fmt.Errorf("connection %s %s closed", b.Transport, b.Received))
		}
		fwd.SetDestination(b.Received)
		fwd.SetTransport(strings.ToUpper(b.Transport))
		if isDialogCreating(fwd) {
			// RFC 3261 §16.6 step 4, RFC 5626 §5.3: in-dialog requests of
			// either side come back through this flow.
			rr := &sip.RecordRouteHeader{}
			if err := sip.ParseUri(strings.Trim(flowURI(addr, aor, key, false, true), "<>"), &rr.Address); err == nil {
				fwd.PrependHeader(rr)
			}
		}
	}
	// RFC 3261 §16.6 step 3 (the guard refused Max-Forwards 0 already).
	if mf := fwd.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(70)
		fwd.AppendHeader(&m)
	}

	if req.IsAck() { // ACK to a 2xx: stateless (RFC 3261 §16.11)
		if err := client.WriteRequest(fwd, sipgo.ClientRequestAddVia); err != nil {
			r.log.Debug("ack not forwarded", zap.Error(err))
		}
		return nil
	}
	if req.IsCancel() { // a CANCEL matching our INVITE is consumed by sipgo's transaction layer
		return &StatusError{Code: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}
	}
	down, err := client.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		r.metrics.proxied.WithLabelValues("flow_failed").Inc()
		if fromFlow {
			return &StatusError{Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable", Err: err}
		}
		return flowFailed(err)
	}
	r.metrics.proxied.WithLabelValues("forwarded").Inc()
	return r.relay(ctx, req, tx, fwd, down, client, fromFlow)
}

// relay passes the responses of down upstream until the final one, and
// carries a CANCEL from upstream (or Timer C) down once a provisional
// response arrived (RFC 3261 §9.1, §16.10).
func (r *Registrar) relay(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, fwd *sip.Request,
	down sip.ClientTransaction, client *sipgo.Client, fromFlow bool) error {
	var wg sync.WaitGroup
	defer wg.Wait() // the CANCEL transaction
	cancelled := make(chan struct{})
	var once sync.Once
	if req.IsInvite() {
		if !tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) }) {
			once.Do(func() { close(cancelled) }) // cancelled before we could listen
		}
		// RFC 3261 §16.7 step 5: every 2xx goes upstream, retransmissions too.
		down.OnRetransmission(func(res *sip.Response) {
			if res.IsSuccess() {
				_ = tx.Respond(upstream(res))
			}
		})
	}
	timerC := time.NewTimer(r.cfg.ProxyTimeout)
	defer timerC.Stop()
	provisional, cancelWanted, cancelSent := false, false, false
	sendCancel := func() {
		if cancelSent || !req.IsInvite() {
			return
		}
		cancelSent = true
		cancel := sipmsg.Cancel(fwd, nil)
		wg.Go(func() {
			cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
			defer stop()
			if _, err := client.Do(cctx, cancel); err != nil {
				r.log.Debug("cancel not answered", zap.Error(err))
			}
		})
	}
	for {
		select {
		case res := <-down.Responses():
			if res.StatusCode == sip.StatusTrying {
				continue // hop by hop (RFC 3261 §16.7 step 3)
			}
			if res.IsProvisional() {
				provisional = true
				if cancelWanted {
					sendCancel()
				}
			}
			_ = tx.Respond(upstream(res)) // fails once upstream cancelled: sipgo already sent 487
			if !res.IsProvisional() {
				return nil
			}
		case <-down.Done():
			err := down.Err()
			switch {
			case errors.Is(err, sip.ErrTransactionTimeout):
				return &StatusError{Code: sip.StatusRequestTimeout, Reason: "Request Timeout", Err: err}
			case fromFlow:
				return &StatusError{Code: sip.StatusServiceUnavailable, Reason: "Service Unavailable", Err: err}
			default:
				return flowFailed(err)
			}
		case <-cancelled:
			cancelled, cancelWanted = nil, true
			if provisional {
				sendCancel()
			}
		case <-timerC.C:
			if provisional {
				sendCancel()
			}
			down.Terminate()
			return &StatusError{Code: sip.StatusRequestTimeout, Reason: "Request Timeout",
				Err: fmt.Errorf("no final response in %s", r.cfg.ProxyTimeout)}
		case <-ctx.Done():
			if provisional {
				sendCancel()
			}
			down.Terminate()
			return ctx.Err()
		}
	}
}

// upstream copies a downstream response without its top Via (ours).
func upstream(res *sip.Response) *sip.Response {
	up := res.Clone()
	up.RemoveHeader("Via")
	return up
}

func flowFailed(err error) *StatusError {
	return &StatusError{Code: 430, Reason: "Flow Failed", Err: errors.Join(ErrFlowFailed, err)}
}

// isDialogCreating reports whether req starts a dialog (no To tag).
func isDialogCreating(req *sip.Request) bool {
	switch req.Method {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER:
	default:
		return false
	}
	to := req.To()
	return to != nil && !to.Params.Has("tag")
}

// nextHop resolves where a request goes after our Route was popped: the
// new top Route, else the Request-URI.
func nextHop(req *sip.Request) (dest, transport string, err error) {
	u := req.Recipient
	if rt := req.Route(); rt != nil {
		u = rt.Address
	}
	if u.Scheme != "sip" && u.Scheme != "sips" || u.Host == "" {
		return "", "", fmt.Errorf("next hop %q is not a SIP URI", u.String())
	}
	transport = "UDP"
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		transport = strings.ToUpper(t)
	} else if u.Scheme == "sips" {
		transport = "TLS"
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if transport == "TLS" || transport == "WSS" {
			port = 5061
		}
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port)), transport, nil
}

// sameHostPort compares two "host:port" strings by value.
func sameHostPort(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	aip, bip := net.ParseIP(ah), net.ParseIP(bh)
	if aip != nil && bip != nil {
		return aip.Equal(bip) && ap == bp
	}
	return strings.EqualFold(ah, bh) && ap == bp
}
