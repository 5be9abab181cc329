package caddymodule

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// Two ahp blocks in one site pass through Caddy's adapter, but only the
// first is ever heard: it answers the manifest and the gateway, and the
// second's manifest fields are dropped without a word. `caddy validate`
// refuses them, naming the fix; one ahp per site, per handle block or per
// server is fine.
func TestSecondAHPInOneSiteRefused(t *testing.T) {
	block := func(name string) string {
		return "ahp {\n\t\tname " + name + "\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t}"
	}
	const want = "a second ahp block in the same site"
	for name, c := range map[string]struct {
		cfg     string
		refused bool
	}{
		"two in one site": {"example.localhost {\n\t" + block("A") + "\n\t" + block("B") + "\n\trespond hi\n}\n", true},
		"a snippet and a block of its own": {"(agents) {\n\t" + block("A") + "\n}\n" +
			"example.localhost {\n\timport agents\n\t" + block("B") + "\n\trespond hi\n}\n", true},
		"two behind matchers": {"a.localhost, b.localhost {\n\t@a host a.localhost\n\t@b host b.localhost\n\tahp @a {\n\t\tname A\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t}\n" +
			"\tahp @b {\n\t\tname B\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t}\n\trespond hi\n}\n", true},
		"two in one handle block": {":8080 {\n\thandle {\n\t\t" + block("A") + "\n\t\t" + block("B") + "\n\t\trespond hi\n\t}\n}\n", true},
		// A lone site without a host (:port) has no subroute of its own:
		// Caddy puts its routes in the server's own list (see below).
		"two in a lone :port site": {":8080 {\n\t" + block("A") + "\n\t" + block("B") + "\n\trespond hi\n}\n", true},
		"a snippet and a block of its own in a lone :port site": {"(agents) {\n\t" + block("A") + "\n}\n" +
			":8080 {\n\timport agents\n\t" + block("B") + "\n\trespond hi\n}\n", true},
		"two behind matchers in a lone :port site": {":8080 {\n\t@a path /a/*\n\t@b path /b/*\n\tahp @a {\n\t\tname A\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t}\n" +
			"\tahp @b {\n\t\tname B\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t}\n\trespond hi\n}\n", true},
		"one in a lone :port site": {":8080 {\n\t" + block("A") + "\n\trespond hi\n}\n", false},
		"one per site": {"a.localhost {\n\t" + block("A") + "\n\trespond hi\n}\n" +
			"b.localhost {\n\t" + block("B") + "\n\trespond hi\n}\n", false},
		"one per server": {":8080 {\n\t" + block("A") + "\n\trespond hi\n}\n" +
			":8081 {\n\t" + block("B") + "\n\trespond hi\n}\n", false},
		"one per handle block": {":8080 {\n\t@a host a.localhost\n\thandle @a {\n\t\t" + block("A") + "\n\t\trespond hi\n\t}\n" +
			"\thandle {\n\t\t" + block("B") + "\n\t\trespond hi\n\t}\n}\n", false},
	} {
		t.Run(name, func(t *testing.T) {
			err := validate(t, c.cfg)
			switch {
			case c.refused && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "merge the two into one ahp block")):
				t.Errorf("validate: %v; want an error saying %q and how to fix it", err, want)
			case !c.refused && err != nil:
				t.Errorf("validate: %v; want it valid", err)
			}
		})
	}
	// A server's own route list (a hand-written JSON config, one route per
	// host) may hold one ahp per route: each host hears its own.
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[
 {"match":[{"host":["a.localhost"]}],"handle":[{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"A"}},{"handler":"static_response","body":"a"}],"terminal":true},
 {"match":[{"host":["b.localhost"]}],"handle":[{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"B"}},{"handler":"static_response","body":"b"}],"terminal":true}
]}}}}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Errorf("JSON, one route per host with its own ahp: %v; want it valid", err)
	}
	// Two in one route of a server's own list both run on every request
	// that route takes, whatever the config's source.
	var two caddy.Config
	if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[
 {"match":[{"host":["a.localhost"]}],"handle":[{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"A"}},{"handler":"static_response","body":"a"}],"terminal":true},
 {"match":[{"host":["b.localhost"]}],"handle":[{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"B"}},{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"C"}},{"handler":"static_response","body":"b"}],"terminal":true}
]}}}}}`), &two); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&two); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("JSON, two ahp in one route: %v; want an error saying %q", err, want)
	}
	// A refused config leaves nothing behind: the same site, alone, loads.
	if err := validate(t, ":8080 {\n\t"+block("A")+"\n\trespond hi\n}\n"); err != nil {
		t.Fatalf("one ahp after a refused config: %v", err)
	}
}

// Why a lone :port site needs its own check: Caddy adapts it without a
// subroute, both ahp handlers in one route of the server's own list.
func TestLonePortSiteAdaptsIntoServerRoutes(t *testing.T) {
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8080 {\n\tahp {\n\t\tname A\n\t}\n\tahp {\n\t\tname B\n\t}\n\trespond hi\n}\n"), nil)
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
	routes := c.Apps.HTTP.Servers["srv0"].Routes
	if len(routes) != 1 || len(routes[0].Handle) != 3 || routes[0].Handle[0].Handler != "ahp" || routes[0].Handle[1].Handler != "ahp" {
		t.Fatalf("adapted: %s; want both ahp handlers in the server's one route", out)
	}
}

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
