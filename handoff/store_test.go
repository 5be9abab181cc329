package handoff

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// TestStore runs every store test on every store.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, func() Store)
	}{
		{"SpendOnce", testStoreSpendOnce},
		{"AdaptiveDifficulty", testStoreAdaptiveDifficulty},
		{"CircuitBreaker", testStoreCircuitBreaker},
		{"Lockout", testStoreLockout},
		{"DoubleSpend", testStoreDoubleSpend},
		{"Exempt", testStoreExempt},
		{"CurrentDifficulty", testStoreCurrentDifficulty},
		{"ConcurrentClaims", testStoreConcurrentClaims},
		{"Refund", testStoreRefund},
		{"RefundOwnCharge", testStoreRefundOwnCharge},
	}
	forEachStore(t, func(t *testing.T, newStore func() Store) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
		}
	})
}

// Every store passes the same tests: memory, Redis (a real server, and a
// real three-node Cluster, which proves the keys of each script share a
// slot), and miniredis for quick runs of the scripts' edge cases.
func forEachStore(t *testing.T, fn func(t *testing.T, newStore func() Store)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, func() Store { return NewMemory(MemoryOptions{}) })
	})
	forEachRedis(t, func(t *testing.T, newStore func(RedisOptions) *Redis) {
		fn(t, func() Store { return newStore(RedisOptions{}) })
	})
}

// forEachRedis runs fn on miniredis, a real server and a real Cluster;
// each store newStore returns has a zone of its own.
func forEachRedis(t *testing.T, fn func(t *testing.T, newStore func(RedisOptions) *Redis)) {
	run := func(t *testing.T, c redis.UniversalClient, zone string, timeout time.Duration) {
		t.Cleanup(func() { c.Close() })
		var n atomic.Int64
		fn(t, func(o RedisOptions) *Redis {
			o.Zone, o.Timeout = zone+itoa(n.Add(1)), timeout
			return NewRedis(c, o)
		})
	}
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		run(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: 2}), "z", time.Second)
	})
	t.Run("redis", func(t *testing.T) {
		rs := redistest.Start(t)
		run(t, redis.NewClient(&redis.Options{Addr: rs.Addr(), Protocol: 2}), "z", time.Second)
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t)
		run(t, redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2}), "{z}", 2*time.Second)
	})
}

// The Redis store holds at most MaxChallenges: issuing past it drops the
// challenges closest to expiry (their keys, not only their index entries,
// so Redis's memory stays bounded), of both purposes; expired index
// entries make room without dropping anything live.
func TestRedisBoundsChallenges(t *testing.T) {
	forEachRedis(t, func(t *testing.T, newStore func(RedisOptions) *Redis) {
		s := newStore(RedisOptions{MaxChallenges: 5})
		var cs []string
		var ps []Purpose
		for i := range 12 {
			p := PurposeCreate
			if i%3 == 1 {
				p = PurposeClaim
			}
			c, _ := issue(t, s, p, "n", t0.Add(time.Duration(i)*time.Millisecond), policy())
			cs, ps = append(cs, c), append(ps, p)
		}
		keys := 0
		for i, c := range cs {
			// One key per call: a Cluster client sends each to its node.
			n, err := s.client.Exists(context.Background(), s.challengeKey(ps[i], c)).Result()
			if err != nil {
				t.Fatal(err)
			}
			keys += int(n)
		}
		if keys != 5 {
			t.Fatalf("%d challenge keys held, want 5", keys)
		}
		for i, c := range cs {
			now := t0.Add(20 * time.Millisecond)
			a := admit(t, s, &AdmitOp{Purpose: ps[i], Challenge: c, Work: 64, Network: "n", Now: now})
			if want := i >= 7; (a.Outcome == Admitted) != want {
				t.Errorf("challenge %d of 12 (bound 5): %s, admitted want %v", i, a.Outcome, want)
			}
		}
		// A TTL later the index's entries have expired: five more fit
		// without evicting, the sixth evicts the oldest of them.
		later := t0.Add(6 * time.Minute)
		var fresh []string
		for i := range 6 {
			c, _ := issue(t, s, PurposeCreate, "n", later.Add(time.Duration(i)*time.Millisecond), policy())
			fresh = append(fresh, c)
		}
		for i, c := range fresh {
			a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 64, Network: "n", Now: later.Add(time.Second)})
			if want := i >= 1; (a.Outcome == Admitted) != want {
				t.Errorf("after a TTL, challenge %d of 6: %s, admitted want %v", i, a.Outcome, want)
			}
		}
	})
}

func itoa(n int64) string { return time.Duration(n).String() }

func newChallenge(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

var t0 = time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC)

func policy() *Difficulty {
	return &Difficulty{Base: 10, Ceiling: 14, Window: time.Minute, GlobalStep: 4, NetworkStep: 2}
}

