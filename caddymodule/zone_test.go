package caddymodule

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestZoneIsAName: a zone an operator names is a name; the README's
// `zone <name>` pasted as it stands, or a brace that would move the Redis
// Cluster hash tag, fails validation in each directive that takes one.
func TestZoneIsAName(t *testing.T) {
	for _, zone := range []string{"<name>", "shop}x", "a b", strings.Repeat("z", 65)} {
		if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"zone":"`+zone+`"}}`); err == nil || !strings.Contains(err.Error(), "ahp rate_limit zone") {
			t.Errorf("ahp zone %q: %v, want refused", zone, err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		a := AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Zone: zone}
		err := a.Provision(ctx)
		if err == nil {
			err = a.Validate()
		}
		a.Cleanup()
		if err == nil || !strings.Contains(err.Error(), "agent_handoff zone") {
			t.Errorf("agent_handoff zone %q: %v, want refused", zone, err)
		}
		hp := HandshakePrompt{Zone: zone}
		err = hp.Provision(ctx)
		if err == nil {
			err = hp.Validate()
		}
		_ = hp.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), "handshake_prompt zone") {
			t.Errorf("handshake_prompt zone %q: %v, want refused", zone, err)
		}
	}
	if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"zone":"shop-eu.2_b"}}`); err != nil {
		t.Errorf("a good zone: %v", err)
	}
}

// TestHandoffProviderDocsIsAURL: the provider's docs link is absolute, as
// every other URL option is; a bare host would reach agents as a path.
func TestHandoffProviderDocsIsAURL(t *testing.T) {
	for _, docs := range []string{"docs.example.com", "/agents", "ftp://docs.example.com/"} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		a := AgentHandoff{Provider: &HandoffProvider{Name: "X", Docs: docs}}
		err := a.Provision(ctx)
		if err == nil {
			err = a.Validate()
		}
		a.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), "must be absolute") {
			t.Errorf("agent_handoff provider docs %q: %v, want refused", docs, err)
		}
	}
}
