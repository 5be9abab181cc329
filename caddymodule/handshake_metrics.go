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
	memoryBytes     *memoryStoreBytes
}

// memoryStoreBytes reports, when scraped, what each zone's memory store
// holds against its max_bytes: a counter the store keeps anyway, read
// only when someone asks (a gauge set on every write would cost every
// write, and go stale as sessions expire).
type memoryStoreBytes struct {
	held, bound *prometheus.Desc
	mu          sync.Mutex
	stores      map[string]*handshake.MemoryStore // by zone
}

func (c *memoryStoreBytes) Describe(ch chan<- *prometheus.Desc) { ch <- c.held; ch <- c.bound }

func (c *memoryStoreBytes) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for zone, s := range c.stores {
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Bytes()), zone)
		ch <- prometheus.MustNewConstMetric(c.bound, prometheus.GaugeValue, float64(s.MaxBytes()), zone)
	}
}

// track reports s as zone's memory store until the returned func is
// called (the pooled store's Destruct).
func (c *memoryStoreBytes) track(zone string, s *handshake.MemoryStore) func() {
	c.mu.Lock()
	c.stores[zone] = s
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if c.stores[zone] == s {
			delete(c.stores, zone)
		}
		c.mu.Unlock()
	}
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
			memoryBytes: &memoryStoreBytes{
				held: prometheus.NewDesc("caddy_ahp_handshake_memory_store_bytes",
					"Bytes the memory session store holds, as its max_bytes counts them.", []string{"site"}, nil),
				bound: prometheus.NewDesc("caddy_ahp_handshake_memory_store_max_bytes",
					"The memory session store's max_bytes.", []string{"site"}, nil),
				stores: map[string]*handshake.MemoryStore{},
			},
		}
	})
	m := handshakeMetricsSet
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessionsCreated, m.socketsOpen, m.sessionsOpen, m.actions, m.refused, m.hookFailures, m.storeErrors, m.pagesInjected, m.memoryBytes} {
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