func issue(t *testing.T, s Store, p Purpose, network string, now time.Time, pol *Difficulty) (string, *IssueOp) {
	t.Helper()
	op := &IssueOp{Purpose: p, Challenge: newChallenge(t), Network: network, Now: now, TTL: 5 * time.Minute, Policy: pol}
	if err := s.Issue(context.Background(), op); err != nil {
		t.Fatalf("issue: %v", err)
	}
	return op.Challenge, op
}

func admit(t *testing.T, s Store, op *AdmitOp) *AdmitOp {
	t.Helper()
	if op.Policy == nil {
		op.Policy = policy()
	}
	if err := s.Admit(context.Background(), op); err != nil {
		t.Fatalf("admit: %v", err)
	}
	return op
}

func testStoreSpendOnce(t *testing.T, newStore func() Store) {
	{
		s := newStore()
		c, op := issue(t, s, PurposeCreate, "198.51.100.0/24", t0, policy())
		if op.Difficulty != 10 || op.Tripped {
			t.Fatalf("first challenge: difficulty %d tripped %v, want 10", op.Difficulty, op.Tripped)
		}
		// Below the stored difficulty: refused, and spent.
		if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 9, Network: "n", Now: t0}); a.Outcome != Refused {
			t.Fatalf("work 9 at difficulty 10: %s", a.Outcome)
		}
		if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 30, Network: "n", Now: t0}); a.Outcome != Refused {
			t.Fatalf("a challenge spent by a wrong nonce was admitted: %s", a.Outcome)
		}
		c, _ = issue(t, s, PurposeCreate, "n", t0, policy())
		if a := admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: 30, Network: "n", Now: t0}); a.Outcome != Refused {
			t.Fatalf("a creation challenge admitted a claim: %s", a.Outcome)
		}
		c, _ = issue(t, s, PurposeCreate, "n", t0, policy())
		a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 10, Network: "n", Now: t0.Add(time.Minute)})
		if a.Outcome != Admitted || a.Difficulty != 10 || a.GlobalVelocity != 1 {
			t.Fatalf("exact work: %s difficulty %d velocity %d, want admitted at 10, velocity 1", a.Outcome, a.Difficulty, a.GlobalVelocity)
		}
		if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 10, Network: "n", Now: t0}); a.Outcome != Refused {
			t.Fatalf("replay: %s", a.Outcome)
		}
		// Expired.
		c, _ = issue(t, s, PurposeCreate, "n", t0, policy())
		if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 64, Network: "n", Now: t0.Add(5 * time.Minute)}); a.Outcome != Refused {
			t.Fatalf("expired: %s", a.Outcome)
		}
		// Unknown, and not a challenge at all.
		for _, c := range []string{newChallenge(t), "nothex"} {
			if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 64, Network: "n", Now: t0}); a.Outcome != Refused {
				t.Fatalf("unknown %q: %s", c, a.Outcome)
			}
		}
		// A claim challenge admits a claim, once.
		c, op = issue(t, s, PurposeClaim, "n", t0, policy())
		if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 64, Network: "n", Now: t0}); a.Outcome != Refused {
			t.Fatalf("a claim challenge admitted a creation: %s", a.Outcome)
		}
		c, op = issue(t, s, PurposeClaim, "n", t0, policy())
		if a := admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: op.Difficulty, Network: "n", Now: t0}); a.Outcome != Admitted {
			t.Fatalf("claim: %s", a.Outcome)
		}
	}
}

// Difficulty rises one bit per step of velocity, globally and per
// network, up to the ceiling, and falls as admissions leave the window.
func testStoreAdaptiveDifficulty(t *testing.T, newStore func() Store) {
	{
		s := newStore()
		pol := policy() // base 10, ceiling 14, global +1 per 4, network +1 per 2, window 1m
		create := func(network string, now time.Time) {
			t.Helper()
			c, op := issue(t, s, PurposeCreate, network, now, pol)
			if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: op.Difficulty, Network: network, Now: now, Policy: pol}); a.Outcome != Admitted {
				t.Fatalf("create: %s", a.Outcome)
			}
		}
		difficulty := func(network string, now time.Time) int {
			t.Helper()
			_, op := issue(t, s, PurposeCreate, network, now, pol)
			return op.Difficulty
		}
		a, b := "198.51.100.0/24", "2001:db8:1::/48"
		create(a, t0)
		if d := difficulty(a, t0); d != 10 {
			t.Fatalf("after 1 creation from A: %d, want 10", d)
		}
		create(a, t0)
		if d, e := difficulty(a, t0), difficulty(b, t0); d != 11 || e != 10 {
			t.Fatalf("after 2 creations from A: A %d (want 11), B %d (want 10)", d, e)
		}
		create(a, t0.Add(6*time.Second)) // next bucket
		create(a, t0.Add(6*time.Second))
		// Global 4 (+1), A 4 (+2).
		if d, e := difficulty(a, t0.Add(6*time.Second)), difficulty(b, t0.Add(6*time.Second)); d != 13 || e != 11 {
			t.Fatalf("after 4 creations from A: A %d (want 13), B %d (want 11)", d, e)
		}
		for range 8 {
			create(a, t0.Add(7*time.Second))
		}
		if d := difficulty(a, t0.Add(7*time.Second)); d != 14 {
			t.Fatalf("12 creations: %d, want the ceiling 14", d)
		}
		// Decay: the first two leave the window after one minute; the rest
		// six seconds later.
		if d, e := difficulty(a, t0.Add(time.Minute)), difficulty(b, t0.Add(time.Minute)); d != 14 || e != 12 {
			t.Fatalf("a minute later (10 left): A %d (want 14), B %d (want 12)", d, e)
		}
		if d, e := difficulty(a, t0.Add(66*time.Second)), difficulty(b, t0.Add(66*time.Second)); d != 10 || e != 10 {
			t.Fatalf("after the window: A %d, B %d, want the base 10", d, e)
		}
	}
}

