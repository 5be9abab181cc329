package limiter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// With the server's own clock (no injected time).
func TestRedisServerClock(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
	defer s.Close()
	ctx := context.Background()
	l := Limit{3, time.Minute}
	for i := range 3 {
		if d := check(t, s, "ip:192.0.2.1", l); !d.Allowed || d.Remaining != int64(2-i) {
			t.Fatalf("event %d: %+v", i, d)
		}
	}
	d := check(t, s, "ip:192.0.2.1", l)
	serverNow, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Minute+time.Second {
		t.Fatalf("4th event: %+v; want refused with 0 < RetryAfter <= 61s", d)
	}
	if until := d.Reset.Sub(serverNow); until <= 0 || until > time.Minute+time.Second {
		t.Fatalf("Reset is %v after the server's clock; want within (0, 61s]", until)
	}
	key := testPrefix(t) + "rl:{ip:192.0.2.1}:1m0s"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 59*time.Second || ttl > time.Minute+time.Second {
		t.Fatalf("PTTL(%s) = %v, %v; want about a minute: idle keys must vanish", key, ttl, err)
	}
}

func TestRedisKeyLayout(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := NewRedis(c, RedisOptions{Prefix: "ahp:", Timeout: 5 * time.Second})
	defer s.Close()
	ctx := context.Background()
	secret, session := "sk-live-0123456789", "conv-abc-123"
	b := Batch{
		Windows: []WindowCheck{
			{Key: "ip:203.0.113.0/64", Limit: Limit{30, time.Minute}},
			{Key: secret, Secret: true, Limit: Limit{120, time.Minute}},
			{Key: "#looks-like-a-hash", Limit: Limit{5, time.Hour}},
		},
		Session: &SessionCheck{ID: session, Idle: 10 * time.Minute},
	}
	if err := s.Do(ctx, &b); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"ahp:rl:{ip:203.0.113.0/64}:1m0s":                    true,
		"ahp:rl:{#" + sha(secret) + "}:1m0s":                 true,
		"ahp:rl:{#" + sha("#looks-like-a-hash") + "}:1h0m0s": true,
		"ahp:s:{" + sha(session) + "}":                       true,
	}
	for _, k := range keys {
		if strings.Contains(k, secret) || strings.Contains(k, session) {
			t.Errorf("key %q holds a secret in clear", k)
		}
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
		delete(want, k)
	}
	for k := range want {
		t.Errorf("missing key %q (have %q)", k, keys)
	}
	ttl, err := c.PTTL(ctx, "ahp:s:{"+sha(session)+"}").Result()
	if err != nil || ttl <= 19*time.Minute || ttl > 20*time.Minute {
		t.Fatalf("session PTTL %v, %v; want 2×Idle", ttl, err)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// In Redis too, a key's state does not grow with N.
func TestRedisBytesPerKey(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	clock := newClock()
	s := NewRedis(c, RedisOptions{Prefix: "b:", Timeout: 5 * time.Second, now: clock.Now})
	defer s.Close()
	ctx := context.Background()
	usage := func(key string, l Limit, perSubWindow int, subWindows int) int64 {
		for range subWindows {
			for range perSubWindow {
				check(t, s, key, l)
			}
			clock.Add(l.Window / SubWindows)
		}
		n, err := c.MemoryUsage(ctx, "b:rl:{"+key+"}:"+l.Window.String()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	small := usage("small", Limit{30, time.Minute}, 1, 30)
	big := usage("big", Limit{1_000_000, time.Hour}, 1, 30)
	full := usage("full", Limit{1_000_000, time.Hour}, 3, 2*SubWindows)
	t.Logf("MEMORY USAGE: 30/minute %d bytes, 1000000/hour %d bytes, 1000000/hour in every sub-window %d bytes", small, big, full)
	if big > small+64 {
		t.Errorf("1000000/hour takes %d bytes, 30/minute %d: state grows with N", big, small)
	}
	if full > 2048 {
		t.Errorf("a key with events in every sub-window takes %d bytes; want at most 2 KiB", full)
	}
	// Sub-windows, plus the total and the oldest and newest index.
	fields, err := c.HLen(ctx, "b:rl:{full}:1h0m0s").Result()
	if err != nil || fields > SubWindows+2+3 {
		t.Errorf("%d fields, %v; want at most %d", fields, err, SubWindows+2+3)
	}
}

// One Batch, however many checks, is one network round trip.
func TestRedisOneRoundTripPerBatch(t *testing.T) {
	srv := redistest.Start(t)
	var writes atomic.Int64
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: countingDialer(&writes)})
	defer c.Close()
	var hook roundTrips
	c.AddHook(&hook)
	// NoLeases: every Do goes to Redis (leases and cached refusals, which
	// take none, are TestLease*'s).
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, NoLeases: true})
	defer s.Close()
	ctx := context.Background()
	b := Batch{
		Windows: []WindowCheck{
			{Key: "ip:192.0.2.1", Limit: Limit{30, time.Minute}},
			{Key: "agent:bot", Limit: Limit{60, time.Minute}},
			{Key: "key", Secret: true, Limit: Limit{120, time.Minute}},
		},
		Session: &SessionCheck{ID: "s1", MaxTurns: 1000},
	}
	// Connect and load the scripts (the first call of each script finds it
	// missing: NOSCRIPT, then EVAL).
	if err := s.Do(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTokens(ctx, "s1", 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	writes.Store(0)
	hook.cmds.Store(0)
	hook.pipelines.Store(0)
	const batches = 50
	for range batches {
		if err := s.Do(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTokens(ctx, "s1", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// A Batch goes out as one script (its session is gated on its
	// windows), AddTokens as one script: single commands.
	if w, p, c := writes.Load(), hook.pipelines.Load(), hook.cmds.Load(); w != 2*batches || p != 0 || c != 2*batches {
		t.Fatalf("%d calls: %d socket writes, %d pipelines, %d single commands; want one round trip per call",
			2*batches, w, p, c)
	}
	t.Logf("round trips per Batch of 3 windows and a session: %d", writes.Load()/(2*batches))

	// The common converse request: one window, one single command.
	one := Batch{Windows: []WindowCheck{{Key: "ip:192.0.2.9", Limit: Limit{30, time.Minute}}}}
	if err := s.Do(ctx, &one); err != nil { // loads the window script
		t.Fatal(err)
	}
	writes.Store(0)
	hook.cmds.Store(0)
	hook.pipelines.Store(0)
	for range batches {
		if err := s.Do(ctx, &one); err != nil {
			t.Fatal(err)
		}
	}
	if w, p, c := writes.Load(), hook.pipelines.Load(), hook.cmds.Load(); w != batches || p != 0 || c != batches {
		t.Fatalf("%d one-window batches: %d socket writes, %d pipelines, %d single commands", batches, w, p, c)
	}

	// After the server lost its scripts (restart, failover), a call takes
	// a second round trip to send them, and counts nothing twice.
	l := Limit{2, time.Hour}
	if !check(t, s, "noscript", l).Allowed {
		t.Fatal("refused")
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d := check(t, s, "noscript", l); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after SCRIPT FLUSH: %+v; want the second event admitted, none remaining", d)
	}
	if check(t, s, "noscript", l).Allowed {
		t.Fatal("third event admitted: an event was lost across NOSCRIPT")
	}
}

// On a cluster the batch goes to each node involved once, in parallel.
func TestRedisClusterRoundTrips(t *testing.T) {
	cluster := redistest.StartCluster(t)
	var writes atomic.Int64
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), ContextTimeoutEnabled: true, Dialer: countingDialer(&writes)})
	defer c.Close()
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
	defer s.Close()
	ctx := context.Background()
	var windows []WindowCheck
	for i := range 12 { // spread over all three nodes
		windows = append(windows, WindowCheck{Key: fmt.Sprintf("ip:192.0.2.%d", i), Limit: Limit{30, time.Minute}})
	}
	for _, batch := range []Batch{{Windows: windows[:1]}, {Windows: windows}} {
		if err := s.Do(ctx, &batch); err != nil { // warms up connections and scripts
			t.Fatal(err)
		}
		writes.Store(0)
		if err := s.Do(ctx, &batch); err != nil {
			t.Fatal(err)
		}
		nodes := map[string]bool{}
		for _, w := range batch.Windows {
			addr, err := c.MasterForKey(ctx, s.windowKey(&w))
			if err != nil {
				t.Fatal(err)
			}
			nodes[addr.String()] = true
		}
		if got := writes.Load(); got != int64(len(nodes)) {
			t.Fatalf("batch of %d windows on %d nodes: %d socket writes; want one per node", len(batch.Windows), len(nodes), got)
		}
	}
}

func TestCheckClient(t *testing.T) {
	bad := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer bad.Close()
	if err := CheckClient(bad); err == nil || !strings.Contains(err.Error(), "ContextTimeoutEnabled") {
		t.Fatalf("CheckClient without ContextTimeoutEnabled: %v", err)
	}
	good := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, ContextTimeoutEnabled: true})
	defer good.Close()
	if err := CheckClient(good); err != nil {
		t.Fatalf("CheckClient(cluster client with ContextTimeoutEnabled): %v", err)
	}
}

