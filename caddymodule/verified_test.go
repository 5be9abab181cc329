package caddymodule

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

// wbaAgent signs requests as Web Bot Auth agents do. The signature base
// is written out here by hand, independently of package webbotauth.
type wbaAgent struct {
	origin string
	priv   ed25519.PrivateKey
	kid    string
	jwk    string
}

func newWBAAgent(t testing.TB, origin string) wbaAgent {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid := webbotauth.Thumbprint(pub)
	return wbaAgent{origin: origin, priv: priv, kid: kid,
		jwk: `{"kty":"OKP","crv":"Ed25519","kid":"` + kid + `","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`}
}

// sign signs @authority, @path and the Signature-Agent member, as the
// agent saw the request: host and path as it sent them.
func (a wbaAgent) sign(h http.Header, host, path string, now time.Time) {
	h.Set("Signature-Agent", `sig1="`+a.origin+`"`)
	input := fmt.Sprintf(`("@authority" "@path" "signature-agent";key="sig1");created=%d;expires=%d;keyid="%s";tag="web-bot-auth"`,
		now.Unix()-5, now.Unix()+300, a.kid)
	base := `"@authority": ` + host + "\n" +
		`"@path": ` + path + "\n" +
		`"signature-agent";key="sig1": "` + a.origin + `"` + "\n" +
		`"@signature-params": ` + input
	sig := ed25519.Sign(a.priv, []byte(base))
	h.Set("Signature-Input", "sig1="+input)
	h.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// caddyRequest is a request as Caddy hands it to a handler: a replacer
// in the context and the original request kept before any rewrite.
func caddyRequest(method, target string) (*http.Request, *caddy.Replacer) {
	r := httptest.NewRequest(method, target, nil)
	r.Host = "shop.example"
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	u := *r.URL
	ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, http.Request{Method: r.Method, RequestURI: r.RequestURI, URL: &u})
	return r.WithContext(ctx), repl
}

func placeholders(repl *caddy.Replacer) string {
	v, _ := repl.GetString(placeholderVerified)
	id, _ := repl.GetString(placeholderAgent)
	o, _ := repl.GetString(placeholderOutcome)
	return v + "|" + id + "|" + o
}

