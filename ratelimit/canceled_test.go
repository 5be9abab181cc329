package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

type countingObserver struct {
	nopObserver
	storeErrors atomic.Int64
}

func (o *countingObserver) StoreError() { o.storeErrors.Add(1) }

// A client that hangs up before its limits are decided is not a Redis
// failure: with the Redis store (as caddymodule builds it: Resilient over
// Redis, memory fallback) it must not be counted in
// caddy_ahp_store_errors_total nor logged at error level, unthrottled,
// once per request (README: "Failures are logged (at most every ten
// seconds) and counted"). Any client can otherwise flood the error log and
// the metric by sending requests and resetting them.
func TestCanceledClientIsNotAStoreError(t *testing.T) {
	srv := redistest.Start(t)
	client, err := limiter.NewRedisClient("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	mem := limiter.NewMemory(limiter.MemoryOptions{})
	store := limiter.NewResilient(limiter.NewRedis(client, limiter.RedisOptions{Prefix: "canceled:"}), mem, limiter.ResilientOptions{FailOpen: true})
	t.Cleanup(func() { store.Close() })
	core, logs := observer.New(zapcore.WarnLevel)
	obs := &countingObserver{}
	p := New(Config{Store: store, Zone: "z", Static: limiter.Limit{Events: 100, Window: time.Minute},
		ClientKey: func(*http.Request) string { return "192.0.2.1" }, Observer: obs, Logger: zap.New(core)})

	// Redis is healthy.
	if !p.ChargeStatic(httptest.NewRecorder(), httptest.NewRequest("GET", "/.well-known/agent.json", nil)) {
		t.Fatal("a healthy Redis refused the first request")
	}
	const gone = 20
	for range gone {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the client reset the stream
		r := httptest.NewRequest("GET", "/.well-known/agent.json", nil).WithContext(ctx)
		p.ChargeStatic(httptest.NewRecorder(), r)
	}
	if n := obs.storeErrors.Load(); n != 0 || logs.Len() != 0 {
		t.Fatalf("%d clients that hung up: %d store errors counted, %d warnings/errors logged (first: %v); want none: Redis never failed",
			gone, n, logs.Len(), logs.All()[0].Message)
	}
}
