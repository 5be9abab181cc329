package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// concierge is a site's converse service that records what reached it.
type concierge struct {
	*httptest.Server
	mu       sync.Mutex
	received []recorded
	// answer builds the reply to a request; nil gives a fixed success.
	answer func(req map[string]any) (status int, contentType, body string)
}

type recorded struct {
	path   string
	body   []byte
	header http.Header
}

func newConcierge(t testing.TB) *concierge {
	c := &concierge{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.received = append(c.received, recorded{path: r.URL.Path, body: body, header: r.Header.Clone()})
		answer := c.answer
		c.mu.Unlock()
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		status, ct, out := 200, "application/json", `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"We are open Tuesday to Saturday."},"meta":{"tokens_used":10,"mode":"MODE2"}}`
		if answer != nil {
			status, ct, out = answer(req)
		}
		if strings.HasPrefix(r.URL.Path, "/agent/converse/status/") {
			out = `{"status":"pending","session_id":"` + strings.TrimPrefix(r.URL.Path, "/agent/converse/status/") + `","eta_seconds":30}`
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		fmt.Fprint(w, out)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *concierge) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.received)
}

func (c *concierge) last() recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[len(c.received)-1]
}

func (c *concierge) setAnswer(f func(req map[string]any) (int, string, string)) {
	c.mu.Lock()
	c.answer = f
	c.mu.Unlock()
}

