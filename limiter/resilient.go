package limiter

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ResilientOptions configures a [Resilient] store.
type ResilientOptions struct {
	// FailOpen answers from the fallback store while the primary fails;
	// otherwise calls fail with ErrStoreUnavailable.
	FailOpen bool
	// Backoff is how long the primary is left alone after an error before
	// one call probes it again (default 1s).
	Backoff time.Duration
	// OnError receives the primary's errors: the first of an outage and
	// each failed probe, so at most one per Backoff. It can log them as is.
	OnError func(error)
	// OnRecover is called when the primary answers again after an error.
	OnRecover func()
	// OnFallback is called for every call the primary did not answer
	// (answered by the fallback, or refused when failing closed): count it.
	OnFallback func()
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// DefaultBackoff is the default of ResilientOptions.Backoff.
const DefaultBackoff = time.Second

// Resilient is a [Store] that asks a primary (shared, Redis) store and
// applies the failure policy when it fails or times out: answer from a
// fallback (per-instance, memory) store, or fail closed with
// ErrStoreUnavailable.
//
// After an error the primary is skipped for Backoff, so a dead or hanging
// Redis costs at most one timeout per Backoff instead of one per request;
// then a single call probes it, and shared limiting resumes on its own once
// the probe succeeds. The fallback's counts start from zero when it takes
// over: during an outage each instance enforces the limits on its own.
type Resilient struct {
	primary, fallback Store
	opts              ResilientOptions

	// downUntil is when the primary is asked again, in ns since epoch;
	// 0: healthy. Measured from epoch, not as Unix time, so it reads the
	// monotonic clock: a wall clock stepped back during an outage would
	// skip Redis (503s with on_store_error closed) for the whole step.
	downUntil atomic.Int64
	epoch     time.Time
	probing   atomic.Bool // a call is probing the primary
}

// NewResilient returns a store that asks primary and falls back as opts say.
// It owns both stores: Close closes them.
func NewResilient(primary, fallback Store, opts ResilientOptions) *Resilient {
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Resilient{primary: primary, fallback: fallback, opts: opts, epoch: opts.Now()}
}

// Healthy reports whether the primary answered the last time it was asked.
func (r *Resilient) Healthy() bool { return r.downUntil.Load() == 0 }

// Do implements [Store]; b.Degraded tells whether the fallback answered.
func (r *Resilient) Do(ctx context.Context, b *Batch) error {
	b.Degraded, b.Leased = false, false
	if err := b.validate(); err != nil {
		return err
	}
	if probe, ok := r.usePrimary(); ok {
		var err error
		if probe {
			err = r.probe(func() error { return r.primary.Do(ctx, b) })
		} else {
			err = r.primary.Do(ctx, b)
		}
		if err == nil && b.Leased {
			// Answered from leases or cached refusals, with no round
			// trip: it says nothing about the primary's health.
			if probe {
				r.probing.Store(false)
			}
			return nil
		}
		if r.settle(ctx, err, probe) {
			return err
		}
	}
	if r.opts.OnFallback != nil {
		r.opts.OnFallback()
	}
	if !r.opts.FailOpen {
		return ErrStoreUnavailable
	}
	b.Degraded = true
	return r.fallback.Do(ctx, b)
}

// AddTokens implements [Store]: AddJobTokens with no job.
func (r *Resilient) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return r.AddJobTokens(ctx, sessionID, jobNone, tokens, idle)
}

// AddJobTokens implements [Store].
func (r *Resilient) AddJobTokens(ctx context.Context, sessionID string, step JobStep, tokens int64, idle time.Duration) error {
	if err := validateAddTokens(sessionID, tokens); err != nil {
		return err
	}
	if probe, ok := r.usePrimary(); ok {
		var err error
		if probe {
			err = r.probe(func() error { return r.primary.AddJobTokens(ctx, sessionID, step, tokens, idle) })
		} else {
			err = r.primary.AddJobTokens(ctx, sessionID, step, tokens, idle)
		}
		if r.settle(ctx, err, probe) {
			return err
		}
	}
	if r.opts.OnFallback != nil {
		r.opts.OnFallback()
	}
	if !r.opts.FailOpen {
		return ErrStoreUnavailable
	}
	return r.fallback.AddJobTokens(ctx, sessionID, step, tokens, idle)
}

// usePrimary reports whether to ask the primary, and whether this call is
// the probe that decides whether it is back.
func (r *Resilient) usePrimary() (probe, ok bool) {
	until := r.downUntil.Load()
	if until == 0 {
		return false, true
	}
	if r.since() < until {
		return false, false
	}
	if r.probing.CompareAndSwap(false, true) {
		return true, true
	}
	return false, false
}

// probe runs the probing call f. If f panics, the probe is given up: left
// taken, no call would ever ask the primary again.
func (r *Resilient) probe(f func() error) error {
	done := false
	defer func() {
		if !done {
			r.probing.Store(false)
		}
	}()
	err := f()
	done = true
	return err
}

// settle records the primary's answer and reports whether it stands (true)
// or the fallback policy applies (false).
func (r *Resilient) settle(ctx context.Context, err error, probe bool) bool {
	switch {
	case err == nil:
		// Load first: a healthy store must not write the shared word on
		// every call.
		if r.downUntil.Load() != 0 && r.downUntil.Swap(0) != 0 {
			r.probing.Store(false)
			if r.opts.OnRecover != nil {
				r.opts.OnRecover()
			}
		}
		return true
	case errors.Is(err, ErrInvalidCheck), errors.Is(ctx.Err(), context.Canceled):
		// A bad check or a caller that went away says nothing about the
		// primary's health. A caller's deadline that passed does: the
		// caller is still waiting, and its deadline is mostly the store's
		// timeout (ratelimit bounds each decision by it), so a hung Redis
		// must get the policy, not an error on every request.
		if probe {
			r.probing.Store(false)
		}
		return true
	}
	prev := r.downUntil.Swap(max(r.since()+int64(r.opts.Backoff), 1))
	r.probing.Store(false)
	if (prev == 0 || probe) && r.opts.OnError != nil {
		r.opts.OnError(err)
	}
	return false
}

// since is the time since epoch, in ns.
func (r *Resilient) since() int64 { return int64(r.opts.Now().Sub(r.epoch)) }

// Close closes both stores.
func (r *Resilient) Close() error {
	return errors.Join(r.primary.Close(), r.fallback.Close())
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
	_ Store = (*Resilient)(nil)
)
