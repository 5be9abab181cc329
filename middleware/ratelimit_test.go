package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func TestClientKeyGroupsIPv6(t *testing.T) {
	var ip string
	rl := newRateLimiter(&RateLimits{Store: limiter.NewMemory(limiter.MemoryOptions{}), Zone: "z", ClientKey: func(*http.Request) string { return ip }})
	r := httptest.NewRequest("GET", "/", nil)
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "z|ip|203.0.113.7"},
		{"::ffff:203.0.113.7", "z|ip|203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "z|ip|2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "z|ip|2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "z|ip|2001:db8:1:3::/64"},
		{"not-an-ip", "z|key|not-an-ip"},
	}
	for _, tt := range tests {
		ip = tt.ip
		if got := rl.clientKey(r); got != tt.want {
			t.Errorf("clientKey(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	rl48 := newRateLimiter(&RateLimits{Store: limiter.NewMemory(limiter.MemoryOptions{}), IPv6Prefix: 48, ClientKey: func(*http.Request) string { return "2001:db8:1:2::9" }})
	if got := rl48.clientKey(r); got != "|ip|2001:db8:1::/48" {
		t.Errorf("ipv6_prefix 48: %q", got)
	}
}

func TestRateHeaderValues(t *testing.T) {
	h := http.Header{}
	tr := newTier("t", limiter.Limit{Events: 30, Window: time.Minute})
	reset := time.Unix(1700000000, 500)
	writeRateHeaders(h, tr, &limiter.Decision{Remaining: 7, Reset: reset})
	if h.Get("X-RateLimit-Limit") != "30" || h.Get("X-RateLimit-Remaining") != "7" ||
		h.Get("X-RateLimit-Reset") != "1700000001" || h.Get("X-RateLimit-Window") != "60" {
		t.Errorf("headers = %v", h)
	}
	writeRateHeaders(h, tr, &limiter.Decision{Remaining: 5000, Reset: time.Unix(1700000002, 0)})
	if h.Get("X-RateLimit-Remaining") != "5000" || h.Get("X-RateLimit-Reset") != "1700000002" {
		t.Errorf("headers = %v", h)
	}
	if smallInts[7][0] != "7" {
		t.Error("shared header value modified")
	}
	if retryAfterSeconds(1500*time.Millisecond) != 2 || retryAfterSeconds(0) != 1 || retryAfterSeconds(2*time.Second) != 2 {
		t.Error("Retry-After must round up to whole seconds")
	}
}
