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

	downUntil atomic.Int64 // unix ns
}

func (r *Resilient) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// do runs op on the primary unless it is resting, and on the fallback (or
// not at all) when it fails.
func (r *Resilient) do(ctx context.Context, primary, fallback func(context.Context) error, degraded *bool) error {
	if r.now().UnixNano() >= r.downUntil.Load() {
		err := primary(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		retry := r.RetryAfter
		if retry <= 0 {
			retry = time.Second
		}
		r.downUntil.Store(r.now().Add(retry).UnixNano())
		if r.OnError != nil {
			r.OnError(err)
		}
	}
	if !r.FailOpen || r.Fallback == nil {
		return ErrStoreUnavailable
	}
	*degraded = true
	return fallback(ctx)
}

// Issue implements Store.
func (r *Resilient) Issue(ctx context.Context, op *IssueOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.Issue(ctx, op) },
		func(ctx context.Context) error { return r.Fallback.Issue(ctx, op) }, &op.Degraded)
}

// Admit implements Store.
func (r *Resilient) Admit(ctx context.Context, op *AdmitOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.Admit(ctx, op) },
		func(ctx context.Context) error { return r.Fallback.Admit(ctx, op) }, &op.Degraded)
}

// AdmitExempt implements Store.
func (r *Resilient) AdmitExempt(ctx context.Context, op *ExemptOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.AdmitExempt(ctx, op) },
		func(ctx context.Context) error { return r.Fallback.AdmitExempt(ctx, op) }, &op.Degraded)
}

// Fail implements Store.
func (r *Resilient) Fail(ctx context.Context, op *FailOp) error {
	return r.do(ctx,
		func(ctx context.Context) error { return r.Primary.Fail(ctx, op) },
		func(ctx context.Context) error { return r.Fallback.Fail(ctx, op) }, &op.Degraded)
}

var _ Store = (*Resilient)(nil)
