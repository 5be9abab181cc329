package doors

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

// Issue 18 through a real Caddy: a 2026-07-28 client, a 2025 client and
// the AHP suite's plain client reach the site's capabilities through one
// /mcp, under the same gateway rules; the 2026-07-28 header rules hold
// behind Caddy; and (issue 19) a Web Bot Auth agent calling through /mcp
// is limited as itself in every era.

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// modernCall is a 2026-07-28 request (id 1): its body, with the required
// _meta, and the headers that mirror it.
func modernCall(method, params, name string) (string, []string) {
	if params != "" {
		params += ","
	}
	h := []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", method}
	if name != "" {
		h = append(h, "Mcp-Name", name)
	}
	return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + modernMeta + `}}`, h
}

// sdkClient connects the official Go SDK client; version "" is its
// default (2026-07-28, stateless).
func sdkClient(t *testing.T, s *caddyproc.Server, version string) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "doors-e2e", Version: "1.0"}, nil)
	var opts *sdk.ClientSessionOptions
	if version != "" {
		opts = &sdk.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: s.URL("/mcp"), HTTPClient: caddyproc.Client, MaxRetries: -1}, opts)
	if err != nil {
		t.Fatalf("connect (protocol %q): %v", version, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolText(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatalf("empty tool result %+v", res)
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content[0] is %T", res.Content[0])
	}
	return tc.Text
}

// result is the result object of a JSON-RPC answer (fails on an error).
func result(t *testing.T, r caddyproc.Response) map[string]any {
	t.Helper()
	b := rpcBody(t, r)
	res, ok := b["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result (%d): %s", r.StatusCode, r.Bytes)
	}
	return res
}

func firstBlock(res map[string]any) string {
	c, _ := res["content"].([]any)
	if len(c) == 0 {
		return ""
	}
	s, _ := c[0].(map[string]any)["text"].(string)
	return s
}

// TestEveryEraOneEndpoint: the Go SDK in 2026-07-28 (its default) and in
// 2025-06-18, and the AHP suite's plain client (initialize without a
// version, only Content-Type) each list the tools, call one and see a
// refused action as a tool error, through one /mcp; their calls spend one
// budget, the one a direct converse call spends.
func TestEveryEraOneEndpoint(t *testing.T) {
	c := newConcierge(t)
	// Each client makes two calls the client's tier charges (one
	// answered, one refused for want of credentials): six in all.
	s := site(t, c, "rate_limit {\n\t\t\tunauthenticated 6/minute\n\t\t}")
	ctx := context.Background()
	wantTools := []string{"site_info", "book_demo"}

	for _, version := range []string{"", "2025-06-18"} {
		cs := sdkClient(t, s, version)
		want := version
		if want == "" {
			want = "2026-07-28"
		}
		init := cs.InitializeResult()
		if init.ProtocolVersion != want || init.ServerInfo == nil || init.ServerInfo.Name != "Doors Test" {
			t.Errorf("Go SDK %q: negotiated %q, serverInfo %+v", version, init.ProtocolVersion, init.ServerInfo)
		}
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("Go SDK %s: tools/list: %v", want, err)
		}
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		if !slices.Equal(names, wantTools) {
			t.Errorf("Go SDK %s: tools %v", want, names)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "Who are you?"}})
		if err != nil || res.IsError || toolText(t, res) != "site_info says: Who are you?" {
			t.Fatalf("Go SDK %s: site_info: %v %+v", want, err, res)
		}
		res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "book_demo", Arguments: map[string]any{"query": "Book a demo"}})
		if err != nil || !res.IsError || !strings.HasPrefix(toolText(t, res), "auth_required: ") {
			t.Fatalf("Go SDK %s: refused action: %v %+v, want a tool error", want, err, res)
		}
	}

	// The plain client: initialize with empty params gets 2024-11-05,
	// the version AHP Appendix D names, with the AHP additions.
	r := post(s, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
	init := result(t, r)
	si, _ := init["serverInfo"].(map[string]any)
	if r.StatusCode != 200 || init["protocolVersion"] != "2024-11-05" || si["ahp"] != "0.1" || si["manifest"] != "/.well-known/agent.json" {
		t.Errorf("plain initialize: %d %s", r.StatusCode, r.Bytes)
	}
	if r := post(s, "/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.StatusCode != 202 {
		t.Errorf("plain notifications/initialized: %d", r.StatusCode)
	}
	var names []string
	for _, tl := range result(t, post(s, "/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))["tools"].([]any) {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	if !slices.Equal(names, wantTools) {
		t.Errorf("plain tools/list: %v", names)
	}
	r = post(s, "/mcp", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hello"}}}`)
	if res := result(t, r); r.StatusCode != 200 || res["isError"] == true || firstBlock(res) != "site_info says: hello" {
		t.Errorf("plain tools/call: %d %s", r.StatusCode, r.Bytes)
	}
	r = post(s, "/mcp", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"book_demo","arguments":{"query":"Book"}}}`)
	if res := result(t, r); r.StatusCode != 200 || res["isError"] != true || !strings.HasPrefix(firstBlock(res), "auth_required: ") {
		t.Errorf("plain refused action: %d %s, want HTTP 200 and a tool error", r.StatusCode, r.Bytes)
	}
	if r.Header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("after six calls in three eras: X-RateLimit-Remaining %q, want 0 (one budget)", r.Header.Get("X-Ratelimit-Remaining"))
	}

	// The budget is spent, in every era and for a direct call alike.
	if r := post(s, "/agent/converse", `{"capability":"site_info","query":"direct"}`); r.StatusCode != 429 {
		t.Errorf("direct converse after the MCP calls: %d, want 429", r.StatusCode)
	}
	for _, version := range []string{"", "2025-06-18"} {
		res, err := sdkClient(t, s, version).CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "again"}})
		if err != nil || !res.IsError || !strings.HasPrefix(toolText(t, res), "rate_limited: ") {
			t.Errorf("Go SDK %q over the limit: %v %+v, want a rate_limited tool error", version, err, res)
		}
	}
	r = post(s, "/mcp", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"again"}}}`)
	if res := result(t, r); r.StatusCode != 200 || res["isError"] != true || !strings.HasPrefix(firstBlock(res), "rate_limited: ") || r.Header.Get("Retry-After") == "" {
		t.Errorf("plain call over the limit: %d %v %s", r.StatusCode, r.Header, r.Bytes)
	}
	if n := c.count(); n != 3 {
		t.Errorf("the concierge got %d calls, want the 3 admitted ones", n)
	}
}

