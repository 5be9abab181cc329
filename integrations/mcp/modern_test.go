package mcp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},` +
	`"io.modelcontextprotocol/clientInfo":{"name":"test","version":"1"}}`

// modernBody is a 2026-07-28 request (id 1) with params (members, no
// braces) and the required _meta.
func modernBody(method, params string) string {
	if params != "" {
		params += ","
	}
	return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + modernMeta + `}}`
}

// modernHeaders are the headers a 2026-07-28 client sends with it.
func modernHeaders(method, name string) []string {
	h := []string{"Mcp-Protocol-Version", modernVersion, "Mcp-Method", method}
	if name != "" {
		h = append(h, "Mcp-Name", name)
	}
	return h
}

func (f *fixture) modern(method, params, name string, header ...string) (int, map[string]any) {
	f.t.Helper()
	w := f.do(http.MethodPost, modernBody(method, params), append(modernHeaders(method, name), header...)...)
	return w.Code, sitetest.JSON(f.t, w.Body.Bytes())
}

// TestModernResults: the 2026-07-28 results, without initialize: discover
// (versions, capabilities, serverInfo with the AHP additions, cache
// hints), resultType and serverInfo on every result, cache hints on lists
// and reads, a stable tool order.
func TestModernResults(t *testing.T) {
	f := newFixture(t, nil, Options{})
	status, resp := f.modern("server/discover", "", "")
	res := resultOf(t, resp)
	if status != 200 || res["resultType"] != "complete" || res["ttlMs"] != json.Number("300000") || res["cacheScope"] != "public" {
		t.Errorf("discover: %d %v", status, res)
	}
	if fmt.Sprint(res["supportedVersions"]) != "[2026-07-28 2025-11-25 2025-06-18 2025-03-26 2024-11-05]" {
		t.Errorf("supportedVersions = %v", res["supportedVersions"])
	}
	caps := res["capabilities"].(map[string]any)
	if _, ok := caps["tools"]; !ok {
		t.Errorf("capabilities = %v", caps)
	}
	for _, info := range []any{res["serverInfo"], res["_meta"].(map[string]any)["io.modelcontextprotocol/serverInfo"]} {
		si, _ := info.(map[string]any)
		if si["name"] != "Test Shop" || si["ahp"] != "0.1" || si["manifest"] != "/.well-known/agent.json" || si["version"] != "0.1" {
			t.Errorf("serverInfo = %v (the AHP additions, Appendix D.6)", info)
		}
	}
	if !strings.Contains(res["instructions"].(string), "session_id") {
		t.Errorf("instructions = %v", res["instructions"])
	}

	w1 := f.do(http.MethodPost, modernBody("tools/list", ""), modernHeaders("tools/list", "")...)
	w2 := f.do(http.MethodPost, modernBody("tools/list", ""), modernHeaders("tools/list", "")...)
	if w1.Body.String() != w2.Body.String() {
		t.Error("tools/list is not stable")
	}
	res = resultOf(t, sitetest.JSON(t, w1.Body.Bytes()))
	var names []string
	for _, tl := range res["tools"].([]any) {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	if !slices.Equal(names, []string{"site_info", "content_search", "inventory_check", "book_demo", "get_quote"}) ||
		res["resultType"] != "complete" || res["ttlMs"] == nil || res["cacheScope"] != "public" || res["_meta"] == nil {
		t.Errorf("tools/list = %v", res)
	}
	for _, method := range []string{"resources/list", "resources/templates/list"} {
		_, resp := f.modern(method, "", "")
		if res := resultOf(t, resp); res["resultType"] != "complete" || res["ttlMs"] != json.Number("300000") || res["cacheScope"] != "public" {
			t.Errorf("%s = %v", method, res)
		}
	}

	_, resp = f.modern("tools/call", `"name":"site_info","arguments":{"query":"hi"}`, "site_info")
	res = resultOf(t, resp)
	if got := texts(t, res); got[0] != "site_info says: hi" || res["resultType"] != "complete" || res["_meta"] == nil {
		t.Errorf("tools/call = %v", res)
	}

	_, resp = f.modern("resources/read", `"uri":"http://shop.example/llms.txt"`, "http://shop.example/llms.txt")
	res = resultOf(t, resp)
	if c := res["contents"].([]any)[0].(map[string]any); c["text"] != sitetest.Content || res["resultType"] != "complete" ||
		res["ttlMs"] != json.Number("0") || res["cacheScope"] != "private" {
		t.Errorf("resources/read through the site = %v", res)
	}
	_, resp = f.modern("resources/read", `"uri":"/agent/converse/status/q-1"`, "/agent/converse/status/q-1", "Authorization", "Bearer "+sitetest.Key)
	if res := resultOf(t, resp); res["cacheScope"] != "private" || res["ttlMs"] != json.Number("0") {
		t.Errorf("status read = %v", res)
	}
	status, resp = f.modern("resources/read", `"uri":"/secret"`, "/secret")
	if code, _ := errorOf(t, resp); status != 200 || code != codeInvalidParams {
		t.Errorf("resource not found: %d %v, want -32602 (2026-07-28)", status, resp)
	}

	// Methods 2026-07-28 does not have: 404 with -32601.
	for _, method := range []string{"initialize", "ping", "prompts/list", "subscriptions/listen"} {
		status, resp := f.modern(method, "", "")
		if code, _ := errorOf(t, resp); status != 404 || code != codeMethodNotFound || resp["id"] != json.Number("1") {
			t.Errorf("%s: %d %v, want 404 -32601", method, status, resp)
		}
	}
	if w := f.do(http.MethodGet, "", "Mcp-Protocol-Version", modernVersion); w.Code != 405 {
		t.Errorf("GET: %d", w.Code)
	}
	if w := f.do(http.MethodDelete, "", "Mcp-Protocol-Version", modernVersion); w.Code != 405 {
		t.Errorf("DELETE: %d", w.Code)
	}
	// A notification is accepted (no header rules in this revision).
	if w := f.do(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/x"}`, "Mcp-Protocol-Version", modernVersion); w.Code != 202 {
		t.Errorf("notification: %d", w.Code)
	}
	// The legacy results carry none of it.
	_, resp = f.rpc("tools/list", "")
	if res := resultOf(t, resp); res["resultType"] != nil || res["ttlMs"] != nil {
		t.Errorf("legacy tools/list = %v", res)
	}
}

