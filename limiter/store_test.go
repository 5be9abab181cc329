package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// Tests every store kind must pass: the memory store, the Redis store on one
// server and on a three-node cluster. The memory store's run needs no Redis.
func TestStores(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testStore(t, memoryKind()) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		k := redisKind("redis", func(t *testing.T) redis.UniversalClient { return newClient(t, srv.Addr()) })
		testStore(t, k)
		t.Run("MergedWindows", func(t *testing.T) { testMergedWindows(t, k) })
	})
	t.Run("cluster", func(t *testing.T) {
		cluster := redistest.StartCluster(t)
		k := redisKind("cluster", func(t *testing.T) redis.UniversalClient { return newClusterClient(t, cluster.Addrs()) })
		testStore(t, k)
		t.Run("MergedWindows", func(t *testing.T) { testMergedWindows(t, k) })
	})
}

// testMergedWindows: the window calls of one pipeline with the same key
// and limit are decided by one script call (mergeWindows), and on one
// server the calls of all keys by one script call; every caller
// must get exactly what one call each, in pipeline order, would have
// given it (a Redis store deciding them one by one, and the memory
// store), and a caller that left is neither decided nor counted.
func testMergedWindows(t *testing.T, k storeKind) {
	clock := newClock()
	merged := k.open(t, clock.Now).(*Redis)
	oneByOne := k.open(t, clock.Now)
	// The same test's stores share a prefix: give the one-by-one store
	// its own keys.
	oneByOne.(*Redis).prefix += "seq:"
	memory := memoryKind().open(t, clock.Now)
	// Sub-windows of 100 ms and 1 s: both stores count on the same grid.
	limits := map[string]Limit{"a": {5, 6 * time.Second}, "b": {3, time.Minute}, "c": {40, time.Minute}}
	keys := []string{"a", "b", "c"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	type caller struct {
		b    Batch
		p    *pendingCalls
		gone bool
	}
	// decide sends callers as one pipeline of the merged store, then the
	// same events one by one to the other stores, and compares.
	decide := func(step int, callers []*caller) (admitted, refused int) {
		live := make([]*pendingCalls, 0, len(callers))
		distinct := map[string]bool{}
		for _, c := range callers {
			ctx := context.Background()
			if c.gone {
				ctx = cancelled
			} else {
				distinct[c.b.Windows[0].Key] = true
			}
			c.p = &pendingCalls{ctx: ctx, deadline: time.Now().Add(time.Minute), done: make(chan error, 1),
				calls: []scriptCall{merged.windowCall(&c.b.Windows[0], 1)}}
			live = append(live, c.p)
		}
		var stay []*pendingCalls
		for _, p := range live {
			if p.ctx.Err() == nil {
				stay = append(stay, p)
			}
		}
		// One script call per key; on one server, one for all keys.
		pc := merged.mergeWindows(stay)
		want := len(distinct)
		if merged.single && want > 1 {
			want = 1
		}
		if len(pc.sends) != want {
			t.Fatalf("step %d: %d callers on %d keys make %d script calls; want %d", step, len(stay), len(distinct), len(pc.sends), want)
		}
		pc.release()
		merged.flush(live)
		for i, c := range callers {
			err := <-c.p.done
			if c.gone {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("step %d caller %d left: %v; want context.Canceled", step, i, err)
				}
				continue
			}
			if err != nil || !scriptReply(&c.p.calls[0], windowReply) {
				t.Fatalf("step %d caller %d: %v, reply %v", step, i, err, c.p.calls[0].val)
			}
			got := &c.b.Windows[0]
			setWindow(got, c.p.calls[0].val)
			for _, ref := range []Store{oneByOne, memory} {
				want := Batch{Windows: []WindowCheck{{Key: got.Key, Limit: got.Limit}}}
				if err := ref.Do(context.Background(), &want); err != nil {
					t.Fatal(err)
				}
				w := want.Windows[0].Decision
				if got.Decision.Allowed != w.Allowed || got.Decision.Remaining != w.Remaining || got.Decision.Limit != w.Limit ||
					!got.Decision.Reset.Equal(w.Reset) || got.Decision.RetryAfter != w.RetryAfter {
					t.Fatalf("step %d caller %d (key %s, %v): merged %+v, one by one (%T) %+v", step, i, got.Key, got.Limit, got.Decision, ref, w)
				}
			}
			if got.Decision.Allowed {
				admitted++
			} else {
				refused++
			}
		}
		return admitted, refused
	}
	newCaller := func(key string, gone bool) *caller {
		return &caller{b: Batch{Windows: []WindowCheck{{Key: key, Limit: limits[key]}}}, gone: gone}
	}

	// At the edge of the limit: 3 of 5 spent, then one pipeline of five
	// callers of the key, one of whom left: two admitted (remaining 1,
	// then 0), two refused with a Retry-After, and the one that left not
	// counted.
	for range 3 {
		decide(0, []*caller{newCaller("a", false)})
	}
	edge := []*caller{newCaller("a", false), newCaller("a", true), newCaller("a", false), newCaller("a", false), newCaller("a", false)}
	if a, r := decide(1, edge); a != 2 || r != 2 {
		t.Fatalf("at the edge: %d admitted, %d refused; want 2 and 2", a, r)
	}
	if d := edge[0].b.Windows[0].Decision; !d.Allowed || d.Remaining != 1 {
		t.Fatalf("first caller at the edge: %+v; want admitted, 1 remaining", d)
	}
	if d := edge[3].b.Windows[0].Decision; d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("a refused caller at the edge: %+v; want a Retry-After", d)
	}

	// Random pipelines: several keys and limits mixed, callers that left,
	// time passing in steps that cross sub-windows and whole windows.
	r := rand.New(rand.NewPCG(11, 12))
	var admitted, refused int
	for step := 2; step < 250; step++ {
		switch r.IntN(4) {
		case 0:
		case 1:
			clock.Add(time.Duration(r.IntN(400)) * time.Millisecond)
		default:
			clock.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
		}
		callers := make([]*caller, 1+r.IntN(12))
		for i := range callers {
			callers[i] = newCaller(keys[r.IntN(len(keys))], r.IntN(6) == 0)
		}
		a, f := decide(step, callers)
		admitted += a
		refused += f
	}
	if admitted < 100 || refused < 100 {
		t.Fatalf("%d admitted, %d refused: the pipelines did not exercise the limits", admitted, refused)
	}
}

