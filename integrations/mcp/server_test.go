package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// fixture is a Server for the test manifest and the fake site it
// dispatches into, driven without a network.
type fixture struct {
	t    *testing.T
	srv  *Server
	site *sitetest.Site
}

func newFixture(t *testing.T, m *manifest.Manifest, opts Options, siteOpts ...sitetest.Options) *fixture {
	t.Helper()
	srv, site := newServer(t, m, opts, siteOpts...)
	return &fixture{t: t, srv: srv, site: site}
}

// do sends one HTTP request to the MCP endpoint; header is key, value, ...
func (f *fixture) do(method, body string, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, "http://shop.example/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
		} else {
			r.Header.Set(header[i], header[i+1])
		}
	}
	w := httptest.NewRecorder()
	if err := f.srv.ServeHTTP(w, r, f.site); err != nil {
		f.t.Fatalf("ServeHTTP returned %v", err)
	}
	return w
}

// rpc sends one JSON-RPC request (id 1) and returns the decoded response.
func (f *fixture) rpc(method, params string, header ...string) (int, map[string]any) {
	f.t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `"`
	if params != "" {
		body += `,"params":` + params
	}
	w := f.do(http.MethodPost, body+"}", header...)
	return w.Code, sitetest.JSON(f.t, w.Body.Bytes())
}

// call runs tools/call and returns the HTTP status and the response.
func (f *fixture) call(tool, args string, header ...string) (int, map[string]any) {
	f.t.Helper()
	return f.rpc("tools/call", `{"name":"`+tool+`","arguments":`+args+`}`, header...)
}

func resultOf(t *testing.T, resp map[string]any) map[string]any {
	t.Helper()
	res, ok := resp["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result in %v", resp)
	}
	return res
}

func errorOf(t *testing.T, resp map[string]any) (code int, msg string) {
	t.Helper()
	e, ok := resp["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error in %v", resp)
	}
	n, _ := e["code"].(json.Number).Int64()
	return int(n), e["message"].(string)
}

func texts(t *testing.T, res map[string]any) []string {
	t.Helper()
	var out []string
	content, _ := res["content"].([]any)
	for _, c := range content {
		block := c.(map[string]any)
		if block["type"] != "text" {
			t.Fatalf("content block %v is not text", block)
		}
		out = append(out, block["text"].(string))
	}
	return out
}