// TestModernHeaderValidation: the headers must match the body (400,
// -32020), the _meta is required (400, -32602), an unknown version gets
// -32022 with the versions served; none of these reaches the concierge.
func TestModernHeaderValidation(t *testing.T) {
	f := newFixture(t, nil, Options{})
	call := modernBody("tools/call", `"name":"site_info","arguments":{"query":"hi"}`)
	cases := []struct {
		name   string
		body   string
		header []string
		status int
		code   int
		msg    string
	}{
		{"no Mcp-Method", call, []string{"Mcp-Protocol-Version", modernVersion, "Mcp-Name", "site_info"}, 400, codeHeaderMismatch, "Mcp-Method header is required"},
		{"Mcp-Method differs", call, modernHeaders("tools/list", "site_info"), 400, codeHeaderMismatch, "does not match"},
		{"Mcp-Method case differs", call, modernHeaders("Tools/Call", "site_info"), 400, codeHeaderMismatch, "does not match"},
		{"no Mcp-Name", call, modernHeaders("tools/call", ""), 400, codeHeaderMismatch, "Mcp-Name header is required"},
		{"Mcp-Name differs", call, modernHeaders("tools/call", "book_demo"), 400, codeHeaderMismatch, `"book_demo" does not match`},
		{"Mcp-Name bad Base64", call, modernHeaders("tools/call", "=?base64?***?="), 400, codeHeaderMismatch, "not a valid value"},
		{"Mcp-Name Base64 of another", call, modernHeaders("tools/call", "=?base64?Ym9va19kZW1v?="), 400, codeHeaderMismatch, "does not match"},
		{"Mcp-Name non-ASCII", call, modernHeaders("tools/call", "site_info\xc3\xa9"), 400, codeHeaderMismatch, "not a valid value"},
		{"resources/read without Mcp-Name", modernBody("resources/read", `"uri":"/llms.txt"`), modernHeaders("resources/read", ""), 400, codeHeaderMismatch, "Mcp-Name"},
		{"no _meta", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, modernHeaders("tools/list", ""), 400, codeInvalidParams, "protocolVersion"},
		{"no clientCapabilities", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			modernHeaders("tools/list", ""), 400, codeInvalidParams, "clientCapabilities"},
		{"_meta version differs", strings.Replace(modernBody("tools/list", ""), `"2026-07-28"`, `"2025-11-25"`, 1), modernHeaders("tools/list", ""), 400, codeHeaderMismatch, "_meta protocol version"},
		{"_meta without the header", modernBody("tools/list", ""), nil, 400, codeHeaderMismatch, "MCP-Protocol-Version header is required"},
		{"legacy header, modern _meta", modernBody("tools/list", ""), []string{"Mcp-Protocol-Version", "2025-11-25"}, 400, codeHeaderMismatch, "does not match"},
		{"unsupported version", modernBody("tools/list", ""), []string{"Mcp-Protocol-Version", "2027-01-01", "Mcp-Method", "tools/list"}, 400, codeUnsupportedVersion, "2026-07-28"},
		{"a batch", "[" + modernBody("tools/list", "") + "]", modernHeaders("tools/list", ""), 400, codeInvalidRequest, "batches"},
		{"not JSON-RPC", `{"id":1,"method":"tools/list"}`, modernHeaders("tools/list", ""), 400, codeInvalidRequest, "jsonrpc"},
	}
	for _, c := range cases {
		w := f.do(http.MethodPost, c.body, c.header...)
		resp := sitetest.JSON(t, w.Body.Bytes())
		code, msg := errorOf(t, resp)
		if w.Code != c.status || code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: HTTP %d %d %q; want %d %d containing %q", c.name, w.Code, code, msg, c.status, c.code, c.msg)
		}
		if c.name != "a batch" && resp["id"] != json.Number("1") {
			t.Errorf("%s: id %v, want the request's", c.name, resp["id"])
		}
		if c.code == codeUnsupportedVersion {
			data := resp["error"].(map[string]any)["data"].(map[string]any)
			if !slices.Contains(data["supported"].([]any), any(modernVersion)) || data["requested"] != "2027-01-01" {
				t.Errorf("unsupported version data = %v", data)
			}
		}
	}
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("%d refused requests reached the concierge", n)
	}
	// The Base64 sentinel form of a matching name passes.
	status, resp := f.modern("tools/call", `"name":"site_info","arguments":{"query":"hi"}`, "=?base64?c2l0ZV9pbmZv?=")
	if status != 200 || resultOf(t, resp)["isError"] == true {
		t.Errorf("Base64 Mcp-Name: %d %v", status, resp)
	}
}

