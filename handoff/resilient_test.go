package handoff

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// failing is a store whose every operation fails until healed.
type failing struct {
	broken bool
	calls  int
	Store
}

func (f *failing) Issue(ctx context.Context, op *IssueOp) error {
	f.calls++
	if f.broken {
		return errors.New("connection refused")
	}
	return f.Store.Issue(ctx, op)
}

func (f *failing) AdmitExempt(ctx context.Context, op *ExemptOp) error {
	f.calls++
	if f.broken {
		return errors.New("connection refused")
	}
	return f.Store.AdmitExempt(ctx, op)
}

// While the primary fails: closed refuses, open answers from the fallback
// (and says so); the primary rests for RetryAfter, then is tried again.
func TestResilient(t *testing.T) {
	clk := &clock{t: t0}
	for _, open := range []bool{false, true} {
		primary := &failing{broken: true, Store: NewMemory(MemoryOptions{})}
		var reported []error
		r := &Resilient{Primary: primary, Fallback: NewMemory(MemoryOptions{}), FailOpen: open, RetryAfter: time.Second,
			Now: clk.Now, OnError: func(err error) { reported = append(reported, err) }}
		op := &IssueOp{Purpose: PurposeCreate, Challenge: newChallenge(t), Network: "n", Now: t0, TTL: time.Minute, Policy: policy()}
		err := r.Issue(context.Background(), op)
		switch {
		case !open && !errors.Is(err, ErrStoreUnavailable):
			t.Fatalf("closed: %v", err)
		case open && (err != nil || !op.Degraded || op.Difficulty != 10):
			t.Fatalf("open: %v degraded %v difficulty %d", err, op.Degraded, op.Difficulty)
		}
		if len(reported) != 1 {
			t.Fatalf("errors reported: %v", reported)
		}
		// Resting: the primary is not asked again within a second.
		_ = r.Issue(context.Background(), &IssueOp{Purpose: PurposeCreate, Challenge: newChallenge(t), Network: "n", Now: t0, TTL: time.Minute, Policy: policy()})
		if primary.calls != 1 {
			t.Fatalf("the resting primary was called %d times", primary.calls)
		}
		primary.broken = false
		clk.Add(time.Second)
		op = &IssueOp{Purpose: PurposeCreate, Challenge: newChallenge(t), Network: "n", Now: t0, TTL: time.Minute, Policy: policy()}
		if err := r.Issue(context.Background(), op); err != nil || op.Degraded || primary.calls != 2 {
			t.Fatalf("after the rest: %v degraded %v calls %d", err, op.Degraded, primary.calls)
		}
	}
}

// ranThenFailed runs each operation on the inner store and then, while
// failing is set, reports a failure: a Redis script that ran but whose
// reply timed out.
type ranThenFailed struct {
	Store
	failing atomic.Bool
}

func (s *ranThenFailed) Issue(ctx context.Context, op *IssueOp) error {
	err := s.Store.Issue(ctx, op)
	if s.failing.Load() {
		return errors.New("i/o timeout")
	}
	return err
}

func (s *ranThenFailed) Admit(ctx context.Context, op *AdmitOp) error {
	err := s.Store.Admit(ctx, op)
	if s.failing.Load() {
		return errors.New("i/o timeout")
	}
	return err
}

