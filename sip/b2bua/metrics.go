package b2bua

import "github.com/prometheus/client_golang/prometheus"

// Call results, the label values of convergo_b2bua_calls_total.
const (
	resultAnswered  = "answered"  // a fork answered; 200 sent to the caller
	resultCancelled = "cancelled" // the caller cancelled while ringing
	resultFailed    = "failed"    // every fork failed, or a 6xx ended the fork
	resultTimeout   = "timeout"   // the ring timeout passed
	resultRejected  = "rejected"  // refused before forking (no target, limit, bad request)
)

type metrics struct {
	active  prometheus.Gauge
	forks   prometheus.Histogram
	results map[string]prometheus.Counter
	setup   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "convergo_b2bua_calls_total",
		Help: "Initial INVITEs handled, by result (answered, cancelled, failed, timeout, rejected).",
	}, []string{"result"})
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convergo_b2bua_calls_active",
			Help: "Calls held now: ringing, connected, or finishing.",
		}),
		forks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convergo_b2bua_call_forks",
			Help:    "B-legs forked per call.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16},
		}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convergo_b2bua_setup_duration_seconds",
			Help:    "Time from the initial INVITE to the 200 sent to the caller.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15), // 5ms .. ~82s
		}),
		results: make(map[string]prometheus.Counter),
	}
	for _, r := range []string{resultAnswered, resultCancelled, resultFailed, resultTimeout, resultRejected} {
		m.results[r] = vec.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{vec, m.active, m.forks, m.setup} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
