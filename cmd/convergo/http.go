package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/convergo/convergo/internal/problem"
)

type pinger interface {
	Ping(ctx context.Context) error
}

// api is the HTTP handler of the public listener: operations endpoints plus
// the routes each domain package registers on mux.
type api struct {
	mux      *http.ServeMux
	log      *zap.Logger
	st       pinger
	ready    *atomic.Bool
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newAPI(log *zap.Logger, reg *prometheus.Registry, st pinger, ready *atomic.Bool) *api {
	a := &api{
		mux:   http.NewServeMux(),
		log:   log.Named("http"),
		st:    st,
		ready: ready,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "convergo_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
	}
	reg.MustRegister(a.requests, a.latency)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Error(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	return a
}

// readyz answers 200 once the listeners are up and the store answers, and
// 503 before that and during shutdown.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	if !a.ready.Load() {
		problem.RetryAfter(w, http.StatusServiceUnavailable, "not ready", time.Second)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := a.st.Ping(ctx); err != nil {
		problem.RetryAfter(w, http.StatusServiceUnavailable, "store not answering", time.Second)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// ServeHTTP records metrics by route pattern (bounded label set) and turns
// a handler panic into a 500 problem instead of a dropped connection.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.Error("http handler panic", zap.Any("panic", p), zap.String("route", r.Pattern), zap.Stack("stack"))
			if !sw.wrote {
				problem.Error(sw, http.StatusInternalServerError, "internal error")
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		a.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		a.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}()
	a.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// adminMux serves net/http/pprof; it is bound only when http.admin_listen is set.
func adminMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}
