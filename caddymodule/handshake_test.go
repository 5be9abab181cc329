package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

func TestHandshakeAdapt(t *testing.T) {
	in := `{
	ahp {
		redis redis://127.0.0.1:6379/0
	}
}
example.com {
	handshake_prompt {
		store redis
		zone shop
		ttl 45m
		rate 30/minute
		create_rate off
		ws_rate 20/minute
		ws_per_session 4
		ws_max 500
		hooks {
			create /hpp/hooks/create
			action https://hooks.internal/action
			timeout 3s
		}
		browser_auth cookie session
		inject forms
		base_url https://example.com
	}
	reverse_proxy legacy:8080
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapt: %v %v", err, warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
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
	var handlers []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes[0].Handle[0].Routes {
			for _, h := range r.Handle {
				handlers = append(handlers, string(h))
			}
		}
	}
	want := `{"base_url":"https://example.com","browser_auth":{"cookie":"session"},"create_rate":"off",` +
		`"handler":"handshake_prompt","hooks":{"action":"https://hooks.internal/action","create":"/hpp/hooks/create","timeout":3000000000},` +
		`"inject":["forms"],"rate":"30/minute","store":"redis","ttl":2700000000000,"ws_max":500,"ws_per_session":4,"ws_rate":"20/minute","zone":"shop"}`
	if len(handlers) != 2 || compactJSON(t, handlers[0]) != want || !strings.Contains(handlers[1], `"reverse_proxy"`) {
		t.Fatalf("handlers:\n%s\nwant first:\n%s", strings.Join(handlers, "\n"), want)
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHandshakeCaddyfileErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`handshake_prompt x`, "takes no arguments on its own line"},
		{`handshake_prompt { store disk }`, `store "disk": must be memory or redis [<url>]`},
		{`handshake_prompt { store memory redis://x }`, "want `store memory [max_bytes <size>]` or `store redis [<url>]`"},
		{`handshake_prompt { rate 60 }`, "handshake_prompt rate: rate limit \"60\""},
		{`handshake_prompt { rate off }`, "the protocol limits every session"},
		{`handshake_prompt { ttl soon }`, `ttl "soon": want a duration of at least 1s`},
		{`handshake_prompt { prefix handshake }`, `prefix "handshake": want a plain path such as /handshake`},
		{`handshake_prompt { hooks { create hooks/create } }`, `hooks create "hooks/create": want a path of the site`},
		{`handshake_prompt { hooks { veto /x } }`, `unknown hook "veto"`},
		{`handshake_prompt { browser_auth session }`, "want `browser_auth cookie <name>`"},
		{`handshake_prompt { inject scripts }`, "want `inject forms`"},
		{`handshake_prompt { body_limit 10 }`, `body_limit "10": want a size from 1KiB to 16MiB`},
		{`handshake_prompt { colour blue }`, `unknown option "colour"`},
		{`handshake_prompt { base_url example.com }`, `base_url "example.com": want the site's absolute URL`},
		{`handshake_prompt { ws_per_session 0 }`, `ws_per_session "0": want a number of sockets from 1 to 1000000`},
		{`handshake_prompt { ws_max lots }`, `ws_max "lots": want a number of sockets`},
		{`handshake_prompt { ws_rate 5 }`, `handshake_prompt ws_rate: rate limit "5"`},
	} {
		var hp HandshakePrompt
		in := strings.ReplaceAll(strings.ReplaceAll(c.in, "{ ", "{\n"), " }", "\n}")
		err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
	var hp HandshakePrompt
	if err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`handshake_prompt`)); err != nil {
		t.Errorf("bare directive: %v", err)
	}
	// A hook URL refused for its scheme's spelling is not printed with its
	// password or its query's key (caddy validate's output, the admin
	// API's answer and Caddy's log of a failed reload).
	for _, in := range []string{"HTTPS://hook:s3cret@app.example/create", "app.example/create?key=s3cret", "ftp://u:s3cret@app.example/c"} {
		var hp HandshakePrompt
		err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser("handshake_prompt {\nhooks {\ncreate " + in + "\n}\n}"))
		if err == nil || !strings.Contains(err.Error(), "want a path of the site") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("hooks create %s: %v", in, err)
		}
	}
}

