package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-ahp/caddy-ahp/schema"
)

// specStatus is §10's table: the HTTP status each error code goes with
// (unsupported_type: §6.6, 400). 405 and 415 carry invalid_request, the
// project's decision for what §10 does not list.
var specStatus = map[string][]int{
	"invalid_request":    {400, 405, 415},
	"unknown_capability": {400},
	"missing_field":      {400},
	"unsupported_type":   {400},
	"auth_required":      {401},
	"forbidden":          {403},
	"request_too_large":  {413},
	"rate_limited":       {429},
	"concierge_error":    {500},
	"unavailable":        {503},
}

// sweepSite is a site with every door, credentials, async and limits on.
const sweepSite = `ahp {
	name Shop
	description "A shop for agents"
	content /llms.txt %CONTENT%
	converse /agent/converse
	authentication bearer
	content_signals {
		ai_train false
		ai_input true
		search true
		attribution_required true
	}
	capability ask {
		mode MODE2
		description Ask
		response_types text/answer
	}
	capability book {
		mode MODE3
		action_type action
		description Book
		input_schema %IN%
		output_schema %OUT%
	}
	capability job {
		mode MODE3
		action_type async
		description Job
		input_schema %IN%
		output_schema %OUT%
	}
	async {
		supported true
		max_eta_seconds 60
	}
	link docs https://shop.example/docs
	auth {
		key secret-key-0123456789
	}
	body_limit 2KB
	rate_limit {
		zone %ZONE%
		static 50/minute
		unauthenticated 40/minute
		authenticated 40/minute
		action 40/minute
	}
	mcp /mcp
	openapi /openapi.json
}`

// sweepConcierge stands in for the site and its concierge: a success or
// accepted answer on the converse path, pending on the status path, an
// HTML page elsewhere.
func sweepConcierge(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.URL.Path == "/agent/converse":
		w.Header().Set("Content-Type", "application/json")
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(body), "broken-502"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
			return nil
		case strings.Contains(string(body), "broken-500"):
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "oops")
			return nil
		case strings.Contains(string(body), "broken-huge"):
			_, _ = io.WriteString(w, `{"status":"success","response":{"answer":"`+strings.Repeat("x", 2<<20)+`"}}`)
			return nil
		case strings.Contains(string(body), "broken-other"):
			_, _ = io.WriteString(w, `{"hello":"world"}`)
			return nil
		case strings.Contains(string(body), "broken-error"):
			w.Header().Del("Content-Type")
			return caddyhttp.Error(http.StatusBadGateway, io.ErrUnexpectedEOF)
		}
		if strings.Contains(string(body), `"job"`) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"status":"accepted","session_id":"j1","eta_seconds":5,"poll":"/agent/converse/status/j1"}`)
			return nil
		}
		_, _ = io.WriteString(w, `{"status":"success","session_id":null,"response":{"answer":"hi"},"meta":{"tokens_used":3,"mode":"MODE2"}}`)
	case strings.HasPrefix(r.URL.Path, "/agent/converse/status/"):
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"pending","session_id":"j1","progress":"working"}`)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!doctype html><html><body><p>not here</p></body></html>")
	}
	return nil
}

// sweepRequest is one request of the sweep and what the plugin answers.
type sweepRequest struct {
	name, method, path, contentType, body string
	header                                map[string]string
	status                                int    // the HTTP status expected
	code                                  string // the AHP error code, if the plugin refuses
}

const bearer = "Bearer secret-key-0123456789"

