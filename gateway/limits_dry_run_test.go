package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// mode log (dry run) refuses nothing on account of rate limits, but a
// call over its client limit must still be held to its session's
// max_turns (spec §6.5), which is not a rate limit. The gate used to skip
// the session's check and count when the client window "refused", and
// the dry run then forwarded the call with no session verdict at all.
func TestDryRunHoldsSessionTurnsOverClientLimit(t *testing.T) {
	yes := true
	m, _, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		Endpoints:      &manifest.Endpoints{Converse: "/agent/converse"},
		Authentication: manifest.AuthBearer,
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Capabilities:   []manifest.Capability{{Name: "site_info", Mode: "MODE2", Description: "General information"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	store := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	lim := limiter.Limit{Events: 100, Window: time.Minute}
	g, err := New(Config{
		Manifest: m, Rules: converse.NewRules(m, converse.Options{}), MaxTurns: 2,
		Limits: ratelimit.New(ratelimit.Config{Store: store, Zone: "test", Static: lim, Authenticated: lim, Action: lim,
			Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute}, DryRun: true,
			ClientKey: func(*http.Request) string { return "192.0.2.7" }}),
	})
	if err != nil {
		t.Fatal(err)
	}
	next := answering(`{"status":"success","session_id":"s1","response":{"answer":"x"}}`)
	for turn := 1; turn <= 4; turn++ {
		w := call(g, `{"capability":"site_info","query":"q","session_id":"s1"}`, next)
		if turn <= 2 && w.Code != http.StatusOK {
			t.Fatalf("turn %d: %d %s", turn, w.Code, w.Body)
		}
		if turn > 2 && w.Code != http.StatusBadRequest {
			t.Fatalf("turn %d of a session with max_turns 2 (dry run): got %d %s, want 400 invalid_request", turn, w.Code, w.Body)
		}
	}
}

// A dry run also counts per_agent for the calls over the client's limit
// (they all reach the concierge): with the gate, they were never counted,
// so the log never showed what per_agent would refuse.
func TestDryRunCountsPerAgentOverClientLimit(t *testing.T) {
	yes := true
	m, _, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		Endpoints:      &manifest.Endpoints{Converse: "/agent/converse"},
		Authentication: manifest.AuthBearer,
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Capabilities:   []manifest.Capability{{Name: "site_info", Mode: "MODE2", Description: "General information"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	store := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	lim := limiter.Limit{Events: 100, Window: time.Minute}
	perAgent := limiter.Limit{Events: 10, Window: time.Minute}
	p := ratelimit.New(ratelimit.Config{Store: store, Zone: "test", Static: lim, Authenticated: lim, Action: lim,
		Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute}, PerAgent: perAgent, DryRun: true,
		ClientKey: func(*http.Request) string { return "192.0.2.7" }})
	g, err := New(Config{Manifest: m, Rules: converse.NewRules(m, converse.Options{}), Limits: p})
	if err != nil {
		t.Fatal(err)
	}
	next := answering(`{"status":"success","response":{"answer":"x"}}`)
	for i := 1; i <= 4; i++ {
		if w := call(g, `{"capability":"site_info","query":"q","context":{"requesting_agent":"bot/1.0"}}`, next); w.Code != http.StatusOK {
			t.Fatalf("call %d (dry run): %d %s", i, w.Code, w.Body)
		}
	}
	b := limiter.Batch{Windows: []limiter.WindowCheck{{Key: p.AgentKey("name:bot/1.0"), Limit: perAgent, Shared: true}}}
	if err := store.Do(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	// 4 calls, then this check: 5 of 10 spent.
	if got := b.Windows[0].Decision.Remaining; got != 5 {
		t.Errorf("per_agent after 4 dry-run calls (3 over the client's 1/minute): %d left of 10, want 5", got)
	}
}