// FuzzHandshakeCaddyfile: no Caddyfile makes the parser panic.
func FuzzHandshakeCaddyfile(f *testing.F) {
	f.Add("handshake_prompt {\n store redis redis://x\n hooks {\n create /c\n }\n inject forms\n}")
	f.Add("handshake_prompt { rate 1/second }")
	f.Add("handshake_prompt {\n store memory max_bytes 256MiB\n}")
	f.Add("handshake_prompt {\n store redis max_bytes 1GiB\n}")
	f.Fuzz(func(t *testing.T, in string) {
		d, ok := fuzzDispenser(in)
		if !ok {
			return
		}
		var hp HandshakePrompt
		_ = hp.UnmarshalCaddyfile(d)
	})
}

// The Redis client under a pooled session store is held by every handler
// that uses the store, not only by the one whose Provision built it: after
// the first handler's Cleanup (a reload) the second still holds it for its
// sessions, whatever its rate limiter holds.
func TestHandshakeHoldsItsRedisClient(t *testing.T) {
	url := "redis://" + redistest.Start(t).Addr() + "/0"
	clientKey := "ahp:redis-client:" + url
	provision := func() *HandshakePrompt {
		t.Helper()
		hp := &HandshakePrompt{Store: "redis", Redis: url, Zone: "holds-client"}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := hp.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return hp
	}
	refs := func() int {
		n, _ := stores.References(clientKey)
		return n
	}
	a := provision()
	b := provision() // finds the session store in the pool
	// Each handler: one reference for its sessions, one for its limiter.
	if n := refs(); n != 4 {
		t.Fatalf("references to the Redis client with two handlers: %d, want 4", n)
	}
	_ = a.Cleanup()
	if n := refs(); n != 2 {
		t.Fatalf("after the first handler's cleanup: %d, want 2 (the second's)", n)
	}
	_ = b.Cleanup()
	if _, ok := stores.References(clientKey); ok {
		t.Fatal("the Redis client outlived every handler")
	}
}

// Provision refuses what the handler refuses, naming the directive and
// the fix: a create hook over plain http to another host gets the
// browser's cookies.
func TestHandshakeProvisionErrors(t *testing.T) {
	for _, c := range []struct {
		hp   HandshakePrompt
		want string
	}{
		{HandshakePrompt{Hooks: &HandshakeHooks{Create: "http://auth.internal/create"}},
			`handshake_prompt: hooks create "http://auth.internal/create": this hook receives the browser's Cookie and Authorization`},
		{HandshakePrompt{Hooks: &HandshakeHooks{Create: "/handshake/hook"}}, "lies under prefix /handshake"},
		{HandshakePrompt{WSRate: "fast"}, "handshake_prompt ws_rate"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := c.hp.Provision(ctx)
		_ = c.hp.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.hp, err, c.want)
		}
	}
}