// TestInitializePlainPost is the Appendix D client: a plain JSON-RPC POST
// accepting only application/json, in protocol 2024-11-05.
func TestInitializePlainPost(t *testing.T) {
	f := newFixture(t, nil, Options{})
	w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"curl","version":"8"}}}`,
		"Accept", "application/json")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if w.Header().Get("Mcp-Session-Id") != "" {
		t.Error("a stateless server must not issue a session id")
	}
	resp := sitetest.JSON(t, w.Body.Bytes())
	if resp["jsonrpc"] != "2.0" || resp["id"] != "init-1" {
		t.Errorf("envelope = %v", resp)
	}
	res := resultOf(t, resp)
	if res["protocolVersion"] != "2024-11-05" {
		t.Errorf("protocolVersion = %v", res["protocolVersion"])
	}
	info := res["serverInfo"].(map[string]any)
	want := map[string]any{"name": "Test Shop", "version": "0.1", "ahp": "0.1", "manifest": "/.well-known/agent.json"}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("serverInfo.%s = %v, want %v (Appendix D.6)", k, info[k], v)
		}
	}
	caps := res["capabilities"].(map[string]any)
	if _, ok := caps["tools"]; !ok {
		t.Error("capabilities.tools missing")
	}
	if _, ok := caps["resources"]; !ok {
		t.Error("capabilities.resources missing")
	}
	if !strings.Contains(res["instructions"].(string), "session_id") {
		t.Errorf("instructions = %q", res["instructions"])
	}
}

func TestInitializeNegotiation(t *testing.T) {
	f := newFixture(t, nil, Options{ServerName: "Custom", ServerVersion: "9"})
	for asked, want := range map[string]string{
		"2024-11-05": "2024-11-05", "2025-03-26": "2025-03-26", "2025-06-18": "2025-06-18", "2025-11-25": "2025-11-25",
		// initialize is the legacy handshake: a modern or unknown
		// version gets the newest legacy one.
		"2099-01-01": legacyVersions[0], "2026-07-28": legacyVersions[0], "": legacyVersions[0],
	} {
		// An unknown header is no refusal for initialize: its body
		// negotiates.
		hv := asked
		if asked == modernVersion {
			hv = ""
		}
		_, resp := f.rpc("initialize", `{"protocolVersion":"`+asked+`"}`, "Mcp-Protocol-Version", hv)
		res := resultOf(t, resp)
		if res["protocolVersion"] != want {
			t.Errorf("asked %q: got %v, want %s", asked, res["protocolVersion"], want)
		}
		if info := res["serverInfo"].(map[string]any); info["name"] != "Custom" || info["version"] != "9" {
			t.Errorf("serverInfo = %v, want the configured name and version", info)
		}
	}
}

func TestToolsList(t *testing.T) {
	f := newFixture(t, nil, Options{})
	_, resp := f.rpc("tools/list", "")
	tools := resultOf(t, resp)["tools"].([]any)
	byName := map[string]map[string]any{}
	var names []string
	for _, tl := range tools {
		tool := tl.(map[string]any)
		byName[tool["name"].(string)] = tool
		names = append(names, tool["name"].(string))
	}
	if want := []string{"site_info", "content_search", "inventory_check", "book_demo", "get_quote"}; !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}
	if d := byName["site_info"]["description"]; d != "General information about this shop" {
		t.Errorf("description = %q, want the manifest's", d)
	}
	if d := byName["book_demo"]["description"].(string); !strings.HasPrefix(d, "Book a product demo") || !strings.Contains(d, "bearer token") {
		t.Errorf("action description = %q, want the manifest's plus the auth note", d)
	}
	if d := byName["get_quote"]["description"].(string); !strings.Contains(d, "asynchronously") {
		t.Errorf("async description = %q, want the polling note", d)
	}
	for name, ro := range map[string]bool{"site_info": true, "inventory_check": true, "book_demo": false, "get_quote": false} {
		if got := byName[name]["annotations"].(map[string]any)["readOnlyHint"]; got != ro {
			t.Errorf("%s readOnlyHint = %v, want %v", name, got, ro)
		}
	}

	// D.3: query (required) and session_id for every tool; the
	// capability's input_schema merged in, query first.
	schema := byName["inventory_check"]["inputSchema"].(map[string]any)
	if schema["type"] != "object" {
		t.Errorf("type = %v", schema["type"])
	}
	props := schema["properties"].(map[string]any)
	for _, p := range []string{"query", "session_id", "clarification", "sku", "qty", "address"} {
		if _, ok := props[p]; !ok {
			t.Errorf("inputSchema lacks %s", p)
		}
	}
	if req := schema["required"].([]any); len(req) != 2 || req[0] != "query" || req[1] != "sku" {
		t.Errorf("required = %v, want [query sku]", req)
	}
	if _, ok := schema["definitions"]; !ok {
		t.Error("input_schema definitions (targets of $ref) were dropped")
	}
	raw, _ := json.Marshal(resultOf(t, resp))
	if i, j := bytes.Index(raw, []byte(`"query"`)), bytes.Index(raw, []byte(`"sku"`)); i < 0 || j < i {
		t.Error("query should come before the structured properties")
	}
	if site := byName["site_info"]["inputSchema"].(map[string]any); site["additionalProperties"] != false {
		t.Errorf("a tool without input_schema should be closed: %v", site)
	}
	if req := byName["site_info"]["inputSchema"].(map[string]any)["required"].([]any); len(req) != 1 || req[0] != "query" {
		t.Errorf("site_info required = %v", req)
	}
}

// TestInternalRequest checks the request the pipeline receives for a
// tools/call: method, path, headers, and a body the official request schema
// and the real converse validator accept, holding no credentials.
func TestInternalRequest(t *testing.T) {
	f := newFixture(t, nil, Options{})
	status, resp := f.call("inventory_check",
		`{"query":"In stock?","sku":"AHP-1","qty":2,"session_id":"abc","clarification":"blue"}`,
		"Authorization", sitetest.Bearer, "Accept-Encoding", "gzip, br", "Mcp-Session-Id", "whatever",
		"Mcp-Protocol-Version", "2025-06-18", "If-None-Match", `"x"`, "X-Custom", "kept", "Origin", "http://shop.example")
	if status != 200 {
		t.Fatalf("status %d: %v", status, resp)
	}
	got := f.site.Last(t)
	wantBody := `{"ahp":"0.1","capability":"inventory_check","query":"In stock?\n\nArguments: {\"qty\":2,\"sku\":\"AHP-1\"}",` +
		`"session_id":"abc","clarification":"blue","context":{"accept_types":["application/data","text/answer"]}}`
	if string(got.Body) != wantBody {
		t.Errorf("body\n got %s\nwant %s", got.Body, wantBody)
	}
	if problems, err := schema.Check(schema.RequestSchema, got.Body); err != nil || problems != nil {
		t.Errorf("body against the request schema: %v %v", problems, err)
	}
	if got.Parsed == nil || got.Parsed.SessionID != "abc" || got.Parsed.Clarification != "blue" {
		t.Errorf("converse.Parse read %+v", got.Parsed)
	}
	if got.Method != "POST" || got.Path != "/agent/converse" || got.RawQuery != "" || got.RequestURI != "/agent/converse" {
		t.Errorf("request line = %s %s ? %s (%s)", got.Method, got.Path, got.RawQuery, got.RequestURI)
	}
	if got.ContentLength != int64(len(got.Body)) {
		t.Errorf("Content-Length %d for %d bytes", got.ContentLength, len(got.Body))
	}
	h := got.Header
	if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != sitetest.Bearer || h.Get("X-Custom") != "kept" {
		t.Errorf("headers = %v", h)
	}
	for _, k := range []string{"Accept-Encoding", "Mcp-Session-Id", "Mcp-Protocol-Version", "If-None-Match", "Origin"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s = %q was passed on", k, v)
		}
	}
	if got.RemoteAddr != "192.0.2.1:1234" {
		t.Errorf("RemoteAddr = %q, want the client's", got.RemoteAddr)
	}
}

func TestAuthPassthrough(t *testing.T) {
	key := sitetest.Key
	cases := []struct {
		name     string
		meta     string
		header   []string
		wantAuth string
	}{
		{"Authorization header", ``, []string{"Authorization", "Bearer " + key}, "Bearer " + key},
		{"_meta.auth with Bearer prefix", `"Bearer ` + key + `"`, nil, "Bearer " + key},
		{"_meta.auth bare token", `"` + key + `"`, nil, "Bearer " + key},
		{"header wins over _meta.auth", `"other-token-000000000000"`, []string{"Authorization", "Bearer " + key}, "Bearer " + key},
		{"auth argument (D.4)", `ARG`, nil, "Bearer " + key},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, Options{})
			params := `{"name":"book_demo","arguments":{"query":"Book it"}`
			if c.meta == "ARG" {
				params = `{"name":"book_demo","arguments":{"query":"Book it","auth":"Bearer ` + key + `"}`
			} else if c.meta != "" {
				params += `,"_meta":{"auth":` + c.meta + `}`
			}
			status, resp := f.rpc("tools/call", params+"}", c.header...)
			if status != 200 || resultOf(t, resp)["isError"] == true {
				t.Fatalf("status %d: %v", status, resp)
			}
			got := f.site.Last(t)
			if a := got.Header.Get("Authorization"); a != c.wantAuth {
				t.Errorf("internal Authorization = %q, want %q", a, c.wantAuth)
			}
			if bytes.Contains(got.Body, []byte(key)) || bytes.Contains(got.Body, []byte(`"auth"`)) {
				t.Errorf("credentials in the body: %s", got.Body)
			}
		})
	}

	t.Run("api_key scheme", func(t *testing.T) {
		m := sitetest.Parse(t, strings.Replace(sitetest.ManifestJSON, `"authentication": "bearer"`, `"authentication": "api_key"`, 1))
		f := newFixture(t, m, Options{})
		status, resp := f.rpc("tools/call", `{"name":"book_demo","arguments":{"query":"Book it"},"_meta":{"auth":"`+key+`"}}`)
		if status != 200 || resultOf(t, resp)["isError"] == true {
			t.Fatalf("status %d: %v", status, resp)
		}
		if got := f.site.Last(t).Header.Get("X-AHP-Key"); got != key {
			t.Errorf("internal X-AHP-Key = %q", got)
		}
		status, resp = f.call("book_demo", `{"query":"Book it"}`, "X-AHP-Key", key)
		if status != 200 || resultOf(t, resp)["isError"] == true {
			t.Fatalf("header X-AHP-Key: status %d: %v", status, resp)
		}
		status, resp = f.call("book_demo", `{"query":"Book it"}`)
		if res := resultOf(t, resp); status != 200 || res["isError"] != true || !strings.HasPrefix(texts(t, res)[0], "auth_required") {
			t.Errorf("no key: %d %v", status, resp)
		}
		// D.5: an MCP endpoint MUST accept a bearer token in Authorization;
		// on an api_key site it is the key, handed on as X-AHP-Key only.
		status, resp = f.call("book_demo", `{"query":"Book it"}`, "Authorization", "Bearer "+key)
		if status != 200 || resultOf(t, resp)["isError"] == true {
			t.Fatalf("Authorization: Bearer <key>: status %d: %v", status, resp)
		}
		if got := f.site.Last(t).Header; got.Get("X-AHP-Key") != key || got.Get("Authorization") != "" {
			t.Errorf("internal headers for a bearer key: X-AHP-Key %q, Authorization %q", got.Get("X-AHP-Key"), got.Get("Authorization"))
		}
		_, resp = f.call("book_demo", `{"query":"Book it"}`, "Authorization", "Bearer wrong-key-0000000000")
		if res := resultOf(t, resp); res["isError"] != true || !strings.HasPrefix(texts(t, res)[0], "forbidden: The key in the Authorization: Bearer header") {
			t.Errorf("a wrong bearer key (the refusal must name the header it came in): %v", resp)
		}
		// Both headers are refused, as two schemes are on the direct path.
		status, resp = f.call("book_demo", `{"query":"Book it"}`, "X-AHP-Key", key, "Authorization", "Bearer wrong-key-0000000000")
		if res := resultOf(t, resp); res["isError"] != true {
			t.Errorf("X-AHP-Key with a stray Authorization: %d %v (want the direct path's refusal of two schemes)", status, resp)
		}
		_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/q-1"}`, "Authorization", "Bearer "+key)
		if r := resp["result"]; r == nil {
			t.Errorf("status read with a bearer key: %v", resp)
		}
		// A status read without a credential says where an MCP client
		// sends one (the gateway's wording names only the header).
		_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/q-1"}`)
		if e, _ := resp["error"].(map[string]any); e == nil || !strings.HasPrefix(fmt.Sprint(e["message"]), "auth_required: A status read requires authentication") ||
			!strings.Contains(fmt.Sprint(e["message"]), "params._meta.auth, or in an X-AHP-Key header") {
			t.Errorf("status read without a key: %v", resp)
		}
		// A wrong key is named where it was sent, as tools/call names it.
		_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/q-1"}`, "Authorization", "Bearer wrong-key-0000000000")
		if e, _ := resp["error"].(map[string]any); e == nil || !strings.HasPrefix(fmt.Sprint(e["message"]), "forbidden: The key in the Authorization: Bearer header") {
			t.Errorf("status read with a wrong bearer key: %v", resp)
		}
		_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/q-1","_meta":{"auth":"wrong-key-0000000000"}}`)
		if e, _ := resp["error"].(map[string]any); e == nil || !strings.HasPrefix(fmt.Sprint(e["message"]), "forbidden: The credential in params._meta.auth") {
			t.Errorf("status read with a wrong _meta.auth: %v", resp)
		} else if d, _ := e["data"].(map[string]any); d["code"] != "forbidden" || d["message"] != "The credential in params._meta.auth is not accepted by this site." {
			t.Errorf("status read with a wrong _meta.auth: the AHP body in data says otherwise: %v", d)
		}
		_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/q-1","_meta":{"auth":"wrong-key-0000000000"}}`, "X-AHP-Key", "wrong-key-0000000001")
		if e, _ := resp["error"].(map[string]any); e == nil || !strings.HasPrefix(fmt.Sprint(e["message"]), "forbidden: The key in the X-AHP-Key header") {
			t.Errorf("status read with a wrong X-AHP-Key (it wins over _meta.auth): %v", resp)
		}
		if w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"/agent/converse/status/q-1"}}`); w.Header().Get("X-Ratelimit-Limit") == "" {
			t.Errorf("status read without a key: the charged refusal's rate-limit headers are missing: %v", w.Header())
		}
		if got := f.site.Last(t).Header; got.Get("X-AHP-Key") != key || got.Get("Authorization") != "" {
			t.Errorf("internal poll headers for a bearer key: X-AHP-Key %q, Authorization %q", got.Get("X-AHP-Key"), got.Get("Authorization"))
		}
	})

	t.Run("no auth scheme ignores _meta.auth", func(t *testing.T) {
		m := sitetest.Parse(t, `{"ahp":"0.1","name":"Open","endpoints":{"converse":"/agent/converse"},"content_signals":{"ai_input":true},
			"capabilities":[{"name":"site_info","description":"Info","mode":"MODE2"}]}`)
		f := newFixture(t, m, Options{})
		status, resp := f.rpc("tools/call", `{"name":"site_info","arguments":{"query":"hi"},"_meta":{"auth":"token-123"}}`)
		if status != 200 || resultOf(t, resp)["isError"] == true {
			t.Fatalf("status %d: %v", status, resp)
		}
		if a := f.site.Last(t).Header.Get("Authorization"); a != "" {
			t.Errorf("Authorization = %q set for a site without auth", a)
		}
	})

	t.Run("a wrong _meta.auth is named as such", func(t *testing.T) {
		f := newFixture(t, nil, Options{})
		_, resp := f.rpc("tools/call", `{"name":"book_demo","arguments":{"query":"x"},"_meta":{"auth":"wrong-token-0000000000"}}`)
		if got := texts(t, resultOf(t, resp)); !strings.HasPrefix(got[0], "forbidden: The credential in params._meta.auth") {
			t.Errorf("wrong _meta.auth: %q", got[0])
		}
		_, resp = f.call("book_demo", `{"query":"x"}`, "Authorization", "Bearer wrong-token-0000000000")
		if got := texts(t, resultOf(t, resp)); !strings.Contains(got[0], "Authorization header") {
			t.Errorf("wrong header: %q", got[0])
		}
	})

	t.Run("bad _meta.auth", func(t *testing.T) {
		f := newFixture(t, nil, Options{})
		for _, meta := range []string{`42`, `"two words"`, `"a\u0001b"`} {
			_, resp := f.rpc("tools/call", `{"name":"book_demo","arguments":{"query":"x"},"_meta":{"auth":`+meta+`}}`)
			res := resultOf(t, resp)
			if got := texts(t, res); res["isError"] != true || !strings.HasPrefix(got[0], "invalid_request: ") || strings.Contains(got[0], "two words") {
				t.Errorf("_meta.auth %s: %v", meta, got)
			}
		}
		if n := len(f.site.Received()); n != 0 {
			t.Errorf("%d bad calls reached the site", n)
		}
	})
}

// TestAHPErrors maps every AHP error code the concierge can answer (spec
// §10) to a tool error "code: message", HTTP 200, in both eras, with the
// rate-limit headers of the call on the response.
func TestAHPErrors(t *testing.T) {
	for code := range sitetest.ErrorStatus {
		for _, modern := range []bool{false, true} {
			t.Run(code+"/modern="+strconv.FormatBool(modern), func(t *testing.T) {
				f := newFixture(t, nil, Options{})
				body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"error:` + code + `"}}}`
				var w *httptest.ResponseRecorder
				if modern {
					w = f.do(http.MethodPost, modernBody("tools/call", `"name":"site_info","arguments":{"query":"error:`+code+`"}`), modernHeaders("tools/call", "site_info")...)
				} else {
					w = f.do(http.MethodPost, body)
				}
				resp := sitetest.JSON(t, w.Body.Bytes())
				want := code + ": the concierge refused: " + code
				if w.Header().Get("X-Ratelimit-Remaining") == "" {
					t.Error("the call's rate limit headers were not passed on")
				}
				if w.Code != 200 {
					t.Fatalf("HTTP %d, want 200 with a tool error: %s", w.Code, w.Body)
				}
				if w.Header().Get("WWW-Authenticate") != "" {
					t.Error("a tool error with a WWW-Authenticate challenge")
				}
				res := resultOf(t, resp)
				if res["isError"] != true {
					t.Errorf("isError = %v", res["isError"])
				}
				if got := texts(t, res); len(got) != 2 || got[0] != want {
					t.Errorf("content = %q, want [%q, <json>]", got, want)
				}
				if sc := res["structuredContent"].(map[string]any); sc["code"] != code {
					t.Errorf("structuredContent = %v", sc)
				}
				if (res["resultType"] == "complete") != modern {
					t.Errorf("resultType = %v in modern=%v", res["resultType"], modern)
				}
				if code == ahperror.RateLimited && w.Header().Get("Retry-After") != "7" {
					t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
				}
			})
		}
	}
}