func testStoreCircuitBreaker(t *testing.T, newStore func() Store) {
	{
		s := newStore()
		pol := &Difficulty{Base: 8, Ceiling: 8, Window: time.Minute, Breaker: 3}
		pending, op := issue(t, s, PurposeCreate, "n", t0, pol)
		for range 3 {
			c, op := issue(t, s, PurposeCreate, "n", t0, pol)
			if op.Tripped {
				t.Fatal("tripped before the limit")
			}
			if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 8, Network: "n", Now: t0, Policy: pol}); a.Outcome != Admitted {
				t.Fatalf("admit: %s", a.Outcome)
			}
		}
		// The three creations share t0's bucket (6s of the minute): the
		// breaker admits again when it leaves the window, at t0+60s, not
		// at the next bucket.
		if _, op := issue(t, s, PurposeCreate, "other", t0.Add(time.Second), pol); !op.Tripped || op.RetryAfter != 59*time.Second {
			t.Fatalf("issue at the limit: tripped %v retry %s, want tripped for 59s", op.Tripped, op.RetryAfter)
		}
		if _, op := issue(t, s, PurposeCreate, "other", t0.Add(60*time.Second-time.Millisecond), pol); !op.Tripped || op.RetryAfter != time.Millisecond {
			t.Fatalf("1ms before it reopens: tripped %v retry %s", op.Tripped, op.RetryAfter)
		}
		if _, op := issue(t, s, PurposeClaim, "other", t0.Add(time.Second), pol); op.Tripped {
			t.Fatal("the breaker refused a claim challenge")
		}
		a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: pending, Work: op.Difficulty, Network: "n", Now: t0.Add(time.Second), Policy: pol})
		if a.Outcome != Tripped || a.RetryAfter != 59*time.Second {
			t.Fatalf("admit at the limit: %s retry %s, want 59s", a.Outcome, a.RetryAfter)
		}
		// The tripped challenge was not spent: it admits once the window passed.
		a = admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: pending, Work: op.Difficulty, Network: "n", Now: t0.Add(61 * time.Second), Policy: pol})
		if a.Outcome != Admitted {
			t.Fatalf("after the window: %s", a.Outcome)
		}
	}
	{
		// Creations at t0, t0+12s and t0+30s, breaker 2: the first
		// bucket leaving (t0+60s) leaves 2, still at the breaker; the
		// second (t0+72s) reopens it.
		s := newStore()
		pol := &Difficulty{Base: 8, Ceiling: 8, Window: time.Minute, Breaker: 2}
		for _, at := range []time.Duration{0, 12 * time.Second, 30 * time.Second} {
			open := &Difficulty{Base: 8, Ceiling: 8, Window: time.Minute} // the same counts, no breaker
			c, _ := issue(t, s, PurposeCreate, "n", t0.Add(at), open)
			if a := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: 8, Network: "n", Now: t0.Add(at), Policy: open}); a.Outcome != Admitted {
				t.Fatalf("admit at +%s: %s", at, a.Outcome)
			}
		}
		for _, c := range []struct{ at, want time.Duration }{
			{31 * time.Second, 41 * time.Second},
			{60 * time.Second, 12 * time.Second},
			{72*time.Second - time.Millisecond, time.Millisecond},
		} {
			if _, op := issue(t, s, PurposeCreate, "n", t0.Add(c.at), pol); !op.Tripped || op.RetryAfter != c.want {
				t.Fatalf("at +%s: tripped %v retry %s, want %s", c.at, op.Tripped, op.RetryAfter, c.want)
			}
		}
		if _, op := issue(t, s, PurposeCreate, "n", t0.Add(72*time.Second), pol); op.Tripped {
			t.Fatal("at +72s: still tripped")
		}
	}
}