// Site blocks that leave zone out do not share sessions when they differ
// in who may use one (browser_auth) or what sees it (hooks, base_url): a
// session created on a bare site is not found on a site with
// browser_auth. A zone they name is shared on purpose, whatever else
// differs.
func TestHandshakeDefaultZoneIsolatesSites(t *testing.T) {
	provision := func(hp *HandshakePrompt) *HandshakePrompt {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := hp.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hp.Cleanup() })
		return hp
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(418); return nil })
	do := func(hp *HandshakePrompt, method, host, path, body string, hdr ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		if err := hp.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		return w
	}
	create := func(hp *HandshakePrompt, host string, hdr ...string) (sid, tok string) {
		t.Helper()
		w := do(hp, "POST", host, "/handshake/session", `{"mode":"form-fill"}`, hdr...)
		var s struct{ SessionID, Token string }
		_ = json.Unmarshal(w.Body.Bytes(), &s)
		if w.Code != 200 || s.SessionID == "" {
			t.Fatalf("create on %s: %d %s", host, w.Code, w.Body)
		}
		return s.SessionID, s.Token
	}
	siteA := provision(&HandshakePrompt{BrowserAuth: &HandshakeBrowserAuth{Cookie: "sid"}})
	siteB := provision(&HandshakePrompt{})
	sid, tok := create(siteB, "b.example")
	if w := do(siteA, "GET", "a.example", "/handshake/context/"+sid, "", "X-Handshake-Token", tok); w.Code != 404 {
		t.Errorf("site A serves site B's session (context): %d %s", w.Code, w.Body)
	}
	if w := do(siteA, "POST", "a.example", "/handshake/notify/"+sid, `{"key":"k","value":1}`); w.Code != 404 {
		t.Errorf("site A takes a user edit of site B's session: %d %s", w.Code, w.Body)
	}
	sid, tok = create(siteA, "a.example", "Cookie", "sid=alice")
	if w := do(siteB, "GET", "b.example", "/handshake/context/"+sid, "", "X-Handshake-Token", tok); w.Code != 404 {
		t.Errorf("site B serves site A's session: %d %s", w.Code, w.Body)
	}
	// The same options give the same zone (every instance, every reload),
	// bare handlers keep "default", and each option tells sites apart.
	zones := map[string]string{}
	for name, hp := range map[string]*HandshakePrompt{
		"bare":        {},
		"cookie":      {BrowserAuth: &HandshakeBrowserAuth{Cookie: "sid"}},
		"cookie2":     {BrowserAuth: &HandshakeBrowserAuth{Cookie: "session"}},
		"create hook": {Hooks: &HandshakeHooks{Create: "/hooks/create"}},
		"action hook": {Hooks: &HandshakeHooks{Action: "/hooks/create"}},
		"done hook":   {Hooks: &HandshakeHooks{Done: "/hooks/create"}},
		"base_url":    {BaseURL: "https://a.example"},
	} {
		z := hp.defaultZone()
		if again := (&HandshakePrompt{BrowserAuth: hp.BrowserAuth, Hooks: hp.Hooks, BaseURL: hp.BaseURL, TTL: caddy.Duration(time.Hour)}).defaultZone(); again != z {
			t.Errorf("%s: zone %q, then %q", name, z, again)
		}
		if other, dup := zones[z]; dup {
			t.Errorf("%s and %s share zone %q", name, other, z)
		}
		zones[z] = name
	}
	if zones["default"] != "bare" {
		t.Errorf("a bare handler's zone is not \"default\": %v", zones)
	}
	// A named zone is shared on purpose, as between instances of one site.
	shopA := provision(&HandshakePrompt{Zone: "shop-shared", BrowserAuth: &HandshakeBrowserAuth{Cookie: "sid"}})
	shopB := provision(&HandshakePrompt{Zone: "shop-shared"})
	sid, tok = create(shopB, "b.example")
	if w := do(shopA, "GET", "a.example", "/handshake/context/"+sid, "", "X-Handshake-Token", tok); w.Code != 200 {
		t.Errorf("a named zone is not shared: %d %s", w.Code, w.Body)
	}
}

// While Redis is down, every failure is counted in
// caddy_ahp_handshake_store_errors_total: the session store's by endpoint,
// and the rate limiter's, which it absorbs by counting in memory, as
// endpoint "-" (it was logged but never counted).
func TestHandshakeCountsStoreFailures(t *testing.T) {
	srv := redistest.Start(t)
	hp := &HandshakePrompt{Store: "redis", Redis: "redis://" + srv.Addr() + "/0", Zone: "counts-failures"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := hp.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hp.Cleanup() })
	m, err := registerHandshakeMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func(store, endpoint string) float64 {
		var d dto.Metric
		if err := m.storeErrors.WithLabelValues("counts-failures", store, endpoint).(prometheus.Metric).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	sessions0, limiter0 := count("sessions", "session"), count("limiter", "-")
	srv.Kill()
	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/handshake/session", strings.NewReader(`{"mode":"form-fill"}`))
		if err := hp.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("create with Redis down: %d %s", w.Code, w.Body)
		}
	}
	if n := count("sessions", "session") - sessions0; n != 3 {
		t.Errorf("session store failures counted: %v, want 3", n)
	}
	if n := count("limiter", "-") - limiter0; n < 1 {
		t.Errorf("rate-limit store failures counted: %v, want at least 1", n)
	}
}

// A Caddy handler's error carries its status (caddyauth's 401), wrapped
// or not: the handshake's path hooks read it as the site's answer.
func TestHandshakeHandlerErrorStatus(t *testing.T) {
	denied := caddyhttp.Error(http.StatusUnauthorized, errors.New("not authenticated"))
	for err, want := range map[error]int{
		denied:                          http.StatusUnauthorized,
		fmt.Errorf("route: %w", denied): http.StatusUnauthorized,
		errors.New("plain"):             0,
	} {
		if got := handlerErrorStatus(err); got != want {
			t.Errorf("%v: %d, want %d", err, got, want)
		}
	}
}