// TestPlainClient is the AHP test suite's MCP client (its T24): only
// Content-Type, initialize with empty or no params, then tools/list and
// tools/call. It gets 2024-11-05, the version Appendix D names, and a
// refused action is a tool error.
func TestPlainClient(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize"}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":null}}`,
	} {
		w := f.do(http.MethodPost, body, "Accept", "")
		res := resultOf(t, sitetest.JSON(t, w.Body.Bytes()))
		if w.Code != 200 || res["protocolVersion"] != ManifestVersion || res["serverInfo"].(map[string]any)["manifest"] != "/.well-known/agent.json" {
			t.Errorf("%s: %d %v", body, w.Code, res)
		}
	}
	w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Accept", "")
	if tools := resultOf(t, sitetest.JSON(t, w.Body.Bytes()))["tools"].([]any); len(tools) != 5 {
		t.Errorf("tools = %v", tools)
	}
	w = f.do(http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hello"}}}`, "Accept", "")
	if got := texts(t, resultOf(t, sitetest.JSON(t, w.Body.Bytes()))); got[0] != "site_info says: hello" {
		t.Errorf("tools/call = %v", got)
	}
	w = f.do(http.MethodPost, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"Book"}}}`, "Accept", "")
	res := resultOf(t, sitetest.JSON(t, w.Body.Bytes()))
	if w.Code != 200 || res["isError"] != true || !strings.HasPrefix(texts(t, res)[0], "auth_required: ") {
		t.Errorf("refused action: %d %v", w.Code, res)
	}
}

// TestCharging is the one charging rule: a capability call is charged the
// gateway's tiers and never the static tier; everything else the endpoint
// answers is charged the static tier once per HTTP request.
func TestCharging(t *testing.T) {
	f := newFixture(t, nil, Options{})
	key := []string{"Authorization", sitetest.Bearer}
	cases := []struct {
		name   string
		body   string
		header []string
		method string
		want   []string
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`, nil, "", []string{"unauthenticated"}},
		{"tools/call 2026-07-28", modernBody("tools/call", `"name":"site_info","arguments":{"query":"hi"}`), modernHeaders("tools/call", "site_info"), "", []string{"unauthenticated"}},
		{"tools/call with a key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`, key, "", []string{"authenticated"}},
		{"action with a key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"hi"}}}`, key, "", []string{"action"}},
		{"refused by the gateway", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"hi"}}}`, nil, "", []string{"unauthenticated"}},
		{"bad arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{}}}`, nil, "", []string{"unauthenticated"}},
		{"unknown tool", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope","arguments":{}}}`, nil, "", []string{"unauthenticated"}},
		{"status read", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"/agent/converse/status/q-1"}}`, nil, "", []string{"unauthenticated"}},
		{"initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, nil, "", []string{"static"}},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, "", []string{"static"}},
		{"server/discover", modernBody("server/discover", ""), modernHeaders("server/discover", ""), "", []string{"static"}},
		{"content read", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"/llms.txt"}}`, nil, "", []string{"static"}},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, "", []string{"static"}},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}]`,
			nil, "", []string{"static", "unauthenticated"}},
		{"malformed", `{"jsonrpc":`, nil, "", []string{"static"}},
		{"header mismatch", modernBody("tools/call", `"name":"site_info","arguments":{"query":"hi"}`), modernHeaders("tools/call", "book_demo"), "", []string{"static"}},
		{"GET", ``, nil, http.MethodGet, []string{"static"}},
		{"foreign Origin", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`, []string{"Origin", "https://evil.example"}, "", []string{"static"}},
	}
	for _, c := range cases {
		f.site.Charged()
		method := c.method
		if method == "" {
			method = http.MethodPost
		}
		f.do(method, c.body, c.header...)
		if got := f.site.Charged(); !slices.Equal(got, c.want) {
			t.Errorf("%s: charged %v, want %v", c.name, got, c.want)
		}
	}
}

