package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// adaptHandlers adapts a Caddyfile and returns each site's handlers, in
// order, as compact JSON.
func adaptHandlers(t *testing.T, in string) [][]string {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapt: %v %v", err, warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []json.RawMessage `json:"match"`
						Handle []struct {
							Routes []struct {
								Handle []json.RawMessage `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var sites [][]string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, route := range srv.Routes {
			var handlers []string
			for _, r := range route.Handle[0].Routes {
				for _, h := range r.Handle {
					handlers = append(handlers, compactJSON(t, string(h)))
				}
			}
			sites = append(sites, handlers)
		}
	}
	return sites
}

// The example and every option adapt to the JSON the module reads.
func TestHandoffAdapt(t *testing.T) {
	in := `{
	ahp {
		redis redis://127.0.0.1:6379/0
	}
}
api.example.com {
	reverse_proxy provider-backend:8000
	agent_handoff {
		provider "Example FAQ" https://docs.example.com/agents
		base_url https://api.example.com
		content_types faq
		sandbox_ttl 48h
		handle_rotation
		challenge /v1/sandboxes/challenge
		create /v1/sandboxes
		claim /v1/sandboxes/*/claim
		verify /v1/claims/verify
		claim_challenge /claim/challenge
		uniform /v1/sandboxes/* /v1/claims/* /exchange/*
		exchange /exchange/*
		exchange_get page
		claim_page /claim/*
		difficulty 20 28
		velocity {
			window 5m
			global_step 40
			network_step off
			circuit_breaker 1000
		}
		challenge_ttl 2m
		lockout {
			after 4
			base 30s
			max 2h
			reset 12h
		}
		body_limit 8KB
		failure {
			status 404
			floor 300ms
		}
		rate_limit {
			challenge 30/minute
			challenge_network 300/minute
			code off
		}
		store redis
		on_store_error open
		timeout 80ms
		zone faq
	}
}
*.sandbox.example.net {
	agent_handoff sandbox_content
	reverse_proxy provider-backend:8000
}
preview.example.net {
	agent_handoff preview {
		exchange /x/*
	}
	reverse_proxy provider-backend:8000
}
`
	sites := adaptHandlers(t, in)
	want := map[string]string{
		`{"body_limit":8000,"challenge":"/v1/sandboxes/challenge","challenge_ttl":120000000000,"claim":"/v1/sandboxes/*/claim",` +
			`"claim_challenge":"/claim/challenge","claim_pages":["/claim/*"],"create":"/v1/sandboxes",` +
			`"difficulty":{"base":20,"ceiling":28,"circuit_breaker":1000,"global_step":40,"network_step":-1,"window":300000000000},` +
			`"exchange":["/exchange/*"],"exchange_get":"page","failure":{"floor":300000000,"status":404},"handler":"agent_handoff",` +
			`"lockout":{"after":4,"base":30000000000,"max":7200000000000,"reset":43200000000000},"on_store_error":"open",` +
			`"provider":{"base_url":"https://api.example.com","content_types":["faq"],"docs":"https://docs.example.com/agents","handle_rotation":true,"name":"Example FAQ","sandbox_ttl":172800000000000},` +
			`"rate_limit":{"challenge":"30/minute","challenge_network":"300/minute","code":"off"},"store":"redis","timeout":80000000,` +
			`"uniform":["/v1/sandboxes/*","/v1/claims/*","/exchange/*"],"verify":"/v1/claims/verify","zone":"faq"}`: "api",
		`{"handler":"agent_handoff","mode":"sandbox_content"}`:             "content",
		`{"exchange":["/x/*"],"handler":"agent_handoff","mode":"preview"}`: "preview",
	}
	found := 0
	for _, handlers := range sites {
		// Ordered before reverse_proxy whatever the Caddyfile's order.
		if len(handlers) != 2 || !strings.Contains(handlers[1], `"reverse_proxy"`) {
			t.Fatalf("site handlers: %v", handlers)
		}
		if _, ok := want[handlers[0]]; ok {
			found++
		} else {
			t.Errorf("unexpected handler JSON:\n%s", handlers[0])
		}
	}
	if found != 3 {
		t.Fatalf("found %d of 3 handlers", found)
	}

	// After redir (and the site's rewrites), before the handlers that
	// respond.
	sites = adaptHandlers(t, `example.com {
	redir /old /new
	ahp {
		content_signals {
			ai_input true
		}
	}
	agent_handoff {
		provider X
	}
}
`)
	var names []string
	for _, h := range sites[0] {
		var v struct{ Handler string }
		_ = json.Unmarshal([]byte(h), &v)
		names = append(names, v.Handler)
	}
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	if len(names) != 3 || pos["static_response"] > pos["agent_handoff"] {
		t.Fatalf("order: %v (agent_handoff must come after redir)", names)
	}
}

func TestHandoffCaddyfileErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`agent_handoff api`, "the form is `agent_handoff { … }`, `agent_handoff sandbox_content` or `agent_handoff preview`"},
		{`agent_handoff { provider }`, `want provider <name> [<docs-url>]`},
		{`agent_handoff { difficulty twenty }`, `difficulty "twenty": the base is a number of bits`},
		{`agent_handoff { difficulty 20 28 32 }`, `want difficulty <base> [<ceiling>]`},
		{`agent_handoff { velocity { window soon } }`, `window "soon": want a duration`},
		{`agent_handoff { velocity { speed 3 } }`, `velocity: unknown option "speed"`},
		{`agent_handoff { lockout { after 0 } }`, `after "0": want a whole number >= 1`},
		{`agent_handoff { failure { colour red } }`, `failure: unknown option "colour"`},
		{`agent_handoff { rate_limit { everything 1/second } }`, `rate_limit: unknown tier "everything"`},
		{`agent_handoff { store disk }`, `store: want store memory, or store redis [<url>]`},
		{`agent_handoff { uniform v1/sandboxes }`, `uniform "v1/sandboxes": a path starts with /`},
		{`agent_handoff { body_limit lots }`, `body_limit "lots": want a size`},
		{`agent_handoff { timeout 10m }`, `agent_handoff timeout 10m0s: want a duration such as 100ms (at most 5s`},
		{`agent_handoff preview { timeout 6s }`, `agent_handoff timeout 6s: want a duration such as 100ms (at most 5s`},
		{`agent_handoff { colour blue }`, `unknown option "colour"; known: provider, base_url,`},
		{`agent_handoff { velocity { circuit_breaker 0 } }`, `circuit_breaker 0: to turn it off write circuit_breaker off`},
		{`agent_handoff { velocity { global_step 0 } }`, `global_step 0: to turn it off write global_step off`},
		{`agent_handoff { velocity { network_step 0 } }`, `network_step 0: to turn it off write network_step off`},
		{`agent_handoff { circuit_breaker 100 }`, `unknown option "circuit_breaker"; circuit_breaker goes inside velocity { }`},
		{`agent_handoff { after 3 }`, `after goes inside lockout { }`},
		{`agent_handoff { floor 1s }`, `floor goes inside failure { }`},
		{`agent_handoff { code 5/hour }`, `code is a tier of rate_limit { }`},
		{`agent_handoff { routes / /assets/* }`, "routes belongs to `agent_handoff sandbox_content { … }`"},
		{"agent_handoff {\n difficulty 20\n difficulty 24\n}", `agent_handoff difficulty: given twice; keep one value`},
		{"agent_handoff {\n rate_limit {\n verify 5/hour\n }\n rate_limit {\n create 5/minute\n }\n}", `agent_handoff rate_limit: given twice; merge the two blocks into one`},
		{"agent_handoff {\n rate_limit {\n challenge 10/minute\n challenge 20/minute\n }\n}", `agent_handoff rate_limit challenge: given twice`},
		{"agent_handoff {\n lockout {\n after 3\n after 4\n }\n}", `agent_handoff lockout after: given twice`},
		{"agent_handoff preview {\n zone a\n zone b\n}", `agent_handoff preview zone: given twice`},
		{"agent_handoff sandbox_content {\n csp a\n csp b\n}", `agent_handoff sandbox_content csp: given twice`},
		{`agent_handoff sandbox_content { provider X }`, `sandbox_content: unknown option "provider"`},
		{`agent_handoff sandbox_content { html_checks maybe }`, `html_checks "maybe": want on or off`},
		{`agent_handoff preview { difficulty 20 }`, `preview: difficulty belongs to the API site's agent_handoff block`},
	} {
		var a AgentHandoff
		in := strings.ReplaceAll(strings.ReplaceAll(c.in, "{ ", "{\n"), " }", "\n}")
		err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
}

// Configuration mistakes Provision catches name the directive and the fix.
func TestHandoffProvisionErrors(t *testing.T) {
	for _, c := range []struct {
		a    AgentHandoff
		want string
	}{
		{AgentHandoff{}, `agent_handoff: name the provider: provider "Example FAQ"`},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Difficulty: &HandoffDifficulty{Base: 30, Ceiling: 20}}, "agent_handoff difficulty: ceiling 20"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, RateLimit: &HandoffLimits{Create: "10"}}, "agent_handoff rate_limit create"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Store: "redis"}, "agent_handoff store redis: give a URL"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, OnStoreError: "sometimes"}, `on_store_error "sometimes": want open or closed`},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Timeout: caddy.Duration(10 * time.Minute)}, "agent_handoff timeout 10m0s: want a duration such as 100ms (at most 5s"},
		{AgentHandoff{Mode: "preview", Timeout: -1}, "agent_handoff timeout -1ns"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Verify: "/v1/sandboxes"}, "agent_handoff: verify /v1/sandboxes: the path is already create's"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, ExchangePage: "/no/such/file"}, "agent_handoff exchange_page"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Verify: "off", ClaimChallenge: "/claim/challenge"}, "agent_handoff: claim_challenge /claim/challenge: claim challenges can be spent only at verify, which is off; turn verify on or write claim_challenge off"},
		{AgentHandoff{Mode: "sandbox_content", Content: &HandoffContent{Types: []string{"image/svg+xml"}}}, "never serves it"},
		{AgentHandoff{Mode: "sandbox_content", Provider: &HandoffProvider{Name: "X"}}, "sandbox_content: takes only routes"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Lockout: &HandoffLockout{Reset: caddy.Duration(30 * time.Minute)}}, "agent_handoff: lockout reset 30m0s: want longer than max 1h0m0s"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := c.a.Provision(ctx)
		c.a.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.a, err, c.want)
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := AgentHandoff{Provider: &HandoffProvider{Name: "Fine"}}
	if err := a.Provision(ctx); err != nil {
		t.Fatalf("the minimal configuration: %v", err)
	}
	defer a.Cleanup()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzHandoffCaddyfile: no Caddyfile makes the parser panic.
