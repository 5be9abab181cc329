package ratelimit

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func TestClientKeyGroupsIPv6(t *testing.T) {
	var ip string
	p := New(Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), Zone: "z", ClientKey: func(*http.Request) string { return ip },
		Unauthenticated: limiter.Limit{Events: 5, Window: time.Minute}})
	r := httptest.NewRequest("GET", "/", nil)
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "z|ip|203.0.113.7"},
		{"::ffff:203.0.113.7", "z|ip|203.0.113.7"},
		{"2001:db8::1%eth0", "z|ip|2001:db8::/64"},
		{"0203.0.113.7", "z|key|0203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "z|ip|2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "z|ip|2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "z|ip|2001:db8:1:3::/64"},
		{"not-an-ip", "z|key|not-an-ip"},
	}
	for _, tt := range tests {
		ip = tt.ip
		if got := p.ClientKey(r); got != tt.want {
			t.Errorf("ClientKey(%s) = %q, want %q", tt.ip, got, tt.want)
		}
		if got := p.Window(r, p.Unauth).Key; got != tt.want+"|unauthenticated" {
			t.Errorf("Window(%s).Key = %q, want %q", tt.ip, got, tt.want+"|unauthenticated")
		}
	}
	p48 := New(Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), IPv6Prefix: 48, ClientKey: func(*http.Request) string { return "2001:db8:1:2::9" }})
	if got := p48.ClientKey(r); got != "|ip|2001:db8:1::/48" {
		t.Errorf("ipv6_prefix 48: %q", got)
	}
}

// tokenStore fails every AddTokens and AddJobTokens with err.
type tokenStore struct {
	limiter.Store
	err error
}

func (s tokenStore) AddTokens(context.Context, string, int64, time.Duration) error { return s.err }
func (s tokenStore) AddJobTokens(context.Context, string, limiter.JobStep, int64, time.Duration) error {
	return s.err
}

// Recording tokens counts a store failure once: ErrStoreUnavailable was
// counted by the resilient store that returned it (as Unavailable knows),
// any other error here.
func TestAddTokensCountsStoreFailureOnce(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{{limiter.ErrStoreUnavailable, 0}, {errors.New("redis: i/o timeout"), 2}} {
		obs := &countObserver{}
		p := New(Config{Store: tokenStore{err: c.err}, Zone: "z", TokenBudget: 100, Observer: obs})
		p.AddTokens(context.Background(), "s1", 10, time.Minute)
		p.AddJobTokens(context.Background(), "s1", limiter.JobOpen, 10, time.Minute)
		if obs.storeErrors != c.want {
			t.Errorf("%v: %d store errors counted for two failed records, want %d", c.err, obs.storeErrors, c.want)
		}
	}
}

// A concierge may report any count (the gateway reads one beyond int64 as
// math.MaxInt64): the session's sum must stay over the budget, not wrap
// around to a negative number, nor be refused by the store.
func TestAddTokensHugeCountsStayOverBudget(t *testing.T) {
	store := limiter.NewMemory(limiter.MemoryOptions{})
	defer store.Close()
	p := New(Config{Store: store, Zone: "z", TokenBudget: 100, Unauthenticated: limiter.Limit{Events: 5, Window: time.Minute}})
	ctx := context.Background()
	for range 2 {
		p.AddTokens(ctx, "s1", math.MaxInt64, time.Minute)
	}
	s := limiter.SessionCheck{ID: p.SessionKey("s1"), MaxTurns: 10, Idle: time.Minute, TokenBudget: p.Budget}
	if err := p.Decide(ctx, &limiter.Batch{Session: &s}); err != nil {
		t.Fatal(err)
	}
	if s.Outcome != limiter.SessionOverBudget {
		t.Errorf("after two answers of MaxInt64 tokens: outcome %v, tokens %d; want over budget", s.Outcome, s.TokensUsed)
	}
}