// TestStaticLimit: over the static tier, a request the endpoint answers
// itself is an HTTP 429 with a JSON-RPC error carrying the AHP body and
// Retry-After, and tool calls still pass (they are not charged it).
func TestStaticLimit(t *testing.T) {
	f := newFixture(t, nil, Options{}, sitetest.Options{Static: limiter.Limit{Events: 1, Window: time.Minute}})
	if status, _ := f.rpc("tools/list", ""); status != 200 {
		t.Fatalf("first: %d", status)
	}
	w := f.do(http.MethodPost, `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
	resp := sitetest.JSON(t, w.Body.Bytes())
	code, msg := errorOf(t, resp)
	data, _ := resp["error"].(map[string]any)["data"].(map[string]any)
	if w.Code != 429 || code != 429 || !strings.HasPrefix(msg, "rate_limited: ") || data["code"] != "rate_limited" || resp["id"] != json.Number("9") ||
		w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("over the static limit: %d %v %v", w.Code, resp, w.Header())
	}
	if status, resp := f.call("site_info", `{"query":"hi"}`); status != 200 || resultOf(t, resp)["isError"] == true {
		t.Errorf("a tool call over the static limit: %d %v", status, resp)
	}
}

func TestOrigin(t *testing.T) {
	f := newFixture(t, nil, Options{Origins: []string{"https://Agent.Example:443", "http://localhost:6274"}})
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	for origin, want := range map[string]int{
		"":                         200, // no browser
		"http://shop.example":      200, // same origin
		"http://SHOP.example:80":   200,
		"https://shop.example":     200, // same host, behind a TLS-terminating proxy
		"https://agent.example":    200, // configured
		"http://localhost:6274":    200,
		"http://evil.example":      403,
		"http://shop.example:8080": 403,
		"http://shop.example.evil": 403,
		"http://localhost:6275":    403,
		"null":                     403,
		"file://":                  403,
	} {
		w := f.do(http.MethodPost, ping, "Origin", origin)
		if w.Code != want {
			t.Errorf("Origin %q: %d, want %d", origin, w.Code, want)
			continue
		}
		if want == 403 {
			resp := sitetest.JSON(t, w.Body.Bytes())
			if code, msg := errorOf(t, resp); code != codeInvalidRequest || !strings.Contains(msg, "Origin") || resp["id"] != nil {
				t.Errorf("Origin %q: %v", origin, resp)
			}
		}
		cors := w.Header().Get("Access-Control-Allow-Origin")
		if configured := origin == "https://agent.example" || origin == "http://localhost:6274"; configured != (cors != "") || (configured && cors != origin) {
			t.Errorf("Origin %q: Access-Control-Allow-Origin %q", origin, cors)
		}
	}
	// A refused Origin never reaches the concierge.
	f.do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`, "Origin", "http://evil.example")
	if n := len(f.site.Received()); n != 0 {
		t.Errorf("a call from a refused Origin reached the concierge")
	}
	// Preflights: allowed origins get the CORS answer, others 403.
	w := f.do(http.MethodOptions, "", "Origin", "https://agent.example", "Access-Control-Request-Headers", "content-type, mcp-protocol-version, mcp-method")
	if h := w.Header(); w.Code != 204 || h.Get("Access-Control-Allow-Origin") != "https://agent.example" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		h.Get("Access-Control-Allow-Headers") != "content-type, mcp-protocol-version, mcp-method" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight: %d %v", w.Code, h)
	}
	if w := f.do(http.MethodOptions, "", "Origin", "http://evil.example"); w.Code != 403 {
		t.Errorf("foreign preflight: %d", w.Code)
	}
	anyOrigin := newFixture(t, nil, Options{Origins: []string{"*"}})
	if w := anyOrigin.do(http.MethodPost, ping, "Origin", "http://evil.example"); w.Code != 200 {
		t.Errorf("origins *: %d", w.Code)
	}
	for _, bad := range []string{"agent.example", "https://agent.example/mcp", "ftp://agent.example", "https://", "https://a.example?x=1"} {
		if _, err := New(sitetest.Manifest(t), Options{Origins: []string{bad}, Gateway: f.site.Gateway}); err == nil || !strings.Contains(err.Error(), "origins") {
			t.Errorf("origin %q: %v", bad, err)
		}
	}
}

