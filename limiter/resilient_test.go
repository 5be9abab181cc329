package limiter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// flakyStore answers from a memory store, or fails when told to; it counts
// the calls it receives and can hold them until released.
type flakyStore struct {
	*Memory
	fail  atomic.Bool
	calls atomic.Int64
	hold  chan struct{} // when set, calls wait on it
}

var errDown = errors.New("connection refused")

func (f *flakyStore) Do(ctx context.Context, b *Batch) error {
	f.calls.Add(1)
	if f.hold != nil {
		<-f.hold
	}
	if f.fail.Load() {
		return errDown
	}
	return f.Memory.Do(ctx, b)
}

func (f *flakyStore) AddTokens(ctx context.Context, id string, n int64, idle time.Duration) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errDown
	}
	return f.Memory.AddTokens(ctx, id, n, idle)
}

type resilientFixture struct {
	clock            *fakeClock
	primary          *flakyStore
	fallback         *Memory
	r                *Resilient
	errs             []error
	recovered, falls atomic.Int64
	mu               sync.Mutex
}

func newResilientFixture(t *testing.T, failOpen bool) *resilientFixture {
	f := &resilientFixture{clock: newClock()}
	f.primary = &flakyStore{Memory: NewMemory(MemoryOptions{Now: f.clock.Now, SweepInterval: -1})}
	f.fallback = NewMemory(MemoryOptions{Now: f.clock.Now, SweepInterval: -1})
	f.r = NewResilient(f.primary, f.fallback, ResilientOptions{
		FailOpen: failOpen,
		Backoff:  time.Second,
		OnError: func(err error) {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
		},
		OnRecover:  func() { f.recovered.Add(1) },
		OnFallback: func() { f.falls.Add(1) },
		Now:        f.clock.Now,
	})
	t.Cleanup(func() { f.r.Close() })
	return f
}

func (f *resilientFixture) errCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs)
}

func TestResilientFailOpen(t *testing.T) {
	f := newResilientFixture(t, true)
	ctx := context.Background()
	l := Limit{5, time.Minute}
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: l}}}
	if err := f.r.Do(ctx, &b); err != nil || b.Degraded {
		t.Fatalf("healthy: %v, degraded %v", err, b.Degraded)
	}

	f.primary.fail.Store(true)
	calls := f.primary.calls.Load()
	for range 20 {
		if err := f.r.Do(ctx, &b); err != nil || !b.Degraded {
			t.Fatalf("primary down: %v, degraded %v; want an answer from the fallback", err, b.Degraded)
		}
	}
	if got := f.primary.calls.Load() - calls; got != 1 {
		t.Fatalf("primary asked %d times within the backoff; want once", got)
	}
	if f.errCount() != 1 || !errors.Is(f.errs[0], errDown) {
		t.Fatalf("errors reported: %v; want the one error", f.errs)
	}
	if f.falls.Load() != 20 || f.r.Healthy() {
		t.Fatalf("%d fallbacks counted, healthy %v", f.falls.Load(), f.r.Healthy())
	}
	// The fallback enforces the limit on its own: 5 admitted of 20.
	if d := b.Windows[0].Decision; d.Allowed {
		t.Fatalf("fallback over the limit: %+v", d)
	}

	// A failed probe after each backoff: one more error report each time.
	f.clock.Add(time.Second)
	_ = f.r.Do(ctx, &b)
	_ = f.r.Do(ctx, &b)
	if f.errCount() != 2 || f.primary.calls.Load()-calls != 2 {
		t.Fatalf("after a backoff: %d errors, %d primary calls; want 2 and 2", f.errCount(), f.primary.calls.Load()-calls)
	}

	// Back: the next probe succeeds and the primary answers from then on.
	f.primary.fail.Store(false)
	f.clock.Add(time.Second)
	for range 3 {
		if err := f.r.Do(ctx, &b); err != nil || b.Degraded {
			t.Fatalf("recovered: %v, degraded %v", err, b.Degraded)
		}
	}
	if f.recovered.Load() != 1 || !f.r.Healthy() {
		t.Fatalf("OnRecover called %d times, healthy %v", f.recovered.Load(), f.r.Healthy())
	}
	// The primary kept its own count: 1 before the outage, 3 now.
	if d := b.Windows[0].Decision; d.Remaining != 1 {
		t.Fatalf("primary remaining %d, want 1", d.Remaining)
	}

	// Tokens follow the same policy.
	f.primary.fail.Store(true)
	if err := f.r.AddTokens(ctx, "s", 5, time.Minute); err != nil {
		t.Fatalf("AddTokens with the primary down, failing open: %v", err)
	}
}

