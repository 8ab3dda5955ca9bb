package addressbook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	searches    prometheus.Histogram
	indexBuild  prometheus.Histogram
	indexBuilds prometheus.Counter
	conflicts   prometheus.Counter
	importCards *prometheus.CounterVec
	cachedUsers func() float64 // set by New once the cache exists
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		searches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convergo_addressbook_search_duration_seconds",
			Help:    "Time to search one address-book index (excluding the refresh).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 12),
		}),
		indexBuild: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convergo_addressbook_index_build_duration_seconds",
			Help:    "Time to build one user's search index from a full list.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		}),
		indexBuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_addressbook_index_builds_total",
			Help: "Full index builds (first use, eviction, trimmed change feed).",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convergo_addressbook_conflicts_total",
			Help: "Writes refused because the client's version was stale (412).",
		}),
		importCards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convergo_addressbook_import_cards_total",
			Help: "vCards imported, by result (created, updated, exists, failed).",
		}, []string{"result"}),
	}
	cached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "convergo_addressbook_index_cached_users",
		Help: "Users whose search index is in memory.",
	}, func() float64 {
		if m.cachedUsers == nil {
			return 0
		}
		return m.cachedUsers()
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.searches, m.indexBuild, m.indexBuilds, m.conflicts, m.importCards, cached} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("addressbook: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
