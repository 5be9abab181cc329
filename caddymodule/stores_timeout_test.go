package caddymodule

import (
	"testing"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// Handlers whose Redis decisions have the same timeout share one limiter
// store (one pipelining loop, one set of hot-key leases), whether the
// timeout is written or left to its default: ahp leaves it 0 by default
// and handshake_prompt passes limiter.DefaultRedisTimeout, so a site with
// both on one Redis had two.
func TestRedisLimiterDefaultTimeoutShared(t *testing.T) {
	const url = "redis://127.0.0.1:1/0"
	a, b := new(storeRefs), new(storeRefs)
	defer a.release()
	defer b.release()
	byDefault, err := a.redisLimiter(url, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	written, err := b.redisLimiter(url, limiter.DefaultRedisTimeout, false)
	if err != nil {
		t.Fatal(err)
	}
	if byDefault != written {
		t.Fatal("timeout 0 (the default) and 50ms got two limiter stores")
	}
}