func TestResilientFailClosed(t *testing.T) {
	f := newResilientFixture(t, false)
	ctx := context.Background()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
	f.primary.fail.Store(true)
	for range 3 {
		if err := f.r.Do(ctx, &b); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("primary down, failing closed: %v; want ErrStoreUnavailable", err)
		}
	}
	if err := f.r.AddTokens(ctx, "s", 1, time.Minute); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("AddTokens: %v", err)
	}
	if keys, _ := f.fallback.Len(); keys != 0 {
		t.Fatal("the fallback was used while failing closed")
	}
	f.primary.fail.Store(false)
	f.clock.Add(time.Second)
	if err := f.r.Do(ctx, &b); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// When the backoff ends, one call probes the primary; the others keep using
// the fallback instead of piling onto a Redis that may still hang.
func TestResilientSingleProbe(t *testing.T) {
	f := newResilientFixture(t, true)
	ctx := context.Background()
	f.primary.fail.Store(true)
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
	_ = f.r.Do(ctx, &b)
	f.clock.Add(time.Second)

	f.primary.hold = make(chan struct{})
	calls := f.primary.calls.Load()
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
		_ = f.r.Do(ctx, &b)
	}()
	for f.primary.calls.Load() == calls {
		time.Sleep(time.Millisecond) // wait for the probe to reach the primary
	}
	for range 10 {
		b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
		if err := f.r.Do(ctx, &b); err != nil || !b.Degraded {
			t.Fatalf("during a probe: %v, degraded %v", err, b.Degraded)
		}
	}
	close(f.primary.hold)
	<-probeDone
	if got := f.primary.calls.Load() - calls; got != 1 {
		t.Fatalf("%d calls reached the primary while probing; want 1", got)
	}
}

// Caller mistakes and callers that went away are not store failures.
func TestResilientIgnoresCallerErrors(t *testing.T) {
	f := newResilientFixture(t, false)
	bad := Batch{Windows: []WindowCheck{{Key: "k"}}}
	if err := f.r.Do(context.Background(), &bad); !errors.Is(err, ErrInvalidCheck) {
		t.Fatalf("invalid check: %v", err)
	}
	f.primary.fail.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
	if err := f.r.Do(ctx, &b); errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("canceled caller: %v; want the primary's error, not the policy's", err)
	}
	if !f.r.Healthy() || f.errCount() != 0 {
		t.Fatalf("a canceled caller marked the primary down (healthy %v, %d errors)", f.r.Healthy(), f.errCount())
	}
}