// An Issue that ran on the primary but timed out is issued by the
// fallback under a fresh string, never the one the primary may hold; the
// fallback's challenge is spent there, once, whether the primary is back
// or failing again.
func TestResilientFallbackChallengeSpentOnce(t *testing.T) {
	clk := &clock{t: t0}
	inner := NewMemory(MemoryOptions{})
	primary := &ranThenFailed{Store: inner}
	r := &Resilient{Primary: primary, Fallback: NewMemory(MemoryOptions{}), FailOpen: true, Now: clk.Now}
	pol := &Difficulty{Base: 4, Ceiling: 4}
	asked := newChallenge(t)
	primary.failing.Store(true)
	iop := &IssueOp{Purpose: PurposeCreate, Challenge: asked, Network: "x", Now: clk.Now(), TTL: 5 * time.Minute, Policy: pol}
	if err := r.Issue(context.Background(), iop); err != nil || !iop.Degraded {
		t.Fatalf("issue: %v degraded %v", err, iop.Degraded)
	}
	ch := iop.Challenge
	if ch == asked || !ValidChallenge(ch) {
		t.Fatalf("the fallback issued %q, want a fresh challenge (asked %q)", ch, asked)
	}
	nonce, _ := Solve(context.Background(), ch, 4)
	admit := func() *AdmitOp {
		t.Helper()
		op := &AdmitOp{Purpose: PurposeCreate, Challenge: ch, Work: Work(ch, nonce), Network: "x", Now: clk.Now(), Policy: pol}
		if err := r.Admit(context.Background(), op); err != nil {
			t.Fatal(err)
		}
		return op
	}
	clk.Add(2 * time.Second) // the primary is back
	primary.failing.Store(false)
	if a := admit(); a.Outcome != Admitted || !a.Degraded {
		t.Fatalf("the fallback's challenge after the primary came back: %s degraded %v, want admitted by the fallback", a.Outcome, a.Degraded)
	}
	clk.Add(2 * time.Second)
	primary.failing.Store(true) // and fails again
	if a := admit(); a.Outcome == Admitted {
		t.Fatal("one solved challenge was admitted twice")
	}
	primary.failing.Store(false)
	clk.Add(2 * time.Second)
	if a := admit(); a.Outcome == Admitted {
		t.Fatal("one solved challenge was admitted twice")
	}
	// The primary never held the fallback's string.
	op := &AdmitOp{Purpose: PurposeCreate, Challenge: ch, Work: Work(ch, nonce), Network: "x", Now: clk.Now(), Policy: pol}
	if err := inner.Admit(context.Background(), op); err != nil || op.Outcome == Admitted {
		t.Fatal("the primary holds the fallback's challenge")
	}
	// A challenge the primary issued is still the primary's.
	iop = &IssueOp{Purpose: PurposeCreate, Challenge: newChallenge(t), Network: "x", Now: clk.Now(), TTL: 5 * time.Minute, Policy: pol}
	if err := r.Issue(context.Background(), iop); err != nil || iop.Degraded {
		t.Fatalf("issue with the primary up: %v degraded %v", err, iop.Degraded)
	}
	nonce, _ = Solve(context.Background(), iop.Challenge, 4)
	op = &AdmitOp{Purpose: PurposeCreate, Challenge: iop.Challenge, Work: Work(iop.Challenge, nonce), Network: "x", Now: clk.Now(), Policy: pol}
	if err := r.Admit(context.Background(), op); err != nil || op.Outcome != Admitted || op.Degraded {
		t.Fatalf("the primary's challenge: %v %s degraded %v", err, op.Outcome, op.Degraded)
	}
}

// The handler hands out the challenge the store issued: while falling
// back, the fallback's fresh string, which admits a creation once.
func TestChallengeFromFallbackIsTheOneIssued(t *testing.T) {
	primary := &failing{broken: true, Store: NewMemory(MemoryOptions{})}
	f := newFixture(t, func(c *Config) {
		c.Store = &Resilient{Primary: primary, Fallback: NewMemory(MemoryOptions{}), FailOpen: true, Now: c.Now}
	})
	c := f.challenge(DefaultChallengePath)
	f.clk.Add(2 * time.Second)
	primary.broken = false
	body := admissionBody(c.Challenge, solveT(t, c))
	if r := f.do("POST", DefaultCreatePath, body); r.StatusCode != 200 {
		t.Fatalf("creation with the fallback's challenge: %d %s", r.StatusCode, r.body)
	}
	if r := f.do("POST", DefaultCreatePath, body); r.StatusCode != 403 {
		t.Fatalf("replay: %d %s", r.StatusCode, r.body)
	}
	if n := f.be.count(); n != 1 {
		t.Fatalf("backend saw %d creations, want 1", n)
	}
}

