package sip

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	inflight prometheus.Gauge
	strays   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_sip_requests_total",
			Help: "SIP requests received, by method (unknown methods count as OTHER).",
		}, []string{"method"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_sip_rejected_total",
			Help: "SIP requests refused by the request guard, by reason (bad_request, loop, too_large, rate, overload, draining, panic, send_failed).",
		}, []string{"reason"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convergo_sip_inflight_requests",
			Help: "SIP requests being handled now.",
		}),
		strays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_sip_stray_responses_total",
			Help: "SIP responses matching no client transaction (retransmissions after it ended), dropped.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.rejected, m.inflight, m.strays} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
