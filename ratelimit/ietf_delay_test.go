package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// TestIETFDelayFromRedisClock: the IETF RateLimit field's t
// (delay-seconds) is the store's own delay until the window frees room,
// measured on Redis's clock, so instances sharing one Redis announce the
// same t whatever their own clocks (it was Redis's absolute reset minus
// this instance's wall clock: off by the instance's skew). The policy
// keeps no clock of its own.
func TestIETFDelayFromRedisClock(t *testing.T) {
	srv := redistest.Start(t)
	client, err := limiter.NewRedisClient("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	store := limiter.NewRedis(client, limiter.RedisOptions{Prefix: "ietf:"})
	t.Cleanup(func() { store.Close() })
	lim := limiter.Limit{Events: 10, Window: time.Minute}
	p := New(Config{Store: store, Zone: "z", Static: lim, Headers: HeadersIETF,
		ClientKey: func(*http.Request) string { return "192.0.2.1" }})
	w := httptest.NewRecorder()
	p.ChargeStatic(w, httptest.NewRequest("GET", "/.well-known/agent.json", nil))
	got := w.Header().Get("RateLimit")
	var secs int
	if i := strings.LastIndex(got, ";t="); i >= 0 {
		secs, _ = strconv.Atoi(got[i+3:])
	}
	if secs < 1 || secs > 61 {
		t.Errorf("RateLimit %q: t=%d, want the delay until the window frees room (1..61 s)", got, secs)
	}
}
