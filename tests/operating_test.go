package tests

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// The rate-limit options operators roll limits out with: IETF RateLimit
// headers beside the spec's, jitter on Retry-After, and a dry run that
// counts and logs what it would refuse without refusing it.
func TestRateLimitOperatorOptions(t *testing.T) {
	c := newConcierge(t)
	t.Run("ietf headers and jitter", func(t *testing.T) {
		s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 2/minute
			headers both
			retry_jitter 10s
		}`))
		r := s.converse(siteInfo)
		if r.Header.Get("X-RateLimit-Limit") != "2" || r.Header.Get("RateLimit-Policy") != `"unauthenticated";q=2;w=60` ||
			!strings.HasPrefix(r.Header.Get("RateLimit"), `"unauthenticated";r=1;t=`) {
			t.Fatalf("headers: X-RateLimit-Limit %q, RateLimit-Policy %q, RateLimit %q",
				r.Header.Get("X-RateLimit-Limit"), r.Header.Get("RateLimit-Policy"), r.Header.Get("RateLimit"))
		}
		s.converse(siteInfo)
		seen := map[int]bool{}
		for range 12 {
			r := s.converse(siteInfo)
			if r.StatusCode != 429 {
				t.Fatalf("over the limit: %d", r.StatusCode)
			}
			retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
			var body struct {
				RetryAfter int `json:"retry_after"`
			}
			decodeJSON(t, r.body, &body)
			if err != nil || retry < body.RetryAfter || retry > body.RetryAfter+10 {
				t.Fatalf("Retry-After %q with retry_after %d: want it within [retry_after, retry_after+10]", r.Header.Get("Retry-After"), body.RetryAfter)
			}
			seen[retry-body.RetryAfter] = true
		}
		if len(seen) < 3 {
			t.Errorf("12 refusals, %d distinct jitters: Retry-After is not spread", len(seen))
		}
	})
	t.Run("dry run", func(t *testing.T) {
		s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 2/minute
			mode log
		}`))
		before := s.scrape()
		for i := range 5 {
			if r := s.converse(siteInfo); r.StatusCode != 200 {
				t.Fatalf("request %d in a dry run: %d %s", i+1, r.StatusCode, r.body)
			}
		}
		d := metricDeltas(before, s.scrape())
		if got := d[`caddy_ahp_rate_limited_total{dry="true",scope="ip"}`]; got != 3 {
			t.Errorf("dry-run refusals counted: %v, want 3 (%v)", got, d)
		}
		if got := d[`caddy_ahp_rate_limited_total{scope="ip"}`]; got != 0 {
			t.Errorf("real refusals counted in a dry run: %v", got)
		}
		if !strings.Contains(s.logs.String(), "rate limit would refuse (dry run)") {
			t.Errorf("no dry-run log line:\n%s", s.logs.String())
		}
	})
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
}