func FuzzHandoffCaddyfile(f *testing.F) {
	f.Add("agent_handoff {\n provider X https://d\n velocity {\n global_step off\n }\n store redis redis://x\n}")
	f.Add("agent_handoff {\n provider X\n skip_proof_of_work https://chatgpt.com https://a.example:8443\n}")
	f.Add("agent_handoff sandbox_content {\n routes / /assets/*\n html_checks off\n}")
	f.Add("agent_handoff preview {\n exchange /x/*\n failure {\n floor 1s\n }\n}")
	f.Fuzz(func(t *testing.T, in string) {
		d, ok := fuzzDispenser(in)
		if !ok {
			return
		}
		var a AgentHandoff
		_ = a.UnmarshalCaddyfile(d)
	})
}

// verify off is legitimate but leaves the spec's two claim factors to the
// backend: Provision (so `caddy validate`) says so, once; with verify on
// it says nothing.
func TestHandoffVerifyOffWarns(t *testing.T) {
	for _, verify := range []string{"", "/v1/claims/verify", "off"} {
		core, logs := zapobserver.New(zap.WarnLevel)
		a := AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Verify: verify, logger: zap.New(core)}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := a.Provision(ctx)
		a.Cleanup()
		cancel()
		if err != nil {
			t.Fatalf("verify %q: %v", verify, err)
		}
		warned := logs.FilterMessage(handoffVerifyOffWarning).Len()
		if want := map[bool]int{true: 1, false: 0}[verify == "off"]; warned != want || logs.Len() != want {
			t.Errorf("verify %q: %d warnings (%v), want %d", verify, logs.Len(), logs.All(), want)
		}
	}
}

