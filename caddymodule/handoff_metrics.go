package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// handoffMetrics are agent_handoff's collectors, labelled by site (the
// zone: the provider's name unless configured).
type handoffMetrics struct {
	challenges     *prometheus.CounterVec
	admissions     *prometheus.CounterVec
	claims         *prometheus.CounterVec
	uniform        *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	storeErrors    *prometheus.CounterVec
	contentRefused *prometheus.CounterVec
	difficulty     *prometheus.GaugeVec
	velocity       *prometheus.GaugeVec
}

var (
	handoffMetricsOnce sync.Once
	handoffMetricsSet  *handoffMetrics
)

func registerHandoffMetrics(reg *prometheus.Registry) (*handoffMetrics, error) {
	handoffMetricsOnce.Do(func() {
		const ns, sub = "caddy", "ahp_handoff"
		vec := func(name, help string, labels ...string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, append([]string{"site"}, labels...))
		}
		gauge := func(name, help string) *prometheus.GaugeVec {
			return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, []string{"site"})
		}
		handoffMetricsSet = &handoffMetrics{
			challenges:     vec("challenges_issued_total", "Proof-of-work challenges issued, by purpose (create, claim).", "purpose"),
			admissions:     vec("admissions_total", "Sandbox creation attempts, by outcome (admitted, refused, malformed, too_large, tripped, rate_limited, unavailable).", "outcome"),
			claims:         vec("claims_total", "Claim verifications by outcome (verified, refused, locked, failed, malformed, rate_limited, unavailable), and claim starts given a challenge (challenge_added).", "outcome"),
			uniform:        vec("uniform_failures_total", "Answers replaced by the uniform failure."),
			rateLimited:    vec("rate_limited_total", "Requests refused by a rate limit, by tier.", "tier"),
			storeErrors:    vec("store_errors_total", "Failed operations of the challenge or rate-limit store."),
			contentRefused: vec("content_refused_total", "Sandbox content answers refused, by reason.", "reason"),
			difficulty:     gauge("difficulty", "The creation difficulty in force for a client of an unremarkable network, in bits."),
			velocity:       gauge("velocity", "Sandbox creations admitted in the velocity window, all clients (as last seen by this instance)."),
		}
	})
	m := handoffMetricsSet
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.challenges, m.admissions, m.claims, m.uniform, m.rateLimited, m.storeErrors, m.contentRefused, m.difficulty, m.velocity} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, err
			}
		}
	}
	return m, nil
}

// handoffObserver adapts the metrics to handoff.Observer and
// handoff.ContentObserver for one site.
type handoffObserver struct {
	m    *handoffMetrics
	site string
}

func (o handoffObserver) ChallengeIssued(p handoff.Purpose, _ int) {
	o.m.challenges.WithLabelValues(o.site, p.String()).Inc()
}

func (o handoffObserver) Velocity(global int64, difficulty int) {
	o.m.velocity.WithLabelValues(o.site).Set(float64(global))
	o.m.difficulty.WithLabelValues(o.site).Set(float64(difficulty))
}

func (o handoffObserver) Admission(outcome string) {
	o.m.admissions.WithLabelValues(o.site, outcome).Inc()
}
func (o handoffObserver) Claim(outcome string) { o.m.claims.WithLabelValues(o.site, outcome).Inc() }
func (o handoffObserver) UniformFailure()      { o.m.uniform.WithLabelValues(o.site).Inc() }
func (o handoffObserver) RateLimited(tier string) {
	o.m.rateLimited.WithLabelValues(o.site, tier).Inc()
}
func (o handoffObserver) StoreError() { o.m.storeErrors.WithLabelValues(o.site).Inc() }
func (o handoffObserver) ContentRefused(reason string) {
	o.m.contentRefused.WithLabelValues(o.site, reason).Inc()
}

var (
	_ handoff.Observer        = handoffObserver{}
	_ handoff.ContentObserver = handoffObserver{}
)