// A Redis that accepts connections and never answers costs one Timeout.
func TestRedisTimeoutOnHungServer(t *testing.T) {
	addr := redistest.Unresponsive(t)
	c := newClient(t, addr)
	s := NewRedis(c, RedisOptions{Timeout: 50 * time.Millisecond})
	defer s.Close()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{1, time.Minute}}}, Session: &SessionCheck{ID: "s"}}
	// The fastest of a few tries, so a stall of a loaded machine does not
	// fail the test; go-redis's own ReadTimeout would take 5s.
	fastest := time.Hour
	for range 3 {
		start := time.Now()
		if err := s.Do(context.Background(), &b); err == nil {
			t.Fatal("Do against a hung server succeeded")
		}
		fastest = min(fastest, time.Since(start))
	}
	if fastest < 50*time.Millisecond || fastest > 500*time.Millisecond {
		t.Fatalf("Do against a hung server took %v; want about the 50ms Timeout", fastest)
	}
	start := time.Now()
	if err := s.AddTokens(context.Background(), "s", 1, time.Minute); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("AddTokens against a hung server: %v after %v", err, time.Since(start))
	}
}

// Callers that arrive together share pipelines, and sharing changes no
// decision: exactly N of many concurrent events are admitted.
func TestRedisCoalescesConcurrentCallers(t *testing.T) {
	srv := redistest.Start(t)
	var writes atomic.Int64
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: countingDialer(&writes)})
	defer c.Close()
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
	defer s.Close()
	l := Limit{300, time.Minute}
	check(t, s, "warm-up", l) // connect and load the script
	writes.Store(0)

	const callers, each = 64, 20
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			b := Batch{Windows: []WindowCheck{{Key: "shared", Limit: l}}}
			for range each {
				if err := s.Do(context.Background(), &b); err != nil {
					t.Error(err)
					return
				}
				if b.Windows[0].Decision.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != l.Events {
		t.Fatalf("%d concurrent events under a limit of %d: %d admitted", callers*each, l.Events, got)
	}
	if w := writes.Load(); w >= callers*each {
		t.Fatalf("%d concurrent calls took %d socket writes; want shared round trips", callers*each, w)
	}
	t.Logf("%d concurrent calls: %d socket writes", callers*each, writes.Load())
}

