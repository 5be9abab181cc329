package limiter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// leaseInstance is one instance of a deployment: its own client (whose
// round trips it counts) and store, over the Redis every instance shares.
type leaseInstance struct {
	s    *Redis
	hook *roundTrips
}

func (in leaseInstance) trips() int64 { return in.hook.cmds.Load() + in.hook.pipelines.Load() }

func openInstance(t *testing.T, c redis.UniversalClient, prefix string, now func() time.Time, opts RedisOptions) leaseInstance {
	hook := new(roundTrips)
	c.AddHook(hook)
	opts.Prefix, opts.Timeout, opts.now = prefix, 5*time.Second, now
	s := NewRedis(c, opts)
	t.Cleanup(func() { s.Close() })
	return leaseInstance{s, hook}
}

func decide(t *testing.T, s Store, b *Batch) {
	t.Helper()
	if err := s.Do(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// maxInWindow is the most events of times (sorted, µs) in any closed
// interval of length span.
func maxInWindow(times []int64, span int64) int {
	best, j := 0, 0
	for i := range times {
		for times[i]-times[j] > span {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Several instances with leases, one Redis: whatever the interleaving,
// no closed interval of the window's length ever holds more than N
// admitted events, most decisions are made without a round trip, and the
// leases cost little of the limit (the busiest window is near N).
func TestLeasesHoldTheBound(t *testing.T) {
	run := func(t *testing.T, newClient func() redis.UniversalClient) {
		// Refused events always go to Redis, so the round trips saved
		// depend on how many are refused.
		for _, tc := range []struct {
			limit Limit
			step  time.Duration // the clock moves 0..step between events
			trips float64       // most round trips per event
		}{
			{Limit{9600, 2 * time.Second}, 300 * time.Microsecond, 0.3},
			// g = 16.666 ms, not a divisor of the window; leases of at
			// most 2 and 7 events a sub-window per instance: little to save.
			{Limit{1000, time.Second}, 1500 * time.Microsecond, 0.9},
			{Limit{4800, time.Minute}, 15 * time.Millisecond, 0.6}, // g = 1 s
		} {
			t.Run(tc.limit.String(), func(t *testing.T) {
				clock := newClock()
				prefix := testPrefix(t)
				var ins []leaseInstance
				for range 3 {
					ins = append(ins, openInstance(t, newClient(), prefix, clock.Now, RedisOptions{}))
				}
				rng := rand.New(rand.NewPCG(uint64(tc.limit.Events), 7))
				var admitted []int64
				const events = 12000
				refused := 0
				for range events {
					clock.Add(time.Duration(rng.Int64N(int64(tc.step) + 1)))
					in := ins[rng.IntN(len(ins))]
					b := Batch{Windows: []WindowCheck{{Key: "hot", Limit: tc.limit}}}
					decide(t, in.s, &b)
					d := b.Windows[0].Decision
					if d.Allowed {
						admitted = append(admitted, clock.Now().UnixMicro())
					} else {
						refused++
						if d.RetryAfter <= 0 {
							t.Fatalf("refused without Retry-After: %+v", d)
						}
					}
				}
				trips := int64(0)
				for _, in := range ins {
					trips += in.trips()
				}
				span := tc.limit.Window.Microseconds()
				most := maxInWindow(admitted, span)
				t.Logf("%d events: %d admitted, %d refused, %d round trips, busiest window %d of %d", events, len(admitted), refused, trips, most, tc.limit.Events)
				if most > int(tc.limit.Events) {
					t.Fatalf("%d events admitted within one window of %s; limit %d", most, tc.limit.Window, tc.limit.Events)
				}
				if refused == 0 {
					t.Fatal("nothing refused: the test never reached the limit")
				}
				if float64(trips) > tc.trips*events {
					t.Fatalf("%d round trips for %d events: leases were not used", trips, events)
				}
				if most*10 < int(tc.limit.Events)*9 {
					t.Fatalf("busiest window %d of %d: leases left too much of the limit unspent", most, tc.limit.Events)
				}
			})
		}
	}
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		run(t, func() redis.UniversalClient { return newClient(t, srv.Addr()) })
	})
	t.Run("cluster", func(t *testing.T) {
		cluster := redistest.StartCluster(t)
		run(t, func() redis.UniversalClient { return newClusterClient(t, cluster.Addrs()) })
	})
}

// One instance: every decision, from a lease or from Redis, is exactly
// the one an exact store makes (the same sub-window grid) that counts the
// events admitted so far plus those of leases that ended unspent, each in
// the sub-window its lease was counted in: a lease changes nothing but
// the round trips and the unspent events, which only refuse earlier.
func TestLeaseDecisionsAgainstExact(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	in := openInstance(t, newClient(t, srv.Addr()), testPrefix(t), clock.Now, RedisOptions{})
	lim := Limit{3000, 6 * time.Second} // g = 100 ms, leases up to 6
	g, span := lim.subWindow(time.Microsecond), lim.Window.Microseconds()
	var counted []int64 // µs, in order: admitted, and unspent leased events
	first := 0          // counted[first:] are in sub-windows that still count
	rng := rand.New(rand.NewPCG(1, 2))
	refused, wasted, leased := 0, 0, 0
	for i := range 20000 {
		// Bursts within a sub-window, then pauses that cross them.
		step := time.Duration(rng.Int64N(int64(200 * time.Microsecond)))
		if i%50 == 49 {
			step = time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
		}
		before := clock.Now()
		clock.Add(step)
		if l := in.s.leases.get(leaseKey{key: "k", limit: lim}); l != nil && l.left > 0 && before.Before(l.until) && !clock.Now().Before(l.until) {
			// The lease ended unspent: its events stay counted in its
			// sub-window.
			for range l.left {
				counted = append(counted, l.until.UnixMicro()-1)
			}
			wasted += int(l.left)
		}
		now := clock.Now().UnixMicro()
		for first < len(counted) && counted[first]/g < (now-span)/g {
			first++
		}
		n := int64(len(counted) - first)
		b := Batch{Windows: []WindowCheck{{Key: "k", Limit: lim}}}
		trips := in.trips()
		decide(t, in.s, &b)
		if b.Leased != (in.trips() == trips) {
			t.Fatalf("event %d: Leased %v after %d round trips", i, b.Leased, in.trips()-trips)
		}
		if b.Leased {
			leased++
		}
		got := b.Windows[0].Decision
		if got.Allowed != (n < lim.Events) || (got.Allowed && got.Remaining != lim.Events-n-1) {
			t.Fatalf("event %d: %+v; exact store counting %d events: allowed %v, remaining %d", i, got, n, n < lim.Events, lim.Events-n-1)
		}
		// From a lease too, ResetIn is the delay until Reset (to the µs
		// Redis's clock is read to).
		if d := got.Reset.Sub(clock.Now()) - got.ResetIn; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("event %d (leased %v): ResetIn %v, Reset in %v", i, b.Leased, got.ResetIn, got.Reset.Sub(clock.Now()))
		}
		if got.Allowed {
			counted = append(counted, now)
		} else {
			refused++
		}
	}
	t.Logf("20000 events: %d round trips, %d decided from leases, %d refused, %d leased events unspent", in.trips(), leased, refused, wasted)
	if in.trips() > 20000/2 || refused == 0 {
		t.Fatalf("%d round trips for 20000 events, %d refused", in.trips(), refused)
	}
}

// Within one sub-window one instance admits exactly N, the last ones
// decided one by one in Redis (a lease is at most 1/16 of what is left),
// and the next is refused with Redis's Retry-After. A lease is never used
// in the next sub-window: the first event there goes to Redis.
func TestLeaseNearTheLimitAndAcrossSubWindows(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	clock.Set(time.UnixMicro(1_750_000_000_000_000)) // the start of a sub-window
	in := openInstance(t, newClient(t, srv.Addr()), testPrefix(t), clock.Now, RedisOptions{})
	lim := Limit{960, time.Minute} // leases of at most 2
	ok := 0
	for range 960 {
		clock.Add(time.Millisecond)
		if check(t, in.s, "k", lim).Allowed {
			ok++
		}
	}
	d := check(t, in.s, "k", lim)
	if ok != 960 || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("%d of 960 admitted in one sub-window, then %+v; want all, then a refusal with Retry-After", ok, d)
	}
	t.Logf("960 events in %d round trips", in.trips())

	lim = Limit{1 << 20, time.Minute}
	clock.Set(time.UnixMicro(1_750_000_100_000_000))
	for range 40 {
		clock.Add(time.Millisecond)
		check(t, in.s, "big", lim)
	}
	l := in.s.leases.get(leaseKey{key: "big", limit: lim})
	if l == nil || l.left == 0 {
		t.Fatalf("no lease left for a hot key: %+v", l)
	}
	// At the end of the sub-window the lease was counted in, its events
	// stay behind.
	clock.Set(l.until)
	before := in.trips()
	if !check(t, in.s, "big", lim).Allowed || in.trips() != before+1 {
		t.Fatalf("at the lease's end: %d round trips; want the event decided in Redis", in.trips()-before)
	}
}

// A batch whose windows do not all have a lease goes to Redis whole, and
// the events it took from the others' leases are given back; a gated
// batch (the client's window and an agent's) is leased like any other;
// a batch with a session is always decided in Redis.
func TestLeaseBatches(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	in := openInstance(t, newClient(t, srv.Addr()), testPrefix(t), clock.Now, RedisOptions{})
	lim := Limit{1 << 20, time.Minute}
	gated := func() Batch {
		return Batch{Windows: []WindowCheck{{Key: "ip", Limit: lim}, {Key: "agent", Limit: lim, Shared: true}}}
	}
	for range 20 {
		clock.Add(time.Millisecond)
		b := gated()
		decide(t, in.s, &b)
		if !b.Allowed() || b.Windows[1].Skipped {
			t.Fatalf("%+v", b.Windows)
		}
	}
	before := in.trips()
	for range 10 {
		b := gated()
		decide(t, in.s, &b)
	}
	if in.trips() != before {
		t.Fatalf("%d round trips for 10 gated batches of two hot keys; want none", in.trips()-before)
	}
	ip := in.s.leases.get(leaseKey{key: "ip", limit: lim})
	left := ip.left
	b := Batch{Windows: []WindowCheck{{Key: "ip", Limit: lim}, {Key: "cold", Limit: lim, Shared: true}}}
	decide(t, in.s, &b)
	if in.trips() != before+1 || ip.left != left {
		t.Fatalf("a batch with a cold key: %d round trips, lease %d -> %d; want one, and the lease untouched", in.trips()-before, left, ip.left)
	}
	s := gated()
	s.Session = &SessionCheck{ID: "s", MaxTurns: 100}
	decide(t, in.s, &s)
	if in.trips() != before+2 || s.Session.Turn != 1 {
		t.Fatalf("a batch with a session: %d round trips, turn %d", in.trips()-before-1, s.Session.Turn)
	}

	// Cold keys leave no lease behind; NoLeases leases nothing.
	for i := range 200 {
		check(t, in.s, fmt.Sprint("once-", i), lim)
	}
	if n := len(in.s.leases.m); n != 2 {
		t.Fatalf("%d leases after 200 cold keys; want the 2 hot ones", n)
	}
	exact := openInstance(t, newClient(t, srv.Addr()), testPrefix(t)+"exact:", clock.Now, RedisOptions{NoLeases: true})
	check(t, exact.s, "hot", lim) // connects
	before = exact.trips()
	for range 50 {
		check(t, exact.s, "hot", lim)
	}
	if exact.trips()-before != 50 {
		t.Fatalf("NoLeases: %d round trips for 50 events", exact.trips()-before)
	}
}

// A secret key's lease is held under its hash.
func TestLeaseSecretKey(t *testing.T) {
	k := leaseKeyOf(&WindowCheck{Key: "sk-live-123", Secret: true, Limit: Limit{1 << 20, time.Minute}})
	if k.key == "sk-live-123" || len(k.key) != 32 {
		t.Fatalf("secret lease key %q", k.key)
	}
}

// Many callers on a real clock, under -race: the bound holds and the
// leases are shared safely.
func TestLeasesConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	var ins []leaseInstance
	for range 2 {
		ins = append(ins, openInstance(t, newClient(t, srv.Addr()), testPrefix(t), nil, RedisOptions{}))
	}
	lim := Limit{4000, time.Minute}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 16 {
		wg.Go(func() {
			in := ins[g%2]
			for range 400 {
				b := Batch{Windows: []WindowCheck{{Key: "ip", Limit: lim}, {Key: "agent", Limit: lim, Shared: true}}}
				if err := in.s.Do(context.Background(), &b); err != nil {
					t.Error(err)
					return
				}
				if b.Allowed() {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	n := admitted.Load()
	// Within a minute; a lease left unspent at each sub-window's end (at
	// most 8 events each, per instance and key) may cost some of it.
	if n > 4000 || float64(n) < 4000-2*2*8*(secs+2) {
		t.Fatalf("%d of 6400 admitted in %.1fs under 4000/minute", n, secs)
	}
	t.Logf("%d admitted in %.2fs, %d + %d round trips", n, secs, ins[0].trips(), ins[1].trips())
}

// Once Redis refuses a hot key, under any limit, the refusals until its
// Retry-After are made here without a round trip, with Redis's
// Retry-After counting down; at Retry-After Redis decides again. A gated
// batch whose client window is so refused skips the shared windows and
// the session, as the script would.
func TestLeaseCachedRefusals(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	clock.Set(time.UnixMicro(1_750_000_200_000_000))
	in := openInstance(t, newClient(t, srv.Addr()), testPrefix(t), clock.Now, RedisOptions{})
	lim := Limit{30, time.Minute} // too small to lease
	for i := range 30 {
		clock.Add(time.Millisecond)
		if !check(t, in.s, "ip", lim).Allowed {
			t.Fatalf("event %d refused", i)
		}
	}
	first := check(t, in.s, "ip", lim)
	if first.Allowed || first.RetryAfter <= 0 {
		t.Fatalf("31st event: %+v", first)
	}
	refusedAt := clock.Now()
	before := in.trips()
	for range 100 {
		clock.Add(100 * time.Millisecond)
		d := check(t, in.s, "ip", lim)
		if want := refusedAt.Add(first.RetryAfter).Sub(clock.Now()); d.Allowed || d.RetryAfter != want || d.Remaining != 0 {
			t.Fatalf("%+v; want a refusal with Retry-After %v", d, want)
		}
		if want := first.ResetIn - clock.Now().Sub(refusedAt); d.ResetIn != max(want, 0) {
			t.Fatalf("cached refusal: ResetIn %v, want %v", d.ResetIn, max(want, 0))
		}
	}
	b := Batch{Windows: []WindowCheck{{Key: "ip", Limit: lim}, {Key: "agent", Limit: lim, Shared: true}}, Session: &SessionCheck{ID: "s"}}
	decide(t, in.s, &b)
	if b.Allowed() || !b.Windows[1].Skipped || !b.Session.Skipped {
		t.Fatalf("gated batch behind a refused client window: %+v, session %+v", b.Windows, b.Session)
	}
	if in.trips() != before {
		t.Fatalf("%d round trips for 101 refusals Redis had already announced", in.trips()-before)
	}
	clock.Set(refusedAt.Add(first.RetryAfter))
	if !check(t, in.s, "ip", lim).Allowed || in.trips() != before+1 {
		t.Fatalf("at Retry-After: not admitted by Redis (%d round trips)", in.trips()-before)
	}
}

// Events of a lease were counted before any refusal that followed it:
// they are handed out first, then the refusal stands.
func TestLeaseSpentBeforeCachedRefusal(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	lim := Limit{1 << 20, time.Minute}
	ls := newLeases(now)
	l := &lease{left: 1, granted: 1, remaining: 0, until: now.Add(time.Second), refusedUntil: now.Add(time.Minute)}
	ls.m[leaseKey{key: "k", limit: lim}] = l
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: lim}}}
	if !ls.fromLeases(&b, now) || !b.Windows[0].Decision.Allowed {
		t.Fatalf("the lease's last event: %+v", b.Windows[0].Decision)
	}
	if !ls.fromLeases(&b, now) || b.Windows[0].Decision.Allowed || b.Windows[0].Decision.RetryAfter != time.Minute {
		t.Fatalf("after the lease: %+v; want the cached refusal", b.Windows[0].Decision)
	}
}

// A batch with NoGate (a dry run) behind a client window Redis refused is
// still decided from the leases, and its shared window spends its lease
// rather than being skipped; a session still goes to Redis.
func TestLeaseNoGateBehindCachedRefusal(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	lim := Limit{1 << 20, time.Minute}
	ls := newLeases(now)
	ls.m[leaseKey{key: "ip", limit: lim}] = &lease{refusedUntil: now.Add(time.Minute)}
	agent := &lease{left: 2, granted: 2, remaining: 10, until: now.Add(time.Second)}
	ls.m[leaseKey{key: "agent", limit: lim}] = agent
	b := Batch{Windows: []WindowCheck{{Key: "ip", Limit: lim}, {Key: "agent", Limit: lim, Shared: true}}, NoGate: true}
	if !ls.fromLeases(&b, now) {
		t.Fatal("not decided from the leases")
	}
	if w := b.Windows[1]; w.Skipped || !w.Decision.Allowed || agent.left != 1 {
		t.Fatalf("agent window %+v (skipped %v), lease left %d; want admitted from the lease", w.Decision, w.Skipped, agent.left)
	}
	if b.Windows[0].Decision.Allowed {
		t.Fatal("the refused client window admitted")
	}
	b.Session = &SessionCheck{ID: "s"}
	if ls.fromLeases(&b, now) || agent.left != 1 {
		t.Fatalf("a batch with a session decided locally (lease left %d)", agent.left)
	}
}

// Two keys that share their slots in the hot table are both found hot, and
// a stream of cold keys through a hot key's slots does not hide it. With
// one slot a key, two hot keys hashed to it (1 in 256, as "ip" and "agent"
// were in one CI run of TestLeaseBatches) started each other's count over
// at every decision, and neither was ever leased.
func TestHotKeysShareSlots(t *testing.T) {
	ls := newLeases(time.Unix(1_750_000_000, 0))
	now := ls.base
	lim := Limit{1 << 20, time.Minute}
	// Find two keys with the same two slots: a birthday search over
	// 256·256/2 slot pairs takes a few hundred keys.
	seen := map[[2]uint64]leaseKey{}
	var a, b leaseKey
	for n := 0; ; n++ {
		k := leaseKey{key: fmt.Sprint("key-", n), limit: lim}
		_, i, j := ls.slots(k)
		if prev, ok := seen[[2]uint64{i, j}]; ok {
			a, b = prev, k
			break
		}
		seen[[2]uint64{i, j}] = k
	}
	hotA, hotB := false, false
	for range hotAfter {
		hotA, hotB = ls.noteHot(a, now), ls.noteHot(b, now)
	}
	if !hotA || !hotB {
		t.Fatalf("two keys sharing slots, %d decisions each: hot %v, %v; want both", hotAfter, hotA, hotB)
	}

	// A hot key's count survives cold keys landing in one of its slots
	// between its decisions, when their other slot is emptier.
	_, i, j := ls.slots(a)
	var cold []leaseKey
	taken := map[uint64]bool{i: true, j: true}
	for n := 0; len(cold) < 2*hotAfter; n++ {
		k := leaseKey{key: fmt.Sprint("cold-", n), limit: lim}
		_, ci, cj := ls.slots(k)
		other, shares := cj, ci == i || ci == j
		if cj == i || cj == j {
			other, shares = ci, true
		}
		if shares && !taken[other] {
			taken[other] = true
			cold = append(cold, k)
		}
	}
	now = now.Add(lim.Window) // a later sub-window: every count starts over
	hot := false
	for n := range hotAfter {
		hot = ls.noteHot(a, now)
		ls.noteHot(cold[2*n], now)
		ls.noteHot(cold[2*n+1], now)
	}
	if !hot {
		t.Fatal("cold keys in a hot key's slots kept it from being found hot")
	}
}
