package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/sip/sipmsg"
)

// StatusError is a failure that already knows its final response (see
// sipmsg.StatusError); the request guard answers with it.
type StatusError = sipmsg.StatusError

type statusCarrier interface{ SIPStatus() (int, string) }
type headerCarrier interface{ SIPHeaders() []sip.Header }

// statusFor is the one place where an error becomes a SIP status.
func statusFor(err error) (int, string, []sip.Header) {
	var sc statusCarrier
	if errors.As(err, &sc) {
		code, reason := sc.SIPStatus()
		var hdrs []sip.Header
		var hc headerCarrier
		if errors.As(err, &hc) {
			hdrs = hc.SIPHeaders()
		}
		return code, reason, hdrs
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return sip.StatusRequestTimeout, "Request Timeout", nil
	}
	return sip.StatusInternalServerError, "Server Internal Error", nil
}

// register installs every handler behind the guard, plus the defaults for
// OPTIONS, ACK, CANCEL and unknown methods.
func (s *Server) register(ctx context.Context) {
	s.mu.Lock()
	handlers := make(map[sip.RequestMethod]Handler, len(s.handlers))
	for m, h := range s.handlers {
		handlers[m] = h
	}
	s.mu.Unlock()
	if _, ok := handlers[sip.OPTIONS]; !ok {
		handlers[sip.OPTIONS] = s.options
	}
	if _, ok := handlers[sip.ACK]; !ok {
		// An ACK to a 2xx of a dialog we do not know is absorbed (RFC 3261 §17.2.3: never answered).
		handlers[sip.ACK] = func(context.Context, *sip.Request, sip.ServerTransaction) error { return nil }
	}
	if _, ok := handlers[sip.CANCEL]; !ok {
		// CANCELs matching an INVITE transaction are consumed by sipgo's
		// transaction layer; what reaches us matches nothing (RFC 3261 §9.2).
		handlers[sip.CANCEL] = func(context.Context, *sip.Request, sip.ServerTransaction) error {
			return &StatusError{Code: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}
		}
	}
	for m, h := range handlers {
		s.srv.OnRequest(m, s.guard(ctx, h))
	}
	s.srv.OnNoRoute(s.guard(ctx, func(_ context.Context, req *sip.Request, _ sip.ServerTransaction) error {
		// RFC 3261 §8.2.1: 405 carries Allow.
		return &StatusError{Code: sip.StatusMethodNotAllowed, Reason: "Method Not Allowed",
			Headers: []sip.Header{sip.NewHeader("Allow", s.allow())}}
	}))
}

// guard wraps h with admission control, request validation and panic
// recovery. It is the only code that turns a handler error into a response.
func (s *Server) guard(ctx context.Context, h Handler) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		growStack()
		method := methodLabel(req.Method)
		s.metrics.requests.WithLabelValues(method).Inc()
		isAck := req.IsAck()
		defer func() {
			if r := recover(); r != nil {
				s.metrics.rejected.WithLabelValues("panic").Inc()
				s.log.Error("sip handler panic", zap.String("method", method), zap.Any("panic", r), zap.Stack("stack"))
				if !isAck {
					s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error", nil)
				}
			}
		}()
		if code, reason := s.validate(req); code != 0 {
			s.metrics.rejected.WithLabelValues(rejectReason(code)).Inc()
			if !isAck {
				s.respond(req, tx, code, reason, nil)
			}
			return
		}
		if s.draining.Load() {
			s.metrics.rejected.WithLabelValues("draining").Inc()
			if !isAck {
				s.respond(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", s.retryAfter())
			}
			return
		}
		if req.Method == sip.INVITE && !hasToTag(req) && !s.calls.allow(time.Now()) {
			s.metrics.rejected.WithLabelValues("rate").Inc()
			s.respond(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", s.retryAfter())
			return
		}
		select { // admission control: refuse rather than queue without bound
		case s.inflight <- struct{}{}:
			s.metrics.inflight.Inc()
			defer func() { <-s.inflight; s.metrics.inflight.Dec() }()
		default:
			s.metrics.rejected.WithLabelValues("overload").Inc()
			if !isAck {
				s.respond(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", s.retryAfter())
			}
			return
		}
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		tx.OnTerminate(func(string, error) { cancel() })
		if err := h(hctx, req, tx); err != nil && !isAck {
			code, reason, hdrs := statusFor(err)
			if code >= 500 {
				s.log.Warn("sip request failed", zap.String("method", method),
					zap.String("call_id", req.CallID().Value()), zap.Int("status", code), zap.Error(err))
			}
			s.respond(req, tx, code, reason, hdrs)
		}
	}
}

// hasToTag reports whether req is inside a dialog (RFC 3261 §12.2).
func hasToTag(req *sip.Request) bool {
	_, ok := req.To().Params.Get("tag")
	return ok
}

// validate checks what every handler relies on (RFC 3261 §8.2). It returns
// 0 when the request may proceed.
func (s *Server) validate(req *sip.Request) (int, string) {
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil || req.Via() == nil {
		return sip.StatusBadRequest, "Missing Mandatory Header"
	}
	if req.CallID().Value() == "" {
		return sip.StatusBadRequest, "Missing Mandatory Header"
	}
	if req.CSeq().MethodName != req.Method && !(req.IsAck() && req.CSeq().MethodName == sip.INVITE) {
		return sip.StatusBadRequest, "CSeq Method Mismatch"
	}
	// RFC 3261 §16.3 / §11: a request that has run out of hops is refused,
	// except OPTIONS, which a UAS may answer (RFC 3261 §11.1).
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method != sip.OPTIONS {
		return sip.StatusTooManyHops, "Too Many Hops"
	}
	if len(req.Body()) > s.cfg.MaxBodyBytes {
		return sip.StatusRequestEntityTooLarge, "Request Entity Too Large"
	}
	return 0, ""
}

// options answers OPTIONS with what this server supports (RFC 3261 §11.2).
func (s *Server) options(_ context.Context, req *sip.Request, tx sip.ServerTransaction) error {
	hdrs := []sip.Header{sip.NewHeader("Allow", s.allow()), sip.NewHeader("Accept-Language", "en")}
	s.mu.Lock()
	if len(s.accept) > 0 {
		hdrs = append(hdrs, sip.NewHeader("Accept", strings.Join(s.accept, ", ")))
	}
	s.mu.Unlock()
	return s.respondErr(req, tx, sip.StatusOK, "OK", hdrs)
}

func (s *Server) retryAfter() []sip.Header {
	secs := int(s.cfg.RetryAfter.Seconds())
	if secs < 1 {
		secs = 1
	}
	return []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(secs))}
}

// respond sends a stateful response built from req; a failure to send is
// only counted: the peer retransmits or gives up.
func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs []sip.Header) {
	if err := s.respondErr(req, tx, code, reason, hdrs); err != nil {
		s.metrics.rejected.WithLabelValues("send_failed").Inc()
	}
}

func (s *Server) respondErr(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs []sip.Header) error {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("sip: respond %d: %w", code, err)
	}
	return nil
}

// methodLabel keeps the metric label set bounded: unknown methods are "OTHER".
func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.REGISTER, sip.OPTIONS, sip.SUBSCRIBE,
		sip.NOTIFY, sip.REFER, sip.INFO, sip.MESSAGE, sip.PRACK, sip.UPDATE, sip.PUBLISH:
		return string(m)
	default:
		return "OTHER"
	}
}

func rejectReason(code int) string {
	switch code {
	case sip.StatusTooManyHops:
		return "loop"
	case sip.StatusRequestEntityTooLarge:
		return "too_large"
	default:
		return "bad_request"
	}
}
