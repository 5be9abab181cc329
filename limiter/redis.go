package limiter

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a [Redis] store.
type RedisOptions struct {
	Prefix  string        // prepended to every key (default "ahp:")
	Timeout time.Duration // bound on each call, round trip included (default 50ms)
}

// Redis is a [Store] shared by every instance using the same Redis.
type Redis struct{}

// NewRedis returns a store using client, which the caller keeps owning.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis { return &Redis{} }

func (r *Redis) Do(ctx context.Context, b *Batch) error { return errors.New("TODO") }
func (r *Redis) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return errors.New("TODO")
}
func (r *Redis) Close() error { return nil }
