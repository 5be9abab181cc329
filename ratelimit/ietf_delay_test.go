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

// README: scripts use the Redis server's clock "so instances with skewed
// clocks agree". The IETF RateLimit field's t (delay-seconds) was Redis's
// absolute reset minus this instance's wall clock, so an instance whose
// clock was off by minutes announced a t far larger than the window (or
// 0): instances sharing one Redis disagreed, by their skew. t is now the
// store's own delay.
func TestIETFDelayFromRedisClockWhateverInstanceClock(t *testing.T) {
	srv := redistest.Start(t)
	client, err := limiter.NewRedisClient("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	store := limiter.NewRedis(client, limiter.RedisOptions{Prefix: "review-ietf:"})
	t.Cleanup(func() { store.Close() })
	lim := limiter.Limit{Events: 10, Window: time.Minute}
	for _, skew := range []time.Duration{0, -10 * time.Minute, 10 * time.Minute} {
		p := New(Config{Store: store, Zone: "z" + skew.String(), Static: lim, Headers: HeadersIETF,
			ClientKey: func(*http.Request) string { return "192.0.2.1" },
			Now:       func() time.Time { return time.Now().Add(skew) }})
		w := httptest.NewRecorder()
		p.ChargeStatic(w, httptest.NewRequest("GET", "/.well-known/agent.json", nil))
		got := w.Header().Get("RateLimit")
		var secs int
		if i := strings.LastIndex(got, ";t="); i >= 0 {
			secs, _ = strconv.Atoi(got[i+3:])
		}
		if secs < 1 || secs > 61 {
			t.Errorf("instance clock %s off Redis's: RateLimit %q: t=%d, want the delay until the window frees room (1..61 s)", skew, got, secs)
		}
	}
}
