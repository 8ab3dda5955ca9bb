package registrar

import "github.com/prometheus/client_golang/prometheus"

// Result labels of convergo_registrar_registrations_total.
const (
	resultOK         = "ok"          // bindings added, refreshed or removed
	resultFetch      = "fetch"       // REGISTER without Contact
	resultChallenged = "challenged"  // 401 with challenges (first leg of every Digest REGISTER)
	resultAuthFailed = "auth_failed" // the authenticator refused otherwise (400/403/503...)
	resultForbidden  = "forbidden"   // another user's AOR
	resultNotFound   = "not_found"   // no such user
	resultTooBrief   = "too_brief"   // 423
	resultBad        = "bad_request"
	resultError      = "error" // store failure
)

type metrics struct {
	bindings      prometheus.Gauge
	events        *prometheus.CounterVec
	registrations *prometheus.CounterVec
	thirdParty    *prometheus.CounterVec
	proxied       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bindings: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convergo_registrar_bindings",
			Help: "Bindings added minus bindings removed by this node (registrations, expiry sweeps, closed flows). " +
				"With several nodes sharing Redis, sum it over the nodes.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_registrar_binding_events_total",
			Help: "Binding changes made by this node, by kind (added, refreshed, removed).",
		}, []string{"kind"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_registrar_registrations_total",
			Help: "Direct-mode REGISTER requests by result (ok, fetch, challenged, auth_failed, forbidden, not_found, too_brief, bad_request, error).",
		}, []string{"result"}),
		thirdParty: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_registrar_third_party_registrations_total",
			Help: "Third-party REGISTER requests from the S-CSCF by result (registered, deregistered, bad_request, error).",
		}, []string{"result"}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_registrar_proxied_requests_total",
			Help: "Requests proxied over a registered flow by result (forwarded, flow_failed, forbidden, error).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bindings, m.events, m.registrations, m.thirdParty, m.proxied} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