// Behind a load balancer that rewrites Host (Host: backend:8080,
// X-Forwarded-Host: www.example.com), a same-origin browser's Origin
// names the public host: it passes when the peer is a trusted proxy, and
// Hosts are checked against that host. From an untrusted peer the field
// is anyone's: the Origin is compared with Host and refused.
func TestOriginBehindTrustedProxy(t *testing.T) {
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	send := func(f *fixture, origin, fwdHost string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "http://backend:8080/mcp", strings.NewReader(ping))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("Origin", origin)
		r.Header.Set("X-Forwarded-Proto", "https")
		if fwdHost != "" {
			r.Header.Set("X-Forwarded-Host", fwdHost)
		}
		w := httptest.NewRecorder()
		if err := f.srv.ServeHTTP(w, r, f.site); err != nil {
			t.Fatal(err)
		}
		return w
	}
	peerTrusted := false
	f := newFixture(t, nil, Options{TrustedPeer: func(*http.Request) bool { return peerTrusted }})
	hosts := newFixture(t, nil, Options{Hosts: []string{"www.example.com"}, TrustedPeer: func(*http.Request) bool { return peerTrusted }})
	everyPeer := newFixture(t, nil, Options{TrustForwardedProto: true})
	for _, c := range []struct {
		name            string
		f               *fixture
		trusted         bool
		origin, fwdHost string
		want            int
	}{
		{"trusted", f, true, "https://www.example.com", "www.example.com", 200},
		{"trusted, a list", f, true, "https://www.example.com", "www.example.com, lb.internal", 200},
		{"trusted, another Origin", f, true, "https://evil.example", "www.example.com", 403},
		{"trusted, Origin names the internal host", f, true, "http://backend:8080", "www.example.com", 403},
		{"trusted, no X-Forwarded-Host", f, true, "http://backend:8080", "", 200},
		{"trusted, an invalid X-Forwarded-Host: Host", f, true, "http://backend:8080", "www.example.com/x", 200},
		{"trusted, an invalid X-Forwarded-Host", f, true, "https://www.example.com", "www.example.com/x", 403},
		{"untrusted", f, false, "https://www.example.com", "www.example.com", 403},
		{"untrusted, Host", f, false, "http://backend:8080", "www.example.com", 200},
		{"every peer trusted", everyPeer, false, "https://www.example.com", "www.example.com", 200},
		{"hosts, trusted", hosts, true, "https://www.example.com", "www.example.com", 200},
		{"hosts, trusted, rebinding", hosts, true, "https://attacker.example", "attacker.example", 403},
		{"hosts, trusted, Host not checked", hosts, true, "http://backend:8080", "www.example.com", 403},
		{"hosts, trusted, no X-Forwarded-Host", hosts, true, "http://backend:8080", "", 403},
		{"hosts, untrusted", hosts, false, "https://www.example.com", "www.example.com", 403},
	} {
		peerTrusted = c.trusted
		w := send(c.f, c.origin, c.fwdHost)
		if w.Code != c.want {
			t.Errorf("%s: Origin %q, X-Forwarded-Host %q: %d, want %d", c.name, c.origin, c.fwdHost, w.Code, c.want)
		}
		if cors := w.Header().Get("Access-Control-Allow-Origin"); cors != "" {
			t.Errorf("%s: a same-origin answer has Access-Control-Allow-Origin %q", c.name, cors)
		}
	}
}

