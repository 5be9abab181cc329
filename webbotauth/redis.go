package webbotauth

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is a SharedCache in Redis: one key per directory URL,
// holding the agent's encoded keys, expiring with the directory, and an
// index of them that bounds how many are held. Instances that share it
// fetch each agent's directory once between them.
type RedisCache struct {
	client     redis.UniversalClient
	prefix     string
	maxEntries int
	now        func() time.Time
}

var _ SharedCache = (*RedisCache)(nil)

// DefaultRedisEntries is how many agents' keys a RedisCache holds by
// default: at most about 3 KiB each (64 keys), usually under 100 bytes.
const DefaultRedisEntries = 1024

// NewRedisCache returns a SharedCache on client. prefix namespaces the
// keys ("" means "ahp:", as the limiter's): an agent's keys live at
// <prefix>wba:{keys}:<directory URL>, the index at <prefix>wba:{keys}
// (one hash tag: one Cluster slot). maxEntries bounds the entries (0
// means DefaultRedisEntries); when full, the entry closest to expiry
// makes room (instances then fetch that directory for themselves).
func NewRedisCache(client redis.UniversalClient, prefix string, maxEntries int) *RedisCache {
	if prefix == "" {
		prefix = "ahp:"
	}
	if maxEntries <= 0 {
		maxEntries = DefaultRedisEntries
	}
	return &RedisCache{client: client, prefix: prefix, maxEntries: maxEntries, now: time.Now}
}

func (c *RedisCache) key(k string) string { return c.prefix + "wba:{keys}:" + k }
func (c *RedisCache) index() string       { return c.prefix + "wba:{keys}" }

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

// setScript stores an entry and its place in the index, after dropping
// the index's expired members and, when it is full, the entries closest
// to expiry. KEYS: entry, index. ARGV: value, ttl (ms), now (ms), cap.
var setScript = redis.NewScript(`
local ttl, now, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], KEYS[1]) then
  local n = redis.call('ZCARD', KEYS[2])
  while n >= cap do
    local v = redis.call('ZPOPMIN', KEYS[2])
    redis.call('DEL', v[1])
    n = n - 1
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.max(tonumber(last[2]) - now, 1))
return 1
`)

// Set stores value until expires (at least one millisecond), in one
// round trip.
func (c *RedisCache) Set(ctx context.Context, key string, value []byte, expires time.Time) error {
	now := c.now()
	d := expires.Sub(now)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return setScript.Run(ctx, c.client, []string{c.key(key), c.index()},
		value, d.Milliseconds(), now.UnixMilli(), c.maxEntries).Err()
}