// Progressive lockout with an injected clock: After failures lock for
// Base, then twice as long each time up to Max; Reset of quiet forgets.
func testStoreLockout(t *testing.T, newStore func() Store) {
	{
		s := newStore()
		lo := &Lockout{After: 3, Base: time.Minute, Max: 4 * time.Minute, Reset: time.Hour}
		keys := []string{"client:198.51.100.7", "code:" + newChallenge(t)}
		now := t0
		claim := func() *AdmitOp {
			t.Helper()
			c, op := issue(t, s, PurposeClaim, "n", now, policy())
			return admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: op.Difficulty, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
		}
		// A wrong code: admitted (and charged), and the backend refuses it,
		// which costs no further store call.
		fail := func() bool {
			t.Helper()
			a := claim()
			if a.Outcome != Admitted {
				t.Fatalf("a claim before the lock: %s", a.Outcome)
			}
			return a.LockStarted
		}
		// The right code: a claim the backend verifies is refunded.
		try := func() *AdmitOp {
			t.Helper()
			a := claim()
			if a.Outcome == Admitted {
				refund(t, s, a)
			}
			return a
		}
		for round, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
			for i := range 3 {
				if started := fail(); started != (i == 2) {
					t.Fatalf("round %d failure %d: lock started %v", round, i+1, started)
				}
			}
			a := try()
			if a.Outcome != Locked || a.RetryAfter != want {
				t.Fatalf("round %d: %s retry %s, want locked for %s", round, a.Outcome, a.RetryAfter, want)
			}
			now = now.Add(want - time.Millisecond)
			if a := try(); a.Outcome != Locked || a.RetryAfter != time.Millisecond {
				t.Fatalf("round %d, 1ms before the end: %s %s", round, a.Outcome, a.RetryAfter)
			}
			now = now.Add(time.Millisecond)
			if a := try(); a.Outcome != Admitted {
				t.Fatalf("round %d, lock over: %s", round, a.Outcome)
			}
		}
		// A bad proof of work counts as a failure too.
		now = now.Add(time.Hour) // quiet for Reset: start over
		for i := range 3 {
			c, _ := issue(t, s, PurposeClaim, "n", now, policy())
			a := admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: 0, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
			if a.Outcome != Refused || a.LockStarted != (i == 2) {
				t.Fatalf("bad work %d: %s started %v", i+1, a.Outcome, a.LockStarted)
			}
		}
		if a := try(); a.Outcome != Locked || a.RetryAfter != time.Minute {
			t.Fatalf("after a reset, the first lock is Base again: %s %s", a.Outcome, a.RetryAfter)
		}
		// Another client and another code are not locked.
		c, op := issue(t, s, PurposeClaim, "n", now, policy())
		a := admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: op.Difficulty, Network: "n", Now: now, LockKeys: []string{"client:other", "code:other"}, Lockout: lo})
		if a.Outcome != Admitted {
			t.Fatalf("another key: %s", a.Outcome)
		}
	}
}

func refund(t *testing.T, s Store, op *AdmitOp) {
	t.Helper()
	if err := s.Refund(context.Background(), op); err != nil {
		t.Fatalf("refund: %v", err)
	}
}

// Claims sent at once meet the lockout as claims sent one by one: each
// admitted claim is charged a failure in the admission itself, so of
// After+k claims on one code admitted before any backend answered, After
// are admitted (the last of them beginning the lock) and k are Locked,
// their challenges unspent. (The failure used to be recorded after the
// backend's answer: all After+k passed the check.)
func testStoreConcurrentClaims(t *testing.T, newStore func() Store) {
	const after, extra = 5, 7
	s := newStore()
	lo := &Lockout{After: after, Base: time.Minute, Max: time.Hour, Reset: 24 * time.Hour}
	code := "k:" + newChallenge(t)
	ops := make([]*AdmitOp, after+extra)
	for i := range ops {
		c, op := issue(t, s, PurposeClaim, "n", t0, policy())
		// One code from a few clients: the code's key locks.
		keys := []string{"c:198.51.100." + itoa(int64(i%3)), code}
		ops[i] = &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: op.Difficulty, Network: "n", Now: t0, Policy: policy(), LockKeys: keys, Lockout: lo}
	}
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for _, op := range ops {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			if err := s.Admit(context.Background(), op); err != nil {
				t.Error(err)
			}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	admitted, locked, started := 0, 0, 0
	for _, op := range ops {
		switch op.Outcome {
		case Admitted:
			admitted++
			if op.LockStarted {
				started++
			}
		case Locked:
			locked++
			if op.RetryAfter <= 0 || op.RetryAfter > time.Minute {
				t.Errorf("locked for %s, want at most the base minute", op.RetryAfter)
			}
		}
	}
	if admitted != after || locked != extra || started != 1 {
		t.Fatalf("%d claims at once, none answered yet: %d admitted (%d began the lock), %d locked; want %d admitted (1 beginning the lock), %d locked",
			after+extra, admitted, started, locked, after, extra)
	}
	// The backend refused the admitted ones: nothing more to record, the
	// code stays locked. A locked claim's challenge was not spent: it is
	// admitted once the lock is over.
	for _, op := range ops {
		if op.Outcome != Locked {
			continue
		}
		op.Now, op.Outcome = t0.Add(time.Minute), 0
		if admit(t, s, op); op.Outcome != Admitted {
			t.Fatalf("a claim locked out, retried after the lock: %s, want admitted", op.Outcome)
		}
		break
	}
}