// DNS rebinding: a page at attacker.example whose name now points at the
// site sends Host and Origin both naming attacker.example. A site that
// answers every Host tells its own names apart only with Hosts.
func TestOriginHosts(t *testing.T) {
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	send := func(f *fixture, host, origin string) int {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "http://"+host+"/mcp", strings.NewReader(ping))
		r.Host = host
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		if err := f.srv.ServeHTTP(w, r, f.site); err != nil {
			t.Fatal(err)
		}
		return w.Code
	}
	open := newFixture(t, nil, Options{})
	if code := send(open, "attacker.example", "http://attacker.example"); code != 200 {
		t.Errorf("without hosts, Origin naming the Host: %d, want 200 (the documented default)", code)
	}
	f := newFixture(t, nil, Options{Hosts: []string{"Shop.Example", "[2001:db8::1]", "192.0.2.1"}, Origins: []string{"http://localhost:6274"}})
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"attacker.example", "http://attacker.example", 403}, // rebinding
		{"attacker.example:8080", "http://attacker.example:8080", 403},
		{"shop.example", "http://shop.example", 200},
		{"SHOP.example:8443", "https://shop.example:8443", 200},
		{"[2001:db8::1]:8080", "http://[2001:db8::1]:8080", 200},
		{"192.0.2.1", "http://192.0.2.1", 200},
		{"attacker.example", "http://localhost:6274", 200}, // a configured origin
		{"attacker.example", "", 200},                      // no browser
	} {
		if code := send(f, c.host, c.origin); code != c.want {
			t.Errorf("Host %q, Origin %q: %d, want %d", c.host, c.origin, code, c.want)
		}
	}
	for _, bad := range []string{"shop.example:443", "https://shop.example", "*.shop.example", ""} {
		if _, err := New(sitetest.Manifest(t), Options{Path: "/mcp", Hosts: []string{bad}}); err == nil || !strings.Contains(err.Error(), "mcp hosts") {
			t.Errorf("Hosts %q: %v, want an error naming mcp hosts", bad, err)
		}
	}
}
