package handoff

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A full lockout table never gives up an active lock: refused claims with
// fresh codes (no work needed) used to evict the stalest records, active
// locks included, resetting a code's brute-force lockout. Now a claim
// whose failure could not be recorded is refused before its code is
// checked (Locked: the uniform failure, the challenge unspent), until a
// lock ends.
func TestMemoryLockTableKeepsActiveLocks(t *testing.T) {
	lo := &Lockout{After: 1, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	m := NewMemory(MemoryOptions{MaxKeys: 4})
	ctx := context.Background()
	now := t0
	claim := func(keys ...string) *AdmitOp {
		t.Helper()
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Work: 30, Network: "n",
			Now: now, Policy: policy(), LockKeys: keys, Lockout: lo}
		if err := m.Admit(ctx, op); err != nil {
			t.Fatal(err)
		}
		return op
	}
	// Four codes locked: the table is full of active locks.
	for _, k := range []string{"k:a", "k:b", "k:c", "k:d"} {
		if op := claim(k); op.Outcome != Refused || !op.LockStarted {
			t.Fatalf("%s: %s lockStarted=%v, want refused and locked", k, op.Outcome, op.LockStarted)
		}
	}
	// A flood of fresh codes: each is refused (fail closed) and none
	// pushes a lock out.
	var first *AdmitOp
	for i := range 50 {
		c, _ := issue(t, m, PurposeClaim, "n", now, policy())
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: 30, Network: "n", Now: now, Policy: policy(),
			LockKeys: []string{"k:fresh" + itoa(int64(i))}, Lockout: lo}
		if err := m.Admit(ctx, op); err != nil {
			t.Fatal(err)
		}
		if op.Outcome != Locked || op.RetryAfter <= 0 || op.RetryAfter > time.Minute {
			t.Fatalf("fresh code %d with a full table: %s retry %s, want locked (fail closed) for at most the soonest lock", i, op.Outcome, op.RetryAfter)
		}
		if first == nil {
			first = op
		}
	}
	for _, k := range []string{"k:a", "k:b", "k:c", "k:d"} {
		if op := claim(k); op.Outcome != Locked {
			t.Fatalf("%s after the flood: %s, want still locked", k, op.Outcome)
		}
	}
	// Once the locks end, their records make room (unlocked records go
	// before anything else) and fresh codes are checked again.
	now = now.Add(time.Minute)
	if op := claim("k:e"); op.Outcome != Refused || !op.LockStarted {
		t.Fatalf("after the locks ended: %s, want refused with a lock recorded", op.Outcome)
	}
	if op := claim("k:e"); op.Outcome != Locked {
		t.Fatalf("k:e: %s, want locked", op.Outcome)
	}
	// The claim refused for want of room did not spend its challenge.
	first.Now, first.Outcome = now, 0
	if err := m.Admit(ctx, first); err != nil {
		t.Fatal(err)
	}
	if first.Outcome != Admitted {
		t.Fatalf("the claim refused while the table was full, retried: %s, want admitted", first.Outcome)
	}
	// Admitted, it was charged (a failure until the backend verifies it):
	// in the room made for it at admission.
	m.lockMu.Lock()
	_, charged := m.locks[first.LockKeys[0]]
	n := len(m.locks)
	m.lockMu.Unlock()
	if !charged || n > 4 {
		t.Fatalf("after admitting a claim: charged %v, %d records (cap 4)", charged, n)
	}
}