// TestModernRulesThroughCaddy: behind Caddy, server/discover describes
// the server with the AHP additions; a request whose headers do not
// match its body, or that names an unsupported version, is a 400 with
// the revision's error and never reaches the concierge; resource not
// found is -32602 in 2026-07-28 and -32002 before; GET and DELETE are
// 405.
func TestModernRulesThroughCaddy(t *testing.T) {
	c := newConcierge(t)
	s := site(t, c, "")

	body, h := modernCall("server/discover", "", "")
	r := post(s, "/mcp", body, h...)
	res := result(t, r)
	si, _ := res["serverInfo"].(map[string]any)
	if r.StatusCode != 200 || res["resultType"] != "complete" || res["cacheScope"] != "public" || res["ttlMs"] == nil ||
		fmt.Sprint(res["supportedVersions"]) != "[2026-07-28 2025-11-25 2025-06-18 2025-03-26 2024-11-05]" ||
		si["name"] != "Doors Test" || si["ahp"] != "0.1" || si["manifest"] != "/.well-known/agent.json" {
		t.Errorf("server/discover: %d %s", r.StatusCode, r.Bytes)
	}
	body, h = modernCall("tools/list", "", "")
	r = post(s, "/mcp", body, h...)
	if res := result(t, r); res["resultType"] != "complete" || res["cacheScope"] != "public" || res["ttlMs"] == nil {
		t.Errorf("tools/list: %s", r.Bytes)
	}
	body, h = modernCall("tools/call", `"name":"site_info","arguments":{"query":"hi"}`, "site_info")
	r = post(s, "/mcp", body, h...)
	if res := result(t, r); res["isError"] == true || firstBlock(res) != "site_info says: hi" || res["resultType"] != "complete" {
		t.Errorf("tools/call: %s", r.Bytes)
	}
	before := c.count()

	call := `"name":"site_info","arguments":{"query":"hi"}`
	body, _ = modernCall("tools/call", call, "site_info")
	for _, tc := range []struct {
		name   string
		body   string
		header []string
		code   float64
	}{
		{"Mcp-Name differs", body, []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "book_demo"}, -32020},
		{"no Mcp-Method", body, []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Name", "site_info"}, -32020},
		{"no MCP-Protocol-Version", body, []string{"Mcp-Method", "tools/call", "Mcp-Name", "site_info"}, -32020},
		{"unsupported version", body, []string{"Mcp-Protocol-Version", "2027-01-01", "Mcp-Method", "tools/call", "Mcp-Name", "site_info"}, -32022},
		{"no _meta", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + call + `}}`,
			[]string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "site_info"}, -32602},
	} {
		r := post(s, "/mcp", tc.body, tc.header...)
		b := rpcBody(t, r)
		e, _ := b["error"].(map[string]any)
		if r.StatusCode != 400 || e == nil || e["code"] != tc.code || b["id"] != float64(1) {
			t.Errorf("%s: %d %s, want 400 with %v", tc.name, r.StatusCode, r.Bytes, tc.code)
			continue
		}
		if tc.code == -32022 {
			d, _ := e["data"].(map[string]any)
			if sup, _ := d["supported"].([]any); !slices.Contains(sup, any("2026-07-28")) || !slices.Contains(sup, any("2024-11-05")) || d["requested"] != "2027-01-01" {
				t.Errorf("unsupported version data: %v", e["data"])
			}
		}
	}
	if c.count() != before {
		t.Error("a request refused for its headers reached the concierge")
	}

	body, h = modernCall("resources/read", `"uri":"/secret"`, "/secret")
	if e, _ := rpcBody(t, post(s, "/mcp", body, h...))["error"].(map[string]any); e == nil || e["code"] != float64(-32602) {
		t.Errorf("2026-07-28 resource not found: %v, want -32602", e)
	}
	if e, _ := rpcBody(t, post(s, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"/secret"}}`, "Mcp-Protocol-Version", "2025-11-25"))["error"].(map[string]any); e == nil || e["code"] != float64(-32002) {
		t.Errorf("2025-11-25 resource not found: %v, want -32002", e)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		r := s.Do(method, "/mcp", nil, "Mcp-Protocol-Version", "2026-07-28")
		if r.StatusCode != 405 || r.Header.Get("Allow") != "POST, OPTIONS" {
			t.Errorf("%s /mcp: %d Allow %q", method, r.StatusCode, r.Header.Get("Allow"))
		}
	}
}

// TestVerifiedAgentThroughMCP: an agent that signs its MCP requests with
// Web Bot Auth is limited by per_agent as itself, whichever revision it
// speaks and from whichever client; unsigned, badly signed and
// header-forging calls are not charged to it (issues 18 and 19).
func TestVerifiedAgentThroughMCP(t *testing.T) {
	dir := webbotauthtest.NewDirectory(t)
	agent := webbotauthtest.NewAgent(t, dir.Origin())
	dir.Serve(agent)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, dir.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newConcierge(t)
	s := site(t, c, fmt.Sprintf(`rate_limit {
			key {http.request.header.X-Client}
			unauthenticated 100/minute
			per_agent 2/minute
		}
		verified_agents {
			trusted_ca %s
			allow_networks 127.0.0.0/8
		}`, ca))
	authority := fmt.Sprintf("127.0.0.1:%d", s.Port)
	signed := func(extra ...string) []string { return append(agent.Headers(authority, "/mcp"), extra...) }
	legacy := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"hi"}}}`
	modernBody, modernHeaders := modernCall("tools/call", `"name":"site_info","arguments":{"query":"hi"}`, "site_info")

	// per_agent 2/minute: a plain call and a 2026-07-28 call from two
	// clients, then the agent's third call, in either era, is refused.
	for i, r := range []caddyproc.Response{
		post(s, "/mcp", legacy, signed("X-Client", "c1")...),
		post(s, "/mcp", modernBody, signed(append([]string{"X-Client", "c2"}, modernHeaders...)...)...),
	} {
		if res := result(t, r); res["isError"] == true || firstBlock(res) != "site_info says: hi" {
			t.Fatalf("signed call %d: %d %s", i+1, r.StatusCode, r.Bytes)
		}
	}
	for name, r := range map[string]caddyproc.Response{
		"plain":      post(s, "/mcp", legacy, signed("X-Client", "c3")...),
		"2026-07-28": post(s, "/mcp", modernBody, signed(append([]string{"X-Client", "c4"}, modernHeaders...)...)...),
	} {
		res := result(t, r)
		sc, _ := res["structuredContent"].(map[string]any)
		if r.StatusCode != 200 || res["isError"] != true || sc["code"] != "rate_limited" || sc["scope"] != "agent" {
			t.Errorf("the agent's third call (%s): %d %s, want a rate_limited tool error for the agent", name, r.StatusCode, r.Bytes)
		}
	}
	before := c.count()
	for name, r := range map[string]caddyproc.Response{
		"unsigned":      post(s, "/mcp", legacy, "X-Client", "c5"),
		"forged header": post(s, "/mcp", legacy, "X-Client", "c6", "X-AHP-Verified-Agent", agent.Origin),
		"badly signed":  post(s, "/mcp", legacy, append(agent.Headers(authority, "/elsewhere"), "X-Client", "c7")...),
	} {
		if res := result(t, r); res["isError"] == true {
			t.Errorf("%s call: %s (charged to the verified agent?)", name, r.Bytes)
		}
	}
	if got := c.count() - before; got != 3 {
		t.Errorf("%d of the 3 calls not charged to the agent reached the concierge", got)
	}
	if n := dir.Hits(); n != 1 {
		t.Errorf("the agent's directory was fetched %d times, want once", n)
	}
}