func testStore(t *testing.T, k storeKind) {
	t.Run("Property", func(t *testing.T) { testProperty(t, k) })
	t.Run("Decision", func(t *testing.T) { testDecision(t, k) })
	t.Run("SharedAndConcurrent", func(t *testing.T) { testSharedAndConcurrent(t, k) })
	t.Run("IndependentWindows", func(t *testing.T) { testIndependentWindows(t, k) })
	t.Run("SharedChecksGated", func(t *testing.T) { testSharedChecksGated(t, k) })
	t.Run("NoGate", func(t *testing.T) { testNoGate(t, k) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, k) })
	t.Run("SessionIdle", func(t *testing.T) { testSessionIdle(t, k) })
	t.Run("TokenBudget", func(t *testing.T) { testTokenBudget(t, k) })
	t.Run("AsyncJobTokens", func(t *testing.T) { testAsyncJobTokens(t, k) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, k) })
}

// testProperty drives random arrival times through the store and checks the
// documented bounds (see Limit) over every admitted and refused event. On
// some refusals it probes one microsecond before RetryAfter (must be
// refused) and at RetryAfter (must be admitted).
func testProperty(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	r := rand.New(rand.NewPCG(7, 8))
	events := 1500
	if k.name != "memory" {
		events = 400 // each event is a round trip
	}
	for run, l := range []Limit{{1, 6 * time.Second}, {3, 6 * time.Second}, {10, time.Minute}, {50, time.Minute}, {120, time.Hour}} {
		key := fmt.Sprintf("prop:%d", run)
		span := int64(l.Window / time.Microsecond)
		g := span / SubWindows
		start := clock.Now().UnixMicro()
		var admitted, refused []int64
		decide := func(at int64) Decision {
			clock.Set(time.UnixMicro(at))
			d := check(t, s, key, l)
			if d.Allowed {
				admitted = append(admitted, at)
			} else {
				refused = append(refused, at)
			}
			return d
		}
		last := start
		for _, at := range arrivals(r, events, start, span, l.Events) {
			if at < last {
				continue // a probe below moved the clock past this arrival
			}
			last = at
			d := decide(at)
			switch {
			case d.Allowed && d.RetryAfter != 0:
				t.Fatalf("admitted with RetryAfter %v", d.RetryAfter)
			case d.Allowed && (d.Remaining < 0 || d.Remaining >= l.Events):
				t.Fatalf("admitted with Remaining %d of %d", d.Remaining, l.Events)
			case !d.Allowed && (d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > l.Window+l.Window/SubWindows):
				t.Fatalf("refused with Remaining %d, RetryAfter %v", d.Remaining, d.RetryAfter)
			case d.Limit != l.Events:
				t.Fatalf("Limit = %d, want %d", d.Limit, l.Events)
			case !d.Reset.After(time.UnixMicro(at)):
				t.Fatalf("Reset %v not after now %v", d.Reset, time.UnixMicro(at))
			}
			if !d.Allowed && r.IntN(4) == 0 {
				retryAt := at + d.RetryAfter.Microseconds()
				if decide(retryAt - 1).Allowed {
					t.Fatalf("admitted 1µs before RetryAfter %v", d.RetryAfter)
				}
				if !decide(retryAt).Allowed {
					t.Fatalf("refused at RetryAfter %v", d.RetryAfter)
				}
				last = retryAt
			}
		}
		slices.Sort(admitted)
		slices.Sort(refused)
		verifyWindow(t, admitted, refused, l.Events, span, g)
		if len(refused) == 0 || len(admitted) < int(l.Events) {
			t.Fatalf("%v: %d admitted, %d refused: the arrivals did not exercise the limit", l, len(admitted), len(refused))
		}
	}
}

