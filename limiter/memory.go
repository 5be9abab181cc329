package limiter

import (
	"context"
	"errors"
	"time"
)

// MemoryOptions configures a [Memory] store.
type MemoryOptions struct {
	// MaxKeys bounds the number of window keys plus sessions held
	// (default 100000).
	MaxKeys int
	// SweepInterval is how often idle keys are removed (default 1 minute;
	// negative: never, e.g. in tests that call Sweep).
	SweepInterval time.Duration
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Memory is a [Store] for a single instance.
type Memory struct{}

// NewMemory returns a memory store.
func NewMemory(opts MemoryOptions) *Memory { return &Memory{} }

func (m *Memory) Do(ctx context.Context, b *Batch) error { return errors.New("TODO") }
func (m *Memory) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return errors.New("TODO")
}
func (m *Memory) Close() error { return nil }
