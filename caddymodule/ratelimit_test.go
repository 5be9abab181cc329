package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestManifestAuthenticatedTier: rate_limits.authenticated is declared
// exactly where a call can be charged it, that is where the gateway
// verifies credentials (keys loaded, authentication not none), and a call
// with the site's key is then held to the declared limit. Elsewhere the
// tier is left out, and a call that sends a key gets the declared
// unauthenticated limit: the manifest promises nothing behaviour breaks.
func TestManifestAuthenticatedTier(t *testing.T) {
	const key = "partner-key-0123456789"
	for _, tc := range []struct {
		name, opts string
		declared   bool
	}{
		{"authentication none", "authentication none", false},
		{"bearer without keys", "authentication bearer", false},
		{"bearer with a key", "authentication bearer\nauth {\nkey " + key + "\n}", true},
		{"api_key with a key", "authentication api_key\nauth {\nkey " + key + "\n}", true},
		// authentication from the base manifest file, keys in the block
		{"bearer from the manifest file, with a key", "manifest {file}\nauth {\nkey " + key + "\n}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "agent.json")
			if err := os.WriteFile(file, []byte(`{"authentication":"bearer"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.opts = strings.ReplaceAll(tc.opts, "{file}", file)
			h, err := provisionCaddyfile(t, `ahp {
				name Shop
				converse /agent/converse
				`+tc.opts+`
				content_signals {
					ai_input true
				}
				capability ask {
					mode MODE2
					description Ask
					response_types text/answer
				}
			}`)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := caddyRequest(http.MethodGet, "/.well-known/agent.json")
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, answerOK); err != nil {
				t.Fatal(err)
			}
			var m struct {
				RateLimits map[string]struct {
					Requests    string `json:"requests"`
					TokenBudget string `json:"token_budget"`
				} `json:"rate_limits"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			un, ok := m.RateLimits["unauthenticated"]
			if !ok || un.Requests != "30/minute" || un.TokenBudget != "10000/session" {
				t.Fatalf("rate_limits.unauthenticated = %+v (declared %v), want 30/minute, 10000/session", un, ok)
			}
			authed, declared := m.RateLimits["authenticated"]
			if declared != tc.declared {
				t.Fatalf("rate_limits.authenticated declared = %v (%+v), want %v", declared, authed, tc.declared)
			}
			if declared && (authed.Requests != "120/minute" || authed.TokenBudget != "10000/session") {
				t.Errorf("rate_limits.authenticated = %+v, want 120/minute, 10000/session", authed)
			}

			// A call that sends the key is held to what the manifest
			// promises it.
			want := "30"
			if declared {
				want = "120"
			}
			r, _ = caddyRequest(http.MethodPost, "/agent/converse")
			r.Body = io.NopCloser(strings.NewReader(`{"capability":"ask","query":"hi"}`))
			r.Header.Set("Content-Type", "application/json")
			if strings.Contains(tc.opts, "api_key") {
				r.Header.Set("X-AHP-Key", key)
			} else {
				r.Header.Set("Authorization", "Bearer "+key)
			}
			w = httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, answerOK); err != nil {
				t.Fatal(err)
			}
			if got := w.Header().Get("X-RateLimit-Limit"); w.Code != http.StatusOK || got != want {
				t.Errorf("a call with the key: %d, X-RateLimit-Limit %q; the manifest promises %s", w.Code, got, want)
			}
		})
	}
}

// answerOK is a concierge that answers every call.
var answerOK = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"ok"},"meta":{"tokens_used":1,"capability_used":"ask","mode":"MODE2","cached":false}}`)
	return nil
})

// TestRateLimitOverlay: the overlay declares the authenticated tier only
// where credentials are verified, and a MODE1-only site only its static
// limit.
func TestRateLimitOverlay(t *testing.T) {
	p, err := (&RateLimitConfig{}).limits()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		converse, verifies bool
		unauth, authed     string
	}{
		{false, false, "120/minute", ""},
		{false, true, "120/minute", ""},
		{true, false, "30/minute", ""},
		{true, true, "30/minute", "120/minute"},
	} {
		m := p.overlay(tc.converse, tc.verifies)
		rl := m.RateLimits
		if rl == nil || rl.Unauthenticated == nil || rl.Unauthenticated.Requests != tc.unauth || m.RateLimit != tc.unauth {
			t.Errorf("converse %v, verifies keys %v: %+v, want unauthenticated %s", tc.converse, tc.verifies, rl, tc.unauth)
			continue
		}
		got := ""
		if rl.Authenticated != nil {
			got = rl.Authenticated.Requests
		}
		if got != tc.authed {
			t.Errorf("converse %v, verifies keys %v: authenticated %q, want %q", tc.converse, tc.verifies, got, tc.authed)
		}
	}
}