// A claim the backend verified gives back the failure its admission
// charged: no failure of it stays counted, a lock it began is lifted, and
// the Reset of earlier failures is not put off.
func testStoreRefund(t *testing.T, newStore func() Store) {
	s := newStore()
	lo := &Lockout{After: 3, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	now := t0
	claim := func(work int, keys []string) *AdmitOp {
		t.Helper()
		c, op := issue(t, s, PurposeClaim, "n", now, policy())
		if work < 0 {
			work = op.Difficulty
		}
		return admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: work, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
	}
	// failures charges n failures (bad proofs of work) and reports whether
	// the last began a lock.
	failures := func(n int, keys []string) bool {
		t.Helper()
		var a *AdmitOp
		for range n {
			if a = claim(0, keys); a.Outcome != Refused {
				t.Fatalf("a bad proof of work: %s", a.Outcome)
			}
		}
		return a.LockStarted
	}
	verified := func(keys []string) *AdmitOp {
		t.Helper()
		a := claim(-1, keys)
		if a.Outcome != Admitted {
			t.Fatalf("a claim: %s, want admitted", a.Outcome)
		}
		refund(t, s, a)
		return a
	}

	// Successes leave nothing counted: two failures after any number of
	// them do not lock, the third does.
	keys := []string{"c:a", "k:" + newChallenge(t)}
	for range 2 * lo.After {
		verified(keys)
	}
	if failures(2, keys) {
		t.Fatal("two failures after six verified claims began a lock")
	}
	if !failures(1, keys) {
		t.Fatal("the third failure began no lock")
	}

	// A success whose charge began the lock: the lock holds while the
	// backend has not answered (a claim sent meanwhile is Locked) and is
	// lifted by the refund; the failures before it still count.
	keys = []string{"c:b", "k:" + newChallenge(t)}
	failures(2, keys)
	a := claim(-1, keys)
	if a.Outcome != Admitted || !a.LockStarted {
		t.Fatalf("the third claim: %s lock started %v, want admitted, beginning the lock", a.Outcome, a.LockStarted)
	}
	if b := claim(-1, keys); b.Outcome != Locked || b.RetryAfter != time.Minute {
		t.Fatalf("a claim while the third awaits its answer: %s %s, want locked for a minute", b.Outcome, b.RetryAfter)
	}
	refund(t, s, a)
	refund(t, s, a) // twice gives back once
	verified(keys)
	if !failures(1, keys) {
		t.Fatal("after two failures and verified claims, the third failure began no lock")
	}

	// The charge counted by a lock another claim began: that lock stands
	// (it errs toward locking).
	keys = []string{"c:c", "k:" + newChallenge(t)}
	failures(1, keys)
	first := claim(-1, keys)
	if second := claim(-1, keys); second.Outcome != Admitted || !second.LockStarted {
		t.Fatalf("the third claim: %s lock started %v", second.Outcome, second.LockStarted)
	}
	refund(t, s, first)
	if c := claim(-1, keys); c.Outcome != Locked {
		t.Fatalf("after refunding a claim counted in another's lock: %s, want still locked", c.Outcome)
	}

	// Reset: two failures, then a verified claim 59 minutes later; at 60
	// minutes the failures are an hour old and forgotten, so three more
	// are needed to lock.
	now = now.Add(2 * time.Hour)
	keys = []string{"c:d", "k:" + newChallenge(t)}
	failures(2, keys)
	now = now.Add(59 * time.Minute)
	verified(keys)
	now = now.Add(time.Minute)
	if failures(2, keys) {
		t.Fatal("a verified claim put off the Reset of earlier failures: two failures an hour later began a lock")
	}
	if !failures(1, keys) {
		t.Fatal("the third failure after the Reset began no lock")
	}
}

// A refund takes back its own charge and nothing else: not the failure of
// another claim charged in the same millisecond (nor that failure's time,
// which the Reset counts from), not a second time, and not a failure
// recorded after its own was forgotten (the record quiet for Reset, or
// expired, and started over).
func testStoreRefundOwnCharge(t *testing.T, newStore func() Store) {
	s := newStore()
	lo := &Lockout{After: 3, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	now := t0
	claim := func(work int, keys []string) *AdmitOp {
		t.Helper()
		c, op := issue(t, s, PurposeClaim, "n", now, policy())
		if work < 0 {
			work = op.Difficulty
		}
		return admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: work, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
	}
	admitted := func(keys []string) *AdmitOp {
		t.Helper()
		a := claim(-1, keys)
		if a.Outcome != Admitted {
			t.Fatalf("a claim: %s, want admitted", a.Outcome)
		}
		return a
	}
	// locksAfter sends n bad proofs of work and reports whether the last
	// began a lock.
	locksAfter := func(n int, keys []string) bool {
		t.Helper()
		var a *AdmitOp
		for range n {
			if a = claim(0, keys); a.Outcome != Refused {
				t.Fatalf("a bad proof of work: %s", a.Outcome)
			}
		}
		return a.LockStarted
	}

	// Two claims charged in one millisecond; the first verified, the
	// second a wrong code. The second's failure counts, from its own time:
	// two more a second later lock.
	keys := []string{"c:same-ms", "k:" + newChallenge(t)}
	first, _ := admitted(keys), admitted(keys)
	refund(t, s, first)
	now = now.Add(time.Second)
	if locksAfter(1, keys) {
		t.Fatal("one failure after a refunded and a failed claim began a lock")
	}
	if !locksAfter(1, keys) {
		t.Fatal("a refund took back another claim's failure charged in the same millisecond: the third failure began no lock")
	}

	// Refunding one charge twice (a copy of its op) gives back once.
	now = now.Add(2 * time.Hour)
	keys = []string{"c:twice", "k:" + newChallenge(t)}
	first, _ = admitted(keys), admitted(keys)
	copied := *first
	refund(t, s, first)
	refund(t, s, &copied)
	if locksAfter(1, keys) {
		t.Fatal("one failure after a refunded and a failed claim began a lock")
	}
	if !locksAfter(1, keys) {
		t.Fatal("a charge refunded twice took back another claim's failure: the third failure began no lock")
	}

	// A refund after its charge was forgotten (quiet for Reset) and the
	// record began again leaves the new failures alone.
	now = now.Add(2 * time.Hour)
	keys = []string{"c:restarted", "k:" + newChallenge(t)}
	old := admitted(keys)
	now = now.Add(2 * time.Hour)
	locksAfter(2, keys)
	refund(t, s, old)
	if !locksAfter(1, keys) {
		t.Fatal("a refund of a forgotten charge erased a failure of the record that began since: the third failure began no lock")
	}
}

// Concurrent submissions of one solution: exactly one is admitted.
func testStoreDoubleSpend(t *testing.T, newStore func() Store) {
	{
		s := newStore()
		for _, p := range []Purpose{PurposeCreate, PurposeClaim} {
			c, op := issue(t, s, p, "n", t0, policy())
			var admitted atomic.Int32
			var wg sync.WaitGroup
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := &AdmitOp{Purpose: p, Challenge: c, Work: op.Difficulty, Network: "n", Now: t0, Policy: policy()}
					if err := s.Admit(context.Background(), a); err != nil {
						t.Error(err)
					}
					if a.Outcome == Admitted {
						admitted.Add(1)
					}
				}()
			}
			wg.Wait()
			if n := admitted.Load(); n != 1 {
				t.Fatalf("%s: %d of 32 concurrent submissions admitted, want 1", p, n)
			}
		}
	}
}

