package isc

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests  *prometheus.CounterVec // by trust
	trusted   prometheus.Counter     // requests{source="trusted"}, looked up once
	untrusted prometheus.Counter
	refused   prometheus.Counter
	stripped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_isc_requests_total",
			Help: "SIP requests seen by the ISC trust middleware, by source trust (trusted, untrusted).",
		}, []string{"source"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_isc_untrusted_identity_refused_total",
			Help: "Requests refused with 403 because they carried P-Asserted-Identity from an untrusted source.",
		}),
		stripped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_isc_stripped_headers_total",
			Help: "Trust-domain P-headers removed from requests of untrusted sources.",
		}),
	}
	m.trusted = m.requests.WithLabelValues("trusted")
	m.untrusted = m.requests.WithLabelValues("untrusted")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.refused, m.stripped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
