package media

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// sideMetrics are the pre-resolved counters of one side ("a" = caller,
// "b" = forks), so the packet path only does atomic adds.
type sideMetrics struct {
	packets, bytes             prometheus.Counter
	malformed, source, noPeer  prometheus.Counter
	inactive, authFail, replay prometheus.Counter
	latch                      prometheus.Counter
}

type metrics struct {
	side  [2]*sideMetrics
	calls prometheus.Gauge
	ports prometheus.GaugeFunc
	idle  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, used func() int) (*metrics, error) {
	packets := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convergo_media_packets_total",
		Help: "RTP/RTCP packets received from a side and forwarded."}, []string{"side"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convergo_media_bytes_total",
		Help: "Bytes received from a side and forwarded."}, []string{"side"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convergo_media_drops_total",
		Help: "Packets dropped, by side and reason."}, []string{"side", "reason"})
	srtpFail := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convergo_media_srtp_failures_total",
		Help: "SRTP/SRTCP packets failing authentication or replay checks."}, []string{"side", "reason"})
	latch := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "convergo_media_latch_events_total",
		Help: "Times a side's peer address was learned from its packets."}, []string{"side"})
	m := &metrics{
		calls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "convergo_media_calls",
			Help: "Calls anchored on the relay."}),
		ports: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "convergo_media_port_pairs",
			Help: "Relay port pairs in use."}, func() float64 { return float64(used()) }),
		idle: prometheus.NewCounter(prometheus.CounterOpts{Name: "convergo_media_inactivity_total",
			Help: "Calls reported idle (no RTP either way)."}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{packets, bytes, drops, srtpFail, latch, m.calls, m.ports, m.idle} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("media: metrics: %w", err)
	}
	for i, name := range []string{"a", "b"} {
		m.side[i] = &sideMetrics{
			packets: packets.WithLabelValues(name), bytes: bytes.WithLabelValues(name),
			malformed: drops.WithLabelValues(name, "malformed"), source: drops.WithLabelValues(name, "source"),
			noPeer: drops.WithLabelValues(name, "no_peer"), inactive: drops.WithLabelValues(name, "not_answered"),
			authFail: srtpFail.WithLabelValues(name, "auth"), replay: srtpFail.WithLabelValues(name, "replay"),
			latch: latch.WithLabelValues(name),
		}
	}
	return m, nil
}
