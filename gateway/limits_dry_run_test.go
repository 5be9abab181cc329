package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// mode log (dry run) refuses nothing on account of rate limits, but a
// call over its client limit must still be held to its session's
// max_turns (spec §6.5), which is not a rate limit. The gate used to skip
// the session's check and count when the client window "refused", and
// the dry run then forwarded the call with no session verdict at all.
func TestDryRunHoldsSessionTurnsOverClientLimit(t *testing.T) {
	g := limitedGateway(t, ratelimit.Config{Static: some, Authenticated: some, Action: some,
		Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute}, DryRun: true}, Config{MaxTurns: 2})
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
	store := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	perAgent := limiter.Limit{Events: 10, Window: time.Minute}
	g := limitedGateway(t, ratelimit.Config{Store: store, Static: some, Authenticated: some, Action: some,
		Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute}, PerAgent: perAgent, DryRun: true}, Config{})
	p := g.limits
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