// The per-network challenge tier is on by default (600 a minute per /24
// or /48) and, like every tier, can be set or turned off.
func TestHandoffChallengeNetworkLimit(t *testing.T) {
	for _, c := range []struct {
		cfg  *HandoffLimits
		want limiter.Limit
	}{
		{nil, limiter.Limit{Events: 600, Window: time.Minute}},
		{&HandoffLimits{ChallengeNetwork: "100/second"}, limiter.Limit{Events: 100, Window: time.Second}},
		{&HandoffLimits{ChallengeNetwork: "off"}, limiter.Limit{}},
	} {
		l, err := (&AgentHandoff{RateLimit: c.cfg}).limits()
		if err != nil {
			t.Fatal(err)
		}
		if l.ChallengeNetwork != c.want {
			t.Errorf("%+v: challenge_network %+v, want %+v", c.cfg, l.ChallengeNetwork, c.want)
		}
	}
}

// trusted_origins reaches the handler in both forms of the directive that
// serve exchange codes, and a malformed origin fails provisioning with the
// directive's name and the form wanted.
func TestHandoffTrustedOrigins(t *testing.T) {
	sites := adaptHandlers(t, `api.example.com {
	agent_handoff {
		provider "Example FAQ"
		trusted_origins https://app.example.com https://admin.example.com
	}
}
preview.example.net {
	agent_handoff preview {
		trusted_origins https://app.example.com
	}
}
`)
	var got []string
	for _, handlers := range sites {
		for _, h := range handlers {
			if strings.Contains(h, `"trusted_origins"`) {
				got = append(got, h)
			}
		}
	}
	if len(got) != 2 || !strings.Contains(got[0]+got[1], `"trusted_origins":["https://app.example.com","https://admin.example.com"]`) {
		t.Fatalf("trusted_origins in the adapted handlers: %v", got)
	}
	a := &AgentHandoff{Provider: &HandoffProvider{Name: "X"}, TrustedOrigins: []string{"app.example.com"}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := a.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), `agent_handoff: trusted origin "app.example.com"`) || !strings.Contains(err.Error(), "scheme://host") {
		t.Fatalf("a malformed trusted origin: %v", err)
	}
}

