package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// discardWriter is a ResponseWriter that allocates nothing per request, so
// the benchmarks measure the gateway, not the recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardWriter) reset() {
	clear(d.h)
	d.status = 0
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// conciergeAnswer is a typical concierge reply: an answer and its meta.
var conciergeAnswer = []byte(`{"status":"success","response":{"answer":"The showroom is open 9 to 5."},"meta":{"tokens_used":42,"capability_used":"site_info"}}`)

// conciergeNext stands for reverse_proxy to the concierge: it reads and
// closes the forwarded body (as net/http's Transport does) and answers JSON.
var conciergeNext = nextFunc(func(w http.ResponseWriter, r *http.Request) error {
	var buf [512]byte
	for {
		if _, err := r.Body.Read(buf[:]); err != nil {
			break
		}
	}
	r.Body.Close()
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(conciergeAnswer)
	return err
})

var converseRequest = []byte(`{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}`)

const testKey = "Zq3xV9tL0pR7mK2wY8bN4cH6"

type testOptions struct {
	limits   bool
	redis    bool // the limits in a real Redis, as caddymodule builds the store
	keys     bool
	perAgent limiter.Limit
	unauth   limiter.Limit
	client   func(*http.Request) string
	budget   int64 // the session token budget (§11.4)
	ceiling  int   // the max_tokens ceiling (§11.4)
	cors     bool
	verified limiter.Limit              // the verified tier (Web Bot Auth agents)
	agent    func(*http.Request) string // the verified agent of a request
	status   func(error) int            // Config.ErrorStatus (Caddy's error status)
	resolver converse.Resolver          // resolves callback hosts
	answerer Answerer                   // the built-in concierge
}

func testGateway(t testing.TB, o testOptions) *Gateway {
	t.Helper()
	yes := true
	m, _, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		Endpoints:      &manifest.Endpoints{Converse: "/agent/converse"},
		Authentication: manifest.AuthBearer,
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Capabilities: []manifest.Capability{
			{Name: "site_info", Mode: "MODE2", Description: "General information"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Manifest: m, Rules: converse.NewRules(m, converse.Options{MaxTokensCeiling: o.ceiling, Resolver: o.resolver}), EchoSignals: true,
		CORS: o.cors, VerifiedAgent: o.agent, ErrorStatus: o.status, Answerer: o.answerer}
	if o.keys {
		k, err := auth.ParseKeys(strings.NewReader("bench-bot: " + testKey + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Keys = k
	}
	if o.limits {
		var store limiter.Store = limiter.NewMemory(limiter.MemoryOptions{})
		if o.redis {
			srv := redistest.Start(t)
			client, err := limiter.NewRedisClient("redis://" + srv.Addr() + "/0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { client.Close() })
			store = limiter.NewResilient(limiter.NewRedis(client, limiter.RedisOptions{}), store, limiter.ResilientOptions{FailOpen: true})
		}
		t.Cleanup(func() { store.Close() })
		huge := limiter.Limit{Events: 1 << 40, Window: time.Minute}
		unauth := o.unauth
		if unauth.Events == 0 {
			unauth = huge
		}
		client := o.client
		if client == nil {
			client = func(*http.Request) string { return "192.0.2.7" }
		}
		cfg.Limits = ratelimit.New(ratelimit.Config{Store: store, Zone: "test", Unauthenticated: unauth, Authenticated: huge,
			Static: huge, PerAgent: o.perAgent, Verified: o.verified, TokenBudget: o.budget, ClientKey: client})
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func post(g *Gateway, body string, headers ...string) (*httptest.ResponseRecorder, []*http.Request) {
	var seen []*http.Request
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = append(seen, r.Clone(r.Context()))
		return conciergeNext(w, r)
	})
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(body))
	setHeaders(r.Header, headers)
	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, r, g.Route(r.URL, nil), next)
	return w, seen
}

// answering is a concierge that answers body.
func answering(body string) nextFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write([]byte(body))
		return err
	}
}

// setHeaders gives a call its Content-Type, application/json unless
// headers name another, and adds the other name, value pairs of headers.
func setHeaders(h http.Header, headers []string) {
	h.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Content-Type" {
			h.Set(headers[i], headers[i+1])
			continue
		}
		h.Add(headers[i], headers[i+1])
	}
}

// call posts body to the converse endpoint with next as the concierge.
func call(g *Gateway, body string, next Next, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(body))
	setHeaders(r.Header, headers)
	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, r, ConverseRoute, next)
	return w
}

