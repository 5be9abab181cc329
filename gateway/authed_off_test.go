package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// TestAuthenticatedOffTurnsOffItsLimit: `authenticated off` turns off that
// request limit only: calls with verified credentials are not moved onto
// the (lower) unauthenticated limit.
func TestAuthenticatedOffTurnsOffItsLimit(t *testing.T) {
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
	keys, err := auth.NewKeys("a-key-of-at-least-16-chars")
	if err != nil {
		t.Fatal(err)
	}
	store := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	lim := limiter.Limit{Events: 100, Window: time.Minute}
	g, err := New(Config{
		Manifest: m, Rules: converse.NewRules(m, converse.Options{}), Keys: keys,
		// authenticated off (zero Limit), unauthenticated 1/minute
		Limits: ratelimit.New(ratelimit.Config{Store: store, Zone: "test", Static: lim, Action: lim,
			Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute},
			ClientKey:       func(*http.Request) string { return "192.0.2.7" }}),
	})
	if err != nil {
		t.Fatal(err)
	}
	next := answering(`{"status":"success","response":{"answer":"x"}}`)
	for i := 1; i <= 3; i++ {
		w := call(g, `{"capability":"site_info","query":"q"}`, next, "Authorization", "Bearer a-key-of-at-least-16-chars")
		if w.Code != http.StatusOK {
			t.Fatalf("authenticated call %d with `authenticated off`: %d %s (X-RateLimit-Limit %q), want 200: the tier is off",
				i, w.Code, w.Body, w.Header().Get("X-RateLimit-Limit"))
		}
	}
}