// An exempt creation spends no challenge but counts like an admitted one:
// toward the global and the network velocity (so the difficulty rises
// and decays with it) and toward the breaker, which refuses it too.
func testStoreExempt(t *testing.T, newStore func() Store) {
	s := newStore()
	pol := &Difficulty{Base: 10, Ceiling: 20, Window: time.Minute, GlobalStep: 2, NetworkStep: 1, Breaker: 4}
	a, b := "198.51.100.0/24", "203.0.113.0/24"
	exempt := func(network string, now time.Time) *ExemptOp {
		t.Helper()
		op := &ExemptOp{Network: network, Now: now, Policy: pol}
		if err := s.AdmitExempt(context.Background(), op); err != nil {
			t.Fatalf("admit exempt: %v", err)
		}
		return op
	}
	difficulty := func(network string, now time.Time) int {
		t.Helper()
		_, op := issue(t, s, PurposeCreate, network, now, pol)
		return op.Difficulty
	}
	pending, op := issue(t, s, PurposeCreate, b, t0, pol)
	if op.Difficulty != 10 {
		t.Fatalf("first challenge: %d", op.Difficulty)
	}
	if e := exempt(a, t0); e.Outcome != Admitted || e.GlobalVelocity != 1 {
		t.Fatalf("first exempt creation: %s velocity %d, want admitted, 1", e.Outcome, e.GlobalVelocity)
	}
	if d, e := difficulty(a, t0), difficulty(b, t0); d != 11 || e != 10 {
		t.Fatalf("after 1 exempt creation from A: A %d (want 11), B %d (want 10)", d, e)
	}
	if e := exempt(a, t0.Add(6*time.Second)); e.Outcome != Admitted || e.GlobalVelocity != 2 {
		t.Fatalf("second exempt creation: %s velocity %d", e.Outcome, e.GlobalVelocity)
	}
	if d, e := difficulty(a, t0.Add(6*time.Second)), difficulty(b, t0.Add(6*time.Second)); d != 13 || e != 11 {
		t.Fatalf("after 2 exempt creations from A: A %d (want 13), B %d (want 11)", d, e)
	}
	// A solved creation and exempt ones share the count.
	c, op := issue(t, s, PurposeCreate, b, t0.Add(6*time.Second), pol)
	if ad := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: op.Difficulty, Network: b, Now: t0.Add(6 * time.Second), Policy: pol}); ad.Outcome != Admitted || ad.GlobalVelocity != 3 {
		t.Fatalf("a solved creation after 2 exempt ones: %s velocity %d, want 3", ad.Outcome, ad.GlobalVelocity)
	}
	if e := exempt(b, t0.Add(7*time.Second)); e.Outcome != Admitted || e.GlobalVelocity != 4 {
		t.Fatalf("fourth creation: %s velocity %d", e.Outcome, e.GlobalVelocity)
	}
	// At the breaker: exempt creations, challenges and solved admissions
	// are all refused, and the refused exempt creation counted nothing.
	e := exempt(a, t0.Add(8*time.Second))
	// One creation in t0's bucket, three in the next: the breaker (4)
	// admits again once t0's leaves the window, at t0+60s.
	if e.Outcome != Tripped || e.GlobalVelocity != 4 || e.RetryAfter != 52*time.Second {
		t.Fatalf("exempt at the breaker: %s velocity %d retry %s, want 52s", e.Outcome, e.GlobalVelocity, e.RetryAfter)
	}
	if _, op := issue(t, s, PurposeCreate, b, t0.Add(8*time.Second), pol); !op.Tripped || op.GlobalVelocity != 4 {
		t.Fatalf("a challenge at the breaker: tripped %v velocity %d", op.Tripped, op.GlobalVelocity)
	}
	if ad := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: pending, Work: 10, Network: b, Now: t0.Add(8 * time.Second), Policy: pol}); ad.Outcome != Tripped {
		t.Fatalf("a solved creation at the breaker: %s", ad.Outcome)
	}
	// Decay: the first exempt creation (bucket 0) leaves the window after a
	// minute, the rest six seconds later.
	if e := exempt(a, t0.Add(time.Minute)); e.Outcome != Admitted || e.GlobalVelocity != 4 {
		t.Fatalf("a minute later: %s velocity %d, want admitted with 4 (3 left and this one)", e.Outcome, e.GlobalVelocity)
	}
	if d := difficulty(b, t0.Add(67*time.Second)); d != 10 {
		t.Fatalf("after the window: B %d, want the base 10 again", d)
	}
	// No challenge was spent by an exempt creation: the one issued first
	// still admits.
	if ad := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: pending, Work: 10, Network: b, Now: t0.Add(67 * time.Second), Policy: pol}); ad.Outcome != Admitted {
		t.Fatalf("the pending challenge after exempt creations: %s", ad.Outcome)
	}
}