func sweepRequests() []sweepRequest {
	call := func(capability, extra string) string {
		return `{"ahp":"0.1","capability":"` + capability + `","query":"q"` + extra + `}`
	}
	return []sweepRequest{
		// The manifest and the content document.
		{name: "manifest", method: "GET", path: "/.well-known/agent.json", status: 200},
		{name: "manifest POST", method: "POST", path: "/.well-known/agent.json", status: 405, code: "invalid_request"},
		{name: "content", method: "GET", path: "/llms.txt", status: 200},
		{name: "content POST", method: "POST", path: "/llms.txt", status: 405, code: "invalid_request"},
		// Converse refusals.
		{name: "converse GET", method: "GET", path: "/agent/converse", status: 405, code: "invalid_request"},
		{name: "converse text/plain", method: "POST", path: "/agent/converse", contentType: "text/plain", body: call("ask", ""), status: 415, code: "invalid_request"},
		{name: "converse not JSON", method: "POST", path: "/agent/converse", contentType: "application/json", body: `{"capability":`, status: 400, code: "invalid_request"},
		{name: "converse no capability", method: "POST", path: "/agent/converse", contentType: "application/json", body: `{"query":"q"}`, status: 400, code: "missing_field"},
		{name: "converse no query", method: "POST", path: "/agent/converse", contentType: "application/json", body: `{"capability":"ask"}`, status: 400, code: "missing_field"},
		{name: "converse unknown capability", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("nope", ""), status: 400, code: "unknown_capability"},
		{name: "converse unsupported type", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("ask", `,"context":{"accept_types":["media/video"]}`), status: 400, code: "unsupported_type"},
		{name: "converse unknown field", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("ask", `,"extra":1`), status: 400, code: "invalid_request"},
		{name: "converse too large", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("ask", `,"context":{"user_intent":"`+strings.Repeat("x", 3000)+`"}`), status: 413, code: "request_too_large"},
		{name: "converse action without credentials", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("book", ""), status: 401, code: "auth_required"},
		{name: "converse wrong key", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("ask", ""), header: map[string]string{"Authorization": "Bearer wrong"}, status: 403, code: "forbidden"},
		{name: "converse path variant", method: "POST", path: "/agent/converse/", contentType: "application/json", body: call("ask", ""), status: 400, code: "invalid_request"},
		{name: "converse admitted", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("ask", ""), status: 200},
		{name: "converse async", method: "POST", path: "/agent/converse", contentType: "application/json", body: call("job", ""), header: map[string]string{"Authorization": bearer}, status: 202},
		{name: "status poll", method: "GET", path: "/agent/converse/status/j1", header: map[string]string{"Authorization": bearer}, status: 200},
		{name: "status poll without credentials", method: "GET", path: "/agent/converse/status/j1", status: 401, code: "auth_required"},
		{name: "status POST", method: "POST", path: "/agent/converse/status/j1", header: map[string]string{"Authorization": bearer}, status: 405, code: "invalid_request"},
		// The OpenAPI door.
		{name: "openapi document", method: "GET", path: "/openapi.json", status: 200},
		{name: "openapi document POST", method: "POST", path: "/openapi.json", contentType: "application/json", body: `{}`, status: 405, code: "invalid_request"},
		{name: "openapi GET capability", method: "GET", path: "/capabilities/ask", status: 405, code: "invalid_request"},
		{name: "openapi unknown capability", method: "POST", path: "/capabilities/nope", contentType: "application/json", body: `{"query":"q"}`, status: 400, code: "unknown_capability"},
		{name: "openapi text/plain", method: "POST", path: "/capabilities/ask", contentType: "text/plain", body: `{"query":"q"}`, status: 415, code: "invalid_request"},
		{name: "openapi no query", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{}`, status: 400, code: "missing_field"},
		{name: "openapi bad JSON", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{"query":`, status: 400, code: "invalid_request"},
		{name: "openapi too large", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{"query":"` + strings.Repeat("x", 3000) + `"}`, status: 413, code: "request_too_large"},
		{name: "openapi action without credentials", method: "POST", path: "/capabilities/book", contentType: "application/json", body: `{"query":"q"}`, status: 401, code: "auth_required"},
		{name: "openapi wrong key", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{"query":"q"}`, header: map[string]string{"Authorization": "Bearer wrong"}, status: 403, code: "forbidden"},
		{name: "openapi admitted", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{"query":"q"}`, status: 200},
	}
}

// mcpCalls are tools/call requests whose results carry an AHP body.
func mcpCalls() []sweepRequest {
	rpc := func(args string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":` + args + `}}`
	}
	return []sweepRequest{
		{name: "mcp admitted", path: "ask", body: rpc(`{"query":"q"}`)},
		{name: "mcp no query", path: "ask", body: rpc(`{}`), code: "missing_field"},
		{name: "mcp action without credentials", path: "book", body: rpc(`{"query":"q"}`), code: "auth_required"},
		{name: "mcp wrong key", path: "ask", body: rpc(`{"query":"q"}`), header: map[string]string{"Authorization": "Bearer wrong"}, code: "forbidden"},
		{name: "mcp async", path: "job", body: rpc(`{"query":"q"}`), header: map[string]string{"Authorization": bearer}},
	}
}

var sweepZones int

func provisionSweep(t *testing.T, site string) *Handler {
	t.Helper()
	dir := t.TempDir()
	content := filepath.Join(dir, "llms.txt")
	if err := os.WriteFile(content, []byte("# Shop\n\nWe sell things.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	for _, f := range []string{in, out} {
		if err := os.WriteFile(f, []byte(`{"type":"object","properties":{"day":{"type":"string"}}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A zone of its own: the memory store is one per process, and other
	// tests' sites are called Shop too.
	sweepZones++
	zone := "sweep-" + strconv.Itoa(sweepZones)
	h, err := provisionCaddyfile(t, strings.NewReplacer("%CONTENT%", content, "%IN%", in, "%OUT%", out, "%ZONE%", zone).Replace(site))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func serveSweep(t *testing.T, h *Handler, c sweepRequest) *httptest.ResponseRecorder {
	t.Helper()
	r, _ := caddyRequest(c.method, c.path)
	if c.body != "" {
		r.Body = io.NopCloser(strings.NewReader(c.body))
		r.ContentLength = int64(len(c.body))
	}
	if c.contentType != "" {
		r.Header.Set("Content-Type", c.contentType)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(sweepConcierge)); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return w
}

// checkAHPBody validates an AHP response body against the response schema
// and, for an error, its code against the HTTP status (§10).
func checkAHPBody(t *testing.T, label string, status int, body []byte, code string) {
	t.Helper()
	if problems, err := schema.Check(schema.ResponseSchema, body); err != nil || problems != nil {
		t.Errorf("%s: body %s fails the response schema: %v %v", label, body, problems, err)
	}
	if code == "" {
		return
	}
	var e struct{ Status, Code string }
	if err := json.Unmarshal(body, &e); err != nil || e.Status != "error" || e.Code != code {
		t.Errorf("%s: body %s; want an AHP error %s", label, body, code)
	}
	ok := false
	for _, s := range specStatus[e.Code] {
		ok = ok || s == status
	}
	if !ok {
		t.Errorf("%s: %s with HTTP %d; §10 pairs it with %v", label, e.Code, status, specStatus[e.Code])
	}
}

// Every body the plugin emits on every door matches the official schemas
// (as NOTES.md extends them), with §10's status for its code, JSON's
// Content-Type, the Link header, and, with limiting on, the rate-limit
// headers on every AHP endpoint.
func TestEmittedBodiesMatchSchemas(t *testing.T) {
	h := provisionSweep(t, sweepSite)
	for _, c := range sweepRequests() {
		w := serveSweep(t, h, c)
		label := c.name + " (" + c.method + " " + c.path + ")"
		if w.Code != c.status {
			t.Errorf("%s: HTTP %d, want %d: %s", label, w.Code, c.status, w.Body.String())
			continue
		}
		if !strings.Contains(w.Header().Get("Link"), `rel="ahp-manifest"`) {
			t.Errorf("%s: no ahp-manifest Link", label)
		}
		if w.Header().Get("X-RateLimit-Limit") == "" || w.Header().Get("X-RateLimit-Remaining") == "" ||
			w.Header().Get("X-RateLimit-Reset") == "" || w.Header().Get("X-RateLimit-Window") == "" {
			t.Errorf("%s: rate-limit headers missing (§11.1): %v", label, w.Header())
		}
		if w.Code == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow (RFC 9110 §15.5.6)", label)
		}
		if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate (RFC 9110 §15.5.2)", label)
		}
		ct := w.Header().Get("Content-Type")
		switch {
		case c.path == "/.well-known/agent.json" && c.code == "":
			if !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type %q; §3.1 wants application/json", label, ct)
			}
			if problems, err := schema.Check(schema.ManifestSchema, w.Body.Bytes()); err != nil || problems != nil {
				t.Errorf("%s: manifest fails the schema: %v %v", label, problems, err)
			}
		case c.path == "/llms.txt" && c.code == "", c.path == "/openapi.json" && c.code == "":
		default:
			if !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type %q, want application/json", label, ct)
			}
			checkAHPBody(t, label, w.Code, w.Body.Bytes(), c.code)
		}
	}
	for _, c := range mcpCalls() {
		c.method, c.contentType = "POST", "application/json"
		c.body = strings.Replace(c.body, "%s", c.path, 1)
		c.path = "/mcp"
		if c.header == nil {
			c.header = map[string]string{}
		}
		c.header["Accept"] = "application/json, text/event-stream"
		w := serveSweep(t, h, c)
		var res struct {
			Result struct {
				Content []struct {
					Type, Text string
				}
				StructuredContent json.RawMessage
				IsError           bool
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != 200 {
			t.Errorf("%s: HTTP %d %s", c.name, w.Code, w.Body.String())
			continue
		}
		if res.Result.IsError != (c.code != "") {
			t.Errorf("%s: isError %v: %s", c.name, res.Result.IsError, w.Body.String())
		}
		if len(res.Result.StructuredContent) == 0 {
			t.Errorf("%s: no structuredContent: %s", c.name, w.Body.String())
			continue
		}
		// structuredContent is the AHP body; its status is the one the
		// gateway answered with (§10's table, not HTTP 200 of MCP).
		var e struct{ Code string }
		_ = json.Unmarshal(res.Result.StructuredContent, &e)
		st := 200
		if e.Code != "" {
			st = specStatus[e.Code][0]
		}
		checkAHPBody(t, c.name+" structuredContent", st, res.Result.StructuredContent, c.code)
		last := res.Result.Content[len(res.Result.Content)-1].Text
		checkAHPBody(t, c.name+" text block", st, []byte(last), c.code)
	}
}

// The refusals of limits, and the gateway's replacements of a broken
// concierge's answers, on the converse path, the OpenAPI and the MCP doors.
func TestEmittedLimitBodiesMatchSchemas(t *testing.T) {
	site := strings.NewReplacer("static 50/minute", "static 2/minute", "unauthenticated 40/minute", "unauthenticated 6/minute\n\t\tper_agent 1/minute\n\t\ttoken_budget 5/session",
		"authenticated 40/minute", "authenticated 40/minute").Replace(sweepSite)
	h := provisionSweep(t, site)
	check429 := func(label string, w *httptest.ResponseRecorder, scope string) {
		t.Helper()
		if w.Code != http.StatusTooManyRequests {
			t.Errorf("%s: HTTP %d, want 429: %s", label, w.Code, w.Body.String())
			return
		}
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After (§11.1)", label)
		}
		if w.Header().Get("X-RateLimit-Limit") == "" || w.Header().Get("X-RateLimit-Window") == "" {
			t.Errorf("%s: 429 without rate-limit headers: %v", label, w.Header())
		}
		if !strings.Contains(w.Header().Get("Link"), `rel="ahp-manifest"`) {
			t.Errorf("%s: no ahp-manifest Link", label)
		}
		checkAHPBody(t, label, w.Code, w.Body.Bytes(), "rate_limited")
		var e struct{ Scope string }
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if e.Scope != scope {
			t.Errorf("%s: scope %q, want %q", label, e.Scope, scope)
		}
	}
	// The static tier: the manifest twice, then 429.
	get := sweepRequest{name: "manifest", method: "GET", path: "/.well-known/agent.json"}
	serveSweep(t, h, get)
	serveSweep(t, h, get)
	check429("manifest over the static tier", serveSweep(t, h, get), "ip")
	check429("content over the static tier", serveSweep(t, h, sweepRequest{name: "content", method: "GET", path: "/llms.txt"}), "ip")
	check429("openapi document over the static tier", serveSweep(t, h, sweepRequest{name: "openapi", method: "GET", path: "/openapi.json"}), "ip")

	// The agent's window: a second call by the same agent.
	call := sweepRequest{name: "agent", method: "POST", path: "/agent/converse", contentType: "application/json",
		body: `{"capability":"ask","query":"q","session_id":"s1","context":{"requesting_agent":"bot/1"}}`}
	if w := serveSweep(t, h, call); w.Code != 200 {
		t.Fatalf("first call: %d %s", w.Code, w.Body.String())
	}
	check429("converse over the agent's window", serveSweep(t, h, call), "agent")
	// The session's token budget (3 tokens a turn, 5 a session).
	call.body = `{"capability":"ask","query":"q","session_id":"s2"}`
	if w := serveSweep(t, h, call); w.Code != 200 {
		t.Fatalf("budget call 1: %d %s", w.Code, w.Body.String())
	}
	w := serveSweep(t, h, call)
	if w.Code == 200 {
		w = serveSweep(t, h, call)
	}
	check429("converse over the session's budget", w, "session_tokens")
	// The client's tier.
	call.body = `{"capability":"ask","query":"q"}`
	for i := 0; i < 10 && w.Code != http.StatusTooManyRequests || i == 0; i++ {
		w = serveSweep(t, h, call)
	}
	check429("converse over the client's tier", w, "ip")
	w = serveSweep(t, h, sweepRequest{name: "openapi", method: "POST", path: "/capabilities/ask", contentType: "application/json", body: `{"query":"q"}`})
	check429("openapi over the client's tier", w, "ip")
	w = serveSweep(t, h, sweepRequest{name: "mcp", method: "POST", path: "/mcp", contentType: "application/json",
		header: map[string]string{"Accept": "application/json, text/event-stream"},
		body:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask","arguments":{"query":"q"}}}`})
	var res struct {
		Result struct {
			StructuredContent json.RawMessage
			IsError           bool
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || !res.Result.IsError {
		t.Errorf("mcp over the client's tier: %d %s", w.Code, w.Body.String())
	} else {
		checkAHPBody(t, "mcp over the client's tier", 429, res.Result.StructuredContent, "rate_limited")
	}
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("mcp over the client's tier: no Retry-After")
	}
}

// A broken concierge's answer is replaced with the gateway's own AHP error
// (design.md: 503 unavailable for 429/502/503/504, else 500
// concierge_error) on the converse path and the OpenAPI door; the MCP door's
// tool error carries the AHP error body as structuredContent, including
// the errors only that door answers (an answer over its size cap, JSON
// that is no AHP body).
func TestEmittedReplacementBodiesMatchSchemas(t *testing.T) {
	h := provisionSweep(t, sweepSite)
	for _, c := range []struct {
		query, code string
		passed      bool // the converse path and OpenAPI pass the answer on
	}{
		{"broken-502", "unavailable", false},
		{"broken-500", "concierge_error", false},
		{"broken-error", "unavailable", false},
		{"broken-huge", "concierge_error", true},
		{"broken-other", "concierge_error", true},
	} {
		if !c.passed {
			w := serveSweep(t, h, sweepRequest{name: c.query, method: "POST", path: "/agent/converse", contentType: "application/json",
				body: `{"capability":"ask","query":"` + c.query + `"}`})
			checkAHPBody(t, "converse "+c.query, w.Code, w.Body.Bytes(), c.code)
			w = serveSweep(t, h, sweepRequest{name: c.query, method: "POST", path: "/capabilities/ask", contentType: "application/json",
				body: `{"query":"` + c.query + `"}`})
			checkAHPBody(t, "openapi "+c.query, w.Code, w.Body.Bytes(), c.code)
		}
		w := serveSweep(t, h, sweepRequest{name: c.query, method: "POST", path: "/mcp", contentType: "application/json",
			header: map[string]string{"Accept": "application/json, text/event-stream"},
			body:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask","arguments":{"query":"` + c.query + `"}}}`})
		var res struct {
			Result struct {
				StructuredContent json.RawMessage
				IsError           bool
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || !res.Result.IsError || len(res.Result.StructuredContent) == 0 {
			t.Errorf("mcp %s: want a tool error with the AHP body as structuredContent: %s", c.query, w.Body.String())
			continue
		}
		checkAHPBody(t, "mcp "+c.query, specStatus[c.code][0], res.Result.StructuredContent, c.code)
	}
}

// The manifest in every configuration shape is schema-valid and served as
// application/json at its own URL, as application/agent+json when
// negotiated inline.
func TestManifestShapesMatchSchema(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(base, []byte(`{"ahp":"0.1","name":"From a file","modes":["MODE1"],"content_signals":{"ai_input":true,"ai_train":false},
"rate_limits":{"unauthenticated":{"requests":"1000/day"}},"links":{"home":"https://shop.example/"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	signals := "content_signals {\n\t\tai_input true\n\t}\n"
	for name, block := range map[string]string{
		"MODE1 only":               "ahp {\n\tname Shop\n\t" + signals + "}",
		"MODE1 rate_limit off":     "ahp {\n\tname Shop\n\t" + signals + "\trate_limit off\n}",
		"MODE1 content":            "ahp {\n\tname Shop\n\tcontent /llms.txt\n\t" + signals + "}",
		"file":                     "ahp {\n\tmanifest " + base + "\n}",
		"file with overlay":        "ahp {\n\tmanifest " + base + "\n\tdescription \"Overlaid\"\n\tmodes MODE1 MODE2\n\tcapability ask {\n\t\tmode MODE2\n\t\tdescription Ask\n\t}\n\tconverse /agent/converse\n}",
		"file rate_limit off":      "ahp {\n\tmanifest " + base + "\n\trate_limit off\n}",
		"api_key":                  "ahp {\n\tname Shop\n\t" + signals + "\tauthentication api_key\n\tauth {\n\t\tkey secret-key-0123456789\n\t}\n\tconverse /agent/converse\n\tcapability ask {\n\t\tmode MODE2\n\t\tdescription Ask\n\t}\n}",
		"MODE2 no limits":          "ahp {\n\tname Shop\n\t" + signals + "\tconverse /agent/converse\n\tcapability ask {\n\t\tmode MODE2\n\t\tdescription Ask\n\t\tresponse_types text/answer application/feed\n\t\taccept_fallback\n\t}\n\trate_limit off\n}",
		"MODE2 inline mcp openapi": "ahp {\n\tname Shop\n\t" + signals + "\tconverse /agent/converse\n\tcapability ask {\n\t\tmode MODE2\n\t\tdescription Ask\n\t}\n\tdiscovery inline\n\tmcp /mcp\n\topenapi /openapi.json\n}",
		"full":                     sweepSite,
	} {
		h := provisionSweep(t, block)
		w := serveSweep(t, h, sweepRequest{method: "GET", path: "/.well-known/agent.json"})
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s: HTTP %d, Content-Type %q", name, w.Code, w.Header().Get("Content-Type"))
		}
		if problems, err := schema.Check(schema.ManifestSchema, w.Body.Bytes()); err != nil || problems != nil {
			t.Errorf("%s: manifest fails the schema: %v %v\n%s", name, problems, err, w.Body.String())
		}
		if h.Discovery == "inline" {
			w = serveSweep(t, h, sweepRequest{method: "GET", path: "/about", header: map[string]string{"Accept": "application/agent+json"}})
			if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/agent+json") {
				t.Errorf("%s negotiated: HTTP %d, Content-Type %q", name, w.Code, w.Header().Get("Content-Type"))
			}
			if problems, err := schema.Check(schema.ManifestSchema, w.Body.Bytes()); err != nil || problems != nil {
				t.Errorf("%s negotiated: manifest fails the schema: %v %v", name, problems, err)
			}
		}
	}
}
