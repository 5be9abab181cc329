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
				"The built-in concierge's current index: pages, passages, text_bytes, index_bytes (its estimated memory); summed over the indexes of one site name.",
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

// Collect sums the indexes that share a site name (two site blocks
// importing one ahp block, an http and an https server, the old and the
// new index across a reload): the same series twice would fail the whole
// scrape, and a label telling them apart would only add cardinality.
func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	var sites []string
	sums := make(map[string]*[4]int)
	c.sites.Range(func(k, v any) bool {
		st := k.(*pooledIndex).ix.Stats()
		site := v.(string)
		sum := sums[site]
		if sum == nil {
			sum = new([4]int)
			sums[site] = sum
			sites = append(sites, site)
		}
		sum[0] += st.Pages
		sum[1] += st.Passages
		sum[2] += st.TextBytes
		sum[3] += st.IndexBytes
		return true
	})
	for _, site := range sites {
		for i, what := range [...]string{"pages", "passages", "text_bytes", "index_bytes"} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(sums[site][i]), site, what)
		}
	}
}
