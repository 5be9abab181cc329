package caddymodule

import (
	"errors"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/handshake"
)

// handshakeMetrics are handshake_prompt's collectors, labelled by site
// (the zone).
type handshakeMetrics struct {
	sessionsCreated *prometheus.CounterVec
	socketsOpen     *prometheus.GaugeVec
	sessionsOpen    *prometheus.GaugeVec
	actions         *prometheus.CounterVec
	refused         *prometheus.CounterVec
	hookFailures    *prometheus.CounterVec
	storeErrors     *prometheus.CounterVec
	pagesInjected   *prometheus.CounterVec
}

var (
	handshakeMetricsOnce sync.Once
	handshakeMetricsSet  *handshakeMetrics
)

func registerHandshakeMetrics(reg *prometheus.Registry) (*handshakeMetrics, error) {
	handshakeMetricsOnce.Do(func() {
		const ns, sub = "caddy", "ahp_handshake"
		vec := func(name, help string, labels ...string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, append([]string{"site"}, labels...))
		}
		handshakeMetricsSet = &handshakeMetrics{
			sessionsCreated: vec("sessions_created_total", "Handshake Prompt sessions created."),
			socketsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "sockets_open",
				Help: "WebSockets open on this instance."}, []string{"site"}),
			sessionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "sessions_connected",
				Help: "Sessions with at least one browser WebSocket open on this instance."}, []string{"site"}),
			actions:      vec("actions_total", "Agent writes, by result (applied, rejected, error).", "result"),
			refused:      vec("refused_total", "Requests refused, by endpoint and status.", "endpoint", "status"),
			hookFailures: vec("hook_failures_total", "Hook calls that failed (error, 5xx or timeout), by hook.", "hook"),
			storeErrors: vec("store_errors_total", "Failures of the session store (store=sessions) or the rate-limit store (store=limiter), by endpoint; "+
				"refusals such as a full store are not counted here.", "store", "endpoint"),
			pagesInjected: vec("pages_injected_total", "HTML pages that received the browser client.", "result"),
		}
	})
	m := handshakeMetricsSet
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessionsCreated, m.socketsOpen, m.sessionsOpen, m.actions, m.refused, m.hookFailures, m.storeErrors, m.pagesInjected} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, err
			}
		}
	}
	return m, nil
}

// handshakeObserver adapts the metrics to handshake.Observer.
type handshakeObserver struct {
	m    *handshakeMetrics
	site string
}

func (o handshakeObserver) SessionCreated() { o.m.sessionsCreated.WithLabelValues(o.site).Inc() }
func (o handshakeObserver) Refused(endpoint string, status int) {
	o.m.refused.WithLabelValues(o.site, endpoint, strconv.Itoa(status)).Inc()
}
func (o handshakeObserver) Actions(applied, rejected, errs int) {
	if applied > 0 {
		o.m.actions.WithLabelValues(o.site, "applied").Add(float64(applied))
	}
	if rejected > 0 {
		o.m.actions.WithLabelValues(o.site, "rejected").Add(float64(rejected))
	}
	if errs > 0 {
		o.m.actions.WithLabelValues(o.site, "error").Add(float64(errs))
	}
}
func (o handshakeObserver) HookFailed(hook string) {
	o.m.hookFailures.WithLabelValues(o.site, hook).Inc()
}
func (o handshakeObserver) StoreFailed(store, endpoint string) {
	o.m.storeErrors.WithLabelValues(o.site, store, endpoint).Inc()
}
func (o handshakeObserver) Injected(inserted bool) {
	r := "inserted"
	if !inserted {
		r = "present"
	}
	o.m.pagesInjected.WithLabelValues(o.site, r).Inc()
}

var _ handshake.Observer = handshakeObserver{}