// In a shared pipeline, one caller's failing script fails that caller only,
// and a caller that gave up, or whose time ran out in the queue, is not run
// late.
func TestRedisFlushIsolatesCallers(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
	defer s.Close()
	ctx := context.Background()
	l := Limit{5, time.Minute}
	good := Batch{Windows: []WindowCheck{{Key: "good", Limit: l}}}
	bad := Batch{Windows: []WindowCheck{{Key: "bad", Limit: l}}}
	gone := Batch{Windows: []WindowCheck{{Key: "gone", Limit: l}}}
	if err := c.Set(ctx, s.windowKey(&bad.Windows[0]), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	pending := func(ctx context.Context, b *Batch) *pendingCalls {
		w := &b.Windows[0]
		return &pendingCalls{ctx: ctx, deadline: time.Now().Add(time.Minute), done: make(chan error, 1), calls: []scriptCall{s.windowCall(w, 1)}}
	}
	late := Batch{Windows: []WindowCheck{{Key: "late", Limit: l}}}
	pg, pb, pc, pl := pending(ctx, &good), pending(ctx, &bad), pending(cancelled, &gone), pending(ctx, &late)
	pl.deadline = time.Now().Add(-time.Millisecond) // waited in the queue past its time
	s.flush([]*pendingCalls{pg, pb, pc, pl})
	if err := <-pg.done; err != nil {
		t.Fatalf("the good caller failed with its neighbour: %v", err)
	}
	if v, err := pg.calls[0].result(); err != nil || v[0] != 1 || v[1] != 4 {
		t.Fatalf("good caller's reply %v, %v; want admitted, 4 remaining", v, err)
	}
	if err := <-pb.done; err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("the caller whose key is not a hash: %v; want WRONGTYPE", err)
	}
	if err := <-pc.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left: %v; want context.Canceled", err)
	}
	if err := <-pl.done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller past its deadline: %v; want context.DeadlineExceeded", err)
	}
	for _, b := range []*Batch{&gone, &late} {
		if n, err := c.Exists(ctx, s.windowKey(&b.Windows[0])).Result(); err != nil || n != 0 {
			t.Fatalf("the script of a caller that left or was too late ran anyway (%s exists: %d, %v)", b.Windows[0].Key, n, err)
		}
	}
}