// With a real Redis: killed mid-test, then restarted. Two instances share
// the limit while Redis is up, each enforces it alone while it is down, and
// sharing resumes by itself after the restart.
func TestResilientRedisOutage(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		name := "closed"
		if failOpen {
			name = "open"
		}
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			clock := newClock()
			var errs atomic.Int64
			var lastErr atomic.Value
			instance := func() *Resilient {
				// A dead server fails fast (no retries), so the timeout can be
				// generous for a loaded CI machine without slowing the test.
				c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
				t.Cleanup(func() { c.Close() })
				primary := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
				r := NewResilient(primary, NewMemory(MemoryOptions{SweepInterval: -1}), ResilientOptions{
					FailOpen: failOpen,
					Now:      clock.Now,
					OnError: func(err error) {
						errs.Add(1)
						lastErr.Store(err)
					},
				})
				t.Cleanup(func() { r.Close() })
				return r
			}
			a, b := instance(), instance()
			ctx := context.Background()
			l := Limit{4, time.Hour}
			decide := func(r *Resilient) (Decision, bool, error) {
				batch := Batch{Windows: []WindowCheck{{Key: "ip:192.0.2.1", Limit: l}}}
				err := r.Do(ctx, &batch)
				return batch.Windows[0].Decision, batch.Degraded, err
			}
			for i, r := range []*Resilient{a, b, a, b} {
				if d, degraded, err := decide(r); err != nil || !d.Allowed || degraded {
					t.Fatalf("event %d: %+v degraded %v err %v (Redis error: %v)", i, d, degraded, err, lastErr.Load())
				}
			}
			if d, _, _ := decide(a); d.Allowed {
				t.Fatal("two instances admitted more than the shared limit")
			}

			srv.Kill()
			for range 10 {
				_, degraded, err := decide(a)
				if failOpen {
					if err != nil || !degraded {
						t.Fatalf("Redis down, failing open: %v degraded %v", err, degraded)
					}
				} else if !errors.Is(err, ErrStoreUnavailable) {
					t.Fatalf("Redis down, failing closed: %v", err)
				}
			}
			if failOpen {
				// Per-instance limiting from memory: instance a admitted 4
				// of its 10 and refuses, b starts afresh.
				if d, _, _ := decide(a); d.Allowed || d.Limit != 4 {
					t.Fatalf("fallback of a: %+v", d)
				}
				if d, _, _ := decide(b); !d.Allowed {
					t.Fatalf("fallback of b: %+v", d)
				}
			} else if _, _, err := decide(b); !errors.Is(err, ErrStoreUnavailable) {
				t.Fatalf("Redis down, failing closed: %v", err)
			}
			if got := errs.Load(); got != 2 {
				t.Fatalf("%d errors reported for one outage seen by two instances; want 2", got)
			}

			srv.Restart() // empty: the shared counts start over
			clock.Add(DefaultBackoff)
			for i, r := range []*Resilient{a, b, a, b} {
				d, degraded, err := decide(r)
				if err != nil || degraded {
					// A pooled connection that died with the old server can
					// fail once; the next probe follows after the backoff.
					clock.Add(DefaultBackoff)
					if d, degraded, err = decide(r); err != nil || degraded {
						t.Fatalf("after restart, event %d: %v degraded %v (Redis error: %v)", i, err, degraded, lastErr.Load())
					}
				}
				if !d.Allowed || d.Remaining != int64(3-i) {
					t.Fatalf("after restart, event %d: %+v; want the shared count", i, d)
				}
			}
			if d, _, _ := decide(b); d.Allowed {
				t.Fatal("after restart two instances admitted more than the shared limit")
			}
		})
	}
}

// countingStore counts the calls that reach a store.
type countingStore struct {
	Store
	calls atomic.Int64
}

func (c *countingStore) Do(ctx context.Context, b *Batch) error {
	c.calls.Add(1)
	return c.Store.Do(ctx, b)
}

// A Redis that accepts connections but never answers: decisions return
// within the timeout, then skip it for the backoff.
func TestResilientHungRedis(t *testing.T) {
	addr := redistest.Unresponsive(t)
	clock := newClock()
	var errs atomic.Int64
	primary := &countingStore{Store: NewRedis(newClient(t, addr), RedisOptions{Timeout: 50 * time.Millisecond})}
	r := NewResilient(primary, NewMemory(MemoryOptions{SweepInterval: -1}),
		ResilientOptions{FailOpen: true, Now: clock.Now, OnError: func(error) { errs.Add(1) }})
	defer r.Close()
	ctx := context.Background()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{30, time.Minute}}}}
	start := time.Now()
	if err := r.Do(ctx, &b); err != nil || !b.Degraded {
		t.Fatalf("hung Redis: %v, degraded %v", err, b.Degraded)
	}
	// Far below go-redis's own 5s ReadTimeout; TestRedisTimeoutOnHungServer
	// checks the 50ms bound itself.
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("first decision took %v; want about the 50ms timeout", took)
	}
	for range 100 {
		if err := r.Do(ctx, &b); err != nil || !b.Degraded {
			t.Fatalf("hung Redis: %v, degraded %v", err, b.Degraded)
		}
	}
	if got := primary.calls.Load(); got != 1 {
		t.Fatalf("the hung Redis was asked %d times within the backoff; want once", got)
	}
	clock.Add(DefaultBackoff)
	for range 10 {
		_ = r.Do(ctx, &b)
	}
	if primary.calls.Load() != 2 || errs.Load() != 2 {
		t.Fatalf("after the backoff: %d calls to Redis, %d errors reported; want one probe, 2 and 2", primary.calls.Load(), errs.Load())
	}
}