// A body that cannot be read (the client reset, a truncated chunked
// body) is refused with a JSON-RPC error and HTTP 400, and charged to the
// static tier like any malformed request; the site never sees it.
func TestUnreadableBodyRefused(t *testing.T) {
	f := newFixture(t, nil, Options{}, sitetest.Options{Static: limiter.Limit{Events: 5, Window: time.Minute}})
	body := io.MultiReader(strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"pi`), iotest.ErrReader(io.ErrUnexpectedEOF))
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/mcp", body)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	w := httptest.NewRecorder()
	if err := f.srv.ServeHTTP(w, r, f.site); err != nil {
		t.Fatalf("ServeHTTP returned %v", err)
	}
	if code, _ := errorOf(t, sitetest.JSON(t, w.Body.Bytes())); w.Code != 400 || code != codeInvalidRequest {
		t.Fatalf("unreadable body: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Ratelimit-Limit") != "5" || w.Header().Get("X-Ratelimit-Remaining") != "4" {
		t.Errorf("not charged to the static tier: %v", w.Header())
	}
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("%d requests reached the site", n)
	}
}

// TestGatewayRefusals: the real gateway refuses before the concierge (no
// credentials, wrong credentials, the client's rate limit); every refusal
// is a tool result, HTTP 200, with the AHP body and the limit headers.
func TestGatewayRefusals(t *testing.T) {
	f := newFixture(t, nil, Options{}, sitetest.Options{Unauthenticated: limiter.Limit{Events: 3, Window: time.Minute}})
	check := func(name string, w *httptest.ResponseRecorder, code, contains string) map[string]any {
		t.Helper()
		res := resultOf(t, sitetest.JSON(t, w.Body.Bytes()))
		got := texts(t, res)
		sc, _ := res["structuredContent"].(map[string]any)
		if w.Code != 200 || res["isError"] != true || !strings.HasPrefix(got[0], code+": ") || !strings.Contains(got[0], contains) || sc["code"] != code || sc["status"] != "error" {
			t.Errorf("%s: HTTP %d %v", name, w.Code, res)
		}
		if w.Header().Get("X-Ratelimit-Limit") != "3" {
			t.Errorf("%s: X-RateLimit-Limit = %q", name, w.Header().Get("X-Ratelimit-Limit"))
		}
		return sc
	}
	call := func(tool string, header ...string) *httptest.ResponseRecorder {
		return f.do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"query":"Book it"}}}`, header...)
	}
	// The messages say where an MCP client can put a credential.
	check("no credentials", call("book_demo"), "auth_required", "Authorization: Bearer <token> header on the MCP request, or in params._meta.auth")
	check("wrong credentials", call("book_demo", "Authorization", "Bearer wrong-token-0000000000"), "forbidden", "")
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("%d refused calls reached the concierge", n)
	}
	w := call("site_info")
	if res := resultOf(t, sitetest.JSON(t, w.Body.Bytes())); res["isError"] == true {
		t.Fatalf("third call: %v", res)
	}
	w = call("site_info")
	sc := check("over the limit", w, "rate_limited", "Rate limit exceeded")
	if w.Header().Get("Retry-After") == "" || sc["scope"] != "ip" || sc["retry_after"] == nil {
		t.Errorf("rate limited: Retry-After %q, body %v", w.Header().Get("Retry-After"), sc)
	}
}

func TestToolResults(t *testing.T) {
	f := newFixture(t, nil, Options{})

	_, resp := f.call("content_search", `{"query":"agents"}`)
	res := resultOf(t, resp)
	got := texts(t, res)
	if got[0] != "Two posts found." {
		t.Errorf("content[0] = %q", got[0])
	}
	sc := res["structuredContent"].(map[string]any)
	if payload := sc["response"].(map[string]any)["payload"].(map[string]any); payload["total"] != json.Number("2") {
		t.Errorf("payload = %v", payload)
	}
	if len(got) != 2 || !json.Valid([]byte(got[1])) || !strings.Contains(got[1], `"items"`) {
		t.Errorf("the JSON text block is missing: %q", got)
	}
	if res["isError"] != nil {
		t.Errorf("isError = %v on success", res["isError"])
	}

	_, resp = f.call("site_info", `{"query":"clarify"}`)
	got = texts(t, resultOf(t, resp))
	for _, want := range []string{"Blog posts or projects?", "blog_posts, projects", `session_id "abc-123"`, "clarification", "site_info"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("clarification text %q lacks %q", got[0], want)
		}
	}

	_, resp = f.call("get_quote", `{"query":"100 units"}`, "Authorization", sitetest.Bearer)
	got = texts(t, resultOf(t, resp))
	// A poller stops at every final status of spec §9.2: expired too.
	for _, want := range []string{`"xyz-456"`, "120 seconds", "http://shop.example/agent/converse/status/xyz-456", "resources/read", "success, failed or expired"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("accepted text %q lacks %q", got[0], want)
		}
	}
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// TestNonAHPAnswers: a concierge that is down or misbehaves, behind the
// real gateway, is a tool error that leaks nothing internal.
func TestNonAHPAnswers(t *testing.T) {
	srv, _ := newServer(t, nil, Options{MaxResponseBytes: 128})
	run := func(next nextFunc) map[string]any {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		_ = srv.ServeHTTP(w, r, next)
		if w.Code != 200 {
			t.Fatalf("HTTP %d", w.Code)
		}
		return resultOf(t, sitetest.JSON(t, w.Body.Bytes()))
	}
	drain := func(r *http.Request) { _, _ = io.Copy(io.Discard, r.Body); _ = r.Body.Close() }
	cases := []struct {
		name string
		next nextFunc
		want string
	}{
		// The gateway replaces a concierge's non-JSON 502 with the
		// spec's 503 body.
		{"502 page", func(w http.ResponseWriter, r *http.Request) error {
			drain(r)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<h1>Bad Gateway</h1>")
			return nil
		}, "unavailable: The concierge is temporarily unavailable; retry shortly."},
		// An error without a status is Caddy's 500: the gateway answers
		// concierge_error (reverse_proxy's dial errors carry 502: unavailable).
		{"next error", func(w http.ResponseWriter, r *http.Request) error {
			drain(r)
			return errors.New("dial tcp 10.0.0.5:8080: connection refused")
		}, "concierge_error: The concierge failed (HTTP 500, not an AHP answer)."},
		// And any other non-JSON answer with its 500 concierge_error.
		{"200 not JSON", func(w http.ResponseWriter, r *http.Request) error {
			drain(r)
			_, _ = io.WriteString(w, "plain words")
			return nil
		}, "concierge_error: The concierge failed (HTTP 200, not an AHP answer)."},
		{"too large", func(w http.ResponseWriter, r *http.Request) error {
			drain(r)
			w.Header().Set("Content-Type", "application/json")
			_, err := io.WriteString(w, `{"status":"success","response":{"answer":"`+strings.Repeat("a", 300)+`"}}`)
			return err
		}, "concierge_error: the concierge's answer exceeds 128 bytes"},
	}
	for _, c := range cases {
		res := run(c.next)
		got := texts(t, res)
		if res["isError"] != true || got[0] != c.want {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
		if strings.Contains(strings.Join(got, " "), "10.0.0.5") {
			t.Errorf("%s: internal error details leaked: %q", c.name, got)
		}
	}
	if got := texts(t, run(cases[2].next)); strings.Contains(strings.Join(got, " "), "plain words") {
		t.Errorf("the concierge's non-AHP body should not reach the agent: %q", got)
	}
}

// TestConciergeBodyNotUTF8: a concierge's JSON answer whose strings hold
// bytes that are not UTF-8 (a Latin-1 "é") still makes a tools/call
// result that is UTF-8 JSON: an MCP client decodes the whole response as
// UTF-8 (RFC 8259 §8.1), so one raw byte in structuredContent would fail
// the call, not just the field. The bytes read as U+FFFD, as encoding/json
// reads them.
func TestConciergeBodyNotUTF8(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	for _, c := range []struct {
		status int
		body   string
	}{
		{400, "{\"status\":\"error\",\"code\":\"invalid_request\",\"message\":\"caf\xe9 closed\"}"},
		{200, "{\"status\":\"error\",\"code\":\"invalid_request\",\"message\":\"caf\xe9 closed\"}"},
		{200, "{\"status\":\"success\",\"response\":{\"answer\":\"caf\xe9 closed\"},\"x\xff\":1}"},
	} {
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			_, err := io.WriteString(w, c.body)
			return err
		})
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		if err := srv.ServeHTTP(w, r, next); err != nil || w.Code != 200 {
			t.Fatalf("%d %q: HTTP %d, %v", c.status, c.body, w.Code, err)
		}
		if out := w.Body.Bytes(); !utf8.Valid(out) || !json.Valid(out) {
			t.Errorf("%d %q: the response is not UTF-8 JSON: %q", c.status, c.body, out)
			continue
		}
		res := resultOf(t, sitetest.JSON(t, w.Body.Bytes()))
		sc, _ := res["structuredContent"].(map[string]any)
		if msg := texts(t, res)[0]; !strings.Contains(msg, "caf\uFFFD closed") {
			t.Errorf("%d %q: first text %q", c.status, c.body, msg)
		}
		if sc == nil || sc["status"] == nil {
			t.Errorf("%d %q: structuredContent %v", c.status, c.body, res["structuredContent"])
		}
	}
}

// TestInvalidParams: a call that names no tool of this server is a
// JSON-RPC error -32602; arguments the tool refuses are tool errors (MCP
// 2025-11-25 SEP-1303: the model can correct them), with the AHP code the
// OpenAPI door answers. Neither reaches the concierge.
func TestInvalidParams(t *testing.T) {
	f := newFixture(t, nil, Options{})
	protocol := []struct{ method, params, want string }{
		{"initialize", `{"protocolVersion":5}`, "protocolVersion"},
		{"initialize", `[]`, "initialize takes an object"},
		{"tools/call", `[]`, "tools/call needs"},
		{"tools/call", `{"arguments":{"query":"x"}}`, "params.name"},
		{"tools/call", `{"name":"nope","arguments":{"query":"x"}}`, `unknown tool "nope"; the tools are: site_info, content_search`},
		{"tools/call", `{"name":"contact","arguments":{"query":"x"}}`, `unknown tool "contact"`},
		{"resources/read", `{}`, "params.uri"},
		{"resources/read", `{"uri":1}`, "params.uri"},
	}
	for _, c := range protocol {
		status, resp := f.rpc(c.method, c.params)
		code, msg := errorOf(t, resp)
		if status != 200 || code != codeInvalidParams || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s: HTTP %d, %d %q; want -32602 containing %q", c.method, c.params, status, code, msg, c.want)
		}
		// A tools/call that names no tool counts as a call of an unknown
		// capability; other methods' errors are not capability calls.
		want := ""
		if c.method == "tools/call" {
			want = "unknown_capability"
		}
		if got := f.site.Rejected(); strings.Join(got, ",") != want {
			t.Errorf("%s %s: counted as rejected %v, want [%s]", c.method, c.params, got, want)
		}
	}
	tool := []struct{ params, code, want string }{
		{`{"name":"site_info"}`, "missing_field", "query is required"},
		{`{"name":"site_info","arguments":{}}`, "missing_field", "query is required"},
		{`{"name":"site_info","arguments":"hello"}`, "invalid_request", "must be a JSON object"},
		{`{"name":"site_info","arguments":{"query":42}}`, "invalid_request", "query"},
		{`{"name":"site_info","arguments":{"query":""}}`, "invalid_request", "query"},
		{`{"name":"site_info","arguments":{"query":"x","session_id":7}}`, "invalid_request", "session_id"},
		{`{"name":"site_info","arguments":{"query":"x","extra":1}}`, "invalid_request", "extra"},
		{`{"name":"inventory_check","arguments":{"query":"x"}}`, "invalid_request", "sku"},
		{`{"name":"inventory_check","arguments":{"query":"x","sku":"a","qty":0}}`, "invalid_request", "qty"},
		{`{"name":"inventory_check","arguments":{"query":"x","sku":"a","address":{}}}`, "invalid_request", "address"},
		{`{"name":"inventory_check","arguments":{"query":"` + strings.Repeat("q", 4090) + `","sku":"abcdef"}}`, "invalid_request", "4096"},
		{`{"name":"site_info","arguments":{"query":"x"},"_meta":{"auth":1}}`, "invalid_request", "_meta.auth"},
		// Within the schema's 4096 characters but over the 8 KiB body cap
		// in UTF-8: the message says what to shorten, not "the body".
		{`{"name":"site_info","arguments":{"query":"` + strings.Repeat("€", 3000) + `"}}`, "request_too_large", "shorten the query"},
	}
	for _, c := range tool {
		status, resp := f.rpc("tools/call", c.params)
		res := resultOf(t, resp)
		got := texts(t, res)
		sc, _ := res["structuredContent"].(map[string]any)
		if status != 200 || res["isError"] != true || !strings.HasPrefix(got[0], c.code+": ") || !strings.Contains(got[0], c.want) || sc["code"] != c.code {
			t.Errorf("tools/call %s: HTTP %d %v; want a %s tool error containing %q", c.params, status, res, c.code, c.want)
		}
		if got := f.site.Rejected(); len(got) != 1 || got[0] != c.code {
			t.Errorf("tools/call %s: counted as rejected %v, want [%s]", c.params, got, c.code)
		}
	}
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("%d invalid calls reached the concierge", n)
	}
	// null session_id and clarification are "absent" (spec §6.1).
	if _, resp := f.call("site_info", `{"query":"x","session_id":null,"clarification":null}`); resultOf(t, resp)["isError"] == true {
		t.Errorf("null session_id: %v", resp)
	}
}

func TestJSONRPCErrors(t *testing.T) {
	f := newFixture(t, nil, Options{})
	cases := []struct {
		name   string
		body   string
		status int
		code   int
		id     any
	}{
		{"parse error", `{"jsonrpc":"2.0","id":1,"method":`, 400, codeParseError, nil},
		{"not JSON", `hello`, 400, codeParseError, nil},
		{"a number", `42`, 400, codeInvalidRequest, nil},
		{"a string", `"ping"`, 400, codeInvalidRequest, nil},
		{"empty batch", `[]`, 400, codeInvalidRequest, nil},
		{"no jsonrpc", `{"id":1,"method":"ping"}`, 200, codeInvalidRequest, json.Number("1")},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, 200, codeInvalidRequest, json.Number("1")},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, 400, codeInvalidRequest, nil},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, 400, codeInvalidRequest, nil},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, 400, codeInvalidRequest, nil},
		{"method not a string", `{"jsonrpc":"2.0","id":"a","method":5}`, 200, codeInvalidRequest, "a"},
		{"no method", `{"jsonrpc":"2.0","id":"a"}`, 200, codeInvalidRequest, "a"},
		{"params a string", `{"jsonrpc":"2.0","id":"a","method":"ping","params":"x"}`, 200, codeInvalidRequest, "a"},
		{"Method in capitals", `{"jsonrpc":"2.0","id":2,"Method":"ping"}`, 200, codeInvalidRequest, json.Number("2")},
		{"unknown method", `{"jsonrpc":"2.0","id":3,"method":"prompts/list"}`, 200, codeMethodNotFound, json.Number("3")},
	}
	for _, c := range cases {
		w := f.do(http.MethodPost, c.body)
		resp := sitetest.JSON(t, w.Body.Bytes())
		code, _ := errorOf(t, resp)
		if _, present := resp["id"]; w.Code != c.status || code != c.code || resp["id"] != c.id || resp["jsonrpc"] != "2.0" || present != (c.id != nil) {
			t.Errorf("%s: HTTP %d %v; want %d, code %d, id %v (left out when unknown)", c.name, w.Code, resp, c.status, c.code, c.id)
		}
	}
}

// TestRequestIDs: MCP ids are strings or integers. An integer is echoed
// as it came, so only plain digits within ±(2^53-1), which every client
// decodes back to the number it sent, are accepted; anything else is an
// invalid request without an id, HTTP 200 before 2026-07-28 and 400 in it.
func TestRequestIDs(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for _, id := range []string{`0`, `-0`, `7`, `-7`, `9007199254740991`, `-9007199254740991`, `""`, `"a"`, `"1.5"`} {
		w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":`+id+`,"method":"ping"}`)
		if want := `{"jsonrpc":"2.0","id":` + id + `,"result":{}}`; w.Code != 200 || w.Body.String() != want {
			t.Errorf("id %s: HTTP %d %s; want %s", id, w.Code, w.Body, want)
		}
	}
	for _, id := range []string{`1.5`, `-1.5`, `1.0`, `0.0`, `1e3`, `1E3`, `1e0`, `-1e-0`, `9007199254740992`, `-9007199254740992`,
		`18446744073709551616`, `123456789012345678901234567890`, `1e400`} {
		body := `{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}`
		for _, modern := range []bool{false, true} {
			// 400 in every revision: before 2026-07-28 an invalid
			// request keeps a 200 only when its id can be echoed, so
			// that the client can match the error to its call.
			header, status := []string{"Mcp-Protocol-Version", "2025-11-25"}, 400
			if modern {
				body = `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/list","params":{` + modernMeta + `}}`
				header, status = modernHeaders("tools/list", ""), 400
			}
			w := f.do(http.MethodPost, body, header...)
			resp := sitetest.JSON(t, w.Body.Bytes())
			code, _ := errorOf(t, resp)
			if _, hasID := resp["id"]; w.Code != status || code != codeInvalidRequest || hasID {
				t.Errorf("id %s (2026-07-28: %v): HTTP %d %s; want %d, -32600 without an id", id, modern, w.Code, w.Body, status)
			}
		}
	}
	// An invalid request whose id can be echoed keeps its 200 before
	// 2026-07-28: the SDK shows the error for that call.
	if w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":8,"method":5}`, "Mcp-Protocol-Version", "2025-11-25"); w.Code != 200 || !strings.Contains(w.Body.String(), `"id":8`) {
		t.Errorf("an invalid request with id 8: HTTP %d %s; want 200 with the id", w.Code, w.Body)
	}
	// A client response whose id no request of this server can have is
	// refused like any malformed response.
	if w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":2.5,"result":{}}`); w.Code != 400 {
		t.Errorf("a response with id 2.5: HTTP %d %s; want 400", w.Code, w.Body)
	}
	// In a batch, the member is refused in place.
	w := f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1.5,"method":"ping"}]`)
	var resps []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resps); err != nil || len(resps) != 2 || resps[0]["id"] != 1.0 || resps[1]["id"] != nil || resps[1]["error"] == nil {
		t.Errorf("batch with id 1.5: %s", w.Body)
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t, nil, Options{})
	w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":9,"method":"ping"}`)
	if w.Code != 200 || w.Body.String() != `{"jsonrpc":"2.0","id":9,"result":{}}` {
		t.Errorf("ping: %d %s", w.Code, w.Body)
	}
}

