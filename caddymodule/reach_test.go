package caddymodule

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

const reachAHP = `ahp {
		name "S"
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability q {
			mode MODE2
			description x
			response_types text/answer
		}
	}`

const reachHandoff = `agent_handoff {
		provider "Example FAQ" https://docs.example.com/agents
	}`

// A directive placed where requests for its own endpoints never reach it
// guards nothing: ahp in a catch-all handle beside the concierge's own
// handle lets every converse call reach the concierge around the gateway;
// agent_handoff there lets creation reach the backend with no proof of
// work. `caddy validate` refuses those, naming the directive, the
// endpoint and the fix; every placement where the endpoints do reach the
// directive keeps loading.
func TestDirectiveTheEndpointsNeverReachRefused(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  string
		want string // "" for valid; else a part of the error
	}{
		"ahp in the catch-all handle, the concierge in its own handle": {":8080 {\n\t@concierge path /agent/converse /agent/converse/status/*\n\thandle @concierge {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n" +
			"\thandle {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n",
			"POST /agent/converse (the converse endpoint) never reaches this ahp block: an earlier handle block"},
		"ahp in handle /blog/*": {":8080 {\n\thandle /blog/* {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n",
			"GET /.well-known/agent.json (the manifest) never reaches this ahp block: its own matcher, or that of the handle or route block holding it, does not match it"},
		"ahp in handle_path /blog/*": {"example.localhost {\n\thandle_path /blog/* {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n",
			"GET /.well-known/agent.json (the manifest) never reaches"},
		"ahp after reverse_proxy in a route block": {"example.localhost {\n\troute {\n\t\treverse_proxy 127.0.0.1:9\n\t\t" + reachAHP + "\n\t}\n}\n",
			"reverse_proxy, before it in the same block, answers it first"},
		"ahp after a respond in a route block": {":8080 {\n\troute {\n\t\trespond /agent/* hi\n\t\t" + reachAHP + "\n\t}\n}\n",
			"POST /agent/converse (the converse endpoint) never reaches this ahp block: a route before it answers it first (static_response)"},
		"ahp with its mcp door in the catch-all handle, the door's path in another": {":8080 {\n\thandle /mcp {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\tahp {\n\t\t\tname S\n\t\t\tcontent_signals {\n\t\t\t\tai_input true\n\t\t\t}\n\t\t\tmcp /mcp\n\t\t}\n\t\trespond hi\n\t}\n}\n",
			"POST /mcp (the MCP endpoint) never reaches this ahp block"},
		"agent_handoff in the catch-all handle, the API in handle /v1/*": {":8080 {\n\thandle /v1/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\t" + reachHandoff + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n",
			"agent_handoff: POST /v1/sandboxes (sandbox creation) never reaches this agent_handoff block"},
		// Discovery and the exchange are the edge's too (TestHandoffEveryEndpointMustReach).
		"agent_handoff and the API in handle /v1/*": {":8080 {\n\thandle /v1/* {\n\t\t" + reachHandoff + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n",
			"(the exchange; exchange off turns it off on a site that serves none) never reaches this agent_handoff block: its own matcher, or that of the handle or route block holding it, does not match it"},
		"agent_handoff preview in handle /app/*": {":8080 {\n\thandle /app/* {\n\t\tagent_handoff preview\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n",
			"POST /exchange/* (the exchange) never reaches"},

		// Placements that work.
		"ahp at the site level":                                 {"example.localhost {\n\t" + reachAHP + "\n\t@concierge path /agent/converse\n\thandle @concierge {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp with a matcher at the site level":                  {":8080 {\n\tahp /docs/* {\n\t\tname S\n\t\tconverse /agent/converse\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t\tcapability q {\n\t\t\tmode MODE2\n\t\t\tdescription x\n\t\t\tresponse_types text/answer\n\t\t}\n\t}\n\treverse_proxy /agent/* 127.0.0.1:9\n\treverse_proxy 127.0.0.1:9\n}\n", ""},
		"ahp and the concierge's route in one catch-all handle": {":8080 {\n\thandle /static/* {\n\t\tfile_server\n\t}\n\thandle {\n\t\t" + reachAHP + "\n\t\t@concierge path /agent/converse\n\t\thandle @concierge {\n\t\t\treverse_proxy 127.0.0.1:9\n\t\t}\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp in a handle for its host":                          {":8080 {\n\t@shop host shop.localhost\n\thandle @shop {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp behind an earlier handle on a header":              {":8080 {\n\t@api header X-Api 1\n\thandle @api {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp after forward_auth and basic_auth":                 {":8080 {\n\tforward_auth 127.0.0.1:9 {\n\t\turi /check\n\t}\n\tbasic_auth {\n\t\talice $2a$14$4Sc.MXC98ZZdAv5mIm9zZOa6Jt.5NGbOl/m9g5yQ1tpj9SHIdZHXW\n\t}\n\t" + reachAHP + "\n\treverse_proxy 127.0.0.1:9\n}\n", ""},
		"ahp after an SPA's try_files, in handle":               {":8080 {\n\ttry_files {path} /index.html\n\thandle {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp after a redirect of one path":                      {":8080 {\n\tredir /old /new\n\troute {\n\t\trespond /x hi\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp after a subroute of other paths":                   {":8080 {\n\troute {\n\t\troute /other/* {\n\t\t\trespond hi\n\t\t}\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"ahp after an excluding not matcher":                    {":8080 {\n\t@notagent not path /agent/* /.well-known/*\n\thandle @notagent {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\thandle {\n\t\t" + reachAHP + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n", ""},
		"agent_handoff at the site level":                       {":8080 {\n\t" + reachHandoff + "\n\thandle /v1/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n", ""},
		"ahp in handle_errors":                                  {":8080 {\n\thandle_errors {\n\t\t" + reachAHP + "\n\t\trespond oops\n\t}\n\trespond hi\n}\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := validate(t, c.cfg)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("validate: %v; want it valid", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "directly in the site block")):
				t.Errorf("validate: %v; want an error saying %q and the fix", err, c.want)
			}
		})
	}
}

// A JSON config builds the same routes without an adapter: a route per
// host, each with its own ahp, loads; ahp after a route that answers the
// whole host does not. The JSON's raw matchers are read without being
// changed: the config still loads as written.
func TestDirectiveTheEndpointsNeverReachJSON(t *testing.T) {
	load := func(routes string) error {
		var cfg caddy.Config
		if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[`+routes+`]}}}}}`), &cfg); err != nil {
			t.Fatal(err)
		}
		return caddy.Validate(&cfg)
	}
	ahp := func(name string) string {
		return `{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"` + name + `"}}`
	}
	if err := load(`{"match":[{"host":["a.localhost"]}],"handle":[` + ahp("A") + `,{"handler":"static_response","body":"a"}],"terminal":true},
		{"match":[{"host":["b.localhost"]}],"handle":[` + ahp("B") + `,{"handler":"static_response","body":"b"}],"terminal":true}`); err != nil {
		t.Errorf("a route per host, each with its ahp: %v; want it valid", err)
	}
	err := load(`{"match":[{"path":["/.well-known/*"]}],"handle":[{"handler":"static_response","body":"x"}]},
		{"handle":[` + ahp("A") + `,{"handler":"static_response","body":"a"}]}`)
	if err == nil || !strings.Contains(err.Error(), "GET /.well-known/agent.json (the manifest) never reaches this ahp block: a route before it answers it first (static_response)") {
		t.Errorf("ahp after a route answering /.well-known/*: %v; want refused", err)
	}
	err = load(`{"handle":[{"handler":"subroute","routes":[{"match":[{"method":["GET"],"not":[{"path":["/api/*"]}]}],"handle":[{"handler":"file_server"}]}]},` + ahp("A") + `]}`)
	if err == nil || !strings.Contains(err.Error(), "GET /.well-known/agent.json (the manifest) never reaches this ahp block: subroute, before it in the same block, answers it first") {
		t.Errorf("ahp after a subroute serving files for every GET: %v; want refused", err)
	}
	if err := load(`{"handle":[{"handler":"subroute","routes":[{"match":[{"method":["GET"],"not":[{"path":["/.well-known/*"]}]}],"handle":[{"handler":"file_server"}]}]},` + ahp("A") + `]}`); err != nil {
		t.Errorf("ahp after a subroute serving files for GETs outside /.well-known/: %v; want it valid", err)
	}
	if err := load(`{"handle":[{"handler":"subroute","routes":[{"match":[{"expression":"{http.request.uri.path}.startsWith('/x')"}],"handle":[{"handler":"static_response"}]}]},` + ahp("A") + `]}`); err != nil {
		t.Errorf("ahp after a subroute behind an expression: %v; want it valid (doubt never refuses)", err)
	}
}

// The check walks only the routes holding the handler and the earlier
// routes of each list on the way, and skips an earlier host's route
// without opening its handlers: a JSON config of thousands of hosts, each
// with its own ahp, still loads (1.6s for 3000 here, with or without the
// check, when this was written; the time is logged, not asserted).
func TestReachCheckCheapForManyHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 3000 handlers")
	}
	var b strings.Builder
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"match":[{"host":["h%d.localhost"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"H%d"}},{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9"}]}]}]}],"terminal":true}`, i, i)
	}
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[`+b.String()+`]}}}}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("3000 hosts: %v", err)
	}
	t.Logf("3000 hosts validated in %s", time.Since(start))
}

// FuzzReachRoutes: no shape of routes around an ahp handler (matchers,
// groups, terminal routes, nested subroutes, handlers that answer or
// rewrite) makes the walk panic, and ahp first in a route of no matcher at
// the top of the server is never refused, whatever follows it.
func FuzzReachRoutes(f *testing.F) {
	f.Add(uint64(0x1234), "/agent/*", "GET")
	f.Add(uint64(0xdeadbeef), "/.well-known/*", "POST")
	f.Add(uint64(42), "{path}", "")
	f.Add(uint64(7), "(", "GET")
	f.Fuzz(func(t *testing.T, shape uint64, path, method string) {
		bits := func(n uint) uint64 { v := shape & (1<<n - 1); shape >>= n; return v }
		pathJSON, _ := json.Marshal([]string{path})
		methodJSON, _ := json.Marshal([]string{method})
		matcher := func() string {
			switch bits(3) {
			case 0:
				return `"match":[{"path":` + string(pathJSON) + `}],`
			case 1:
				return `"match":[{"method":` + string(methodJSON) + `}],`
			case 2:
				return `"match":[{"not":[{"path":` + string(pathJSON) + `}]}],`
			case 3:
				return `"match":[{"path_regexp":{"pattern":` + strings.TrimSuffix(strings.TrimPrefix(string(pathJSON), "["), "]") + `}}],`
			case 4:
				return `"match":[{"host":["a.localhost"]},{"path":` + string(pathJSON) + `}],`
			}
			return ""
		}
		handler := func(inner string) string {
			switch bits(3) {
			case 0:
				return `{"handler":"static_response","body":"x"}`
			case 1:
				return `{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9"}]}`
			case 2:
				return `{"handler":"rewrite","uri":"/y"}`
			case 3:
				return `{"handler":"file_server","pass_thru":true}`
			case 4:
				return `{"handler":"subroute","routes":[` + inner + `]}`
			}
			return `{"handler":"headers"}`
		}
		route := func(handlers string) string {
			r := "{" + matcher()
			if g := bits(2); g != 0 {
				r += fmt.Sprintf(`"group":"g%d",`, g)
			}
			if bits(1) == 1 {
				r += `"terminal":true,`
			}
			return r + `"handle":[` + handlers + "]}"
		}
		ahp := `{"handler":"ahp","manifest":{"content_signals":{"ai_input":true},"name":"F","converse":"/agent/converse","modes":["MODE1","MODE2"],"capabilities":[{"name":"q","mode":"MODE2","description":"x","response_types":["text/answer"]}]}}`
		var before []string
		for range bits(2) {
			before = append(before, route(handler(route(handler("")))))
		}
		inner := route(handler("") + ",AHP")
		if bits(1) == 1 {
			inner = route(`{"handler":"subroute","routes":[` + strings.Join(append(before, inner), ",") + "]}")
			before = nil
		}
		routes := strings.Join(append(before, inner), ",")
		var cfg caddy.Config
		if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[`+strings.Replace(routes, "AHP", ahp, 1)+`]}}}}}`), &cfg); err != nil {
			return
		}
		_ = caddy.Validate(&cfg) // must not panic
		var first caddy.Config
		if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":0"],"automatic_https":{"disable":true},"routes":[{"handle":[`+ahp+`]},`+strings.Replace(routes, "AHP", `{"handler":"headers"}`, 1)+`]}}}}}`), &first); err != nil {
			return
		}
		if err := caddy.Validate(&first); err != nil && strings.Contains(err.Error(), "never reaches this") {
			t.Fatalf("ahp first, in a route of no matcher: %v", err)
		}
	})
}