// Admission asks for the higher of the stored difficulty and the one the
// policy gives the admitting network now: challenges stockpiled while
// quiet, or fetched from a quiet network, are refused once the velocity
// has raised the difficulty; a fresh challenge, solved at its difficulty,
// is admitted.
func testStoreCurrentDifficulty(t *testing.T, newStore func() Store) {
	s := newStore()
	pol := policy() // base 10, ceiling 14, global +1 per 4, network +1 per 2
	a, b := "198.51.100.0/24", "203.0.113.0/24"
	try := func(p Purpose, c, network string, work int) *AdmitOp {
		t.Helper()
		return admit(t, s, &AdmitOp{Purpose: p, Challenge: c, Work: work, Network: network, Now: t0, Policy: pol})
	}
	var pile []string
	for range 3 {
		c, op := issue(t, s, PurposeCreate, a, t0, pol)
		if op.Difficulty != 10 {
			t.Fatalf("quiet: %d", op.Difficulty)
		}
		pile = append(pile, c)
	}
	// Claim challenges fetched from the quiet network b.
	quietClaim, _ := issue(t, s, PurposeClaim, b, t0, pol)
	quietClaim2, _ := issue(t, s, PurposeClaim, b, t0, pol)
	for i, c := range pile[:2] {
		if op := try(PurposeCreate, c, a, 10); op.Outcome != Admitted || op.Difficulty != 10 {
			t.Fatalf("stockpiled %d while the policy still asks 10: %s at %d", i, op.Outcome, op.Difficulty)
		}
	}
	// Two creations from a: a now asks 11.
	if op := try(PurposeCreate, pile[2], a, 10); op.Outcome != Refused {
		t.Fatalf("a stockpiled 10-bit challenge after the difficulty rose to 11: %s", op.Outcome)
	}
	c, op := issue(t, s, PurposeCreate, a, t0, pol)
	if op.Difficulty != 11 {
		t.Fatalf("fresh challenge from a: %d, want 11", op.Difficulty)
	}
	if op := try(PurposeCreate, c, a, 11); op.Outcome != Admitted || op.Difficulty != 11 || op.GlobalVelocity != 3 {
		t.Fatalf("a fresh challenge solved at its difficulty: %s at %d velocity %d", op.Outcome, op.Difficulty, op.GlobalVelocity)
	}
	// Fetched from b (global 3, b 0: 10), spent from a (global 3, a 3: 11).
	c, op = issue(t, s, PurposeCreate, b, t0, pol)
	if op.Difficulty != 10 {
		t.Fatalf("b: %d, want 10", op.Difficulty)
	}
	if op := try(PurposeCreate, c, a, 10); op.Outcome != Refused {
		t.Fatalf("a challenge from the quiet network b spent from a at b's difficulty: %s", op.Outcome)
	}
	c, _ = issue(t, s, PurposeCreate, b, t0, pol)
	if op := try(PurposeCreate, c, a, 11); op.Outcome != Admitted || op.Difficulty != 11 {
		t.Fatalf("b's challenge spent from a at a's difficulty: %s at %d", op.Outcome, op.Difficulty)
	}
	// Global 4 (+1), a 4 (+2): a asks 13. Claims too; work that met the
	// challenge's own difficulty is not charged to the lockout (the
	// difficulty rose, the client did nothing wrong), work that did not is.
	lo := &Lockout{After: 1, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	claim := func(c string, work int, keys ...string) *AdmitOp {
		t.Helper()
		return admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: work, Network: a, Now: t0, Policy: pol, LockKeys: keys, Lockout: lo})
	}
	if op := claim(quietClaim, 12, "k:rose"); op.Outcome != Refused || op.LockStarted {
		t.Fatalf("a claim challenge from b spent from a below a's difficulty: %s lock started %v, want refused, no lock", op.Outcome, op.LockStarted)
	}
	if op := claim(quietClaim2, 13, "k:rose"); op.Outcome != Admitted || op.Difficulty != 13 {
		t.Fatalf("a claim challenge from b spent from a at a's difficulty: %s at %d", op.Outcome, op.Difficulty)
	}
	c, _ = issue(t, s, PurposeClaim, b, t0, pol)
	if op := claim(c, 9, "k:bad"); op.Outcome != Refused || !op.LockStarted {
		t.Fatalf("a claim below its own difficulty: %s lock started %v, want refused and locked", op.Outcome, op.LockStarted)
	}
	// A stored difficulty above the policy's now still holds.
	c, op = issue(t, s, PurposeCreate, a, t0, pol)
	later := t0.Add(2 * time.Minute) // the velocities have decayed
	if ad := admit(t, s, &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: op.Difficulty - 1, Network: a, Now: later, Policy: pol}); ad.Outcome != Refused {
		t.Fatalf("below the stored %d after the decay: %s", op.Difficulty, ad.Outcome)
	}
}