// refunds counts a store's refunds and fails them while broken.
type refunds struct {
	Store
	broken bool
	calls  int
}

func (s *refunds) Refund(ctx context.Context, op *AdmitOp) error {
	s.calls++
	if s.broken {
		return errors.New("connection refused")
	}
	return s.Store.Refund(ctx, op)
}

// A claim's failure goes back to the store that charged it: the fallback
// for a claim admitted while falling back, even with the primary back;
// the primary otherwise, and never the fallback in its stead when the
// primary fails (the fallback holds no such charge).
func TestResilientRefundGoesWhereCharged(t *testing.T) {
	clk := &clock{t: t0}
	primary := &refunds{Store: &failing{Store: NewMemory(MemoryOptions{})}}
	fallback := &refunds{Store: NewMemory(MemoryOptions{})}
	var reported []error
	r := &Resilient{Primary: primary, Fallback: fallback, FailOpen: true, Now: clk.Now,
		OnError: func(err error) { reported = append(reported, err) }}
	lo := &Lockout{After: 1, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	claim := func(keys ...string) *AdmitOp {
		t.Helper()
		iop := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: clk.Now(), TTL: time.Minute, Policy: policy()}
		if err := r.Issue(context.Background(), iop); err != nil {
			t.Fatal(err)
		}
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: iop.Challenge, Work: 64, Network: "n", Now: clk.Now(), Policy: policy(), LockKeys: keys, Lockout: lo}
		if err := r.Admit(context.Background(), op); err != nil || op.Outcome != Admitted || !op.LockStarted {
			t.Fatalf("claim %v: %v %s lock started %v", keys, err, op.Outcome, op.LockStarted)
		}
		return op
	}
	// Charged by the primary, refunded there: the lock (After 1) is lifted.
	op := claim("k:p")
	if err := r.Refund(context.Background(), op); err != nil || primary.calls != 1 || fallback.calls != 0 {
		t.Fatalf("refund of the primary's charge: %v, primary %d fallback %d calls", err, primary.calls, fallback.calls)
	}
	claim("k:p")

	// Charged by the fallback while the primary is down, refunded by the
	// fallback after the primary is back.
	primary.Store.(*failing).broken = true
	op = claim("k:f")
	if !op.Degraded {
		t.Fatal("the claim was not admitted by the fallback")
	}
	primary.Store.(*failing).broken = false
	clk.Add(2 * time.Second)
	if err := r.Refund(context.Background(), op); err != nil || primary.calls != 1 || fallback.calls != 1 {
		t.Fatalf("refund of the fallback's charge: %v, primary %d fallback %d calls", err, primary.calls, fallback.calls)
	}
	claim("k:f") // the fallback's lock was lifted (this one is the primary's)

	// The primary fails the refund: the failure stays counted, the
	// fallback is not asked, the primary rests and the error is reported.
	op = claim("k:q")
	primary.broken = true
	if err := r.Refund(context.Background(), op); err == nil || fallback.calls != 1 || len(reported) != 2 {
		t.Fatalf("a failing refund: %v, fallback %d calls, %d reported", err, fallback.calls, len(reported))
	}
	if err := r.Refund(context.Background(), op); !errors.Is(err, ErrStoreUnavailable) || primary.calls != 2 {
		t.Fatalf("a refund while the primary rests: %v, primary %d calls", err, primary.calls)
	}
}

