package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// VerifiedAgentHeader tells the site's handlers and concierge which agent
// a request proved to be (a Web Bot Auth key directory's origin). The
// plugin deletes it from every request before deciding it, so it can be
// trusted behind the plugin.
const VerifiedAgentHeader = "X-Ahp-Verified-Agent"

// VerifiedAgentsConfig configures Web Bot Auth verification
// (`verified_agents { ... }`).
type VerifiedAgentsConfig struct{}

func (h *Handler) parseVerifiedAgents(d *caddyfile.Dispenser) error {
	return d.Errf("ahp verified_agents: not available yet")
}

// provisionVerified returns the verification step of ServeHTTP, nil when
// off.
func (h *Handler) provisionVerified(ctx caddy.Context, m *manifest.Manifest) (func(*http.Request), error) {
	return nil, nil
}

// verifiedAgent is the gateway's view of the verified agent: the header
// the verification step set.
func verifiedAgent(r *http.Request) string { return r.Header.Get(VerifiedAgentHeader) }
