package caddymodule

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/middleware"
)

// ahpMetrics are the plugin's Prometheus metrics, exposed through Caddy's
// own metrics endpoint (the admin API's /metrics, or the `metrics`
// handler). The collectors are process-wide and registered into each
// config's registry, as Caddy's own modules do.
type ahpMetrics struct {
	manifestServed   prometheus.Counter
	negotiated       prometheus.Counter
	contentServed    prometheus.Counter
	noticeInjected   prometheus.Counter
	noticeSkipped    *prometheus.CounterVec
	converseAllowed  prometheus.Counter
	converseRejected *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	storeErrors      prometheus.Counter
	storeFallbacks   prometheus.Counter
	decisionSeconds  prometheus.Histogram
}

var (
	metricsOnce sync.Once
	metrics     *ahpMetrics
)

func newMetrics() *ahpMetrics {
	const ns, sub = "caddy", "ahp"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	return &ahpMetrics{
		manifestServed:   counter("manifest_served_total", "Manifests served at /.well-known/agent.json."),
		negotiated:       counter("negotiated_total", "Requests answered with the manifest because Accept listed application/agent+json."),
		contentServed:    counter("content_served_total", "MODE1 content documents served from a local file."),
		noticeInjected:   counter("notice_injected_total", "HTML pages that received the in-page agent notice."),
		noticeSkipped:    vec("notice_skipped_total", "Responses left without the notice, by reason.", "reason"),
		converseAllowed:  counter("converse_allowed_total", "Converse requests passed on to the concierge."),
		converseRejected: vec("converse_rejected_total", "Converse requests refused by the gateway, by AHP error code.", "code"),
		rateLimited:      vec("rate_limited_total", "429 answers, by scope.", "scope"),
		storeErrors:      counter("store_errors_total", "Failed rate-limit store operations."),
		storeFallbacks:   counter("store_fallbacks_total", "Decisions answered by the in-memory fallback while the shared store failed."),
		decisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "limiter_decision_seconds",
			Help:    "Time to decide a request's rate limits, sessions and budgets (one store round trip).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
	}
}

func (m *ahpMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.manifestServed, m.negotiated, m.contentServed, m.noticeInjected, m.noticeSkipped,
		m.converseAllowed, m.converseRejected, m.rateLimited, m.storeErrors, m.storeFallbacks, m.decisionSeconds}
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

// observer adapts the metrics to middleware.Observer.
type observer struct{ m *ahpMetrics }

func (o observer) ManifestServed()              { o.m.manifestServed.Inc() }
func (o observer) Negotiated()                  { o.m.negotiated.Inc() }
func (o observer) ContentServed()               { o.m.contentServed.Inc() }
func (o observer) NoticeInjected()              { o.m.noticeInjected.Inc() }
func (o observer) NoticeSkipped(reason string)  { o.m.noticeSkipped.WithLabelValues(reason).Inc() }
func (o observer) ConverseAllowed()             { o.m.converseAllowed.Inc() }
func (o observer) ConverseRejected(code string) { o.m.converseRejected.WithLabelValues(code).Inc() }
func (o observer) RateLimited(scope string)     { o.m.rateLimited.WithLabelValues(scope).Inc() }
func (o observer) StoreError()                  { o.m.storeErrors.Inc() }
func (o observer) StoreFallback()               { o.m.storeFallbacks.Inc() }
func (o observer) LimiterDecision(d time.Duration) {
	o.m.decisionSeconds.Observe(d.Seconds())
}

// storeError counts a failure the resilient store reported (the
// middleware counts the fallbacks it was answered with).
func (m *ahpMetrics) storeError() { m.storeErrors.Inc() }

var _ middleware.Observer = observer{}