func TestNotificationsAndResponses(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"site_info","arguments":{"query":"x"}}}`,
		`{"jsonrpc":"2.0","id":5,"result":{}}`,
		`{"jsonrpc":"2.0","id":5,"error":{"code":1,"message":"no"}}`,
		`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"result":{}}]`,
	} {
		w := f.do(http.MethodPost, body)
		if w.Code != http.StatusAccepted || w.Body.Len() != 0 {
			t.Errorf("%s: %d %q, want 202 and no body", body, w.Code, w.Body)
		}
	}
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("a notification ran a tool (%d internal requests)", n)
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t, nil, Options{})
	w := f.do(http.MethodPost, `[
		{"jsonrpc":"2.0","id":1,"method":"ping"},
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"one"}}},
		7,
		{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"two"}}}
	]`, "Mcp-Protocol-Version", "")
	if w.Code != 200 {
		t.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
	var resps []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resps); err != nil || len(resps) != 4 {
		t.Fatalf("batch answer %s (%v), want 4 responses", w.Body, err)
	}
	if resps[0]["id"] != 1.0 || resps[1]["id"] != 2.0 || resps[2]["id"] != nil || resps[3]["id"] != 3.0 {
		t.Errorf("ids = %v %v %v %v", resps[0]["id"], resps[1]["id"], resps[2]["id"], resps[3]["id"])
	}
	if e := resps[2]["error"].(map[string]any); e["code"] != float64(codeInvalidRequest) {
		t.Errorf("member 7: %v", e)
	}
	// An auth failure is a tool result, in a batch as alone.
	if res := resps[3]["result"].(map[string]any); res["isError"] != true {
		t.Errorf("unauthenticated member: %v", resps[3])
	}

	for _, v := range []string{"2025-06-18", "2025-11-25"} {
		w := f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "Mcp-Protocol-Version", v)
		if w.Code != 400 {
			t.Errorf("batch in %s: %d, want 400 (batches were removed)", v, w.Code)
		}
	}
	if w := f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "Mcp-Protocol-Version", "2025-03-26"); w.Code != 200 {
		t.Errorf("batch in 2025-03-26: %d", w.Code)
	}
	// initialize MUST NOT be batched (2025-03-26); the rest of the batch
	// is answered.
	w = f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"c","version":"1"}}},
		{"jsonrpc":"2.0","id":2,"method":"ping"}]`, "Mcp-Protocol-Version", "")
	resps = nil
	if err := json.Unmarshal(w.Body.Bytes(), &resps); err != nil || len(resps) != 2 || w.Code != 200 {
		t.Fatalf("batched initialize: HTTP %d %s", w.Code, w.Body)
	}
	if e, _ := resps[0]["error"].(map[string]any); e == nil || e["code"] != float64(codeInvalidRequest) || !strings.Contains(e["message"].(string), "initialize must be sent alone") {
		t.Errorf("batched initialize: %v", resps[0])
	}
	if resps[1]["result"] == nil {
		t.Errorf("ping beside a batched initialize: %v", resps[1])
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"ping"},`, maxBatch+1), ",") + "]"
	if w := f.do(http.MethodPost, many); w.Code != 400 {
		t.Errorf("batch of %d: %d", maxBatch+1, w.Code)
	}
}

func TestHTTPLayer(t *testing.T) {
	f := newFixture(t, nil, Options{MaxRequestBytes: 1024})
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPut, http.MethodHead} {
		w := f.do(m, "")
		if w.Code != 405 || w.Header().Get("Allow") != "POST, OPTIONS" {
			t.Errorf("%s: %d Allow=%q, want 405 Allow: POST, OPTIONS", m, w.Code, w.Header().Get("Allow"))
		}
	}
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	if w := f.do(http.MethodPost, ping, "Content-Type", "text/plain"); w.Code != 415 {
		t.Errorf("text/plain: %d", w.Code)
	}
	if w := f.do(http.MethodPost, ping, "Content-Type", ""); w.Code != 415 {
		t.Errorf("no Content-Type: %d", w.Code)
	}
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON", " application/json ;charset=UTF-8"} {
		if w := f.do(http.MethodPost, ping, "Content-Type", ct); w.Code != 200 {
			t.Errorf("%s: %d", ct, w.Code)
		}
	}
	for _, ct := range []string{"application/json-seq", "application/jsonx", "application/problem+json", "text/json"} {
		if w := f.do(http.MethodPost, ping, "Content-Type", ct); w.Code != 415 {
			t.Errorf("%s: %d, want 415", ct, w.Code)
		}
	}
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 1100) + `"}}`
	w := f.do(http.MethodPost, big)
	if code, _ := errorOf(t, sitetest.JSON(t, w.Body.Bytes())); w.Code != 413 || code != codeInvalidRequest {
		t.Errorf("oversized body: %d %s", w.Code, w.Body)
	}
	w = f.do(http.MethodPost, ping, "Mcp-Protocol-Version", "1999-01-01")
	resp := sitetest.JSON(t, w.Body.Bytes())
	if code, _ := errorOf(t, resp); w.Code != 400 || code != codeUnsupportedVersion || resp["id"] != json.Number("1") {
		t.Errorf("unsupported protocol header: %d %s", w.Code, w.Body)
	}
	data := resp["error"].(map[string]any)["data"].(map[string]any)
	if fmt.Sprint(data["supported"]) != fmt.Sprint([]any{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) || data["requested"] != "1999-01-01" {
		t.Errorf("unsupported version data = %v", data)
	}
	for _, v := range legacyVersions {
		if w := f.do(http.MethodPost, ping, "Mcp-Protocol-Version", v); w.Code != 200 {
			t.Errorf("protocol header %s: %d", v, w.Code)
		}
	}
	if cc := f.do(http.MethodPost, ping).Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

// TestSSEOnlyClient: Streamable HTTP lets the server answer a request as
// JSON or as an SSE stream; a client accepting only text/event-stream gets
// its 200 answers as SSE events, in every revision. A refusal of the HTTP
// request (any other status) is always application/json: that is how
// clients read an error status's body, and how a 2026-07-28 client tells
// a modern server's 400 or 404 from a legacy one.
func TestSSEOnlyClient(t *testing.T) {
	f := newFixture(t, nil, Options{MaxRequestBytes: 1024})
	sse := []string{"Accept", "text/event-stream"}
	isSSE := func(w *httptest.ResponseRecorder) bool {
		return w.Header().Get("Content-Type") == "text/event-stream" && w.Header().Get("X-Accel-Buffering") == "no" &&
			strings.HasPrefix(w.Body.String(), "event: message\ndata: {") && strings.HasSuffix(w.Body.String(), "}\n\n")
	}
	w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, sse...)
	if !isSSE(w) || w.Body.String() != "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n" {
		t.Errorf("SSE answer: %q %q", w.Header(), w.Body)
	}
	w = f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, "Accept", "text/event-stream, application/json;q=0")
	if strings.Count(w.Body.String(), "event: message\n") != 2 || !isSSE(w) {
		t.Errorf("SSE batch answer: %q", w.Body)
	}

	// Answers in a 200, in each era: SSE events.
	legacy := append([]string{"Mcp-Protocol-Version", "2025-11-25"}, sse...)
	for name, w := range map[string]*httptest.ResponseRecorder{
		"legacy tools/call":            f.do(http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`, legacy...),
		"legacy refused tool call":     f.do(http.MethodPost, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"hi"}}}`, legacy...),
		"legacy invalid request":       f.do(http.MethodPost, `{"jsonrpc":"2.0","id":5,"method":"ping","params":"x"}`, legacy...),
		"legacy unknown method":        f.do(http.MethodPost, `{"jsonrpc":"2.0","id":6,"method":"prompts/list"}`, legacy...),
		"2026-07-28 tools/list":        f.do(http.MethodPost, modernBody("tools/list", ""), append(modernHeaders("tools/list", ""), sse...)...),
		"2026-07-28 refused tool call": f.do(http.MethodPost, modernBody("tools/call", `"name":"book_demo","arguments":{"query":"hi"}`), append(modernHeaders("tools/call", "book_demo"), sse...)...),
	} {
		if w.Code != 200 || !isSSE(w) {
			t.Errorf("%s: HTTP %d %q %q; want 200 as SSE", name, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}

	// Refusals of the HTTP request, in each era: JSON.
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 1100) + `"}}`
	cases := []struct {
		name   string
		method string
		body   string
		status int
		code   int
		header []string
	}{
		{"GET", http.MethodGet, "", 405, codeInvalidRequest, nil},
		{"text/plain body", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 415, codeInvalidRequest, []string{"Content-Type", "text/plain"}},
		{"oversized body", http.MethodPost, big, 413, codeInvalidRequest, nil},
		{"not JSON", http.MethodPost, `{`, 400, codeParseError, nil},
		{"unknown version", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 400, codeUnsupportedVersion, []string{"Mcp-Protocol-Version", "1999-01-01"}},
		{"batch in 2025-11-25", http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, 400, codeInvalidRequest, []string{"Mcp-Protocol-Version", "2025-11-25"}},
		{"refused notification", http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}`, 400, codeInvalidRequest, nil},
		{"foreign Origin", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 403, codeInvalidRequest, []string{"Origin", "https://evil.example"}},
		{"2026-07-28 unknown method", http.MethodPost, modernBody("prompts/list", ""), 404, codeMethodNotFound, modernHeaders("prompts/list", "")},
		{"2026-07-28 header mismatch", http.MethodPost, modernBody("tools/list", ""), 400, codeHeaderMismatch, modernHeaders("resources/list", "")},
		{"2026-07-28 invalid request", http.MethodPost, `{"jsonrpc":"2.0","id":1.5,"method":"tools/list","params":{` + modernMeta + `}}`, 400, codeInvalidRequest, modernHeaders("tools/list", "")},
		{"2026-07-28 without _meta", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 400, codeInvalidParams, modernHeaders("tools/list", "")},
	}
	for _, c := range cases {
		w := f.do(c.method, c.body, append(c.header, sse...)...)
		if w.Code != c.status || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Accel-Buffering") != "" {
			t.Errorf("%s: HTTP %d %q %q; want %d as application/json", c.name, w.Code, w.Header().Get("Content-Type"), w.Body, c.status)
			continue
		}
		if code, _ := errorOf(t, sitetest.JSON(t, w.Body.Bytes())); code != c.code {
			t.Errorf("%s: %s; want error %d", c.name, w.Body, c.code)
		}
	}

	// Which Accept headers get SSE.
	for accept, want := range map[string]bool{
		"text/event-stream":                            true,
		"TEXT/Event-Stream":                            true,
		"text/*":                                       true,
		" text/event-stream ; charset=utf-8 ":          true,
		"text/event-stream, application/json;q=0":      true,
		"text/event-stream, application/json; q=0.000": true,
		"text/event-stream, application/*;Q=0.":        true,
		"application/json":                             false,
		"application/*":                                false,
		"*/*":                                          false,
		"application/json, text/event-stream":          false,
		"text/event-stream, application/json;q=0.001":  false,
		"text/event-stream;q=0, application/json":      false,
		"text/event-stream;q=0":                        false,
		"text/html":                                    false,
		"":                                             false,
	} {
		w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, "Accept", accept)
		if got := w.Header().Get("Content-Type") == "text/event-stream"; got != want || w.Code != 200 {
			t.Errorf("Accept %q: HTTP %d %q; want SSE %v", accept, w.Code, w.Header().Get("Content-Type"), want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { sseOnly([]string{"application/json, text/event-stream;q=0.9", "text/*;q=0"}) }); n != 0 {
		t.Errorf("sseOnly allocates %v times per answer", n)
	}
}

func TestResources(t *testing.T) {
	f := newFixture(t, nil, Options{})
	_, resp := f.rpc("resources/list", "")
	list := resultOf(t, resp)["resources"].([]any)
	if len(list) != 1 {
		t.Fatalf("resources = %v", list)
	}
	r0 := list[0].(map[string]any)
	if r0["uri"] != "http://shop.example/llms.txt" || r0["name"] != "llms.txt" || r0["mimeType"] != "text/plain" {
		t.Errorf("resource = %v", r0)
	}

	// The scheme follows TLS, and X-Forwarded-Proto only when trusted.
	_, resp = f.rpc("resources/list", "", "X-Forwarded-Proto", "https")
	if uri := resultOf(t, resp)["resources"].([]any)[0].(map[string]any)["uri"]; uri != "http://shop.example/llms.txt" {
		t.Errorf("untrusted X-Forwarded-Proto changed the URI: %v", uri)
	}
	trusted := newFixture(t, nil, Options{TrustForwardedProto: true})
	_, resp = trusted.rpc("resources/list", "", "X-Forwarded-Proto", "https")
	if uri := resultOf(t, resp)["resources"].([]any)[0].(map[string]any)["uri"]; uri != "https://shop.example/llms.txt" {
		t.Errorf("trusted X-Forwarded-Proto: %v", uri)
	}
	// Trusted per request: only when TrustedPeer says the peer is a
	// trusted proxy (Caddy's trusted_proxies); its X-Forwarded-Host is
	// then the public host (a load balancer that rewrites Host).
	for _, peerTrusted := range []bool{true, false} {
		pf := newFixture(t, nil, Options{TrustedPeer: func(*http.Request) bool { return peerTrusted }})
		_, resp = pf.rpc("resources/list", "", "X-Forwarded-Proto", "https")
		want := map[bool]string{true: "https://shop.example/llms.txt", false: "http://shop.example/llms.txt"}[peerTrusted]
		if uri := resultOf(t, resp)["resources"].([]any)[0].(map[string]any)["uri"]; uri != want {
			t.Errorf("TrustedPeer %v, X-Forwarded-Proto https: %v, want %s", peerTrusted, uri, want)
		}
		_, resp = pf.rpc("resources/list", "", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "www.example.com")
		want = map[bool]string{true: "https://www.example.com/llms.txt", false: "http://shop.example/llms.txt"}[peerTrusted]
		if uri := resultOf(t, resp)["resources"].([]any)[0].(map[string]any)["uri"]; uri != want {
			t.Errorf("TrustedPeer %v, X-Forwarded-Host www.example.com: %v, want %s", peerTrusted, uri, want)
		}
	}

	_, resp = f.rpc("resources/templates/list", "")
	tpl := resultOf(t, resp)["resourceTemplates"].([]any)
	if len(tpl) != 1 || tpl[0].(map[string]any)["uriTemplate"] != "http://shop.example/agent/converse/status/{session_id}" {
		t.Errorf("templates = %v", tpl)
	} else if d, _ := tpl[0].(map[string]any)["description"].(string); !strings.Contains(d, "success, failed or expired") {
		t.Errorf("template description %q does not name every final status (§9.2)", d)
	}

	for _, uri := range []string{"http://shop.example/llms.txt", "https://SHOP.example/llms.txt", "/llms.txt"} {
		_, resp = f.rpc("resources/read", `{"uri":"`+uri+`"}`, "Range", "bytes=0-3", "If-None-Match", "*")
		contents := resultOf(t, resp)["contents"].([]any)
		c := contents[0].(map[string]any)
		if c["uri"] != uri || c["text"] != sitetest.Content || c["mimeType"] != "text/plain" {
			t.Errorf("read %s: %v", uri, c)
		}
		if last := f.site.Last(t); last.Method != "GET" || last.Path != "/llms.txt" || last.Header.Get("Range") != "" {
			t.Errorf("internal read = %s %s %v", last.Method, last.Path, last.Header)
		}
	}
	before := len(f.site.Received())
	for _, uri := range []string{"http://evil.example/llms.txt", "/index.html", "/agent/converse", "/agent/converse/status/", "/agent/converse/status/a/b",
		"/agent/converse/status/..", "/agent/converse/status/a%2Fb", "/Agent/converse/status/x", "/agent/converse/status/x;y",
		"file:///etc/passwd", "http://user@shop.example/llms.txt", "/llms.txt?x=1", "mailto:a@b"} {
		_, resp = f.rpc("resources/read", `{"uri":"`+uri+`"}`)
		if code, _ := errorOf(t, resp); code != codeResourceNotFound {
			t.Errorf("read %s: %v, want -32002", uri, resp)
		}
	}
	if n := len(f.site.Received()); n != before {
		t.Errorf("refused reads reached the site (%d requests)", n-before)
	}
	_, resp = f.rpc("resources/read", `{"uri":"/agent/converse/status/gone","_meta":{"auth":"`+sitetest.Key+`"}}`)
	if code, _ := errorOf(t, resp); code != codeResourceNotFound {
		t.Errorf("a 404 status: %v", resp)
	}
	// A status read needs the credential a call needs (§4.4.3, §5.3):
	// without one, or with a wrong one, the concierge never sees it.
	before = len(f.site.Received())
	for name, params := range map[string]string{
		"no credential":             `{"uri":"/agent/converse/status/gone"}`,
		"a wrong _meta.auth":        `{"uri":"/agent/converse/status/gone","_meta":{"auth":"not-the-key"}}`,
		"a _meta.auth not a string": `{"uri":"/agent/converse/status/gone","_meta":{"auth":7}}`,
	} {
		_, resp = f.rpc("resources/read", params)
		if code, _ := errorOf(t, resp); code == 0 || code == codeResourceNotFound {
			t.Errorf("a status read with %s: %v, want a refusal", name, resp)
		}
	}
	if n := len(f.site.Received()); n != before {
		t.Errorf("status reads without an accepted credential reached the concierge (%d requests)", n-before)
	}
}

func TestNew(t *testing.T) {
	base := sitetest.ManifestJSON
	bad := []struct{ name, from, to, opt, want string }{
		{"input_schema not an object", `"input_schema": {"type": "object"}`, `"input_schema": {"type": "string"}`, "", `"get_quote": input_schema`},
		{"remote $ref", `"input_schema": {"type": "object"}`, `"input_schema": {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}`, "", "get_quote"},
		{"path shadows converse", "", "", "/agent/converse", "is the converse endpoint's already; give MCP another, such as /mcp"},
		// The converse endpoint at /mcp: the suggestion must be another path.
		{"path is converse's /mcp", `"converse": "/agent/converse"`, `"converse": "/mcp"`, "/mcp", "is the converse endpoint's already; give MCP another, such as /agent/mcp"},
		{"path shadows the manifest", "", "", "/.well-known/agent.json", "is the manifest's already"},
		{"path not absolute", "", "", "mcp", "must start with /"},
	}
	for _, c := range bad {
		m := sitetest.Parse(t, strings.Replace(base, c.from, c.to, 1))
		site := sitetest.New(t, m)
		_, err := New(m, Options{Path: c.opt, Gateway: site.Gateway})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}

	// Manifest validation refuses this too; New does not rely on it.
	m := sitetest.Manifest(t)
	m.Endpoints.Converse = "https://api.example/converse"
	if _, err := New(m, Options{}); err == nil || !strings.Contains(err.Error(), "endpoints.converse") {
		t.Errorf("absolute converse: %v", err)
	}

	// A MODE1-only site: no tools, no resources beyond its content.
	m = sitetest.Parse(t, `{"ahp":"0.1","content_signals":{"ai_input":true}}`)
	f := newFixture(t, m, Options{})
	if _, resp := f.rpc("tools/list", ""); len(resultOf(t, resp)["tools"].([]any)) != 0 {
		t.Errorf("tools = %v", resp)
	}
	if _, resp := f.rpc("resources/list", ""); len(resultOf(t, resp)["resources"].([]any)) != 0 {
		t.Errorf("resources = %v", resp)
	}
	if _, resp := f.rpc("initialize", `{"protocolVersion":"2024-11-05"}`); resultOf(t, resp)["serverInfo"].(map[string]any)["name"] != DefaultServerName {
		t.Errorf("serverInfo without a manifest name: %v", resp)
	}
}

// Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25): a notification or
// a client response the server cannot accept MUST get an HTTP error
// status; its JSON-RPC error carries no id (it answers no request).
func TestRefusedNotificationIsHTTPError(t *testing.T) {
	f := newFixture(t, nil, Options{})
	bodies := []string{
		`{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}`,           // params not an object
		`{"jsonrpc":"1.0","method":"notifications/cancelled","params":{"requestId":1}}`, // wrong jsonrpc
		`{"id":7,"result":{}}`, // a client response without jsonrpc
	}
	for _, v := range []string{"", "2025-03-26", "2025-06-18", "2025-11-25"} {
		for _, body := range bodies {
			w := f.do(http.MethodPost, body, "Mcp-Protocol-Version", v)
			resp := sitetest.JSON(t, w.Body.Bytes())
			if code, _ := errorOf(t, resp); w.Code != 400 || code != codeInvalidRequest {
				t.Errorf("MCP-Protocol-Version %q, %s: HTTP %d %s; want 400 with -32600", v, body, w.Code, w.Body)
			}
			if _, hasID := resp["id"]; hasID {
				t.Errorf("%s: the error answers a request that was never made: %s", body, w.Body)
			}
		}
	}
	// A batch of notifications only, one of them refused: 400.
	w := f.do(http.MethodPost, `[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}]`,
		"Mcp-Protocol-Version", "2025-03-26")
	if w.Code != 400 {
		t.Errorf("batch of notifications with a bad one: HTTP %d %s", w.Code, w.Body)
	}
	// A batch holding a request as well: 200, each member answered.
	w = f.do(http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}]`,
		"Mcp-Protocol-Version", "2025-03-26")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"id":1,"result"`) {
		t.Errorf("batch with a request and a bad notification: HTTP %d %s", w.Code, w.Body)
	}
	// An invalid request (it has an id) stays a JSON-RPC error in a 200
	// before 2026-07-28.
	if w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"ping","params":"x"}`, "Mcp-Protocol-Version", "2025-06-18"); w.Code != 200 {
		t.Errorf("invalid request: HTTP %d %s", w.Code, w.Body)
	}
}

