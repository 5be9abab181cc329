package handoff

import (
	"context"
	"errors"
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