func TestHeaderValues(t *testing.T) {
	tier := newTier("unauthenticated", limiter.Limit{Events: 30, Window: time.Minute})
	d := &limiter.Decision{Remaining: 7, Reset: time.Unix(1700000000, 500), ResetIn: 500}
	for _, c := range []struct {
		headers Headers
		want    map[string]string
	}{
		{HeadersAHP, map[string]string{"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1700000001", "X-RateLimit-Window": "60"}},
		{HeadersIETF, map[string]string{"RateLimit-Policy": `"unauthenticated";q=30;w=60`, "RateLimit": `"unauthenticated";r=7;t=1`}},
		{HeadersBoth, map[string]string{"X-RateLimit-Limit": "30", "RateLimit-Policy": `"unauthenticated";q=30;w=60`, "RateLimit": `"unauthenticated";r=7;t=1`}},
	} {
		p := New(Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), Headers: c.headers})
		h := http.Header{}
		p.WriteHeaders(h, tier, d)
		for k, v := range c.want {
			if got := h.Get(k); got != v {
				t.Errorf("headers %d: %s = %q, want %q", c.headers, k, got, v)
			}
		}
		if c.headers == HeadersIETF && h.Get("X-RateLimit-Limit") != "" {
			t.Error("ietf only: X-RateLimit-Limit set")
		}
		// Caddy's header handler edits values in place: the next
		// response must not see it.
		for k := range h {
			h[k][0] = "edited"
		}
		h2 := http.Header{}
		p.WriteHeaders(h2, tier, d)
		for k, v := range c.want {
			if got := h2.Get(k); got != v {
				t.Errorf("after an in-place edit of another response: %s = %q, want %q", k, got, v)
			}
		}
	}
	if RetrySeconds(1500*time.Millisecond) != 2 || RetrySeconds(0) != 1 || RetrySeconds(2*time.Second) != 2 {
		t.Error("Retry-After must round up to whole seconds")
	}
}

func TestRetryAfterJitter(t *testing.T) {
	p := New(Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), Jitter: 5 * time.Second})
	seen := map[string]bool{}
	for range 200 {
		header, body := p.RetryAfter(1500 * time.Millisecond)
		if body != 2 {
			t.Fatalf("body retry_after %d, want the exact minimum 2", body)
		}
		seen[header] = true
		if header < "2" || header > "7" || len(header) != 1 {
			t.Fatalf("Retry-After %q outside [2, 7]", header)
		}
	}
	if len(seen) < 4 {
		t.Errorf("Retry-After took %d values over 200 refusals; want spread", len(seen))
	}
}

type countObserver struct{ limited, dry, storeErrors int }

func (o *countObserver) RateLimited(_ string, dry bool) {
	if dry {
		o.dry++
	} else {
		o.limited++
	}
}
func (o *countObserver) StoreError()                         { o.storeErrors++ }
func (o *countObserver) StoreFallback()                      {}
func (o *countObserver) LimiterDecision(time.Duration, bool) {}

func TestChargeStaticAndDryRun(t *testing.T) {
	for _, dry := range []bool{false, true} {
		obs := &countObserver{}
		p := New(Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), Static: limiter.Limit{Events: 2, Window: time.Minute}, DryRun: dry, Observer: obs})
		var last *httptest.ResponseRecorder
		passed := 0
		for range 4 {
			last = httptest.NewRecorder()
			if p.ChargeStatic(last, httptest.NewRequest("GET", "/.well-known/agent.json", nil)) {
				passed++
			}
		}
		if !dry {
			if passed != 2 || last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" ||
				!strings.Contains(last.Body.String(), `"code":"rate_limited"`) || obs.limited != 2 {
				t.Errorf("enforcing: passed %d, last %d %q, observed %d", passed, last.Code, last.Body.String(), obs.limited)
			}
			continue
		}
		if passed != 4 || obs.dry != 2 || obs.limited != 0 || last.Header().Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("dry run: passed %d, dry refusals %d, refusals %d, remaining %q", passed, obs.dry, obs.limited, last.Header().Get("X-RateLimit-Remaining"))
		}
	}
	var off *Policy
	if !off.ChargeStatic(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) {
		t.Error("a nil policy refused")
	}
}
