package caddymodule

import (
	"errors"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// conciergeMetrics are the collectors of the built-in concierge and of
// Markdown for agents, labelled by site (the manifest's name).
type conciergeMetrics struct {
	answers  *prometheus.CounterVec // by HTTP status of the answer
	markdown *prometheus.CounterVec // pages converted
	indexes  *indexCollector
}

var (
	conciergeMetricsOnce sync.Once
	conciergeMetricsSet  *conciergeMetrics
)

func registerConciergeMetrics(reg *prometheus.Registry) (*conciergeMetrics, error) {
	conciergeMetricsOnce.Do(func() {
		const ns = "caddy"
		conciergeMetricsSet = &conciergeMetrics{
			answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "ahp_concierge", Name: "answers_total",
				Help: "Capability calls answered by the built-in concierge, by HTTP status (503: the site was not read yet)."}, []string{"site", "status"}),
			markdown: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "ahp_markdown", Name: "converted_total",
				Help: "HTML pages answered as Markdown."}, []string{"site"}),
			indexes: &indexCollector{desc: prometheus.NewDesc("caddy_ahp_concierge_index",
				"The built-in concierge's current index: pages, passages, text_bytes, index_bytes (its estimated memory).",
				[]string{"site", "what"}, nil)},
		}
	})
	m := conciergeMetricsSet
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.answers, m.markdown, m.indexes} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, err
			}
		}
	}
	return m, nil
}

// answered counts one answer.
func (m *conciergeMetrics) answered(site string, status int) {
	if m == nil {
		return
	}
	m.answers.WithLabelValues(site, strconv.Itoa(status)).Inc()
}

// indexCollector reports the sizes of the indexes alive in the process
// when metrics are scraped (an index's figures cost a walk of its terms,
// too much for every answer).
type indexCollector struct {
	desc  *prometheus.Desc
	sites sync.Map // *pooledIndex -> site name
}

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	c.sites.Range(func(k, v any) bool {
		st := k.(*pooledIndex).ix.Stats()
		site := v.(string)
		for _, f := range []struct {
			what string
			n    int
		}{{"pages", st.Pages}, {"passages", st.Passages}, {"text_bytes", st.TextBytes}, {"index_bytes", st.IndexBytes}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(f.n), site, f.what)
		}
		return true
	})
}