// testDecision checks the numbers an agent sees, step by step.
func testDecision(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	l := Limit{3, time.Minute}
	t0 := clock.Now()
	for i := range 3 {
		d := check(t, s, "decision", l)
		if !d.Allowed || d.Remaining != int64(2-i) || d.Limit != 3 {
			t.Fatalf("event %d: %+v; want allowed, remaining %d", i, d, 2-i)
		}
		// The oldest event stops counting one sub-window after the window.
		if want := t0.Add(time.Minute + time.Second); !d.Reset.Equal(want) {
			t.Fatalf("event %d: Reset %v, want %v", i, d.Reset, want)
		}
		if d.ResetIn != time.Minute+time.Second {
			t.Fatalf("event %d: ResetIn %v, want 1m1s (by the store's clock)", i, d.ResetIn)
		}
	}
	clock.Add(30 * time.Second)
	d := check(t, s, "decision", l)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 31*time.Second {
		t.Fatalf("4th event: %+v; want refused, RetryAfter 31s", d)
	}
	if d.Reset.Sub(clock.Now()) != 31*time.Second || d.ResetIn != 31*time.Second {
		t.Fatalf("4th event: Reset in %v (ResetIn %v), want 31s", d.Reset.Sub(clock.Now()), d.ResetIn)
	}
	clock.Add(31 * time.Second)
	// The first three events stopped counting together, as their sub-window
	// left the window.
	if d := check(t, s, "decision", l); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("at RetryAfter: %+v; want allowed, remaining 2", d)
	}
}