// A Redis URL written where the store kind belongs (the keyword `redis`
// forgotten, or JSON "store": "redis://…") is refused by every directive
// without printing its password at `caddy adapt` or `caddy validate`, and
// the error says where the URL goes.
func TestStoreKindURLKeepsPasswordOutOfErrors(t *testing.T) {
	const secret = "s3cretRedisPw"
	url := "redis://:" + secret + "@127.0.0.1:1/0"
	provisions := map[string]func(caddy.Context) error{
		"agent_handoff": func(ctx caddy.Context) error {
			a := AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Store: url}
			defer a.Cleanup()
			return a.Provision(ctx)
		},
		"handshake_prompt": func(ctx caddy.Context) error {
			hp := HandshakePrompt{Store: url}
			defer hp.Cleanup()
			return hp.Provision(ctx)
		},
		"verified_agents shared_cache": func(ctx caddy.Context) error {
			_, err := (&VerifiedAgentsConfig{SharedCache: url}).sharedCacheURL(ctx, nil)
			return err
		},
		"ahp rate_limit store": func(ctx caddy.Context) error {
			s := new(storeRefs)
			defer s.release()
			_, err := s.limiterStore(ctx, url, "", 0, false, true, "ahp rate_limit store", nil, nil)
			return err
		},
	}
	for name, provision := range provisions {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := provision(ctx)
		cancel()
		if err == nil {
			t.Errorf("%s: a URL as the store kind was accepted", name)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, "redis <url>") {
			t.Errorf("%s: %v: want no password and the form `… redis <url>`", name, err)
		}
	}
	var hp HandshakePrompt
	err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser("handshake_prompt {\n store redis://:" + secret + "@redis:6379/0\n}"))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("handshake_prompt store <url> at adapt: %v: want an error without the password", err)
	}
	// A plain word is still quoted, so a typo is easy to spot.
	a := AgentHandoff{Provider: &HandoffProvider{Name: "X"}, Store: "reddis"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err = a.Provision(ctx)
	a.Cleanup()
	if err == nil || !strings.Contains(err.Error(), `store "reddis": must be memory or redis`) {
		t.Errorf("store reddis: %v", err)
	}
}

