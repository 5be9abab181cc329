package handoff

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

type countedStoreErrors struct {
	NopObserver
	n atomic.Int64
}

func (o *countedStoreErrors) StoreError() { o.n.Add(1) }

// TestCanceledClientIsNotAStoreError: a client that hangs up before its
// limits are decided is not a Redis failure: not counted in
// store_errors_total nor logged as store.error, once per reset request.
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
	obs := &countedStoreErrors{}
	core, logs := observer.New(zapcore.InfoLevel)
	f := newFixture(t, func(c *Config) {
		c.Limits.Store = store
		c.Observer = obs
		c.Logger = zap.New(core)
	})
	// Redis is healthy.
	w := httptest.NewRecorder()
	_ = f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, DefaultChallengePath, nil), nextFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	if w.Code != http.StatusOK {
		t.Fatalf("healthy Redis: challenge %d %s", w.Code, w.Body)
	}
	before := logs.Len()
	const gone = 20
	for range gone {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest(http.MethodGet, DefaultChallengePath, nil).WithContext(ctx)
		_ = f.h.ServeHTTP(httptest.NewRecorder(), r, nextFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	}
	var storeLogs int
	for _, e := range logs.All()[before:] {
		for _, fl := range e.Context {
			if fl.Key == "action" && fl.String == "store.error" {
				storeLogs++
			}
		}
	}
	if n := obs.n.Load(); n != 0 || storeLogs != 0 {
		t.Errorf("%d clients that hung up: %d store errors counted, %d store.error log lines; want none: Redis never failed", gone, n, storeLogs)
	}
}

// TestRefundFailureCountedOnce: a refund Redis fails is one store error,
// as an admission Redis fails is: the resilient store reports it in its
// OnError, so what it hands the handler must not be counted (and logged)
// again.
func TestRefundFailureCountedOnce(t *testing.T) {
	srv := redistest.Start(t)
	client, err := limiter.NewRedisClient("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	var reported atomic.Int64
	r := &Resilient{Primary: NewRedis(client, RedisOptions{Zone: "refund", Timeout: time.Second}), Fallback: NewMemory(MemoryOptions{}),
		OnError: func(error) { reported.Add(1) }}
	ctx := context.Background()
	now := time.Now()
	iop := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: now, TTL: time.Minute, Policy: policy()}
	if err := r.Issue(ctx, iop); err != nil {
		t.Fatal(err)
	}
	op := &AdmitOp{Purpose: PurposeClaim, Challenge: iop.Challenge, Work: 64, Network: "n", Now: now, Policy: policy(),
		LockKeys: []string{"k"}, Lockout: &Lockout{After: 3, Base: time.Minute, Max: time.Hour, Reset: time.Hour}}
	if err := r.Admit(ctx, op); err != nil || op.Outcome != Admitted {
		t.Fatalf("claim: %v %s", err, op.Outcome)
	}
	srv.Kill()
	obs := &countedStoreErrors{}
	f := newFixture(t, func(c *Config) { c.Observer = obs })
	err = r.Refund(ctx, op)
	if err == nil {
		t.Fatal("a refund with Redis killed succeeded")
	}
	f.h.storeError(httptest.NewRequest(http.MethodPost, "/", nil), err)
	if n := reported.Load() + obs.n.Load(); n != 1 {
		t.Fatalf("one failed refund counted %d times (OnError %d, handler %d), want once", n, reported.Load(), obs.n.Load())
	}
}
