package handoff

import (
	"context"
	"sync/atomic"
	"time"
)

// Resilient applies a failure policy to a shared store: while the primary
// (Redis) fails, operations go to the fallback (this instance's memory)
// when FailOpen is set, or fail with ErrStoreUnavailable. After a failure
// the primary is skipped for RetryAfter, then tried again.
//
// Failing open keeps sandbox creation working through a Redis outage at
// the price of per-instance state: a challenge issued by Redis cannot be
// spent while Redis is away, and lockouts are per instance. The default
// policy of the directive is closed: admission is a security boundary.
//
// A challenge the fallback issues is a fresh string, never the one the
// primary was asked to store (a primary that timed out may have stored
// it anyway), so no string is held by both stores and admitted by each.
// A [Memory] fallback marks its strings, and they are spent there even
// after the primary is back; with another fallback they can be spent only
// while the primary is down.
type Resilient struct {
	Primary, Fallback Store
	FailOpen          bool
	// RetryAfter is how long the primary is skipped after a failure
	// (default one second).
	RetryAfter time.Duration
	// OnError is told of every primary failure (metrics, logs).
	OnError func(error)
	// Now is the clock of the skip window (default time.Now).
	Now func() time.Time

	downUntil atomic.Int64 // clock() until which the primary rests; 0: healthy
}

// epoch starts the default clock: time since it reads the monotonic
// clock, so a wall clock stepped back during an outage does not rest the
// primary (the uniform 503 with on_store_error closed) for the whole step.
var epoch = time.Now()

// clock is the time in ns: since epoch, or an injected clock's Unix time.
func (r *Resilient) clock() int64 {
	if r.Now != nil {
		return r.Now().UnixNano()
	}
	return int64(time.Since(epoch))
}

func (r *Resilient) resting() bool {
	until := r.downUntil.Load()
	return until != 0 && r.clock() < until
}

// do runs op on the primary unless it is resting, and on the fallback (or
// not at all) when it fails.
func (r *Resilient) do(ctx context.Context, primary, fallback func(context.Context) error, degraded *bool) error {
	if !r.resting() {
		err := primary(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		r.primaryFailed(err)
	}
	if !r.FailOpen || r.Fallback == nil {
		return ErrStoreUnavailable
	}
	*degraded = true
	return fallback(ctx)
}

// ownChallenges is a fallback that issues challenge strings it
// recognizes ([Memory]).
type ownChallenges interface {
	newOwnChallenge() string
	owns(challenge string) bool
}

// Issue implements Store. Issued by the fallback, op.Challenge is
// replaced: the caller must hand out op.Challenge.
func (r *Resilient) Issue(ctx context.Context, op *IssueOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.Issue(ctx, op) },
		func(ctx context.Context) error {
			if o, ok := r.Fallback.(ownChallenges); ok {
				op.Challenge = o.newOwnChallenge()
			} else {
				op.Challenge = newChallengeString()
			}
			return r.Fallback.Issue(ctx, op)
		}, &op.Degraded)
}

// Admit implements Store: a challenge the fallback issued is spent there.
//
// A claim on any other challenge is refused while falling back without
// asking the fallback: it never held the challenge, so it could only
// refuse, and would charge the claim's lockout keys a failure besides the
// one the primary may already have charged (a reply lost after its script
// ran). So a claim is charged at most once, by the store that could have
// admitted it; a charge the primary made before its reply was lost
// stands, as a claim that did not reach the backend (it errs toward
// locking). Nothing reaches the backend on this path, so no code is
// tried unchecked.
func (r *Resilient) Admit(ctx context.Context, op *AdmitOp) error {
	o, owning := r.Fallback.(ownChallenges)
	if owning && r.FailOpen && o.owns(op.Challenge) {
		op.Degraded = true
		return r.Fallback.Admit(ctx, op)
	}
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.Admit(ctx, op) },
		func(ctx context.Context) error {
			if owning && op.Purpose == PurposeClaim {
				op.Outcome, op.LockStarted, op.Charge = Refused, false, Charge{}
				return nil
			}
			return r.Fallback.Admit(ctx, op)
		}, &op.Degraded)
}

// AdmitExempt implements Store.
func (r *Resilient) AdmitExempt(ctx context.Context, op *ExemptOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.AdmitExempt(ctx, op) },
		func(ctx context.Context) error { return r.Fallback.AdmitExempt(ctx, op) }, &op.Degraded)
}

// Refund implements Store. The failure goes back where it was charged:
// to the fallback when op was admitted Degraded, else to the primary,
// never to the other store (which holds no such charge). A primary that
// is resting or fails keeps the failure: it errs toward locking; either
// way the error is ErrStoreUnavailable.
func (r *Resilient) Refund(ctx context.Context, op *AdmitOp) error {
	if op.Degraded {
		if r.Fallback == nil {
			return nil
		}
		return r.Fallback.Refund(ctx, op)
	}
	if r.resting() {
		return ErrStoreUnavailable
	}
	err := r.Primary.Refund(ctx, op)
	if err != nil && ctx.Err() == nil {
		// Reported (counted, logged) here: the caller is told it as the
		// other operations' failures are, so it does not count it again.
		r.primaryFailed(err)
		return ErrStoreUnavailable
	}
	return err
}

// primaryFailed rests the primary for RetryAfter and reports err.
func (r *Resilient) primaryFailed(err error) {
	retry := r.RetryAfter
	if retry <= 0 {
		retry = time.Second
	}
	r.downUntil.Store(r.clock() + int64(retry))
	if r.OnError != nil {
		r.OnError(err)
	}
}

var _ Store = (*Resilient)(nil)