// MCP pagination: "Invalid cursors SHOULD result in an error with code
// -32602". The lists are one page and issue no cursor, so any cursor is
// invalid; a null cursor is as if absent.
func TestListCursorRefused(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for _, method := range []string{"tools/list", "resources/list", "resources/templates/list"} {
		_, resp := f.rpc(method, `{"cursor":"not-a-cursor-this-server-issued"}`, "Mcp-Protocol-Version", "2025-11-25")
		if code, _ := errorOf(t, resp); code != codeInvalidParams {
			t.Errorf("%s with a cursor the server never issued: %v; want error -32602", method, resp)
		}
		if _, resp := f.rpc(method, `{"cursor":null}`, "Mcp-Protocol-Version", "2025-11-25"); resp["result"] == nil {
			t.Errorf("%s with a null cursor: %v", method, resp)
		}
	}
	if _, resp := f.modern("tools/list", `"cursor":"bogus"`, ""); resp["error"] == nil {
		t.Errorf("2026-07-28 tools/list with a bogus cursor: %v; want error -32602", resp)
	}
}

// TestReplacedPropertiesWarned: an input_schema property that is a tool's
// own argument is named in a warning at load: its rules are not used.
func TestReplacedPropertiesWarned(t *testing.T) {
	m := sitetest.Parse(t, strings.Replace(sitetest.ManifestJSON, `"properties": {"date": {"type": "string"}}`,
		`"properties": {"date": {"type": "string"}, "query": {"type": "string", "maxLength": 20}}`, 1))
	site := sitetest.New(t, m)
	core, logs := observer.New(zap.WarnLevel)
	if _, err := New(m, Options{Gateway: site.Gateway, Logger: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	all := logs.All()
	if len(all) != 1 || !strings.Contains(all[0].Message, "ahp mcp: the capability's input_schema declares properties that are this door's own arguments") ||
		all[0].ContextMap()["capability"] != "book_demo" || fmt.Sprint(all[0].ContextMap()["properties"]) != "[query]" {
		t.Errorf("warnings: %+v", all)
	}
}
