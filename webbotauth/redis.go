package webbotauth

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is a SharedCache in Redis: one key per directory URL,
// holding the directory as fetched, expiring with it. Instances that
// share it fetch each agent's directory once between them.
type RedisCache struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

var _ SharedCache = (*RedisCache)(nil)

// NewRedisCache returns a SharedCache on client. prefix namespaces the
// keys ("" means "ahp:", as the limiter's): a directory lives at
// <prefix>wba:dir:<url>.
func NewRedisCache(client redis.UniversalClient, prefix string) *RedisCache {
	if prefix == "" {
		prefix = "ahp:"
	}
	return &RedisCache{client: client, prefix: prefix, now: time.Now}
}

func (c *RedisCache) key(k string) string { return c.prefix + "wba:dir:" + k }

// Get reads the value and its remaining time to live in one round trip.
func (c *RedisCache) Get(ctx context.Context, key string) ([]byte, time.Time, bool, error) {
	k := c.key(key)
	pipe := c.client.Pipeline()
	get := pipe.Get(ctx, k)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, err
	}
	val, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, err
	}
	d, err := ttl.Result()
	if err != nil || d <= 0 {
		// No expiry (not written by us) or just expired: treat as absent.
		return nil, time.Time{}, false, err
	}
	return val, c.now().Add(d), true, nil
}

// Set stores value until expires (at least one millisecond).
func (c *RedisCache) Set(ctx context.Context, key string, value []byte, expires time.Time) error {
	d := expires.Sub(c.now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return c.client.Set(ctx, c.key(key), value, d).Err()
}