// A call and a poll are one request and one answer: the gateway forwards
// no protocol upgrade (h2c, WebSocket), which reverse_proxy would answer
// with the concierge's 101 and a tunnel past every later check; nor the
// hop-by-hop fields Connection names.
func TestNoUpgradeIsForwarded(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	for _, upgrade := range []string{"h2c", "websocket"} {
		var seen http.Header
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			seen = r.Header.Clone()
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		hop := []string{"Connection", "Upgrade, HTTP2-Settings, X-Hop", "Upgrade", upgrade,
			"Http2-Settings", "AAMAAABkAARAAAAAAAIAAAAA", "X-Hop", "1", "Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
		call(g, `{"capability":"site_info","query":"hi"}`, next, hop...)
		poll := httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
		poll.Header.Set("Authorization", "Bearer "+testKey)
		for i := 0; i+1 < len(hop); i += 2 {
			poll.Header.Add(hop[i], hop[i+1])
		}
		var polled http.Header
		_ = g.ServeHTTP(httptest.NewRecorder(), poll, g.Route(poll.URL, nil), nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			polled = r.Header.Clone()
			return nil
		}))
		for path, h := range map[string]http.Header{"call": seen, "poll": polled} {
			if h == nil {
				t.Fatalf("%s, Upgrade: %s: not forwarded", path, upgrade)
			}
			for _, k := range []string{"Connection", "Upgrade", "Http2-Settings", "X-Hop"} {
				if v, ok := h[k]; ok {
					t.Errorf("%s, Upgrade: %s: forwarded %s: %q", path, upgrade, k, v)
				}
			}
		}
	}
}

// A 429 carries Retry-After (spec §11.1), the exhausted token budget's
// too (§11.4): the session's idle timeout, after which it is gone; the body
// keeps retry_after null (retrying in that session will not help).
func TestBudgetRefusalCarriesRetryAfter(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, budget: 100})
	next := answering(`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"tokens_used":150}}`)
	call(g, `{"capability":"site_info","query":"hi"}`, next)
	w := call(g, `{"capability":"site_info","query":"again","session_id":"s1"}`, next)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second turn: %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != "600" {
		t.Errorf("Retry-After %q, want 600 (the default idle timeout)", got)
	}
	if body := w.Body.String(); !strings.Contains(body, `"scope":"session_tokens"`) || !strings.Contains(body, `"retry_after":null`) {
		t.Errorf("429 body %s, want scope session_tokens and retry_after null", body)
	}
}

// Spec §11.4: "Honor the context.max_tokens hint from visiting agents, and
// enforce a hard ceiling regardless": an agent that leaves the hint out
// reaches the concierge with the ceiling, not without one.
func TestMaxTokensCeilingHoldsWithoutTheHint(t *testing.T) {
	g := testGateway(t, testOptions{ceiling: 500})
	for body, want := range map[string]string{
		`{"capability":"site_info","query":"write me a novel"}`:                               `{"capability":"site_info","query":"write me a novel","context":{"max_tokens":500}}`,
		`{"capability":"site_info","query":"write me a novel","context":{"locale":"en"}}`:     `{"capability":"site_info","query":"write me a novel","context":{"max_tokens":500,"locale":"en"}}`,
		`{"capability":"site_info","query":"write me a novel","context":{"max_tokens":9000}}`: `{"capability":"site_info","query":"write me a novel","context":{"max_tokens":500}}`,
		`{"capability":"site_info","query":"a haiku","context":{"max_tokens":50}}`:            `{"capability":"site_info","query":"a haiku","context":{"max_tokens":50}}`,
	} {
		var fwd []byte
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			var err error
			if fwd, err = io.ReadAll(r.Body); err != nil {
				return err
			}
			if r.ContentLength != int64(len(fwd)) {
				t.Errorf("Content-Length %d for a body of %d bytes", r.ContentLength, len(fwd))
			}
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		for range 2 { // the second time with a pooled buffer
			if w := call(g, body, next); w.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", body, w.Code, w.Body)
			}
			if string(fwd) != want {
				t.Errorf("forwarded %s\nwant      %s", fwd, want)
			}
		}
	}
}