func TestRedisClosed(t *testing.T) {
	srv := redistest.Start(t)
	s := NewRedis(newClient(t, srv.Addr()), RedisOptions{Timeout: 5 * time.Second})
	defer s.Close()
	check(t, s, "k", Limit{1, time.Minute})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{1, time.Minute}}}}
	if err := s.Do(context.Background(), &b); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("Do after Close: %v; want ErrStoreClosed", err)
	}
}

// A key written by the earlier layout (sub-window fields only, no summary)
// keeps counting: its first decision summarises it.
func TestRedisWindowKeyWithoutSummary(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	clock := newClock()
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, now: clock.Now})
	defer s.Close()
	ctx := context.Background()
	l := Limit{6, time.Minute}
	w := WindowCheck{Key: "legacy", Limit: l}
	g := l.subWindow(time.Microsecond)
	idx := clock.Now().UnixMicro() / g
	if err := c.HSet(ctx, s.windowKey(&w), fmt.Sprint(idx-70), 9, fmt.Sprint(idx-3), 2, fmt.Sprint(idx), 3).Err(); err != nil {
		t.Fatal(err)
	}
	// 5 of 6 still count (the 9 are older than the window).
	if d := check(t, s, "legacy", l); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("first decision on a legacy key: %+v; want admitted, 0 remaining", d)
	}
	if d := check(t, s, "legacy", l); d.Allowed {
		t.Fatalf("seventh event admitted: %+v", d)
	}
	if n, err := c.HExists(ctx, s.windowKey(&w), fmt.Sprint(idx-70)).Result(); err != nil || n {
		t.Fatalf("the expired sub-window is still there (%v, %v)", n, err)
	}
}

// panicHook makes go-redis panic on the next command while armed.
type panicHook struct{ armed atomic.Bool }

func (h *panicHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *panicHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.armed.CompareAndSwap(true, false) {
			panic("hook exploded")
		}
		return next(ctx, cmd)
	}
}

func (h *panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.CompareAndSwap(true, false) {
			panic("hook exploded")
		}
		return next(ctx, cmds)
	}
}

// Callers send their own pipelines, so a panic inside go-redis happens in
// a caller's goroutine (where Caddy recovers it): the store must go on
// answering everyone after it, not wedge with a pipeline slot taken.
func TestRedisSurvivesPanicInClient(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	var hook panicHook
	c.AddHook(&hook)
	s := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second})
	defer s.Close()
	l := Limit{1000, time.Minute}
	check(t, s, "warm-up", l)
	for range redisFlushers + 1 {
		hook.armed.Store(true)
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic reached the caller")
				}
			}()
			b := Batch{Windows: []WindowCheck{{Key: "k", Limit: l}}}
			_ = s.Do(context.Background(), &b)
		}()
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			b := Batch{Windows: []WindowCheck{{Key: "k", Limit: l}}}
			if err := s.Do(context.Background(), &b); err != nil || !b.Windows[0].Decision.Allowed {
				t.Errorf("after the panics: %v, %+v", err, b.Windows[0].Decision)
			}
		})
	}
	wg.Wait()
}

// Pipelines due in the same millisecond share one deadline context, which
// never ends before any of them is due and at most a millisecond after.
func TestRedisPipelineDeadlines(t *testing.T) {
	s := NewRedis(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), RedisOptions{})
	defer s.Close()
	base := time.Now().Add(time.Minute)
	base = base.Add(-time.Duration(base.Nanosecond() % int(time.Millisecond))) // on a millisecond
	for _, off := range []time.Duration{0, time.Microsecond, 500 * time.Microsecond, time.Millisecond - 1} {
		due := base.Add(off)
		d, ok := s.contextUntil(due).Deadline()
		if !ok || d.Before(due) || d.Sub(due) >= time.Millisecond {
			t.Fatalf("due %v: context deadline %v (%v)", due, d, d.Sub(due))
		}
	}
	a, b := s.contextUntil(base.Add(time.Microsecond)), s.contextUntil(base.Add(900*time.Microsecond))
	if a != b {
		t.Fatal("two pipelines due in the same millisecond got two contexts")
	}
	if c := s.contextUntil(base.Add(1100 * time.Microsecond)); c == a {
		t.Fatal("a pipeline due a millisecond later shares the earlier context")
	}
}
