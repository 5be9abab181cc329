package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// TestAuthenticatedOffTurnsOffItsLimit: `authenticated off` turns off that
// request limit only: calls with verified credentials are not moved onto
// the (lower) unauthenticated limit.
func TestAuthenticatedOffTurnsOffItsLimit(t *testing.T) {
	keys, err := auth.NewKeys("a-key-of-at-least-16-chars")
	if err != nil {
		t.Fatal(err)
	}
	// authenticated off (no limit), unauthenticated 1/minute
	g := limitedGateway(t, ratelimit.Config{Static: some, Action: some,
		Unauthenticated: limiter.Limit{Events: 1, Window: time.Minute}}, Config{Keys: keys})
	next := answering(`{"status":"success","response":{"answer":"x"}}`)
	for i := 1; i <= 3; i++ {
		w := call(g, `{"capability":"site_info","query":"q"}`, next, "Authorization", "Bearer a-key-of-at-least-16-chars")
		if w.Code != http.StatusOK {
			t.Fatalf("authenticated call %d with `authenticated off`: %d %s (X-RateLimit-Limit %q), want 200: the tier is off",
				i, w.Code, w.Body, w.Header().Get("X-RateLimit-Limit"))
		}
	}
}
