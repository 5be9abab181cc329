package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

// verifiedMetrics are verified_agents' collectors, labelled by site (the
// manifest's name).
type verifiedMetrics struct {
	requests     *prometheus.CounterVec
	fetches      *prometheus.CounterVec
	sharedErrors *prometheus.CounterVec
}

var (
	verifiedMetricsOnce sync.Once
	verifiedMetricsSet  *verifiedMetrics
)

func registerVerifiedMetrics(reg *prometheus.Registry) (*verifiedMetrics, error) {
	verifiedMetricsOnce.Do(func() {
		const ns, sub = "caddy", "ahp_verified_agents"
		verifiedMetricsSet = &verifiedMetrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
				Help: "Requests by Web Bot Auth outcome (verified, invalid, unverified, unsigned) and, for verified ones, agent (those listed in the configuration, others \"other\")."},
				[]string{"site", "outcome", "agent"}),
			fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "directory_fetches_total",
				Help: "Key directory fetches over the network, by result (ok, error)."},
				[]string{"site", "result"}),
			sharedErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shared_cache_errors_total",
				Help: "Failed reads and writes of the shared key cache (Redis); each request then falls back to this instance's cache and fetches."},
				[]string{"site"}),
		}
	})
	m := verifiedMetricsSet
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.fetches, m.sharedErrors} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, err
			}
		}
	}
	return m, nil
}

// verifiedObserver counts one site's outcomes. Every series is resolved
// at load (the agents are a fixed list), so a request costs a map read
// at most and one atomic add.
type verifiedObserver struct {
	unsigned, invalid, unverified, other prometheus.Counter
	agents                               map[string]prometheus.Counter // listed agent -> its verified series
	fetchOK, fetchErr                    prometheus.Counter
	sharedErr                            prometheus.Counter
}

func newVerifiedObserver(m *verifiedMetrics, site string, agents []string) *verifiedObserver {
	o := &verifiedObserver{
		unsigned:   m.requests.WithLabelValues(site, "unsigned", ""),
		invalid:    m.requests.WithLabelValues(site, "invalid", ""),
		unverified: m.requests.WithLabelValues(site, "unverified", ""),
		other:      m.requests.WithLabelValues(site, "verified", "other"),
		agents:     make(map[string]prometheus.Counter, len(agents)),
		fetchOK:    m.fetches.WithLabelValues(site, "ok"),
		fetchErr:   m.fetches.WithLabelValues(site, "error"),
		sharedErr:  m.sharedErrors.WithLabelValues(site),
	}
	for _, a := range agents {
		o.agents[a] = m.requests.WithLabelValues(site, "verified", a)
	}
	return o
}

func (o *verifiedObserver) outcome(out webbotauth.Outcome, agent string) {
	switch out {
	case webbotauth.Verified:
		if c, ok := o.agents[agent]; ok {
			c.Inc()
			return
		}
		o.other.Inc()
	case webbotauth.Invalid:
		o.invalid.Inc()
	case webbotauth.Unverified:
		o.unverified.Inc()
	default:
		o.unsigned.Inc()
	}
}

// fetched is webbotauth.Options.OnFetch.
func (o *verifiedObserver) fetched(_ string, err error) {
	if err != nil {
		o.fetchErr.Inc()
		return
	}
	o.fetchOK.Inc()
}

// sharedCacheError is webbotauth.Options.OnSharedCacheError.
func (o *verifiedObserver) sharedCacheError(error) { o.sharedErr.Inc() }