// One Redis failure is one store error: the resilient store counts it in
// its OnError, and the handler does not count the ErrStoreUnavailable it
// answers 503 with again.
func TestHandoffStoreErrorCountedOnce(t *testing.T) {
	rs := redistest.Start(t)
	a := AgentHandoff{Provider: &HandoffProvider{Name: "StoreErrorOnce"}, Store: "redis", Redis: "redis://" + rs.Addr() + "/0"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	m, err := registerHandoffMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := m.storeErrors.WithLabelValues("StoreErrorOnce")
	before := testCounterValue(t, errs)
	rs.Kill()
	r, _ := caddyRequest("GET", "/v1/sandboxes/challenge")
	w := httptest.NewRecorder()
	if err := a.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("challenge with Redis down: %d %s, want 503", w.Code, w.Body)
	}
	if got := testCounterValue(t, errs) - before; got != 1 {
		t.Fatalf("store_errors_total rose by %v for one failed Redis call, want 1", got)
	}
}

// A matcher on the directive, or a handle around it, that leaves out one
// of the endpoints the edge serves is refused at `caddy validate`, not
// only one that leaves out creation and claims: `agent_handoff /v1/* { … }`
// loaded, and discovery, the claim challenge, the solver and the
// exchange's page then came from the backend or nowhere. A matcher that
// covers every endpoint loads.
func TestHandoffEveryEndpointMustReach(t *testing.T) {
	const provider = "provider X https://docs.example.com/agents"
	site := func(body string) string { return ":8080 {\n\t" + body + "\n}\n" }
	for _, c := range []struct {
		name, cfg, want string // want "" for valid
	}{
		{"a /v1/* matcher", site("agent_handoff /v1/* {\n\t\t" + provider + "\n\t}\n\treverse_proxy 127.0.0.1:9"),
			"agent_handoff: POST /exchange/* (the exchange; exchange off turns it off on a site that serves none) never reaches this agent_handoff block"},
		{"a /v1/* matcher, exchange off", site("agent_handoff /v1/* {\n\t\t" + provider + "\n\t\texchange off\n\t}\n\treverse_proxy 127.0.0.1:9"),
			"agent_handoff: GET /.well-known/agent-access (discovery) never reaches this agent_handoff block"},
		{"in handle /v1/*, exchange off", site("handle /v1/* {\n\t\tagent_handoff {\n\t\t\t" + provider + "\n\t\t\texchange off\n\t\t}\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi"),
			"GET /.well-known/agent-access (discovery) never reaches"},
		{"a matcher without the solver", site("@edge path /v1/* /.well-known/agent-access /.well-known/agent-access/claim-challenge\n\tagent_handoff @edge {\n\t\t" + provider + "\n\t\texchange off\n\t}\n\treverse_proxy 127.0.0.1:9"),
			"GET /.well-known/agent-access/solver.js (the solver; solver off turns it off) never reaches"},
		{"preview behind a matcher", site("agent_handoff /preview/* preview\n\treverse_proxy 127.0.0.1:9"),
			"POST /exchange/* (the exchange) never reaches"},
		{"preview: GET of the exchange answered first", site("@scan {\n\t\tmethod GET\n\t\tpath /exchange/*\n\t}\n\troute {\n\t\trespond @scan hi\n\t\tagent_handoff preview\n\t\treverse_proxy 127.0.0.1:9\n\t}"),
			"GET /exchange/* (the exchange's scanner-safe page) never reaches"},

		{"no matcher", site("agent_handoff {\n\t\t" + provider + "\n\t}\n\treverse_proxy 127.0.0.1:9"), ""},
		{"a matcher covering every endpoint", site("@edge path /v1/* /.well-known/agent-access /.well-known/agent-access/* /exchange/*\n\tagent_handoff @edge {\n\t\t" + provider + "\n\t}\n\treverse_proxy 127.0.0.1:9"), ""},
		{"a /v1/* matcher, the rest off", site("agent_handoff /v1/* {\n\t\t" + provider + "\n\t\texchange off\n\t\tsolver off\n\t\tclaim_challenge off\n\t}\n\treverse_proxy 127.0.0.1:9"),
			"GET /.well-known/agent-access (discovery) never reaches"},
		{"preview in handle /exchange/*", site("handle /exchange/* {\n\t\tagent_handoff preview\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\treverse_proxy 127.0.0.1:9"), ""},
	} {
		err := validate(t, c.cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v; want it valid", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "no matcher of its own")):
			t.Errorf("%s: %v; want an error saying %q and the fix", c.name, err, c.want)
		}
	}
}

