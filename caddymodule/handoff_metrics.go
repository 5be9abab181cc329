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
			admissions:     vec("admissions_total", "Sandbox creation attempts, by outcome (admitted, exempt: a listed verified agent without a proof of work, refused, malformed, too_large, tripped, rate_limited, unavailable).", "outcome"),
			claims:         vec("claims_total", "Claim verifications by outcome (verified, refused, locked, failed, malformed, rate_limited, unavailable, cross_origin: posted by a page of an untrusted origin), and claim starts given a challenge (challenge_added).", "outcome"),
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

// Site roles: which series a site's handler can produce. Only the API
// site issues challenges, admits and verifies; a preview site answers
// uniform failures (after its rate limit) and a content site refuses
// content. A series is created only where its role can move it, so a
// preview or content site exports no admissions or difficulty at 0.
const (
	handoffRoleAPI     = "api"
	handoffRolePreview = "preview"
	handoffRoleContent = "content"
)

// handoffObserver adapts the metrics to handoff.Observer and
// handoff.ContentObserver for one site. The series its role produces are
// looked up once, at provisioning: requests only increment. The gauges
// are attached only once the configuration is provisioned (holdGauges),
// so a refused configuration creates no series for its zone.
type handoffObserver struct {
	m                         *handoffMetrics
	site                      string
	createIssued, claimIssued prometheus.Counter
	admissions, claims        map[string]prometheus.Counter
	rateLimited, refused      map[string]prometheus.Counter
	uniform, storeErrors      prometheus.Counter
	difficulty, velocity      prometheus.Gauge
}

func newHandoffObserver(m *handoffMetrics, site, role string) *handoffObserver {
	o := &handoffObserver{m: m, site: site}
	switch role {
	case handoffRoleAPI:
		o.createIssued = m.challenges.WithLabelValues(site, handoff.PurposeCreate.String())
		o.claimIssued = m.challenges.WithLabelValues(site, handoff.PurposeClaim.String())
		o.admissions, o.claims, o.rateLimited = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
		for _, v := range []string{"admitted", "exempt", "refused", "malformed", "too_large", "tripped", "rate_limited", "unavailable"} {
			o.admissions[v] = m.admissions.WithLabelValues(site, v)
		}
		for _, v := range []string{"verified", "refused", "locked", "failed", "malformed", "rate_limited", "unavailable", "cross_origin", "challenge_added"} {
			o.claims[v] = m.claims.WithLabelValues(site, v)
		}
		for _, v := range []string{"challenge", "challenge_network", "create", "verify", "code", "uniform"} {
			o.rateLimited[v] = m.rateLimited.WithLabelValues(site, v)
		}
		o.uniform, o.storeErrors = m.uniform.WithLabelValues(site), m.storeErrors.WithLabelValues(site)
	case handoffRolePreview:
		o.rateLimited = map[string]prometheus.Counter{"uniform": m.rateLimited.WithLabelValues(site, "uniform")}
		o.uniform, o.storeErrors = m.uniform.WithLabelValues(site), m.storeErrors.WithLabelValues(site)
	case handoffRoleContent:
		o.refused = map[string]prometheus.Counter{}
	}
	return o
}

// holdGaugesFor attaches the zone's difficulty and velocity gauges.
func (o *handoffObserver) holdGaugesFor(m *handoffMetrics, zone string) {
	o.difficulty, o.velocity = m.difficulty.WithLabelValues(zone), m.velocity.WithLabelValues(zone)
}

// counter is c, or the series of vec for the site and labels when the
// role did not expect it (never nil: an unexpected call still counts).
func (o *handoffObserver) counter(c prometheus.Counter, vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if c != nil {
		return c
	}
	return vec.WithLabelValues(append([]string{o.site}, labels...)...)
}

func count(known map[string]prometheus.Counter, vec *prometheus.CounterVec, site, v string) {
	if c, ok := known[v]; ok {
		c.Inc()
		return
	}
	vec.WithLabelValues(site, v).Inc()
}

func (o *handoffObserver) ChallengeIssued(p handoff.Purpose, _ int) {
	if p == handoff.PurposeClaim {
		o.counter(o.claimIssued, o.m.challenges, p.String()).Inc()
		return
	}
	o.counter(o.createIssued, o.m.challenges, p.String()).Inc()
}

func (o *handoffObserver) Velocity(global int64, difficulty int) {
	if o.velocity == nil { // not an API site, or not provisioned yet
		return
	}
	o.velocity.Set(float64(global))
	o.difficulty.Set(float64(difficulty))
}

func (o *handoffObserver) Admission(outcome string) {
	count(o.admissions, o.m.admissions, o.site, outcome)
}
func (o *handoffObserver) Claim(outcome string) { count(o.claims, o.m.claims, o.site, outcome) }
func (o *handoffObserver) UniformFailure()      { o.counter(o.uniform, o.m.uniform).Inc() }
func (o *handoffObserver) RateLimited(tier string) {
	count(o.rateLimited, o.m.rateLimited, o.site, tier)
}
func (o *handoffObserver) StoreError() { o.counter(o.storeErrors, o.m.storeErrors).Inc() }
func (o *handoffObserver) ContentRefused(reason string) {
	count(o.refused, o.m.contentRefused, o.site, reason)
}

var (
	_ handoff.Observer        = (*handoffObserver)(nil)
	_ handoff.ContentObserver = (*handoffObserver)(nil)
)
