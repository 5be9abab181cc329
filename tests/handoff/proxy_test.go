package handoff_test

import (
	"encoding/json"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// Behind a TLS-terminating proxy, discovery advertises https endpoints on
// the public host (X-Forwarded-Proto, X-Forwarded-Host) when the proxy is
// one of the server's trusted_proxies (Caddy decides, as it does for
// {client_ip}); a client's own headers, from a peer the server does not
// trust, change nothing.
func TestDiscoveryBehindTrustedProxy(t *testing.T) {
	for _, c := range []struct {
		name, trusted, want string
	}{
		{"the peer trusted", "127.0.0.1/32", "https://public.example.com/"},
		{"the peer not trusted", "192.0.2.0/24", "http://api.localhost/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := caddyproc.StartFull(t, `{
	admin localhost:{{ADMIN}}
	auto_https off
	persist_config off
	grace_period 1s
	servers {
		trusted_proxies static `+c.trusted+`
		trusted_proxies_strict
	}
}

http://api.localhost:{{PORT}} {
	agent_handoff {
		provider "Test FAQ" https://docs.test/agents
	}
	respond 404
}
`)
			r := s.Get("/.well-known/agent-access", "Host", "api.localhost", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "public.example.com")
			var doc struct {
				Sandbox struct {
					Challenge string `json:"challenge_endpoint"`
					Create    string `json:"create_endpoint"`
				} `json:"sandbox"`
			}
			if err := json.Unmarshal(r.Bytes, &doc); err != nil {
				t.Fatalf("%d %s", r.StatusCode, r.Bytes)
			}
			if doc.Sandbox.Create != c.want+"v1/sandboxes" || doc.Sandbox.Challenge != c.want+"v1/sandboxes/challenge" {
				t.Errorf("endpoints %s, %s; want %s…", doc.Sandbox.Challenge, doc.Sandbox.Create, c.want)
			}
		})
	}
}