// An async job's tokens arrive with its result on the status path (§9.1:
// "the response follows the standard success format"): they count against
// the session's budget (§11.4) once, however often the result is polled;
// a pending answer and a HEAD count nothing.
func TestAsyncResultTokensCountOnce(t *testing.T) {
	poll := func(g *Gateway, method, answer string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, "/agent/converse/status/job1", nil)
		r.Header.Set("Authorization", "Bearer "+testKey)
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, g.Route(r.URL, nil), answering(answer))
		if w.Code != http.StatusOK {
			t.Fatalf("poll: %d %s", w.Code, w.Body)
		}
		return w
	}
	accepted := answering(`{"status":"accepted","session_id":"job1","eta_seconds":1,"poll":"/agent/converse/status/job1"}`)
	next := answering(`{"status":"success","response":{"answer":"x"}}`)
	done := `{"status":"success","session_id":"job1","response":{"answer":"done"},"meta":{"tokens_used":60}}`

	g := testGateway(t, testOptions{limits: true, budget: 100})
	if w := call(g, `{"capability":"site_info","query":"long job"}`, accepted); w.Code != http.StatusOK {
		t.Fatalf("call: %d %s", w.Code, w.Body)
	}
	poll(g, http.MethodGet, `{"status":"pending","session_id":"job1","meta":{"tokens_used":500}}`)
	poll(g, http.MethodHead, done)
	// Unchanged but for the content signals echoed (§7).
	const echoed = `{"status":"success","session_id":"job1","response":{"answer":"done"},"meta":{"content_signals":{"ai_input":true},"tokens_used":60}}`
	if w := poll(g, http.MethodGet, done); w.Body.String() != echoed {
		t.Errorf("the result was changed on its way: %s", w.Body)
	}
	poll(g, http.MethodGet, done) // polled again: counted already
	if w := call(g, `{"capability":"site_info","query":"follow up","session_id":"job1"}`, next); w.Code != http.StatusOK {
		t.Fatalf("after one result of 60 tokens against a budget of 100, the next turn got %d %s", w.Code, w.Body)
	}
	// A second job in the session: its result counts too.
	call(g, `{"capability":"site_info","query":"another long job","session_id":"job1"}`, accepted)
	poll(g, http.MethodGet, done)
	if w := call(g, `{"capability":"site_info","query":"follow up","session_id":"job1"}`, next); w.Code != http.StatusTooManyRequests {
		t.Errorf("after two results of 60 tokens against a budget of 100, the next turn got %d, want 429 session_tokens", w.Code)
	}
}

func TestRoute(t *testing.T) {
	g := testGateway(t, testOptions{})
	u := func(s string) *url.URL { v, _ := url.ParseRequestURI(s); return v }
	cases := []struct {
		path, original string
		want           Route
	}{
		{"/agent/converse", "", ConverseRoute},
		{"/agent/converse/status/abc", "", StatusRoute},
		{"/AGENT/converse", "", VariantRoute},
		{"/agent/converse/", "", VariantRoute},
		{"/agent/converse/status//abc", "", VariantRoute},
		{"/about", "", NotGateway},
		// A rewrite onto the converse path is guarded; one away from it too.
		{"/agent/converse", "/old-api", ConverseRoute},
		{"/internal/converse", "/agent/converse", ConverseRoute},
		{"/agent/converse", "/Agent/Converse", VariantRoute},
	}
	for _, c := range cases {
		var orig *url.URL
		if c.original != "" {
			orig = u(c.original)
		}
		if got := g.Route(u(c.path), orig); got != c.want {
			t.Errorf("Route(%s, original %q) = %d, want %d", c.path, c.original, got, c.want)
		}
	}
}

func TestConverseRequiresJSON(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(string(converseRequest)))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		called := false
		_ = g.ServeHTTP(w, r, ConverseRoute, nextFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil }))
		if w.Code != http.StatusUnsupportedMediaType || called || w.Header().Get("X-RateLimit-Remaining") == "" {
			t.Errorf("Content-Type %q: %d, concierge called %v, rate headers %q", ct, w.Code, called, w.Header().Get("X-RateLimit-Remaining"))
		}
	}
	if w, _ := post(g, string(converseRequest), "Content-Type", "application/json; charset=utf-8"); w.Code != http.StatusOK {
		t.Errorf("application/json; charset=utf-8: %d %s", w.Code, w.Body)
	}
}

func TestOnlyVerifiedCredentialsAreForwarded(t *testing.T) {
	g := testGateway(t, testOptions{keys: true})
	body := string(converseRequest)
	w, seen := post(g, body, "Authorization", "Bearer "+testKey)
	if w.Code != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Authorization") != "Bearer "+testKey {
		t.Fatalf("a verified key: %d, forwarded %v", w.Code, seen)
	}
	w, seen = post(g, body)
	if w.Code != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Authorization") != "" || seen[0].Header.Get("X-Ahp-Key") != "" {
		t.Fatalf("no credential: %d, forwarded headers %v", w.Code, seen)
	}
}