// testSharedAndConcurrent: several instances (stores opened separately on
// the same backend) hammering one key at one instant admit N in total.
func testSharedAndConcurrent(t *testing.T, k storeKind) {
	clock := newClock()
	stores := []Store{k.open(t, clock.Now)}
	if k.name != "memory" {
		stores = append(stores, k.open(t, clock.Now)) // a second instance
	}
	l := Limit{100, time.Minute}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			s := stores[g%len(stores)]
			for range 40 {
				b := Batch{Windows: []WindowCheck{{Key: "shared", Limit: l}}}
				if err := s.Do(context.Background(), &b); err != nil {
					t.Error(err)
					return
				}
				if b.Windows[0].Decision.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != l.Events {
		t.Fatalf("%d instances admitted %d events at one instant; want exactly %d", len(stores), got, l.Events)
	}
}

// testIndependentWindows: a window counts an event only if it admits it,
// whatever the other windows of the batch decide; keys are scoped by window.
func testIndependentWindows(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	b := Batch{Windows: []WindowCheck{
		{Key: "ip:192.0.2.1", Limit: Limit{5, time.Minute}},
		{Key: "agent:bot", Limit: Limit{2, time.Minute}},
		{Key: "ip:192.0.2.1", Limit: Limit{100, time.Hour}}, // same key, other window
	}}
	var allowed [3]int
	for range 4 {
		if err := s.Do(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		for i := range b.Windows {
			if b.Windows[i].Decision.Allowed {
				allowed[i]++
			}
		}
	}
	if allowed != [3]int{4, 2, 4} {
		t.Fatalf("admitted per window %v, want [4 2 4]", allowed)
	}
	if b.Allowed() {
		t.Fatal("Batch.Allowed with a refusing window")
	}
	if d := b.Windows[2].Decision; d.Remaining != 96 {
		t.Fatalf("hourly window remaining %d, want 96: it must not share the minute window's count", d.Remaining)
	}
}

// testSharedChecksGated: a client refused by its own window spends none
// of what it shares with other clients (an agent identity's window, a
// session's turns); a client within its limit spends them as usual.
func testSharedChecksGated(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	attacker := Batch{
		Windows: []WindowCheck{
			{Key: "ip:198.51.100.66", Limit: Limit{3, time.Minute}},
			{Key: "agent:VictimBot/1.0", Limit: Limit{5, time.Minute}, Shared: true},
		},
		Session: &SessionCheck{ID: "victim-session", MaxTurns: 5},
	}
	for i := range 20 {
		if err := s.Do(context.Background(), &attacker); err != nil {
			t.Fatal(err)
		}
		skipped := attacker.Windows[1].Skipped
		if want := i >= 3; skipped != want || attacker.Session.Skipped != want {
			t.Fatalf("request %d: agent window skipped %v, session skipped %v; want %v", i+1, skipped, attacker.Session.Skipped, want)
		}
		if !skipped && !attacker.Windows[1].Decision.Allowed {
			t.Fatalf("request %d: the agent window refused within the client's own limit", i+1)
		}
	}
	// The victim, from another address, still has 5-3 = 2 events of its
	// agent window and 5-3 = 2 turns of its session.
	victim := Batch{
		Windows: []WindowCheck{
			{Key: "ip:203.0.113.10", Limit: Limit{30, time.Minute}},
			{Key: "agent:VictimBot/1.0", Limit: Limit{5, time.Minute}, Shared: true},
		},
		Session: &SessionCheck{ID: "victim-session", MaxTurns: 5},
	}
	for i := range 3 {
		if err := s.Do(context.Background(), &victim); err != nil {
			t.Fatal(err)
		}
		want := i < 2
		if got := victim.Windows[1].Decision.Allowed; got != want || victim.Windows[1].Skipped {
			t.Fatalf("victim request %d: agent window allowed %v (skipped %v); want %v", i+1, got, victim.Windows[1].Skipped, want)
		}
		if got := victim.Session.Outcome == SessionOK; got != want {
			t.Fatalf("victim request %d: session %s; want ok=%v", i+1, victim.Session.Outcome, want)
		}
	}
	// A batch of shared checks alone is not gated.
	alone := Batch{Windows: []WindowCheck{{Key: "agent:alone", Limit: Limit{1, time.Minute}, Shared: true}}}
	if err := s.Do(context.Background(), &alone); err != nil || !alone.Windows[0].Decision.Allowed || alone.Windows[0].Skipped {
		t.Fatalf("a lone shared window: %+v, %v", alone.Windows[0], err)
	}
}

// testNoGate: a batch with NoGate (a dry run, which lets a call over the
// client's limit through) has its shared windows and session decided and
// counted whatever the client's window says.
func testNoGate(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	for i := range 4 {
		b := Batch{
			Windows: []WindowCheck{
				{Key: "ip:198.51.100.67", Limit: Limit{1, time.Minute}},
				{Key: "agent:DryBot/1.0", Limit: Limit{5, time.Minute}, Shared: true},
			},
			Session: &SessionCheck{ID: "dry-session", MaxTurns: 2},
			NoGate:  true,
		}
		if err := s.Do(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if got, want := b.Windows[0].Decision.Allowed, i == 0; got != want {
			t.Fatalf("request %d: client window allowed %v, want %v", i+1, got, want)
		}
		agent := b.Windows[1]
		if agent.Skipped || !agent.Decision.Allowed || agent.Decision.Remaining != int64(4-i) {
			t.Fatalf("request %d: agent window %+v (skipped %v); want admitted with %d left", i+1, agent.Decision, agent.Skipped, 4-i)
		}
		want := SessionOK
		if i >= 2 {
			want = SessionTooManyTurns
		}
		if b.Session.Skipped || b.Session.Outcome != want {
			t.Fatalf("request %d: session %s (skipped %v); want %s", i+1, b.Session.Outcome, b.Session.Skipped, want)
		}
	}
}

func doSession(t *testing.T, s Store, c SessionCheck) SessionCheck {
	t.Helper()
	b := Batch{Session: &c}
	if err := s.Do(context.Background(), &b); err != nil {
		t.Fatalf("Do: %v", err)
	}
	return c
}

func testSessions(t *testing.T, k storeKind) {
	clock := newClock()
	a, b := k.open(t, clock.Now), k.open(t, clock.Now)
	if k.name == "memory" {
		b = a // one instance
	}
	c := SessionCheck{ID: "sess-1", MaxTurns: 3, Idle: 10 * time.Minute}
	for turn := 1; turn <= 3; turn++ {
		s := a
		if turn%2 == 0 {
			s = b // turns alternate between instances
		}
		if got := doSession(t, s, c); got.Outcome != SessionOK || got.Turn != turn {
			t.Fatalf("turn %d: %v turn %d", turn, got.Outcome, got.Turn)
		}
		clock.Add(time.Minute)
	}
	for range 2 {
		if got := doSession(t, b, c); got.Outcome != SessionTooManyTurns || got.Turn != 0 {
			t.Fatalf("turn 4: %v turn %d; want too_many_turns", got.Outcome, got.Turn)
		}
	}
	// Refused turns were not counted: with one more turn allowed, it is turn 4.
	c.MaxTurns = 4
	if got := doSession(t, a, c); got.Outcome != SessionOK || got.Turn != 4 {
		t.Fatalf("with MaxTurns 4: %v turn %d; want ok turn 4", got.Outcome, got.Turn)
	}
	// No turn limit.
	free := SessionCheck{ID: "sess-free"}
	for turn := 1; turn <= 30; turn++ {
		if got := doSession(t, a, free); got.Outcome != SessionOK || got.Turn != turn {
			t.Fatalf("unlimited turn %d: %v turn %d", turn, got.Outcome, got.Turn)
		}
	}
}

func testSessionIdle(t *testing.T, k storeKind) {
	clock := newClock()
	s := k.open(t, clock.Now)
	c := SessionCheck{ID: "sess-idle", MaxTurns: 10, Idle: 10 * time.Minute}
	doSession(t, s, c)
	clock.Add(10*time.Minute - time.Microsecond)
	if got := doSession(t, s, c); got.Outcome != SessionOK || got.Turn != 2 {
		t.Fatalf("just before idle: %v turn %d", got.Outcome, got.Turn)
	}
	clock.Add(10 * time.Minute)
	for range 2 {
		if got := doSession(t, s, c); got.Outcome != SessionExpired {
			t.Fatalf("after idle: %v; want expired", got.Outcome)
		}
		clock.Add(15 * time.Minute) // still tried within the record's lifetime
	}
	// Forgotten 2×Idle after its last use: the id starts over.
	clock.Add(20 * time.Minute)
	if got := doSession(t, s, c); got.Outcome != SessionOK || got.Turn != 1 {
		t.Fatalf("long after: %v turn %d; want a new session", got.Outcome, got.Turn)
	}
	// Idle <= 0 means the spec's default.
	d := SessionCheck{ID: "sess-default"}
	doSession(t, s, d)
	clock.Add(DefaultSessionIdle)
	if got := doSession(t, s, d); got.Outcome != SessionExpired {
		t.Fatalf("default idle: %v; want expired after %v", got.Outcome, DefaultSessionIdle)
	}
}

func testTokenBudget(t *testing.T, k storeKind) {
	clock := newClock()
	a, b := k.open(t, clock.Now), k.open(t, clock.Now)
	if k.name == "memory" {
		b = a // one instance
	}
	ctx := context.Background()
	idle := 10 * time.Minute
	c := SessionCheck{ID: "sess-budget", MaxTurns: 10, Idle: idle, TokenBudget: 1000}
	doSession(t, a, c)
	if err := a.AddTokens(ctx, c.ID, 600, idle); err != nil {
		t.Fatal(err)
	}
	if got := doSession(t, b, c); got.Outcome != SessionOK || got.TokensUsed != 600 || got.Turn != 2 {
		t.Fatalf("after 600 tokens: %+v", got)
	}
	if err := b.AddTokens(ctx, c.ID, 400, idle); err != nil {
		t.Fatal(err)
	}
	if got := doSession(t, a, c); got.Outcome != SessionOverBudget || got.TokensUsed != 1000 {
		t.Fatalf("after 1000 tokens: %+v; want over budget", got)
	}
	// A session id the concierge assigned: registered at turn 1 by AddTokens.
	if err := a.AddTokens(ctx, "sess-assigned", 50, idle); err != nil {
		t.Fatal(err)
	}
	if got := doSession(t, a, SessionCheck{ID: "sess-assigned", MaxTurns: 10, Idle: idle}); got.Outcome != SessionOK || got.Turn != 2 || got.TokensUsed != 50 {
		t.Fatalf("assigned id: %+v; want turn 2 with 50 tokens", got)
	}
	// Zero tokens still register the id.
	if err := a.AddTokens(ctx, "sess-zero", 0, idle); err != nil {
		t.Fatal(err)
	}
	if got := doSession(t, a, SessionCheck{ID: "sess-zero"}); got.Turn != 2 {
		t.Fatalf("zero-token registration: turn %d, want 2", got.Turn)
	}
}

// An async job's result counts once, however often it is polled; a result
// no job was opened for (a job's of another instance's memory, a poll of
// an id never accepted) counts nothing and registers nothing.
func testAsyncJobTokens(t *testing.T, k storeKind) {
	clock := newClock()
	a, b := k.open(t, clock.Now), k.open(t, clock.Now)
	if k.name == "memory" {
		b = a
	}
	ctx := context.Background()
	idle := 10 * time.Minute
	c := SessionCheck{ID: "sess-job", MaxTurns: 10, Idle: idle, TokenBudget: 1000}
	add := func(s Store, step JobStep, n int64) {
		t.Helper()
		if err := s.AddJobTokens(ctx, c.ID, step, n, idle); err != nil {
			t.Fatal(err)
		}
	}
	add(a, JobOpen, 10) // the accepted answer (an id the concierge assigned)
	add(b, JobClose, 600)
	add(a, JobClose, 600) // polled again: counted already
	if got := doSession(t, b, c); got.Outcome != SessionOK || got.TokensUsed != 610 || got.Turn != 2 {
		t.Fatalf("after a job of 600 tokens polled twice: %+v; want turn 2 with 610 tokens", got)
	}
	add(b, JobOpen, 0)
	add(b, JobOpen, 0)
	add(a, JobClose, 200)
	add(a, JobClose, 200)
	add(a, JobClose, 200)
	if got := doSession(t, a, c); got.Outcome != SessionOverBudget || got.TokensUsed != 1010 {
		t.Fatalf("after two more jobs of 200: %+v; want 1010 tokens, over budget", got)
	}
	if err := a.AddJobTokens(ctx, "sess-never", JobClose, 500, idle); err != nil {
		t.Fatal(err)
	}
	if got := doSession(t, a, SessionCheck{ID: "sess-never", MaxTurns: 10, Idle: idle, TokenBudget: 100}); got.Outcome != SessionOK || got.Turn != 1 || got.TokensUsed != 0 {
		t.Fatalf("a result no job was opened for: %+v; want a new session", got)
	}
	// A job of a session forgotten (2×idle after its last use) is gone.
	add(a, JobOpen, 0)
	clock.Add(2*idle + time.Second)
	add(b, JobClose, 700)
	if got := doSession(t, a, c); got.TokensUsed != 0 || got.Turn != 1 {
		t.Fatalf("a forgotten session's job: %+v; want a new session", got)
	}
}

func testInvalid(t *testing.T, k storeKind) {
	s := k.open(t, newClock().Now)
	ctx := context.Background()
	for _, b := range []Batch{
		{Windows: []WindowCheck{{Key: "k", Limit: Limit{0, time.Minute}}}},
		{Windows: []WindowCheck{{Key: "k", Limit: Limit{1, time.Microsecond}}}},
		{Session: &SessionCheck{}},
		{Session: &SessionCheck{ID: "x", TokenBudget: -1}},
	} {
		if err := s.Do(ctx, &b); !errors.Is(err, ErrInvalidCheck) {
			t.Errorf("Do(%+v) = %v; want ErrInvalidCheck", b, err)
		}
	}
	if err := s.AddTokens(ctx, "", 1, time.Minute); !errors.Is(err, ErrInvalidCheck) {
		t.Errorf("AddTokens with empty id: %v", err)
	}
	if err := s.AddTokens(ctx, "x", -1, time.Minute); !errors.Is(err, ErrInvalidCheck) {
		t.Errorf("AddTokens with negative tokens: %v", err)
	}
}
