package caddymodule

import (
	"strings"
	"testing"
)

// With `rate_limit off` there is no store, so nothing keeps sessions: a
// session block or a token budget would load and silently not be
// enforced. Both are refused at load, naming the directive and the fix;
// with only some tiers off (a store exists) they load and are enforced
// (gateway's TestSessionTurnsWithUnauthenticatedTierOff).
func TestSessionsAndBudgetRefusedWithRateLimitOff(t *testing.T) {
	shop := func(opts string) string {
		return `ahp {
			name Shop
			content_signals {
				ai_input true
			}
			converse /agent/converse
			capability ask {
				mode MODE2
				description Ask
			}
			` + opts + `
		}`
	}
	for _, c := range []struct{ opts, want string }{
		{"rate_limit off\nsession {\nmax_turns 3\n}", "ahp session: rate_limit is off, so no store keeps sessions and max_turns and idle are not enforced; replace `rate_limit off` with a rate_limit block"},
		{"rate_limit off\nsession {\nidle 5m\n}", "ahp session: rate_limit is off"},
	} {
		if _, err := provisionCaddyfile(t, shop(c.opts)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.opts, err, c.want)
		}
	}
	for _, opts := range []string{
		"rate_limit off",
		"rate_limit {\nunauthenticated off\n}\nsession {\nmax_turns 3\n}",
	} {
		if _, err := provisionCaddyfile(t, shop(opts)); err != nil {
			t.Errorf("%q refused: %v", opts, err)
		}
	}
	_, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"off":true,"token_budget":"100/session"}}`)
	if want := `ahp rate_limit token_budget "100/session": rate limiting is off, so no store keeps sessions and nothing enforces a budget; remove ` + "`off`"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("rate_limit {off, token_budget}: got %v, want an error containing %q", err, want)
	}
	if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"off":true,"token_budget":"off"}}`); err != nil {
		t.Errorf("rate_limit {off, token_budget off} refused: %v", err)
	}
}

// TestLimitsBesideOffRefused: a JSON rate_limit with "off" and a limit
// beside it loaded and enforced nothing; it names the limit and the fix.
func TestLimitsBesideOffRefused(t *testing.T) {
	for _, c := range []struct{ rl, want string }{
		{`"off":true,"per_agent":"5/minute"`, `ahp rate_limit per_agent "5/minute": rate limiting is off`},
		{`"off":true,"static":"1/minute"`, `ahp rate_limit static "1/minute": rate limiting is off`},
	} {
		if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{`+c.rl+`}}`); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rate_limit {%s}: %v, want %q", c.rl, err, c.want)
		}
	}
	if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"off":true,"static":"off"}}`); err != nil {
		t.Errorf("off with a tier also off: %v", err)
	}
}