// provisionStep provisions a handler's verification step from a
// Caddyfile `verified_agents` block.
func provisionStep(t *testing.T, block string) *verifiedStep {
	t.Helper()
	var h Handler
	d := caddyfile.NewTestDispenser(block)
	d.Next()
	if err := h.parseVerifiedAgents(d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h.logger = ctx.Logger()
	h.stores = new(storeRefs)
	t.Cleanup(h.stores.release)
	step, err := h.newVerifiedStep(ctx, &manifest.Manifest{Name: "Test shop"})
	if err != nil {
		t.Fatal(err)
	}
	return step
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The step verifies the request as the client sent it, before a rewrite,
// sets the placeholders and the trusted header; unsigned and badly
// signed requests are nobody.
func TestVerifiedStep(t *testing.T) {
	agent := newWBAAgent(t, "https://Agent.Example:443/")
	step := provisionStep(t, "verified_agents {\n pin https://agent.example "+writeFile(t, "a.jwk", agent.jwk)+"\n fetch off\n}")

	// Signed for /products/42, then rewritten by the site to /index.php.
	r, repl := caddyRequest("GET", "/products/42?x=1")
	agent.sign(r.Header, "shop.example", "/products/42", time.Now())
	r.URL.Path, r.RequestURI = "/index.php", "/index.php"
	if step.serve(httptest.NewRecorder(), r) != nil {
		t.Fatal("a verified request was refused")
	}
	if got := placeholders(repl); got != "true|https://agent.example|verified" {
		t.Fatalf("placeholders %q", got)
	}
	if v := r.Header[VerifiedAgentHeader]; len(v) != 1 || v[0] != "https://agent.example" || cap(v) != 1 {
		t.Fatalf("header %q (cap %d), want one value of its own", v, cap(v))
	}
	if got := verifiedAgentOf(r); got != "https://agent.example" {
		t.Fatalf("verifiedAgentOf %q", got)
	}

	// Unsigned.
	r, repl = caddyRequest("GET", "/")
	if step.serve(httptest.NewRecorder(), r) != nil || placeholders(repl) != "false||unsigned" || r.Header[VerifiedAgentHeader] != nil || verifiedAgentOf(r) != "" {
		t.Fatalf("unsigned: %q %q", placeholders(repl), r.Header[VerifiedAgentHeader])
	}

	// Signed for another path: invalid, treated as unsigned.
	r, repl = caddyRequest("GET", "/admin")
	agent.sign(r.Header, "shop.example", "/products/42", time.Now())
	w := httptest.NewRecorder()
	if step.serve(w, r) != nil || placeholders(repl) != "false||invalid" || r.Header[VerifiedAgentHeader] != nil || w.Code != 200 {
		t.Fatalf("invalid: %q %q %d", placeholders(repl), r.Header[VerifiedAgentHeader], w.Code)
	}

	// Signed by an agent that is not pinned, fetching off: unverified.
	other := newWBAAgent(t, "https://other.example")
	r, repl = caddyRequest("GET", "/")
	other.sign(r.Header, "shop.example", "/", time.Now())
	if step.serve(httptest.NewRecorder(), r) != nil || placeholders(repl) != "false||unverified" {
		t.Fatalf("unverified: %q", placeholders(repl))
	}
}

// With on_invalid refuse, an invalid signature gets the spec's 403 body
// and the discovery Link; an unverifiable one still passes.
func TestVerifiedStepRefusesInvalid(t *testing.T) {
	agent := newWBAAgent(t, "https://agent.example")
	step := provisionStep(t, "verified_agents {\n pin https://agent.example "+writeFile(t, "a.jwk", `{"keys":[`+agent.jwk+`]}`)+"\n fetch off\n on_invalid refuse\n}")

	r, _ := caddyRequest("GET", "/")
	r.Host = "evil.example" // signed for shop.example: wrong authority
	agent.sign(r.Header, "shop.example", "/", time.Now())
	w := httptest.NewRecorder()
	e := step.serve(w, r)
	if e == nil {
		t.Fatal("an invalid signature passed")
	}
	ahperror.Write(w, e)
	var body struct{ Status, Code, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 403 || body.Code != "forbidden" || body.Status != "error" ||
		!strings.Contains(body.Message, "signature does not verify") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Header().Get("Link"), `rel="ahp-manifest"`) {
		t.Fatalf("no discovery Link on the refusal: %q", w.Header())
	}

	other := newWBAAgent(t, "https://other.example")
	r, _ = caddyRequest("GET", "/")
	other.sign(r.Header, "shop.example", "/", time.Now())
	if step.serve(httptest.NewRecorder(), r) != nil {
		t.Fatal("an unverifiable signature (a key the site cannot look up) was refused")
	}
}

// Verification off gives no step.
func TestProvisionVerifiedOff(t *testing.T) {
	var h Handler
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h.logger, h.stores = ctx.Logger(), new(storeRefs)
	defer h.stores.release()
	if fn, err := h.provisionVerifiedStep(ctx, &manifest.Manifest{Name: "x"}); fn != nil || err != nil {
		t.Fatal("verification off still gave a step", err)
	}
}

// Configuration mistakes fail at load and name the option.
func TestVerifiedConfigErrors(t *testing.T) {
	good := newWBAAgent(t, "https://agent.example")
	keyFile := writeFile(t, "good.jwk", good.jwk)
	for _, c := range []struct{ in, want string }{
		{"verified_agents on", "want `verified_agents`"},
		{"verified_agents {\n pin https://a.example\n}", "pin: want `pin <agent origin>"},
		{"verified_agents {\n pin http://a.example " + keyFile + "\n}", "not an https URL"},
		{"verified_agents {\n fetch maybe\n}", "fetch: want on"},
		{"verified_agents {\n fetch off\n}", "none is pinned"},
		{"verified_agents {\n allow_networks 10.0.0.1\n}", "CIDR"},
		{"verified_agents {\n allow_ports\n}", "allow_ports: want one or more ports"},
		{"verified_agents {\n allow_ports 8443 http\n}", `allow_ports: "http" is not a port`},
		{"verified_agents {\n allow_ports 65536\n}", "is not a port"},
		{"verified_agents {\n on_invalid block\n}", "on_invalid: want unsigned"},
		{"verified_agents {\n shared_cache memcached\n}", "shared_cache: want"},
		{"verified_agents {\n agents chatgpt.com\n}", "agents: \"chatgpt.com\""},
		{"verified_agents {\n clock_skew soon\n}", "clock_skew: want a duration"},
		{"verified_agents {\n directory_urls yes\n}", "takes no value"},
		{"verified_agents {\n trusted_ca\n}", "trusted_ca: want one or more"},
		{"verified_agents {\n nonce_store redis\n}", `unknown option "nonce_store"`},
	} {
		var h Handler
		d := caddyfile.NewTestDispenser(c.in)
		d.Next()
		err := h.parseVerifiedAgents(d)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "verified_agents") {
			t.Errorf("%q: got %v, want %q", c.in, err, c.want)
		}
	}

	// Errors only the files can tell, at provisioning.
	for _, c := range []struct {
		cfg  VerifiedAgentsConfig
		want string
	}{
		{VerifiedAgentsConfig{Pinned: []PinnedAgent{{Agent: "https://a.example", KeysFile: "/no/such/file"}}}, "pin https://a.example: reading the keys"},
		{VerifiedAgentsConfig{Pinned: []PinnedAgent{{Agent: "https://a.example", KeysFile: writeFile(t, "rsa", `{"kty":"RSA","n":"x","e":"AQAB"}`)}}}, "pinned keys of https://a.example"},
		{VerifiedAgentsConfig{Pinned: []PinnedAgent{{Agent: "https://a.example", KeysFile: keyFile}, {Agent: "https://A.example:443", KeysFile: keyFile}}}, "pinned twice"},
		{VerifiedAgentsConfig{TrustedCAFiles: []string{writeFile(t, "ca.pem", "not a certificate")}}, "PEM"},
		{VerifiedAgentsConfig{TrustedCAFiles: []string{"/no/such/ca.pem"}}, "trusted_ca"},
		{VerifiedAgentsConfig{SharedCache: "redis"}, "shared_cache redis: give a URL"},
		{VerifiedAgentsConfig{OnInvalid: "drop"}, `on_invalid "drop"`},
		{VerifiedAgentsConfig{AllowPorts: []int{0}}, "allow_ports 0"},
	} {
		h := Handler{VerifiedAgents: &c.cfg}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h.logger, h.stores = ctx.Logger(), new(storeRefs)
		_, err := h.provisionVerifiedStep(ctx, &manifest.Manifest{Name: "x"})
		h.stores.release()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "verified_agents") {
			t.Errorf("%+v: got %v, want %q", c.cfg, err, c.want)
		}
	}
}