// gatewaySite is a site with the gateway in front of a concierge; extra
// goes inside the ahp block (rate limits, keys...).
func gatewaySite(conciergeAddr, extra string) string {
	return fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
	ahp {
		name "Gateway Test"
		converse /agent/converse
		authentication bearer
		content_signals {
			ai_train false
			ai_input true
		}
		capability site_info {
			mode MODE2
			description "About the site"
			response_types text/answer
		}
		capability get_video {
			mode MODE2
			description "A video"
			response_types media/video
		}
		capability book_demo {
			mode MODE3
			action_type action
			description "Book a demo"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
		%s
	}
	handle /agent/* {
		reverse_proxy %s
	}
	respond "legacy site" 200
}`, extra, conciergeAddr)
}

func (s *caddyServer) converse(body string, headers ...string) response {
	s.T().Helper()
	return s.do(http.MethodPost, "/agent/converse", strings.NewReader(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

func writeKeys(t *testing.T, keys ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodKey = "Zq3xV9tL0pR7mK2wY8bN4cH6"

func assertRateHeaders(t *testing.T, what string, r response) {
	t.Helper()
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window"} {
		if r.Header.Get(h) == "" {
			t.Errorf("%s: %s missing (headers %v)", what, h, r.Header)
		}
	}
}

// Every refusal is the spec's error body, carries Link and the rate-limit
// headers, and never reaches the concierge.
func TestGatewayRejects(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}"))

	big := `{"capability":"site_info","query":"` + strings.Repeat("a", 9000) + `"}`
	cases := []struct {
		name    string
		method  string
		body    string
		headers []string
		status  int
		code    string
		check   func(t *testing.T, body map[string]any)
	}{
		{"GET", http.MethodGet, "", nil, 405, "invalid_request", nil},
		{"too large", http.MethodPost, big, nil, 413, "request_too_large", nil},
		{"not JSON", http.MethodPost, `capability=site_info`, nil, 400, "invalid_request", nil},
		{"not an object", http.MethodPost, `["site_info"]`, nil, 400, "invalid_request", nil},
		{"wrong type", http.MethodPost, `{"capability":"site_info","query":42}`, nil, 400, "invalid_request", func(t *testing.T, b map[string]any) {
			if !strings.Contains(b["message"].(string), "query") {
				t.Errorf("message does not name the field: %v", b["message"])
			}
		}},
		{"wrong context type", http.MethodPost, `{"capability":"site_info","query":"q","context":{"max_tokens":"lots"}}`, nil, 400, "invalid_request", func(t *testing.T, b map[string]any) {
			if !strings.Contains(b["message"].(string), "max_tokens") {
				t.Errorf("message does not name the field: %v", b["message"])
			}
		}},
		{"unknown field", http.MethodPost, `{"capability":"site_info","query":"q","colour":"blue"}`, nil, 400, "invalid_request", nil},
		{"missing query", http.MethodPost, `{"capability":"site_info"}`, nil, 400, "missing_field", nil},
		{"missing capability", http.MethodPost, `{"query":"hello"}`, nil, 400, "missing_field", nil},
		{"unknown capability", http.MethodPost, `{"capability":"foobar","query":"q"}`, nil, 400, "unknown_capability", func(t *testing.T, b map[string]any) {
			caps, _ := b["available_capabilities"].([]any)
			if len(caps) != 3 {
				t.Errorf("available_capabilities = %v", b["available_capabilities"])
			}
		}},
		{"unsupported type", http.MethodPost, `{"capability":"get_video","query":"q","context":{"accept_types":["text/answer"]}}`, nil, 400, "unsupported_type", func(t *testing.T, b map[string]any) {
			if types, _ := b["available_types"].([]any); len(types) != 1 || types[0] != "media/video" {
				t.Errorf("available_types = %v", b["available_types"])
			}
		}},
		{"action without credentials", http.MethodPost, `{"capability":"book_demo","query":"book Tuesday"}`, nil, 401, "auth_required", func(t *testing.T, b map[string]any) {
			if !strings.Contains(b["message"].(string), "Bearer") {
				t.Errorf("message does not say how to authenticate: %v", b["message"])
			}
		}},
		{"action with a wrong key", http.MethodPost, `{"capability":"book_demo","query":"book Tuesday"}`, []string{"Authorization", "Bearer wrong-key-wrong-key-wrong"}, 403, "forbidden", nil},
		{"callback over http", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"http://agent.example.com/cb"}}`, nil, 400, "invalid_request", nil},
		{"callback to a private address", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"https://10.0.0.7/cb"}}`, nil, 400, "invalid_request", nil},
		{"callback to metadata", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"https://169.254.169.254/latest"}}`, nil, 400, "invalid_request", nil},
		{"callback to mapped loopback", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"https://[::ffff:127.0.0.1]/cb"}}`, nil, 400, "invalid_request", nil},
		{"callback to localhost", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"https://localhost/cb"}}`, nil, 400, "invalid_request", nil},
		{"callback with user info", http.MethodPost, `{"capability":"site_info","query":"q","context":{"callback_url":"https://user:pw@agent.example.com/cb"}}`, nil, 400, "invalid_request", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.count()
			var r response
			if tc.method == http.MethodGet {
				r = s.get("/agent/converse")
			} else {
				r = s.converse(tc.body, tc.headers...)
			}
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.status, r.body)
			}
			assertErrorBody(t, r, tc.code)
			assertOneLink(t, tc.name, r)
			if tc.method != http.MethodGet {
				assertRateHeaders(t, tc.name, r)
			}
			if c.count() != before {
				t.Errorf("the concierge received a refused request: %s", c.last().body)
			}
			if tc.check != nil {
				var body map[string]any
				_ = json.Unmarshal(r.body, &body)
				tc.check(t, body)
			}
		})
	}
}

func TestGatewayForwards(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}\n\t\tmax_tokens 500"))

	body := `{"ahp":"0.1","capability":"site_info","query":"When are you open?","context":{"requesting_agent":"test-bot/1.0","max_tokens":2000}}`
	r := s.converse(body, "Accept-Encoding", "gzip")
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	got := c.last()
	var fwd map[string]any
	if err := json.Unmarshal(got.body, &fwd); err != nil {
		t.Fatalf("forwarded body is not JSON: %s", got.body)
	}
	if ctx := fwd["context"].(map[string]any); ctx["max_tokens"] != float64(500) || ctx["requesting_agent"] != "test-bot/1.0" {
		t.Errorf("max_tokens not capped to 500 or context changed: %s", got.body)
	}
	if fwd["query"] != "When are you open?" {
		t.Errorf("query changed: %s", got.body)
	}
	assertOneLink(t, "forwarded", r)
	assertRateHeaders(t, "forwarded", r)
	var answer map[string]any
	if err := json.Unmarshal(r.body, &answer); err != nil {
		t.Fatalf("answer is not JSON: %s", r.body)
	}
	meta := answer["meta"].(map[string]any)
	if sig, _ := meta["content_signals"].(map[string]any); sig["ai_train"] != false || sig["ai_input"] != true {
		t.Errorf("content_signals not echoed in meta: %s", r.body)
	}
	if meta["tokens_used"] != float64(10) || answer["response"].(map[string]any)["answer"] != "We are open Tuesday to Saturday." {
		t.Errorf("answer changed: %s", r.body)
	}
	// The gateway leaves a small answer's length and date to net/http
	// (gateway's holdOwnHeaders): both are still on the wire.
	if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) || len(r.TransferEncoding) > 0 {
		t.Errorf("Content-Length %s (Transfer-Encoding %v) for %d bytes", cl, r.TransferEncoding, len(r.body))
	}
	if d, err := http.ParseTime(r.Header.Get("Date")); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %q: want the answer's", r.Header.Get("Date"))
	}

	// Credentials travel in the header, never in the body.
	r = s.converse(`{"capability":"book_demo","query":"Book a demo on Tuesday","auth":"Bearer ` + goodKey + `"}`)
	if r.StatusCode != 200 {
		t.Fatalf("action with body auth: %d %s", r.StatusCode, r.body)
	}
	got = c.last()
	if strings.Contains(string(got.body), goodKey) || strings.Contains(string(got.body), `"auth"`) {
		t.Errorf("credential forwarded in the body: %s", got.body)
	}
	if got.header.Get("Authorization") != "Bearer "+goodKey {
		t.Errorf("Authorization forwarded = %q", got.header.Get("Authorization"))
	}
	r = s.converse(`{"capability":"book_demo","query":"Book a demo on Tuesday"}`, "Authorization", "Bearer "+goodKey)
	if r.StatusCode != 200 || c.last().header.Get("Authorization") != "Bearer "+goodKey {
		t.Errorf("action with header auth: %d", r.StatusCode)
	}
	// Verified credentials select the authenticated tier's limit (action here).
	if r.Header.Get("X-RateLimit-Limit") != "30" {
		t.Errorf("action tier limit header = %q, want 30", r.Header.Get("X-RateLimit-Limit"))
	}

	// A concierge answer that is not JSON passes through untouched.
	c.setAnswer(func(map[string]any) (int, string, string) { return 200, "application/json", `{"status":"success",` })
	r = s.converse(`{"capability":"site_info","query":"q"}`)
	if r.StatusCode != 200 || string(r.body) != `{"status":"success",` {
		t.Errorf("broken answer mangled: %d %q", r.StatusCode, r.body)
	}
	// An answer that already echoes signals is left byte for byte.
	const own = `{"status":"success","response":{"answer":"x"},"meta":{"content_signals":{"ai_input":false}}}`
	c.setAnswer(func(map[string]any) (int, string, string) { return 200, "application/json", own })
	if r = s.converse(`{"capability":"site_info","query":"q"}`); string(r.body) != own {
		t.Errorf("answer with its own signals changed: %s", r.body)
	}
	// Non-success answers pass through unchanged.
	const clar = `{"status":"clarification_needed","session_id":"abc-123","clarification":{"question":"Which piece?","options":null,"free_form":true}}`
	c.setAnswer(func(map[string]any) (int, string, string) { return 200, "application/json", clar })
	if r = s.converse(`{"capability":"site_info","query":"q"}`); string(r.body) != clar {
		t.Errorf("clarification changed: %s", r.body)
	}

	// A status poll needs the credential the async call needed (an
	// anonymous poll would read a job's result).
	if st := s.get("/agent/converse/status/xyz-456"); st.StatusCode != http.StatusUnauthorized || st.Header.Get("Www-Authenticate") == "" {
		t.Errorf("status path without a credential: %d %s", st.StatusCode, st.body)
	}
	// With it, the status path is proxied and rate limited.
	st := s.get("/agent/converse/status/xyz-456", "Authorization", "Bearer "+goodKey)
	if st.StatusCode != 200 || !strings.Contains(string(st.body), `"pending"`) {
		t.Errorf("status path: %d %s", st.StatusCode, st.body)
	}
	assertRateHeaders(t, "status", st)
	assertOneLink(t, "status", st)
}

func TestGatewayConciergeDown(t *testing.T) {
	dead := freePort(t)
	s := startCaddy(t, gatewaySite(fmt.Sprintf("127.0.0.1:%d", dead), ""))
	start := time.Now()
	r := s.converse(`{"capability":"site_info","query":"q"}`)
	if r.StatusCode != 503 {
		t.Fatalf("status %d, want 503: %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "unavailable")
	assertOneLink(t, "concierge down", r)
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}

	// A concierge that answers a plain-text 502 of its own is the same.
	c := newConcierge(t)
	c.setAnswer(func(map[string]any) (int, string, string) { return 502, "text/html", "<h1>Bad Gateway</h1>" })
	s2 := startCaddy(t, gatewaySite(c.Listener.Addr().String(), ""))
	r = s2.converse(`{"capability":"site_info","query":"q"}`)
	if r.StatusCode != 503 {
		t.Fatalf("status %d, want 503: %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "unavailable")

	// Its HTML error page of any other status is the spec's 500
	// concierge_error: an agent reads protocol bodies only.
	c.setAnswer(func(map[string]any) (int, string, string) { return 500, "text/html", "<h1>Internal Server Error</h1>" })
	r = s2.converse(`{"capability":"site_info","query":"q"}`)
	if r.StatusCode != 500 {
		t.Fatalf("status %d, want 500: %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "concierge_error")
	assertOneLink(t, "concierge error page", r)

	// A concierge limiting its own calls: its JSON 429 reaches the agent
	// as it was sent, with the Retry-After every 429 carries (§11.1) taken
	// from its retry_after when it sent none.
	const limited = `{"status":"error","code":"rate_limited","message":"Too many questions.","retry_after":47}`
	c.setAnswer(func(map[string]any) (int, string, string) { return 429, "application/json", limited })
	r = s2.converse(`{"capability":"site_info","query":"q"}`)
	if r.StatusCode != 429 || string(r.body) != limited || r.Header.Get("Retry-After") != "47" {
		t.Fatalf("concierge's 429: %d Retry-After %q %s, want its body with Retry-After 47", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
}

func TestGatewaySessionsAndBudgets(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			token_budget 1000/session
		}
		session {
			max_turns 4
		}`))
	// The concierge assigns a session id on the first turn and spends 400
	// tokens per answer.
	c.setAnswer(func(req map[string]any) (int, string, string) {
		id, _ := req["session_id"].(string)
		if id == "" {
			id = "sess-42"
		}
		return 200, "application/json", `{"status":"success","session_id":"` + id + `","response":{"answer":"ok"},"meta":{"tokens_used":400}}`
	})
	r := s.converse(`{"capability":"site_info","query":"first"}`)
	if r.StatusCode != 200 {
		t.Fatalf("turn 1: %d %s", r.StatusCode, r.body)
	}
	for turn := 2; turn <= 3; turn++ {
		if r = s.converse(`{"capability":"site_info","query":"more","session_id":"sess-42"}`); r.StatusCode != 200 {
			t.Fatalf("turn %d: %d %s", turn, r.StatusCode, r.body)
		}
	}
	// 1200 tokens spent > 1000: turn 4 of 4 is refused for the budget.
	before := c.count()
	r = s.converse(`{"capability":"site_info","query":"again","session_id":"sess-42"}`)
	if r.StatusCode != 429 {
		t.Fatalf("over budget: %d %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "rate_limited")
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	if body["scope"] != "session_tokens" || body["retry_after"] != nil {
		t.Errorf("budget refusal body = %s", r.body)
	}
	if _, has := body["retry_after"]; !has {
		t.Errorf("retry_after must be present and null: %s", r.body)
	}
	if c.count() != before {
		t.Error("over-budget request reached the concierge")
	}

	// Turn limit: a fresh session without token spend.
	c.setAnswer(func(req map[string]any) (int, string, string) {
		return 200, "application/json", `{"status":"success","session_id":"sess-7","response":{"answer":"ok"}}`
	})
	for turn := 1; turn <= 4; turn++ {
		if r = s.converse(`{"capability":"site_info","query":"q","session_id":"sess-7"}`); r.StatusCode != 200 {
			t.Fatalf("turn %d: %d %s", turn, r.StatusCode, r.body)
		}
	}
	r = s.converse(`{"capability":"site_info","query":"q","session_id":"sess-7"}`)
	if r.StatusCode != 400 {
		t.Fatalf("turn 5 of 4: %d %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "invalid_request")
	if !strings.Contains(string(r.body), "new session") {
		t.Errorf("refusal does not tell the agent to start a new session: %s", r.body)
	}
}

func TestGatewayRateLimit(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 3/minute
		}`))
	for i := 1; i <= 3; i++ {
		r := s.converse(`{"capability":"site_info","query":"q"}`)
		if r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
		if r.Header.Get("X-RateLimit-Limit") != "3" || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(3-i) || r.Header.Get("X-RateLimit-Window") != "60" {
			t.Errorf("request %d headers: %v", i, r.Header)
		}
		reset, err := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64)
		// A sliding window over one-second sub-windows: a reset within the
		// window plus a sub-window, rounded up.
		if now := time.Now().Unix(); err != nil || reset < now || reset > now+62 {
			t.Errorf("X-RateLimit-Reset = %q (now %d)", r.Header.Get("X-RateLimit-Reset"), now)
		}
	}
	// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
	before := c.count()
	r := s.converse(`{"capability":"site_info","query":"q"}`, "X-Forwarded-For", "198.51.100.7")
	if r.StatusCode != 429 {
		t.Fatalf("4th request: %d %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "rate_limited")
	assertOneLink(t, "429", r)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 61 {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	if body["scope"] != "ip" || body["retry_after"] != float64(retry) {
		t.Errorf("429 body = %s (Retry-After %d)", r.body, retry)
	}
	if r.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("remaining = %q", r.Header.Get("X-RateLimit-Remaining"))
	}
	if c.count() != before {
		t.Error("a limited request reached the concierge")
	}

	// The limits are in the manifest.
	var m map[string]any
	_ = json.Unmarshal(s.get("/.well-known/agent.json").body, &m)
	rl, _ := m["rate_limits"].(map[string]any)
	un, _ := rl["unauthenticated"].(map[string]any)
	if un["requests"] != "3/minute" || m["rate_limit"] != "3/minute" || un["token_budget"] != "10000/session" {
		t.Errorf("manifest rate limits = %v / %v", m["rate_limits"], m["rate_limit"])
	}
}

func TestGatewayPerAgentLimit(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 100/minute
			per_agent 2/minute
		}`))
	agent := `{"capability":"site_info","query":"q","context":{"requesting_agent":"greedy-bot/2.0"}}`
	for i := 0; i < 2; i++ {
		if r := s.converse(agent); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	r := s.converse(agent)
	if r.StatusCode != 429 {
		t.Fatalf("3rd agent request: %d", r.StatusCode)
	}
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	if body["scope"] != "agent" {
		t.Errorf("scope = %v: %s", body["scope"], r.body)
	}
	// The same client without the agent identity still has its own limit.
	if r := s.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode != 200 {
		t.Errorf("client limit affected by the agent's: %d", r.StatusCode)
	}
}

// Two instances sharing one Redis admit N per window in total, and share
// session and budget state.
func TestGatewaySharedThroughRedis(t *testing.T) {
	rs := redistest.Start(t)
	c := newConcierge(t)
	cfg := gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store redis redis://`+rs.Addr()+`/0
			unauthenticated 5/minute
			token_budget 500/session
			timeout 2s
		}`)
	a := startCaddy(t, cfg)
	b := startCaddy(t, cfg)
	admitted := 0
	for i := 0; i < 10; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		if r := s.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode == 200 {
			admitted++
		} else if r.StatusCode != 429 {
			t.Fatalf("request %d: %d %s", i, r.StatusCode, r.body)
		}
	}
	if admitted != 5 {
		t.Errorf("two instances admitted %d requests under a shared 5/minute, want 5", admitted)
	}

	// Budget spent on one instance is seen by the other.
	rs2 := redistest.Start(t)
	c.setAnswer(func(req map[string]any) (int, string, string) {
		return 200, "application/json", `{"status":"success","session_id":"shared-1","response":{"answer":"ok"},"meta":{"tokens_used":600}}`
	})
	cfg2 := gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store redis redis://`+rs2.Addr()+`/0
			token_budget 500/session
			timeout 2s
		}`)
	a2, b2 := startCaddy(t, cfg2), startCaddy(t, cfg2)
	if r := a2.converse(`{"capability":"site_info","query":"q","session_id":"shared-1"}`); r.StatusCode != 200 {
		t.Fatalf("first turn: %d %s", r.StatusCode, r.body)
	}
	r := b2.converse(`{"capability":"site_info","query":"q","session_id":"shared-1"}`)
	if r.StatusCode != 429 || !strings.Contains(string(r.body), "session_tokens") {
		t.Errorf("other instance did not see the spent budget: %d %s", r.StatusCode, r.body)
	}
}

// Through Caddy, the Redis store's leases (leases auto, the default):
// two instances under a shared 960/minute admit at most 960, with far
// fewer script calls than requests, and each instance's
// X-RateLimit-Remaining falls with every answer and never promises more
// than the limit leaves after that instance's own admissions (its view:
// the other's since its last lease are not in it); leases off sends every
// request.
func TestGatewayRedisLeases(t *testing.T) {
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	evals := func() int {
		info, err := rc.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(info, "\n") {
			for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
					calls, _, _ := strings.Cut(rest, ",")
					k, _ := strconv.Atoi(calls)
					n += k
				}
			}
		}
		return n
	}
	c := newConcierge(t)
	site := func(extra string) string {
		return gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store redis redis://`+rs.Addr()+`/0
			unauthenticated 960/minute
			timeout 2s
			`+extra+`
		}`)
	}
	a, b := startCaddy(t, site("")), startCaddy(t, site(""))
	before := evals()
	admitted, own, last := 0, map[*caddyServer]int{}, map[*caddyServer]int{a: 961, b: 961}
	const requests = 1100
	for i := range requests {
		s := a
		if i%2 == 1 {
			s = b
		}
		r := s.converse(`{"capability":"site_info","query":"q"}`)
		switch r.StatusCode {
		case 200:
			admitted++
			own[s]++
			rem, err := strconv.Atoi(r.Header.Get("X-RateLimit-Remaining"))
			if err != nil || rem > 960-own[s] || rem >= last[s] {
				t.Fatalf("request %d: X-RateLimit-Remaining %q after %d admitted here (this instance's last: %d)", i, r.Header.Get("X-RateLimit-Remaining"), own[s], last[s])
			}
			last[s] = rem
		case 429:
		default:
			t.Fatalf("request %d: %d %s", i, r.StatusCode, r.body)
		}
	}
	calls := evals() - before
	t.Logf("%d requests: %d admitted, %d script calls", requests, admitted, calls)
	// A lease left unspent when its one-second sub-window ends (at most 2
	// events here, per instance) counts until it leaves the window.
	if admitted > 960 || admitted < 900 {
		t.Errorf("two instances with leases admitted %d under a shared 960/minute", admitted)
	}
	if calls > requests*2/3 {
		t.Errorf("%d script calls for %d requests: leases were not used", calls, requests)
	}
	// Every decision not answered from a lease cost a script call, and each
	// instance's first hot-key decisions (four) go to Redis: the counter
	// says how many were leased.
	const leasedMetric = "caddy_ahp_limiter_leased_decisions_total"
	leased := int(a.scrape()[leasedMetric] + b.scrape()[leasedMetric])
	if leased < requests-calls || leased > requests-8 {
		t.Errorf("%s: %d of %d decisions, with %d script calls", leasedMetric, leased, requests, calls)
	}

	exact := startCaddy(t, site("zone exact\n\t\t\tleases off"))
	before = evals()
	for range 100 {
		if r := exact.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode != 200 {
			t.Fatalf("leases off: %d %s", r.StatusCode, r.body)
		}
	}
	if calls := evals() - before; calls != 100 {
		t.Errorf("leases off: %d script calls for 100 requests", calls)
	}
	if n := exact.scrape()[leasedMetric]; n != 0 {
		t.Errorf("leases off: %s is %v", leasedMetric, n)
	}
}

// With Redis gone, on_store_error open keeps serving (per-instance limits),
// closed answers the spec's 503; both recover when Redis returns.
func TestGatewayRedisFailurePolicy(t *testing.T) {
	for _, policy := range []string{"open", "closed"} {
		t.Run(policy, func(t *testing.T) {
			rs := redistest.Start(t)
			c := newConcierge(t)
			s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store redis redis://`+rs.Addr()+`/0
			unauthenticated 1000/minute
			on_store_error `+policy+`
		}`))
			if r := s.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode != 200 {
				t.Fatalf("with Redis: %d", r.StatusCode)
			}
			rs.Kill()
			for i := 0; i < 20; i++ {
				start := time.Now()
				r := s.converse(`{"capability":"site_info","query":"q"}`)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("request took %s with Redis down", d)
				}
				switch policy {
				case "open":
					if r.StatusCode != 200 {
						t.Fatalf("open: request %d got %d %s", i, r.StatusCode, r.body)
					}
				case "closed":
					if r.StatusCode != 503 {
						t.Fatalf("closed: request %d got %d %s", i, r.StatusCode, r.body)
					}
					assertErrorBody(t, r, "unavailable")
					assertOneLink(t, "closed 503", r)
				}
			}
			rs.Restart()
			deadline := time.Now().Add(15 * time.Second)
			for {
				r := s.converse(`{"capability":"site_info","query":"q"}`)
				if r.StatusCode == 200 {
					if n, _ := rs.Command("DBSIZE"); n != "0" && n != "" {
						break // shared limiting resumed: keys are back in Redis
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("shared limiting did not resume after Redis came back (last %d)", r.StatusCode)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// caddy reload keeps the memory store's counts.
func TestReloadKeepsCounts(t *testing.T) {
	c := newConcierge(t)
	cfg := gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 3/minute
		}`)
	s := startCaddy(t, cfg)
	for i := 0; i < 3; i++ {
		if r := s.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	s.reload(strings.Replace(cfg, `description "About the site"`, `description "About the site, reloaded"`, 1))
	if !strings.Contains(string(s.get("/.well-known/agent.json").body), "reloaded") {
		t.Fatal("reload did not take effect")
	}
	if r := s.converse(`{"capability":"site_info","query":"q"}`); r.StatusCode != 429 {
		t.Errorf("after reload: %d, want 429 (counts must survive a reload)", r.StatusCode)
	}
}
