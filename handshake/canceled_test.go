package handshake

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// TestCanceledClientIsNotAStoreFailure: a store operation cut short by a
// client that hung up is not counted as a session store failure nor
// logged; a real failure still is.
func TestCanceledClientIsNotAStoreFailure(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	obs := &storeFailures{n: map[string]int{}}
	f := newFixture(t, func(cfg *Config) { cfg.Logger, cfg.Observer = zap.New(core), obs })
	for range 20 {
		f.h.storeError(httptest.NewRecorder(), "context", fmt.Errorf("redis: %w", context.Canceled))
	}
	if n, l := obs.get("memory context")+obs.get("sessions context"), logs.FilterMessage("handshake: session store failed").Len(); n != 0 || l != 0 {
		t.Errorf("20 clients that hung up: %d store failures counted, %d logged; want none", n, l)
	}
	f.h.storeError(httptest.NewRecorder(), "context", fmt.Errorf("redis: connection refused"))
	if logs.FilterMessage("handshake: session store failed").Len() != 1 {
		t.Errorf("a real store failure was not logged")
	}
}

// TestCanceledClientIsNotALimiterFailure: the same for the rate limit's
// decision: a client that hung up before it was decided (the resilient
// Redis limiter hands back its cancellation) is neither counted as a
// limiter store failure nor logged; any client could inflate the metric
// by resetting its requests. A limiter that really fails still is.
func TestCanceledClientIsNotALimiterFailure(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, ContextTimeoutEnabled: true})
	rs := limiter.NewRedis(client, limiter.RedisOptions{})
	mem := limiter.NewMemory(limiter.MemoryOptions{})
	// Fail closed, so that a dead Redis reaches the handler as an error.
	lim := limiter.NewResilient(rs, mem, limiter.ResilientOptions{})
	t.Cleanup(func() { _ = rs.Close(); _ = mem.Close(); _ = client.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	obs := &storeFailures{n: map[string]int{}}
	f := newFixture(t, func(cfg *Config) { cfg.Limiter, cfg.Logger, cfg.Observer = lim, zap.New(core), obs })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		r := httptest.NewRequest("GET", "/handshake/context/x", nil).WithContext(ctx)
		f.h.admit(httptest.NewRecorder(), r, fmt.Sprintf("k%d", i), limiter.Limit{Events: 10, Window: time.Minute}, "context")
	}
	if n, l := obs.get("limiter context"), logs.FilterMessage("handshake: rate-limit store failed").Len(); n != 0 || l != 0 {
		t.Errorf("20 clients that hung up: %d limiter failures counted, %d logged; want none", n, l)
	}
	srv.Kill()
	w := httptest.NewRecorder()
	f.h.admit(w, httptest.NewRequest("GET", "/handshake/context/x", nil), "k", limiter.Limit{Events: 10, Window: time.Minute}, "context")
	if n, l := obs.get("limiter context"), logs.FilterMessage("handshake: rate-limit store failed").Len(); w.Code != 503 || n != 1 || l != 1 {
		t.Errorf("Redis down: HTTP %d, %d limiter failures counted, %d logged; want 503, one, one", w.Code, n, l)
	}
}