// A probe answered from the Redis store's leases or cached refusals (no
// round trip) says nothing about Redis: it must not end the outage. It
// did, so each Backoff a hot key's cached refusal reported a recovery and
// sent every request to the dead Redis again.
func TestResilientLeasedProbeIsNoRecovery(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	var recovered, errs atomic.Int64
	r := NewResilient(NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, now: clock.Now}),
		NewMemory(MemoryOptions{SweepInterval: -1}), ResilientOptions{
			FailOpen:  true,
			Now:       clock.Now,
			OnError:   func(error) { errs.Add(1) },
			OnRecover: func() { recovered.Add(1) },
		})
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	lim := Limit{30, time.Minute}
	do := func(key string) Batch {
		b := Batch{Windows: []WindowCheck{{Key: key, Limit: lim}}}
		if err := r.Do(ctx, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for range 31 { // a hot key, refused by Redis: the refusal is cached
		clock.Add(time.Millisecond)
		do("ip")
	}
	srv.Kill()
	if b := do("other"); !b.Degraded || r.Healthy() {
		t.Fatalf("Redis down: degraded %v, healthy %v", b.Degraded, r.Healthy())
	}
	clock.Add(DefaultBackoff)
	if b := do("ip"); !b.Leased || b.Windows[0].Decision.Allowed {
		t.Fatalf("probe: %+v leased %v; want the cached refusal", b.Windows[0].Decision, b.Leased)
	}
	if r.Healthy() || recovered.Load() != 0 {
		t.Fatalf("a probe answered without Redis ended the outage (healthy %v, %d recoveries)", r.Healthy(), recovered.Load())
	}
	// The next call probes Redis itself.
	if b := do("other"); !b.Degraded || errs.Load() != 2 {
		t.Fatalf("after a leased probe: degraded %v, %d errors; want the next call to probe Redis", b.Degraded, errs.Load())
	}
}

// panicStore panics while told to, else answers as its flakyStore.
type panicStore struct {
	*flakyStore
	panics atomic.Bool
}

func (p *panicStore) Do(ctx context.Context, b *Batch) error {
	if p.panics.Load() {
		p.calls.Add(1)
		panic("client bug")
	}
	return p.flakyStore.Do(ctx, b)
}

// A probe that panics (go-redis or a hook; see
// TestRedisSurvivesPanicInClient) must not leave the probe taken: no other
// call would ever probe the primary again, and a Resilient failing closed
// would refuse every request until restarted.
func TestResilientProbePanicStillProbes(t *testing.T) {
	clock := newClock()
	primary := &panicStore{flakyStore: &flakyStore{Memory: NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: -1})}}
	r := NewResilient(primary, NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: -1}),
		ResilientOptions{FailOpen: true, Now: clock.Now})
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{5, time.Minute}}}}
	primary.fail.Store(true)
	_ = r.Do(ctx, &b)
	clock.Add(DefaultBackoff)
	primary.panics.Store(true)
	func() {
		defer func() { _ = recover() }()
		_ = r.Do(ctx, &b)
	}()
	primary.panics.Store(false)
	primary.fail.Store(false)
	clock.Add(DefaultBackoff)
	if err := r.Do(ctx, &b); err != nil || b.Degraded || !r.Healthy() {
		t.Fatalf("after a probe panicked, the primary is back: %v, degraded %v, healthy %v; want it probed and used", err, b.Degraded, r.Healthy())
	}
}

// A caller whose context bounds the decision by the store's own timeout
// (ratelimit.Policy.Decide, when `timeout` is configured) is still there
// when Redis times out: that is a Redis failure, answered by the policy
// (here: the fallback) and skipped for the backoff, not an error returned
// to a caller "that went away" on every request.
func TestResilientTimeoutWithCallerDeadline(t *testing.T) {
	addr := redistest.Unresponsive(t)
	clock := newClock()
	var errs atomic.Int64
	const timeout = 50 * time.Millisecond
	primary := &countingStore{Store: NewRedis(newClient(t, addr), RedisOptions{Timeout: timeout})}
	r := NewResilient(primary, NewMemory(MemoryOptions{SweepInterval: -1}),
		ResilientOptions{FailOpen: true, Now: clock.Now, OnError: func(error) { errs.Add(1) }})
	defer r.Close()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{30, time.Minute}}}}
		err := r.Do(ctx, &b)
		cancel()
		if err != nil || !b.Degraded {
			t.Fatalf("Redis timed out: %v, degraded %v; want the fallback's answer", err, b.Degraded)
		}
	}
	if primary.calls.Load() != 1 || errs.Load() != 1 {
		t.Fatalf("%d calls to the hung Redis, %d errors reported; want 1 and 1", primary.calls.Load(), errs.Load())
	}
}
