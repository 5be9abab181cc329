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

// limitedGateway is a MODE2 gateway (bearer authentication declared) whose
// limits are rc, on a fresh memory store unless rc has one, with every client at one
// address unless rc names a key; cfg adds to the gateway's config.
func limitedGateway(t *testing.T, rc ratelimit.Config, cfg Config) *Gateway {
	t.Helper()
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
	if rc.Store == nil {
		store := limiter.NewMemory(limiter.MemoryOptions{})
		t.Cleanup(func() { store.Close() })
		rc.Store = store
	}
	rc.Zone = "test"
	if rc.ClientKey == nil {
		rc.ClientKey = func(*http.Request) string { return "192.0.2.7" }
	}
	cfg.Manifest, cfg.Rules, cfg.Limits = m, converse.NewRules(m, converse.Options{}), ratelimit.New(rc)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// some is a limit that no test here reaches.
var some = limiter.Limit{Events: 100, Window: time.Minute}

// tierOffGateway is a gateway whose rate_limit block turns the
// unauthenticated tier off (`unauthenticated off`), with max_turns 2 and
// per_agent 1/minute: the other limits stay on.
func tierOffGateway(t *testing.T) *Gateway {
	return tierOffGatewayBudget(t, 0)
}

func tierOffGatewayBudget(t *testing.T, budget int64) *Gateway {
	t.Helper()
	return limitedGateway(t, ratelimit.Config{Static: some, Authenticated: some, Action: some,
		PerAgent: limiter.Limit{Events: 1, Window: time.Minute}, TokenBudget: budget}, Config{MaxTurns: 2})
}

// `unauthenticated off` should turn off that tier's request limit only;
// the session's max_turns (spec §6.5) must still be enforced.
func TestSessionTurnsWithUnauthenticatedTierOff(t *testing.T) {
	g := tierOffGateway(t)
	next := answering(`{"status":"success","session_id":"s1","response":{"answer":"x"}}`)
	for turn := 1; turn <= 3; turn++ {
		w := call(g, `{"capability":"site_info","query":"q","session_id":"s1"}`, next)
		if turn <= 2 && w.Code != http.StatusOK {
			t.Fatalf("turn %d: %d %s", turn, w.Code, w.Body)
		}
		if turn == 3 && w.Code != http.StatusBadRequest {
			t.Fatalf("turn 3 of a session with max_turns 2: got %d %s, want 400 invalid_request", w.Code, w.Body)
		}
	}
}

// ... and per_agent must still count the agent's calls.
func TestPerAgentWithUnauthenticatedTierOff(t *testing.T) {
	g := tierOffGateway(t)
	next := answering(`{"status":"success","response":{"answer":"x"}}`)
	body := `{"capability":"site_info","query":"q","context":{"requesting_agent":"bot/1.0"}}`
	if w := call(g, body, next); w.Code != http.StatusOK {
		t.Fatalf("first call: %d %s", w.Code, w.Body)
	}
	if w := call(g, body, next); w.Code != http.StatusTooManyRequests {
		t.Fatalf("second call of agent bot/1.0 under per_agent 1/minute: got %d %s, want 429 scope agent", w.Code, w.Body)
	}
}

// ... and the session's token budget (which the manifest still declares
// for the unauthenticated tier: rate_limits.unauthenticated.token_budget).
func TestTokenBudgetWithUnauthenticatedTierOff(t *testing.T) {
	g := tierOffGatewayBudget(t, 100)
	next := answering(`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"tokens_used":150}}`)
	if w := call(g, `{"capability":"site_info","query":"q","session_id":"s1"}`, next); w.Code != http.StatusOK {
		t.Fatalf("first turn: %d %s", w.Code, w.Body)
	}
	if w := call(g, `{"capability":"site_info","query":"q","session_id":"s1"}`, next); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a session that spent 150 of its 100 tokens: got %d %s, want 429 session_tokens", w.Code, w.Body)
	}
}
