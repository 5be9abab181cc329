package caddymodule

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The directives stand in the documented order: the site's rewrites and
// auth, then ahp, then agent_handoff, then request_header, encode and the
// handlers that respond, whatever order the Caddyfile lists them in. The
// order does not hang on which of module.go's and handoff.go's init runs
// first: each registers against its own standard neighbour.
func TestDirectiveOrderAHPThenAgentHandoff(t *testing.T) {
	cfg := `:8080 {
	reverse_proxy 127.0.0.1:9
	encode gzip
	request_header X-A b
	agent_handoff {
		provider "Shop"
	}
	ahp {
		content_signals {
			ai_input true
		}
	}
	basic_auth /admin/* {
		alice $2a$14$4Sc.MXC98ZZdAv5mIm9zZOa6Jt.5NGbOl/m9g5yQ1tpj9SHIdZHXW
	}
	forward_auth /sso/* 127.0.0.1:9 {
		uri /check
	}
	rewrite /old /new
}
`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Handler string `json:"handler"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	// Routes without matchers are merged into one: every handler, in order
	// (forward_auth is a reverse_proxy).
	var got []string
	for _, r := range c.Apps.HTTP.Servers["srv0"].Routes {
		for _, h := range r.Handle {
			got = append(got, h.Handler)
		}
	}
	want := []string{"rewrite", "authentication", "reverse_proxy", "ahp", "agent_handoff", "headers", "encode", "reverse_proxy"}
	if !slices.Equal(got, want) {
		t.Fatalf("handlers in order %v, want %v", got, want)
	}
}
