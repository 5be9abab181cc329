package caddymodule

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
)

// ahpMetrics are the plugin's Prometheus metrics, exposed through Caddy's
// own metrics endpoint (the admin API's /metrics, or the `metrics`
// handler). Every metric carries the site (the manifest's name) and the
// rate-limit metrics the zone too, so one Caddy serving many sites shows
// each. The collectors are process-wide and registered into each config's
// registry, as Caddy's own modules do.
type ahpMetrics struct {
	manifestServed   *prometheus.CounterVec
	negotiated       *prometheus.CounterVec
	contentServed    *prometheus.CounterVec
	noticeInjected   *prometheus.CounterVec
	noticeSkipped    *prometheus.CounterVec
	converseAllowed  *prometheus.CounterVec
	converseRejected *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	storeErrors      *prometheus.CounterVec
	storeFallbacks   *prometheus.CounterVec
	decisionSeconds  *prometheus.HistogramVec
	leasedDecisions  *prometheus.CounterVec
}

var (
	metricsOnce sync.Once
	metrics     *ahpMetrics
)

func newMetrics() *ahpMetrics {
	const ns, sub = "caddy", "ahp"
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	return &ahpMetrics{
		manifestServed:   vec("manifest_served_total", "Manifests served at /.well-known/agent.json.", "site"),
		negotiated:       vec("negotiated_total", "Requests answered with the manifest because Accept listed application/agent+json.", "site"),
		contentServed:    vec("content_served_total", "MODE1 content documents served from a local file.", "site"),
		noticeInjected:   vec("notice_injected_total", "HTML pages that received the in-page agent notice.", "site"),
		noticeSkipped:    vec("notice_skipped_total", "Responses left without the notice, by reason.", "site", "reason"),
		converseAllowed:  vec("converse_allowed_total", "Capability calls passed on to the concierge.", "site"),
		converseRejected: vec("converse_rejected_total", "Capability calls refused by the gateway, by AHP error code.", "site", "code"),
		rateLimited:      vec("rate_limited_total", "429 answers by scope; dry=\"true\" counts those a dry run let through.", "site", "zone", "scope", "dry"),
		storeErrors:      vec("store_errors_total", "Failed rate-limit store operations.", "site", "zone"),
		storeFallbacks:   vec("store_fallbacks_total", "Decisions answered by the in-memory fallback while the shared store failed.", "site", "zone"),
		decisionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "limiter_decision_seconds",
			Help:    "Time to decide a request's rate limits, sessions and budgets (one store round trip, or none for a leased decision).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"site", "zone"}),
		leasedDecisions: vec("limiter_leased_decisions_total", "Decisions the Redis store answered from this instance's hot-key leases or cached refusals, with no round trip (also observed in limiter_decision_seconds).", "site", "zone"),
	}
}

func (m *ahpMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.manifestServed, m.negotiated, m.contentServed, m.noticeInjected, m.noticeSkipped,
		m.converseAllowed, m.converseRejected, m.rateLimited, m.storeErrors, m.storeFallbacks, m.decisionSeconds, m.leasedDecisions}
}

// registerMetrics registers the collectors in a config's registry once.
func registerMetrics(reg *prometheus.Registry) (*ahpMetrics, error) {
	metricsOnce.Do(func() { metrics = newMetrics() })
	if reg == nil {
		return metrics, nil
	}
	for _, c := range metrics.collectors() {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, err
			}
		}
	}
	return metrics, nil
}

// observer counts one site's events. Series without a per-event label are
// resolved once; those with one (a reason, a code, a scope) through a
// small cache, so an event costs a map read, not a label hash.
type observer struct {
	site, zone                              string
	m                                       *ahpMetrics
	manifest, negotiated, content, injected prometheus.Counter
	allowed, storeErrors, storeFallbacks    prometheus.Counter
	decision                                prometheus.Observer
	leased                                  prometheus.Counter
	notHTML                                 prometheus.Counter // the notice's commonest skip
	skipped, rejected, limited              sync.Map           // label -> prometheus.Counter
}

func newObserver(m *ahpMetrics, site, zone string) *observer {
	return &observer{
		site: site, zone: zone, m: m,
		manifest:       m.manifestServed.WithLabelValues(site),
		negotiated:     m.negotiated.WithLabelValues(site),
		content:        m.contentServed.WithLabelValues(site),
		injected:       m.noticeInjected.WithLabelValues(site),
		notHTML:        m.noticeSkipped.WithLabelValues(site, htmlinject.ReasonNotHTML),
		allowed:        m.converseAllowed.WithLabelValues(site),
		storeErrors:    m.storeErrors.WithLabelValues(site, zone),
		storeFallbacks: m.storeFallbacks.WithLabelValues(site, zone),
		decision:       m.decisionSeconds.WithLabelValues(site, zone),
		leased:         m.leasedDecisions.WithLabelValues(site, zone),
	}
}

func cached(c *sync.Map, key string, make func() prometheus.Counter) prometheus.Counter {
	if v, ok := c.Load(key); ok {
		return v.(prometheus.Counter)
	}
	v, _ := c.LoadOrStore(key, make())
	return v.(prometheus.Counter)
}

// discovery.Observer
func (o *observer) ManifestServed() { o.manifest.Inc() }
func (o *observer) Negotiated()     { o.negotiated.Inc() }
func (o *observer) ContentServed()  { o.content.Inc() }

// htmlinject.Observer (the notice)
func (o *observer) Injected() { o.injected.Inc() }
func (o *observer) Skipped(reason string) {
	if reason == htmlinject.ReasonNotHTML {
		o.notHTML.Inc() // every stylesheet, script and image: no map lookup
		return
	}
	cached(&o.skipped, reason, func() prometheus.Counter { return o.m.noticeSkipped.WithLabelValues(o.site, reason) }).Inc()
}

// gateway.Observer
func (o *observer) ConverseAllowed() { o.allowed.Inc() }
func (o *observer) ConverseRejected(code string) {
	cached(&o.rejected, code, func() prometheus.Counter { return o.m.converseRejected.WithLabelValues(o.site, code) }).Inc()
}

// ratelimit.Observer
func (o *observer) RateLimited(scope string, dry bool) {
	key, d := scope, "false"
	if dry {
		key, d = scope+"|dry", "true"
	}
	cached(&o.limited, key, func() prometheus.Counter { return o.m.rateLimited.WithLabelValues(o.site, o.zone, scope, d) }).Inc()
}
func (o *observer) StoreError()    { o.storeErrors.Inc() }
func (o *observer) StoreFallback() { o.storeFallbacks.Inc() }
func (o *observer) LimiterDecision(d time.Duration, leased bool) {
	o.decision.Observe(d.Seconds())
	if leased {
		o.leased.Inc()
	}
}