// The whole block parses into the JSON the module reads.
func TestVerifiedAgentsCaddyfile(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`verified_agents {
		pin https://chatgpt.com /etc/caddy/chatgpt.jwks
		trusted_ca /etc/caddy/private-ca.pem
		allow_networks 10.0.0.0/8 fd00::/8
		allow_ports 8443 9443
		on_invalid refuse
		shared_cache redis redis://cache:6379/1
		agents https://chatgpt.com https://agent.example
		directory_urls
		clock_skew 30s
		max_validity 1h
		fetch_timeout 2s
	}`)
	d.Next()
	if err := h.parseVerifiedAgents(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.VerifiedAgents)
	want := `{"pinned":[{"agent":"https://chatgpt.com","keys_file":"/etc/caddy/chatgpt.jwks"}],"trusted_ca_files":["/etc/caddy/private-ca.pem"],` +
		`"allow_networks":["10.0.0.0/8","fd00::/8"],"allow_ports":[8443,9443],"on_invalid":"refuse","shared_cache":"redis","shared_cache_redis":"redis://cache:6379/1",` +
		`"agents":["https://chatgpt.com","https://agent.example"],"directory_urls":true,"clock_skew":30000000000,"max_validity":3600000000000,"fetch_timeout":2000000000}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	h = Handler{VerifiedAgents: &VerifiedAgentsConfig{}}
	d = caddyfile.NewTestDispenser("verified_agents off")
	d.Next()
	if err := h.parseVerifiedAgents(d); err != nil || h.VerifiedAgents != nil {
		t.Fatalf("verified_agents off: %v %+v", err, h.VerifiedAgents)
	}
	d = caddyfile.NewTestDispenser("verified_agents")
	d.Next()
	if err := h.parseVerifiedAgents(d); err != nil || h.VerifiedAgents == nil {
		t.Fatalf("bare verified_agents: %v %+v", err, h.VerifiedAgents)
	}
}

// The shared directory cache follows the rate limit's Redis unless told.
func TestVerifiedSharedCacheURL(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	redisRL := &RateLimitConfig{Store: "redis", Redis: "redis://limits:6379/0"}
	for _, c := range []struct {
		cfg  VerifiedAgentsConfig
		rl   *RateLimitConfig
		want string
	}{
		{VerifiedAgentsConfig{}, nil, ""},
		{VerifiedAgentsConfig{}, &RateLimitConfig{Store: "memory"}, ""},
		{VerifiedAgentsConfig{}, redisRL, "redis://limits:6379/0"},
		{VerifiedAgentsConfig{}, &RateLimitConfig{Off: true, Store: "redis", Redis: "redis://x:1"}, ""},
		{VerifiedAgentsConfig{SharedCache: "off"}, redisRL, ""},
		{VerifiedAgentsConfig{NoFetch: true}, redisRL, ""},
		{VerifiedAgentsConfig{SharedCache: "redis", SharedCacheRedis: "redis://dirs:6379/2"}, redisRL, "redis://dirs:6379/2"},
	} {
		got, err := c.cfg.sharedCacheURL(ctx, c.rl)
		if err != nil || got != c.want {
			t.Errorf("%+v %+v: %q %v, want %q", c.cfg, c.rl, got, err, c.want)
		}
	}
}

// allow_ports and allow_networks reach the verifier as the ports any host
// may use and the networks where any port may be used; fetches are
// budgeted by {client_ip}, else the peer.
func TestVerifiedOptions(t *testing.T) {
	c := VerifiedAgentsConfig{AllowNetworks: []string{"10.1.0.0/16"}, AllowPorts: []int{8443}}
	opts, _, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(opts.AllowPorts) != "[8443]" || fmt.Sprint(opts.AnyPortOn) != "[10.1.0.0/16]" || opts.ClientAddr == nil {
		t.Fatalf("AllowPorts %v, AnyPortOn %v, ClientAddr set %v", opts.AllowPorts, opts.AnyPortOn, opts.ClientAddr != nil)
	}
	r, _ := caddyRequest("GET", "/")
	r.RemoteAddr = "198.51.100.7:5000"
	if a := opts.ClientAddr(r); a.String() != "198.51.100.7" {
		t.Fatalf("without {client_ip}: %v", a)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "2001:db8::7"}))
	if a := opts.ClientAddr(r); a.String() != "2001:db8::7" {
		t.Fatalf("with {client_ip}: %v", a)
	}
}

// Directory fetches follow the callback address rules; allow_networks
// opens exactly the networks it names.
func TestDirectoryAddrCheck(t *testing.T) {
	check := directoryAddrCheck(nil)
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1", "fe80::1", "100.64.0.1", "0.0.0.0"} {
		if err := check(netip.MustParseAddr(a)); err == nil {
			t.Errorf("%s admitted", a)
		} else if strings.Contains(err.Error(), "callback") {
			t.Errorf("%s: the message speaks of callbacks: %v", a, err)
		}
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111"} {
		if err := check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	check = directoryAddrCheck([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err := check(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("an allowed network refused: %v", err)
	}
	if err := check(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("allowing 127.0.0.0/8 admitted 10.0.0.1")
	}
}

// Metrics: each outcome, listed agents by name and others as "other".
func TestVerifiedObserver(t *testing.T) {
	m, err := registerVerifiedMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := newVerifiedObserver(m, "obs-test", []string{"https://listed.example"})
	count := func(outcome, agent string) float64 {
		return testCounterValue(t, m.requests.WithLabelValues("obs-test", outcome, agent))
	}
	o.outcome(webbotauth.Verified, "https://listed.example")
	o.outcome(webbotauth.Verified, "https://unlisted.example")
	o.outcome(webbotauth.Verified, "https://unlisted2.example")
	o.outcome(webbotauth.Invalid, "")
	o.outcome(webbotauth.Unverified, "")
	o.outcome(webbotauth.Unsigned, "")
	o.outcome(webbotauth.Unsigned, "")
	o.fetched("u", nil)
	o.fetched("u", fmt.Errorf("x"))
	for _, c := range []struct {
		outcome, agent string
		want           float64
	}{{"verified", "https://listed.example", 1}, {"verified", "other", 2}, {"invalid", "", 1}, {"unverified", "", 1}, {"unsigned", "", 2}} {
		if got := count(c.outcome, c.agent); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.outcome, c.agent, got, c.want)
		}
	}
	if testCounterValue(t, m.fetches.WithLabelValues("obs-test", "ok")) != 1 || testCounterValue(t, m.fetches.WithLabelValues("obs-test", "error")) != 1 {
		t.Error("fetch counters")
	}
}

// A failing shared cache is counted per site in
// caddy_ahp_verified_agents_shared_cache_errors_total.
func TestVerifiedSharedCacheErrorsCounted(t *testing.T) {
	rs := redistest.Start(t)
	url := "redis://" + rs.Addr() + "/0"
	rs.Kill()
	step := provisionStep(t, "verified_agents {\n shared_cache redis "+url+"\n fetch_timeout 250ms\n}")
	m, err := registerVerifiedMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := m.sharedErrors.WithLabelValues("Test shop")
	before := testCounterValue(t, errs)
	agent := newWBAAgent(t, "https://agent.example")
	r, _ := caddyRequest("GET", "/")
	agent.sign(r.Header, "shop.example", "/", time.Now())
	step.serve(httptest.NewRecorder(), r)
	if got := testCounterValue(t, errs) - before; got != 1 {
		t.Fatalf("shared_cache_errors_total rose by %v for one request with Redis down, want 1", got)
	}
}

// An unsigned request costs no allocation once the request's replacer
// holds the placeholders' keys.
func TestVerifiedStepUnsignedAllocations(t *testing.T) {
	agent := newWBAAgent(t, "https://agent.example")
	step := provisionStep(t, "verified_agents {\n pin https://agent.example "+writeFile(t, "a.jwk", agent.jwk)+"\n}")
	r, _ := caddyRequest("GET", "/")
	w := httptest.NewRecorder()
	step.serve(w, r)
	if n := testing.AllocsPerRun(100, func() { step.serve(w, r) }); n != 0 {
		t.Fatalf("%v allocations per unsigned request", n)
	}
}

// FuzzVerifiedAgentsCaddyfile: no block makes the parser panic, and what
// it accepts survives a JSON round trip.
func FuzzVerifiedAgentsCaddyfile(f *testing.F) {
	f.Add("verified_agents {\n pin https://a.example /k\n fetch off\n}")
	f.Add("verified_agents {\n allow_networks 10.0.0.0/8 ::/0\n shared_cache redis\n agents https://x.example:8443\n}")
	f.Add("verified_agents {\n allow_ports 8443 0 x\n}")
	f.Add("verified_agents off")
	f.Fuzz(func(t *testing.T, in string) {
		var h Handler
		d, ok := fuzzDispenser(in)
		if !ok || !d.Next() {
			return
		}
		if err := h.parseVerifiedAgents(d); err != nil || h.VerifiedAgents == nil {
			return
		}
		b, err := json.Marshal(h.VerifiedAgents)
		if err != nil {
			t.Fatal(err)
		}
		var back VerifiedAgentsConfig
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
	})
}

func testCounterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