func TestAuthRequiredCarriesAChallenge(t *testing.T) {
	g := testGateway(t, testOptions{keys: true})
	for name, h := range map[string][]string{"no credential": nil, "other scheme": {"Authorization", "Basic YWxpY2U6c2VjcmV0"}} {
		body := `{"capability":"site_info","query":"hi"}`
		w, _ := post(g, body, h...)
		if name == "no credential" {
			continue // site_info needs none: answered
		}
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="ahp"` {
			t.Errorf("%s: %d, WWW-Authenticate %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestConverseEntryPointRefusesWithoutWriting(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", nil)
	w := httptest.NewRecorder()
	refusal, err := g.Converse(w, r, []byte(`{"capability":"nope","query":"x"}`), conciergeNext)
	if err != nil || refusal == nil || refusal.Code != "unknown_capability" {
		t.Fatalf("refusal %v, err %v", refusal, err)
	}
	if w.Body.Len() != 0 || w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Limit") == "" {
		t.Fatalf("the entry point wrote %d %q, headers %v", w.Code, w.Body, w.Header())
	}
	refusal, err = g.Converse(w, r, converseRequest, conciergeNext)
	if err != nil || refusal != nil || !bytes.Contains(w.Body.Bytes(), []byte(`"content_signals"`)) {
		t.Fatalf("admitted call: refusal %v, err %v, body %s", refusal, err, w.Body)
	}
}

// A client over its own limit must not spend the agent window it shares
// with every client claiming that agent (security review, point 2).
func TestRefusedCallsSpendNoSharedWindow(t *testing.T) {
	var client string
	g := testGateway(t, testOptions{limits: true, unauth: limiter.Limit{Events: 3, Window: time.Minute},
		perAgent: limiter.Limit{Events: 5, Window: time.Minute}, client: func(*http.Request) string { return client }})
	body := `{"capability":"site_info","query":"hi","context":{"requesting_agent":"VictimBot/1.0"}}`
	client = "198.51.100.66"
	for range 20 {
		post(g, body)
	}
	client = "203.0.113.10"
	admitted := 0
	for range 5 {
		if w, _ := post(g, body); w.Code == http.StatusOK {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("the victim got %d of VictimBot's 5 after the attacker's 3 admitted calls; want 2", admitted)
	}
}

// per_agent counts a verified key's calls under the key, whatever name
// the agent types.
func TestPerAgentKeyedOnVerifiedKey(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, keys: true, perAgent: limiter.Limit{Events: 2, Window: time.Minute}})
	statuses := []int{}
	for i := range 3 {
		body := `{"capability":"site_info","query":"hi","context":{"requesting_agent":"name-` + string(rune('a'+i)) + `"}}`
		w, _ := post(g, body, "Authorization", "Bearer "+testKey)
		statuses = append(statuses, w.Code)
	}
	if statuses[2] != http.StatusTooManyRequests {
		t.Fatalf("three calls with one key and three names: %v; want the third refused", statuses)
	}
}

// benchConverse posts a typical converse request through the gateway.
// Compare with BenchmarkConverseBaseline, the concierge alone.
func benchConverse(b *testing.B, g *Gateway) {
	w := &discardWriter{h: http.Header{}}
	body := bytes.NewReader(converseRequest)
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", body)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		body.Reset(converseRequest)
		r.Body = io.NopCloser(body)
		if g == nil {
			_ = conciergeNext.ServeHTTP(w, r)
		} else {
			_ = g.ServeHTTP(w, r, ConverseRoute, conciergeNext)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkConverseBaseline(b *testing.B) { benchConverse(b, nil) }

// BenchmarkConverse: validation, concierge answer inspection and signal
// echo, no limits.
func BenchmarkConverse(b *testing.B) { benchConverse(b, testGateway(b, testOptions{})) }

// BenchmarkConverseLimited adds the memory store's decision and headers.
func BenchmarkConverseLimited(b *testing.B) {
	benchConverse(b, testGateway(b, testOptions{limits: true}))
}

// BenchmarkConverseRedis decides in a real Redis (loopback), one caller.
func BenchmarkConverseRedis(b *testing.B) {
	benchConverse(b, testGateway(b, testOptions{limits: true, redis: true}))
}

// BenchmarkConverseRedisParallel: 32 concurrent calls, as wrk -c32 sends,
// sharing the store's round trips.
func BenchmarkConverseRedisParallel(b *testing.B) {
	g := testGateway(b, testOptions{limits: true, redis: true})
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		body := bytes.NewReader(converseRequest)
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", body)
		r.Header.Set("Content-Type", "application/json")
		for pb.Next() {
			w.reset()
			body.Reset(converseRequest)
			r.Body = io.NopCloser(body)
			_ = g.ServeHTTP(w, r, ConverseRoute, conciergeNext)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// A poll is charged to the tier its caller's calls are: a Web Bot Auth
// agent's to the verified tier, as a key holder's to the authenticated one.
func TestStatusPollTierOfAVerifiedAgent(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, unauth: limiter.Limit{Events: 5, Window: time.Minute},
		verified: limiter.Limit{Events: 50, Window: time.Minute},
		agent:    func(r *http.Request) string { return r.Header.Get("X-Test-Agent") }})
	poll := func(wantStatus int, headers ...string) string {
		r := httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, g.Route(r.URL, nil), answering(`{"status":"pending","session_id":"job1"}`))
		if w.Code != wantStatus {
			t.Errorf("poll with %q: %d, want %d", headers, w.Code, wantStatus)
		}
		return w.Header().Get("X-Ratelimit-Limit")
	}
	// Without keys to verify against, a bearer passes unverified, so the
	// agent's proven identity chooses the tier.
	if got := poll(http.StatusOK, "X-Test-Agent", "https://agent.example", "Authorization", "Bearer "+testKey); got != "50" {
		t.Errorf("a verified agent's poll: X-RateLimit-Limit %q, want 50 (the verified tier)", got)
	}
	// A poll without a credential is refused, and charged as a refused
	// call is, to the unauthenticated tier, whoever the agent is.
	for _, agent := range []string{"", "https://agent.example"} {
		if got := poll(http.StatusUnauthorized, "X-Test-Agent", agent); got != "5" {
			t.Errorf("a poll without a credential (agent %q): X-RateLimit-Limit %q, want 5 (unauthenticated)", agent, got)
		}
	}
}

// The common hop-by-hop tokens cost no allocation, every field a
// Connection names goes with it, Expect and the callback addresses go
// always, and Content-Length, Content-Encoding and Accept-Encoding when
// the caller says.
func TestDropForwarded(t *testing.T) {
	fields := func() http.Header {
		return http.Header{"Connection": {"keep-alive, Upgrade", "x-hop"}, "Keep-Alive": {"timeout=5"}, "Upgrade": {"h2c"},
			"X-Hop": {"1"}, "Http2-Settings": {"AA"}, "Accept": {"*/*"}, "X-Ahp-Callback-Addrs": {"10.0.0.1"},
			"Content-Length": {"12"}, "Content-Encoding": {"gzip"}, "Accept-Encoding": {"gzip"}, "Expect": {"100-continue"}}
	}
	for _, c := range []struct {
		length, encoding bool
		want             []string
	}{
		{false, false, []string{"Accept", "Accept-Encoding", "Content-Encoding", "Content-Length"}},
		{true, false, []string{"Accept", "Accept-Encoding"}},
		{true, true, []string{"Accept"}},
	} {
		h := fields()
		dropForwarded(h, c.length, c.encoding)
		got := make([]string, 0, len(h))
		for k := range h {
			got = append(got, k)
		}
		sort.Strings(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("length %v, encoding %v: left %v, want %v", c.length, c.encoding, got, c.want)
		}
	}
	conn, ka := []string{"keep-alive"}, []string{"timeout=5"}
	h := http.Header{}
	if n := testing.AllocsPerRun(100, func() {
		h["Connection"], h["Keep-Alive"] = conn, ka
		dropForwarded(h, true, true)
	}); n != 0 {
		t.Errorf("dropForwarded with Connection: keep-alive allocates %v times", n)
	}
}

// TestMethodNotAllowedAllow: a 405's Allow lists what the path answers,
// OPTIONS only when cors answers preflights (without cors an OPTIONS is
// itself refused with 405), and each response's value is its own.
func TestMethodNotAllowedAllow(t *testing.T) {
	for _, cors := range []bool{false, true} {
		g := testGateway(t, testOptions{cors: cors})
		for _, c := range []struct {
			method, path string
			route        Route
			want         string
		}{
			{http.MethodGet, "/agent/converse", ConverseRoute, "POST"},
			{http.MethodOptions, "/agent/converse", ConverseRoute, "POST"},
			{http.MethodPost, "/agent/converse/status/job1", StatusRoute, "GET, HEAD"},
			{http.MethodOptions, "/agent/converse/status/job1", StatusRoute, "GET, HEAD"},
		} {
			if cors {
				if c.method == http.MethodOptions {
					continue // a preflight, answered 204
				}
				c.want += ", OPTIONS"
			}
			serve := func() *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				_ = g.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil), c.route, conciergeNext)
				return w
			}
			w := serve()
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != c.want {
				t.Errorf("cors=%v %s %s: %d Allow %q, want 405 Allow %q", cors, c.method, c.path, w.Code, w.Header().Get("Allow"), c.want)
			}
			w.Header()["Allow"][0] = "edited" // as Caddy's header handler edits values in place
			if got := serve().Header().Get("Allow"); got != c.want {
				t.Errorf("cors=%v %s %s: next response's Allow %q, want %q (one response's edit must not reach another)", cors, c.method, c.path, got, c.want)
			}
		}
	}
}

// A forwarded call reaches the concierge without what dropForwarded
// removes (its unit test above), Content-Length written from the body;
// a poll keeps the agent's Accept-Encoding (its answer is not edited).
func TestForwardedCallFields(t *testing.T) {
	g := testGateway(t, testOptions{})
	_, seen := post(g, `{"capability":"site_info","query":"hi"}`, "Accept-Encoding", "gzip", "Connection", "Upgrade",
		"Upgrade", "h2c", "X-Ahp-Callback-Addrs", "10.0.0.1")
	if len(seen) != 1 {
		t.Fatalf("the concierge saw %d calls", len(seen))
	}
	for _, k := range []string{"Accept-Encoding", "Connection", "Upgrade", "X-Ahp-Callback-Addrs", "Content-Length"} {
		if v, ok := seen[0].Header[k]; ok {
			t.Errorf("call: %s %q forwarded", k, v)
		}
	}
	if seen[0].ContentLength <= 0 {
		t.Errorf("call: ContentLength %d", seen[0].ContentLength)
	}
	var polled http.Header
	r := httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
	r.Header.Set("Authorization", "Bearer "+testKey)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Upgrade", "websocket")
	_ = g.ServeHTTP(httptest.NewRecorder(), r, StatusRoute, nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		polled = r.Header.Clone()
		return answering(`{"status":"pending","session_id":"job1"}`)(w, r)
	}))
	if polled.Get("Accept-Encoding") != "gzip" || polled.Get("Upgrade") != "" {
		t.Errorf("poll: forwarded %v, want Accept-Encoding kept and Upgrade dropped", polled)
	}
}

// TestStatusPollNeedsACredential: a job's result is never an anonymous
// read (§5.3: async capabilities MUST require authentication; §4.4.3: the
// same at every door). Before, a poll without any credential reached the
// concierge while a wrong one was refused.
func TestStatusPollNeedsACredential(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, keys: true})
	for _, c := range []struct {
		name, authorization string
		want                int
	}{
		{"no credential", "", http.StatusUnauthorized},
		{"a wrong key", "Bearer not-the-key-at-all", http.StatusForbidden},
		{"another scheme", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"the key", "Bearer " + testKey, http.StatusOK},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			r := httptest.NewRequest(method, "/agent/converse/status/job1", nil)
			if c.authorization != "" {
				r.Header.Set("Authorization", c.authorization)
			}
			reached := false
			w := httptest.NewRecorder()
			_ = g.ServeHTTP(w, r, g.Route(r.URL, nil), nextFunc(func(w http.ResponseWriter, r *http.Request) error {
				reached = true
				return answering(`{"status":"pending","session_id":"job1"}`)(w, r)
			}))
			if w.Code != c.want || reached != (c.want == http.StatusOK) {
				t.Errorf("%s %s: %d, concierge reached %v; want %d", method, c.name, w.Code, reached, c.want)
			}
			if c.name == "no credential" && method == http.MethodGet {
				if w.Header().Get("Www-Authenticate") == "" || !strings.Contains(w.Body.String(), "status poll requires authentication") {
					t.Errorf("a poll without a credential: %v %s, want a challenge and a message about polls", w.Header(), w.Body)
				}
			}
		}
	}
}