// A JSON configuration of handshake_prompt is held to the Caddyfile's
// bounds at caddy validate (the README says every directive's is).
func TestHandshakeJSONHeldToCaddyfileBounds(t *testing.T) {
	const in = `example.com {
	handshake_prompt {
		hooks {
			done /hooks/done
		}
	}
	respond "hi"
}
`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	const anchor = `"handler":"handshake_prompt"`
	if !strings.Contains(string(out), anchor) {
		t.Fatalf("no handshake_prompt in %s", out)
	}
	for name, field := range map[string]string{
		"body_limit 1TiB":    `"body_limit":1099511627776`,
		"ttl 1ns":            `"ttl":1`,
		"max_ttl 1ns":        `"max_ttl":1`,
		"ws_per_session 1e9": `"ws_per_session":1000000000`,
		"ws_max 1e9":         `"ws_max":1000000000`,
	} {
		js := strings.Replace(string(out), anchor, anchor+","+field, 1)
		var cfg caddy.Config
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err == nil {
			t.Errorf("%s: caddy validate accepted a JSON value the Caddyfile refuses", name)
		}
	}
	js := strings.Replace(string(out), `"done":"/hooks/done"`, `"done":"/hooks/done","timeout":3600000000000`, 1)
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil {
		t.Errorf("hooks timeout 1h: caddy validate accepted a JSON value the Caddyfile refuses")
	}
}

// max_ttl below ttl is refused with both values and the fix: the
// operator who wrote only `ttl 48h` (or only `max_ttl 10m`) was told
// "max_ttl is shorter than ttl" about an option they never wrote, without
// its default.
func TestHandshakeMaxTTLBelowTTLNamesValues(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{"ttl 48h", "max_ttl 24h0m0s is shorter than ttl 48h0m0s"},
		{"max_ttl 10m", "max_ttl 10m0s is shorter than ttl 30m0s"},
	} {
		err := validate(t, "example.localhost {\n\thandshake_prompt {\n\t\t"+c.opts+"\n\t}\n\trespond hi\n}\n")
		if err == nil || !strings.Contains(err.Error(), "handshake_prompt: "+c.want) || !strings.Contains(err.Error(), "raise max_ttl") {
			t.Errorf("handshake_prompt { %s }: got %v, want %q and the fix", c.opts, err, c.want)
		}
	}
}

// A base_url without a host, or a prefix that is the site's root, is
// refused quoting what the operator wrote: `base_url https://` was told
// it "must start with http:// or https://", which it does, and `prefix /`
// that it was "" .
func TestHandshakeBaseURLAndPrefixMessagesQuoteTheValue(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{"base_url https://", `handshake_prompt: base_url "https://": want the site's absolute URL`},
		{"base_url https:///shop", `handshake_prompt: base_url "https:///shop": want the site's absolute URL`},
		{"prefix /", `handshake_prompt: prefix "/": must be a plain path below the site's root`},
		{"ws_prefix //", `handshake_prompt: ws_prefix "//": must be a plain path below the site's root`},
	} {
		err := validate(t, "example.localhost {\n\thandshake_prompt {\n\t\t"+c.opts+"\n\t}\n\trespond hi\n}\n")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("handshake_prompt { %s }: got %v, want %q", c.opts, err, c.want)
		}
	}
	if err := validate(t, "example.localhost {\n\thandshake_prompt {\n\t\tbase_url https://example.com/\n\t\tprefix /hp/\n\t}\n\trespond hi\n}\n"); err != nil {
		t.Errorf("a base_url and a prefix with a trailing slash: %v", err)
	}
}

// A JSON "rate": "off" is refused as the Caddyfile's `rate off` is: it
// loaded, and the handler then limited every session at the default
// 60/minute, the opposite of what it says.
func TestHandshakeJSONRateOffRefused(t *testing.T) {
	hp := HandshakePrompt{Rate: "off"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := hp.Provision(ctx)
	_ = hp.Cleanup()
	if err == nil || !strings.Contains(err.Error(), "handshake_prompt rate off") || !strings.Contains(err.Error(), "60/minute") {
		t.Errorf(`{"rate":"off"}: got %v, want it refused naming rate and a limit to give`, err)
	}
}