// A base difficulty below 12 bits loads (tests use it) but warns: the
// value is in bits, and Anubis's users write hex digits (4 there is 16
// bits here).
func TestHandoffLowDifficultyWarns(t *testing.T) {
	for _, base := range []int{0, 4, 11, 12, 20} {
		core, logs := zapobserver.New(zap.WarnLevel)
		a := AgentHandoff{Provider: &HandoffProvider{Name: "X"}, logger: zap.New(core)}
		if base != 0 {
			a.Difficulty = &HandoffDifficulty{Base: base}
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := a.Provision(ctx)
		a.Cleanup()
		cancel()
		if err != nil {
			t.Fatalf("difficulty %d: %v", base, err)
		}
		warned := logs.FilterMessage(handoffLowDifficultyWarning).Len()
		if want := map[bool]int{true: 1, false: 0}[base != 0 && base < 12]; warned != want || logs.Len() != want {
			t.Errorf("difficulty %d: %d warnings (%v), want %d", base, logs.Len(), logs.All(), want)
		}
	}
	if !strings.Contains(handoffLowDifficultyWarning, "bits") || !strings.Contains(handoffLowDifficultyWarning, "not hex digits as in Anubis") {
		t.Error("the warning does not say the unit")
	}
}

// Two agent_handoff blocks of one mode in one site are refused: the
// second would strip the admission header of every creation the first
// admitted and refuse it. Blocks kept apart by host matchers load.
func TestHandoffTwoBlocksRefused(t *testing.T) {
	block := func(name string) string {
		return "agent_handoff {\n\t\tprovider " + name + " https://docs.example.com/agents\n\t}"
	}
	err := validate(t, ":8080 {\n\t"+block("X")+"\n\t"+block("Y")+"\n\treverse_proxy 127.0.0.1:9\n}\n")
	if err == nil || !strings.Contains(err.Error(), "agent_handoff: a second agent_handoff block in this site") || !strings.Contains(err.Error(), "merge the two blocks into one") {
		t.Errorf("two blocks: %v; want refused with the fix", err)
	}
	if err := validate(t, ":8080 {\n\t"+block("X")+"\n\tagent_handoff preview\n\treverse_proxy 127.0.0.1:9\n}\n"); err != nil {
		t.Errorf("an API block and a preview block: %v", err)
	}
	hosts := ":8080 {\n\t@a host a.example\n\thandle @a {\n\t\t" + block("A") + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n" +
		"\t@b host b.example\n\thandle @b {\n\t\t" + block("B") + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n"
	if err := validate(t, hosts); err != nil {
		t.Errorf("one block per host: %v", err)
	}
}

// A JSON configuration is held to the Caddyfile's bounds: a body_limit
// past 1 GiB loaded (creation and verification bodies are read whole, so
// one client could make the edge buffer that much per request), and a
// negative body_limit, challenge_ttl or sandbox_ttl silently became the
// default.
func TestHandoffJSONHeldToCaddyfileBounds(t *testing.T) {
	x := func() *HandoffProvider { return &HandoffProvider{Name: "X"} }
	for _, c := range []struct {
		a    AgentHandoff
		want string
	}{
		{AgentHandoff{Provider: x(), BodyLimit: 100 << 30}, "agent_handoff body_limit 107374182400: want a size in bytes up to 1 GiB"},
		{AgentHandoff{Provider: x(), BodyLimit: -1}, "agent_handoff body_limit -1"},
		{AgentHandoff{Mode: "preview", BodyLimit: -1}, "agent_handoff body_limit -1"},
		{AgentHandoff{Provider: x(), ChallengeTTL: -1}, "agent_handoff challenge_ttl -1ns: want a positive duration"},
		{AgentHandoff{Provider: &HandoffProvider{Name: "X", SandboxTTL: -1}}, "agent_handoff sandbox_ttl -1ns: want a positive duration"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := c.a.Provision(ctx)
		c.a.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.a, err, c.want)
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := AgentHandoff{Provider: &HandoffProvider{Name: "Bounds", SandboxTTL: caddy.Duration(time.Hour)}, BodyLimit: 1 << 30, ChallengeTTL: caddy.Duration(time.Minute)}
	if err := a.Provision(ctx); err != nil {
		t.Errorf("the Caddyfile's largest body_limit: %v", err)
	}
	a.Cleanup()
}
