package auth

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Failure kinds (the kind label of convergo_auth_failures_total).
const (
	kindLogin   = "login"
	kindRefresh = "refresh"
	kindToken   = "token" // HTTP bearer token
	kindDigest  = "sip_digest"
	kindBearer  = "sip_bearer"
)

type metrics struct {
	failures *prometheus.CounterVec
	logins   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_auth_failures_total",
			Help: "Authentication failures by kind (login, refresh, token, sip_digest, sip_bearer) and reason.",
		}, []string{"kind", "reason"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_auth_logins_total",
			Help: "Successful password logins.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.failures, m.logins} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("auth: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// fail counts one failure; reason phrases become snake_case labels.
func (m *metrics) fail(kind, reason string) {
	m.failures.WithLabelValues(kind, strings.ReplaceAll(reason, " ", "_")).Inc()
}