// A lockout record written before charges had ids (fields f, l, u, t
// only, during a rolling upgrade) holds settled failures: refunding a
// charge made on it since keeps their time, so they still count toward
// the next lock rather than being taken for forgotten.
func TestRedisRefundKeepsOlderRecordsFailures(t *testing.T) {
	forEachRedis(t, func(t *testing.T, newStore func(RedisOptions) *Redis) {
		s := newStore(RedisOptions{})
		lo := &Lockout{After: 3, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
		keys := []string{"k:" + newChallenge(t)}
		if err := s.client.HSet(context.Background(), s.lockKey(keys[0]), "f", "1", "l", "0", "u", "0", "t", t0.UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		claim := func(work int) *AdmitOp {
			t.Helper()
			c, op := issue(t, s, PurposeClaim, "n", now, policy())
			if work < 0 {
				work = op.Difficulty
			}
			return admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: work, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
		}
		a := claim(-1)
		if a.Outcome != Admitted {
			t.Fatalf("a claim: %s", a.Outcome)
		}
		refund(t, s, a)
		now = now.Add(time.Second)
		if claim(0).LockStarted {
			t.Fatal("the second failure began a lock")
		}
		if !claim(0).LockStarted {
			t.Fatal("a refund on a record without h forgot its failure: the third failure began no lock")
		}
	})
}

// A lockout policy out of bounds is refused with what to write instead.
func TestLockoutValidate(t *testing.T) {
	ok := DefaultLockout
	for _, c := range []struct {
		edit func(*Lockout)
		want string
	}{
		{func(*Lockout) {}, ""},
		{func(l *Lockout) { l.After = MaxLockoutAfter }, ""},
		{func(l *Lockout) { l.After = 0 }, "want at least 1"},
		{func(l *Lockout) { l.After = MaxLockoutAfter + 1 }, "want at most 1000"},
		{func(l *Lockout) { l.Max = l.Base - 1 }, "want at least the base"},
		// A reset no longer than max forgets a record as its lock ends:
		// base 1h, reset 30m locked 1h, 1h, 1h … (a review's case).
		{func(l *Lockout) { l.Base, l.Reset = time.Hour, 30*time.Minute }, "want longer than max 1h0m0s"},
		{func(l *Lockout) { l.Reset = l.Max }, "locks stop growing"},
		{func(l *Lockout) { l.Reset = l.Max + time.Millisecond }, ""},
	} {
		l := ok
		c.edit(&l)
		err := l.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", l, err, c.want)
		}
	}
}
