package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The served manifest's rate_limits and rate_limit are what the rate_limit
// block enforces, never a manifest file's own: with rate limiting off (or
// every declared tier off) they are left out rather than promising limits
// nothing enforces, and `caddy validate`/`caddy ahp manifest` warn that the
// file's were not served.
func TestManifestRateLimitsAreWhatIsEnforced(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(file, []byte(`{"name":"Shop","content_signals":{"ai_input":true},
"rate_limits":{"unauthenticated":{"requests":"5/minute"}},"rate_limit":"5/minute"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "plain.json")
	if err := os.WriteFile(plain, []byte(`{"name":"Shop","content_signals":{"ai_input":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, manifest, rateLimit string
		wantRequests              string // "": no rate_limits, no rate_limit
		wantWarning               string // "": none
	}{
		{"off", file, "rate_limit off", "", "rate_limit is off"},
		{"every declared tier off", file, "rate_limit {\n\t\t\tstatic off\n\t\t}", "", "rate_limit block enforces"},
		{"on, another limit", file, "rate_limit {\n\t\t\tstatic 100/minute\n\t\t}", "100/minute", "rate_limit block enforces"},
		{"on, the same limit", file, "rate_limit {\n\t\t\tstatic 5/minute\n\t\t}", "5/minute", ""},
		{"off, none in the file", plain, "rate_limit off", "", ""},
		{"on, none in the file", plain, "rate_limit {\n\t\t\tstatic 100/minute\n\t\t}", "100/minute", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeCaddyfile(t, "example.com {\n\tahp {\n\t\tmanifest "+c.manifest+"\n\t\t"+c.rateLimit+"\n\t}\n\trespond hi\n}\n")
			out, errOut, err := runAHP(t, "manifest", "--config", path)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			var m struct {
				RateLimits *struct {
					Unauthenticated *struct {
						Requests string `json:"requests"`
					} `json:"unauthenticated"`
				} `json:"rate_limits"`
				RateLimit *string `json:"rate_limit"`
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			switch {
			case c.wantRequests == "" && (m.RateLimits != nil || m.RateLimit != nil):
				t.Errorf("served manifest declares limits nothing enforces:\n%s", out)
			case c.wantRequests != "" && (m.RateLimits == nil || m.RateLimits.Unauthenticated == nil ||
				m.RateLimits.Unauthenticated.Requests != c.wantRequests || m.RateLimit == nil || *m.RateLimit != c.wantRequests):
				t.Errorf("served manifest: want rate_limits.unauthenticated.requests and rate_limit %q:\n%s", c.wantRequests, out)
			}
			warned := strings.Contains(errOut, "WARN") && strings.Contains(errOut, "rate_limits")
			switch {
			case c.wantWarning == "" && warned:
				t.Errorf("want no warning, got:\n%s", errOut)
			case c.wantWarning != "" && (!warned || !strings.Contains(errOut, c.wantWarning) || !strings.Contains(errOut, c.manifest)):
				t.Errorf("want a warning saying %q and naming %s, got:\n%s", c.wantWarning, c.manifest, errOut)
			}
		})
	}
}