// A refund that lifts a lock makes its record evictable at once, even
// after a full table of active locks was remembered as such until the
// soonest lock's end.
func TestMemoryRefundFreesLockTable(t *testing.T) {
	lo := &Lockout{After: 2, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	m := NewMemory(MemoryOptions{MaxKeys: 2})
	claim := func(work int, key string) *AdmitOp {
		t.Helper()
		c, _ := issue(t, m, PurposeClaim, "n", t0, policy())
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: c, Work: work, Network: "n", Now: t0, Policy: policy(), LockKeys: []string{key}, Lockout: lo}
		return admit(t, m, op)
	}
	claim(0, "k:b")
	if op := claim(0, "k:b"); !op.LockStarted {
		t.Fatal("k:b not locked")
	}
	claim(0, "k:a")
	a := claim(30, "k:a")
	if a.Outcome != Admitted || !a.LockStarted {
		t.Fatalf("k:a: %s lock started %v", a.Outcome, a.LockStarted)
	}
	if op := claim(0, "k:c"); op.Outcome != Locked {
		t.Fatalf("a fresh code with a table full of locks: %s, want locked (fail closed)", op.Outcome)
	}
	refund(t, m, a) // k:a: one failure, no lock
	if op := claim(0, "k:c"); op.Outcome != Refused {
		t.Fatalf("a fresh code after a refund lifted a lock: %s, want refused (checked)", op.Outcome)
	}
}

// Eviction takes unlocked records only, however old the locked ones are.
func TestMemoryLockEvictsUnlockedOnly(t *testing.T) {
	lockNow := &Lockout{After: 1, Base: time.Hour, Max: time.Hour, Reset: 10 * time.Minute}
	lo := &Lockout{After: 3, Base: time.Minute, Max: time.Hour, Reset: 10 * time.Minute}
	m := NewMemory(MemoryOptions{MaxKeys: 2})
	ctx := context.Background()
	fail := func(now time.Time, p *Lockout, keys ...string) {
		t.Helper()
		// An unknown challenge: refused, and charged.
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Work: 30, Network: "n",
			Now: now, Policy: policy(), LockKeys: keys, Lockout: p}
		if err := m.Admit(ctx, op); err != nil || op.Outcome != Refused {
			t.Fatalf("%v: %v %s, want refused", keys, err, op.Outcome)
		}
	}
	fail(t0, lockNow, "k:locked") // the stalest record, locked for an hour
	fail(t0.Add(5*time.Minute), lo, "k:counting")
	fail(t0.Add(6*time.Minute), lo, "k:new")
	m.lockMu.Lock()
	_, locked := m.locks["k:locked"]
	_, counting := m.locks["k:counting"]
	_, fresh := m.locks["k:new"]
	m.lockMu.Unlock()
	if !locked || counting || !fresh {
		t.Fatalf("records kept: locked %v, counting %v (want evicted), new %v", locked, counting, fresh)
	}
}

// The breaker's check, the spend and the count of a creation are one
// step: concurrent admissions never overshoot the breaker. (They were two
// critical sections, and 64 admissions racing through the gap admitted 5
// or more past a breaker of 3.)
func TestMemoryBreakerHoldsUnderConcurrentAdmissions(t *testing.T) {
	const n, breaker = 64, 3
	// Each attempt catches the old gap about one time in ten; a hundred
	// catch it every run.
	for attempt := range 100 {
		m := NewMemory(MemoryOptions{})
		pol := &Difficulty{Base: 1, Ceiling: 1, Breaker: breaker}
		ops := make([]*AdmitOp, n)
		for i := range ops {
			c, _ := issue(t, m, PurposeCreate, "n", t0, pol)
			nonce, err := Solve(context.Background(), c, 1)
			if err != nil {
				t.Fatal(err)
			}
			ops[i] = &AdmitOp{Purpose: PurposeCreate, Challenge: c, Work: Work(c, nonce), Network: "n", Now: t0, Policy: pol}
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
				_ = m.Admit(context.Background(), op)
			}()
		}
		ready.Wait()
		close(start)
		done.Wait()
		admitted, tripped := 0, 0
		for _, op := range ops {
			switch op.Outcome {
			case Admitted:
				admitted++
			case Tripped:
				tripped++
			}
		}
		if admitted != breaker || tripped != n-breaker {
			t.Fatalf("attempt %d: %d admitted and %d tripped, want %d and %d (a breaker of %d)", attempt, admitted, tripped, breaker, n-breaker, breaker)
		}
	}
}