// A claim on a challenge the primary issued, whose admission ran on the
// primary but whose reply was lost, is refused by the fallback (which
// never held the challenge) without a failure of its own: the claim is
// charged once, by the primary that saw it, not again by the fallback.
// The same holds while the primary rests. A claim on the fallback's own
// challenge is still checked and charged there.
func TestResilientClaimChargedOnceWhenReplyLost(t *testing.T) {
	clk := &clock{t: t0}
	inner := NewMemory(MemoryOptions{})
	primary := &ranThenFailed{Store: inner}
	fallback := NewMemory(MemoryOptions{})
	r := &Resilient{Primary: primary, Fallback: fallback, FailOpen: true, Now: clk.Now}
	lo := &Lockout{After: 2, Base: time.Minute, Max: time.Hour, Reset: time.Hour}
	keys := []string{"c:198.51.100.7/32", "k:" + newChallenge(t)}
	claim := func(work int) *AdmitOp {
		t.Helper()
		iop := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: clk.Now(), TTL: time.Minute, Policy: policy()}
		if err := r.Issue(context.Background(), iop); err != nil {
			t.Fatal(err)
		}
		primary.failing.Store(true)
		defer primary.failing.Store(false)
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: iop.Challenge, Work: work, Network: "n", Now: clk.Now(), Policy: policy(), LockKeys: keys, Lockout: lo}
		if err := r.Admit(context.Background(), op); err != nil {
			t.Fatal(err)
		}
		return op
	}
	// Issued by the primary (up), admitted there (charged), reply lost.
	if op := claim(64); op.Outcome != Refused || !op.Degraded || op.LockStarted {
		t.Fatalf("a claim whose primary reply was lost: %s degraded %v lock started %v, want refused by the fallback, no lock", op.Outcome, op.Degraded, op.LockStarted)
	}
	// The primary rests: a claim on a challenge it issued earlier goes to
	// the fallback alone, which refuses it without a charge either.
	early := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: t0, TTL: time.Hour, Policy: policy()}
	if err := inner.Issue(context.Background(), early); err != nil {
		t.Fatal(err)
	}
	op := &AdmitOp{Purpose: PurposeClaim, Challenge: early.Challenge, Work: 64, Network: "n", Now: clk.Now(), Policy: policy(), LockKeys: keys, Lockout: lo}
	if err := r.Admit(context.Background(), op); err != nil || op.Outcome != Refused || !op.Degraded {
		t.Fatalf("a primary challenge while the primary rests: %v %s degraded %v", err, op.Outcome, op.Degraded)
	}
	// The fallback counted nothing: its own challenge, badly solved, is
	// the first failure it sees (After 2), and the second locks.
	bad := func() *AdmitOp {
		t.Helper()
		iop := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: clk.Now(), TTL: time.Minute, Policy: policy()}
		if err := r.Issue(context.Background(), iop); err != nil || !iop.Degraded {
			t.Fatalf("issue while the primary rests: %v degraded %v", err, iop.Degraded)
		}
		op := &AdmitOp{Purpose: PurposeClaim, Challenge: iop.Challenge, Work: 0, Network: "n", Now: clk.Now(), Policy: policy(), LockKeys: keys, Lockout: lo}
		if err := r.Admit(context.Background(), op); err != nil || !op.Degraded {
			t.Fatalf("a bad proof of work on the fallback's challenge: %v degraded %v", err, op.Degraded)
		}
		return op
	}
	if op := bad(); op.Outcome != Refused || op.LockStarted {
		t.Fatalf("the first failure the fallback saw: %s lock started %v, want refused, no lock (it charged the claims it could not have admitted)", op.Outcome, op.LockStarted)
	}
	if op := bad(); op.Outcome != Refused || !op.LockStarted {
		t.Fatalf("the fallback's second failure: %s lock started %v, want refused, beginning the lock", op.Outcome, op.LockStarted)
	}
	// The primary kept the one charge its lost reply made: it stands (the
	// claim never reached the backend), so one more failure there locks.
	iop := &IssueOp{Purpose: PurposeClaim, Challenge: newChallenge(t), Network: "n", Now: clk.Now(), TTL: time.Minute, Policy: policy()}
	if err := inner.Issue(context.Background(), iop); err != nil {
		t.Fatal(err)
	}
	op = &AdmitOp{Purpose: PurposeClaim, Challenge: iop.Challenge, Work: 0, Network: "n", Now: clk.Now(), Policy: policy(), LockKeys: keys, Lockout: lo}
	if err := inner.Admit(context.Background(), op); err != nil || !op.LockStarted {
		t.Fatalf("the primary after the lost reply: %v lock started %v, want its charge counted (a second failure locks)", err, op.LockStarted)
	}
}
