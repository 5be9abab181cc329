package tests

import (
	"encoding/json"
	"fmt"
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

// Per-site metrics: one Caddy serving two sites shows each site's numbers
// under its own site label (the manifest's name), and each site's limits
// under its zone as well, so neither site's traffic shows up as the other's.
func TestMetricsPerSite(t *testing.T) {
	site := func(host, name, limits string) string {
		return fmt.Sprintf(`
http://%s:{{PORT}} {
	ahp {
		name %q
		content_signals {
			ai_train false
			ai_input true
		}
		rate_limit {
			%s
		}
	}
	respond "legacy site" 200
}
`, host, name, limits)
	}
	s := startCaddy(t, site("a.test", "Site A", "static 5/minute")+site("b.test", "Site B", "static 1/minute\n\t\t\tzone b-zone"))
	before := s.scrapeRaw()
	for range 3 {
		if r := s.get("/.well-known/agent.json", "Host", "a.test"); r.StatusCode != 200 {
			t.Fatalf("site A's manifest: %d %s", r.StatusCode, r.body)
		}
	}
	if r := s.get("/.well-known/agent.json", "Host", "b.test"); r.StatusCode != 200 {
		t.Fatalf("site B's manifest: %d %s", r.StatusCode, r.body)
	}
	if r := s.get("/.well-known/agent.json", "Host", "b.test"); r.StatusCode != 429 {
		t.Fatalf("site B's second manifest within 1/minute: %d, want 429", r.StatusCode)
	}
	d := metricDeltas(before, s.scrapeRaw())
	want := map[string]float64{
		`caddy_ahp_manifest_served_total{site="Site A"}`:                                   3,
		`caddy_ahp_manifest_served_total{site="Site B"}`:                                   1,
		`caddy_ahp_limiter_decision_seconds_count{site="Site A",zone="Site A"}`:            3,
		`caddy_ahp_limiter_decision_seconds_count{site="Site B",zone="b-zone"}`:            2,
		`caddy_ahp_rate_limited_total{dry="false",scope="ip",site="Site B",zone="b-zone"}`: 1,
	}
	for series, n := range want {
		if d[series] != n {
			t.Errorf("%s grew by %v, want %v", series, d[series], n)
		}
	}
	for series, n := range d {
		if strings.HasPrefix(series, "caddy_ahp_rate_limited_total") && strings.Contains(series, `site="Site A"`) && n != 0 {
			t.Errorf("%s grew by %v: site A refused nothing", series, n)
		}
		if strings.HasPrefix(series, "caddy_ahp_") && !strings.Contains(series, `site="`) && n != 0 {
			t.Errorf("%s has no site label", series)
		}
	}
}
