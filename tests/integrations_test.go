package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

type headerRoundTripper struct {
	header http.Header
	base   http.RoundTripper
}

func (h headerRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// mcpClient connects the official MCP Go SDK client to the site.
func mcpClient(t *testing.T, s *caddyServer, header http.Header) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := &http.Client{Transport: headerRoundTripper{header, http.DefaultTransport}, Timeout: 20 * time.Second}
	client := sdk.NewClient(&sdk.Implementation{Name: "caddy-ahp-e2e", Version: "1.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: s.url("/mcp"), HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// frontDoorSite is a site with both doors and a content document, llms.txt
// holding llms; extra goes into the ahp block.
func frontDoorSite(t *testing.T, c *concierge, llms, extra string) string {
	file := filepath.Join(t.TempDir(), "llms.txt")
	writeFile(t, file, llms) // before Caddy starts: a missing content file fails the load
	return gatewaySite(c.Listener.Addr().String(), "mcp /mcp\n\t\topenapi /openapi.json\n\t\tcontent /llms.txt "+file+"\n\t\t"+extra)
}

func TestMCPThroughCaddy(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, frontDoorSite(t, c, "# Gateway Test\n> content for agents\n", "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}\n\t\trate_limit {\n\t\t\tunauthenticated 4/minute\n\t\t}"))

	// The manifest declares both doors.
	var m map[string]any
	_ = json.Unmarshal(s.get("/.well-known/agent.json").body, &m)
	integ, _ := m["integrations"].(map[string]any)
	if mcp, _ := integ["mcp"].(map[string]any); mcp["url"] != "/mcp" || mcp["version"] != "2024-11-05" {
		t.Errorf("integrations.mcp = %v", integ["mcp"])
	}
	if oa, _ := integ["openapi"].(map[string]any); oa["url"] != "/openapi.json" || oa["version"] != "3.1.0" {
		t.Errorf("integrations.openapi = %v", integ["openapi"])
	}

	ctx := context.Background()
	cs := mcpClient(t, s, nil)
	if info := cs.InitializeResult().ServerInfo; info.Name != "Gateway Test" {
		t.Errorf("serverInfo.name = %q", info.Name)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "site_info,get_video,book_demo" {
		t.Errorf("tools = %v", names)
	}

	// A call reaches the concierge through the gateway and returns its answer.
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "When are you open?"}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v %+v", err, res)
	}
	if text := res.Content[0].(*sdk.TextContent).Text; text != "We are open Tuesday to Saturday." {
		t.Errorf("content[0].text = %q", text)
	}
	var sent map[string]any
	_ = json.Unmarshal(c.last().body, &sent)
	if sent["capability"] != "site_info" || !strings.HasPrefix(sent["query"].(string), "When are you open?") {
		t.Errorf("concierge received %s", c.last().body)
	}

	// A MODE3 action without credentials fails as it does over AHP, and
	// never reaches the concierge.
	before := c.count()
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "book_demo", Arguments: map[string]any{"query": "Book a demo", "email": "a@example.com"}})
	if err != nil || !res.IsError || !strings.HasPrefix(res.Content[0].(*sdk.TextContent).Text, "auth_required: ") {
		t.Errorf("action without credentials: %v %+v (want a tool error)", err, res)
	}
	if c.count() != before {
		t.Error("unauthenticated action reached the concierge")
	}
	authed := mcpClient(t, s, http.Header{"Authorization": {"Bearer " + goodKey}})
	res, err = authed.CallTool(ctx, &sdk.CallToolParams{Name: "book_demo", Arguments: map[string]any{"query": "Book a demo", "email": "a@example.com"}})
	if err != nil || res.IsError {
		t.Fatalf("authenticated action: %v %+v", err, res)
	}
	if got := c.last().header.Get("Authorization"); got != "Bearer "+goodKey {
		t.Errorf("concierge got Authorization %q", got)
	}

	// Resources: the MODE1 content document, read through the site.
	rl, err := cs.ListResources(ctx, nil)
	if err != nil || len(rl.Resources) == 0 {
		t.Fatalf("resources/list: %v %+v", err, rl)
	}
	rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: rl.Resources[0].URI})
	if err != nil || len(rr.Contents) == 0 || !strings.Contains(rr.Contents[0].Text, "content for agents") {
		t.Fatalf("resources/read: %v %+v", err, rr)
	}

	// MCP calls and direct calls share one budget, unauthenticated
	// 4/minute: the MCP site_info call and the refused MCP book_demo used
	// two, this direct call the third.
	r := s.converse(`{"capability":"site_info","query":"direct"}`)
	if r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("direct call after two MCP calls: %d remaining %q", r.StatusCode, r.Header.Get("X-RateLimit-Remaining"))
	}
	if res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "fourth"}}); err != nil || res.IsError {
		t.Fatalf("fourth call: %v %+v", err, res)
	}
	if r := s.converse(`{"capability":"site_info","query":"fifth"}`); r.StatusCode != 429 {
		t.Errorf("direct call over the shared limit: %d", r.StatusCode)
	}
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "sixth"}})
	if err != nil {
		t.Fatalf("rate-limited call: %v", err)
	}
	if !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, "rate_limited") {
		t.Errorf("MCP call over the shared limit = %+v", res)
	}
}

func TestOpenAPIThroughCaddy(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, frontDoorSite(t, c, "# content\n", ""))

	r := s.get("/openapi.json")
	if r.StatusCode != 200 {
		t.Fatalf("document: %d", r.StatusCode)
	}
	assertOneLink(t, "openapi", r)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is not valid OpenAPI 3.1: %v", err)
	}
	if got := doc.Servers[0].URL; got != fmt.Sprintf("http://127.0.0.1:%d", s.port) {
		t.Errorf("servers[0].url = %q", got)
	}
	for _, name := range []string{"site_info", "get_video", "book_demo"} {
		if doc.Paths.Find("/capabilities/"+name) == nil {
			t.Errorf("no path for %s", name)
		}
	}

	// POST /capabilities/{name} maps onto the converse pipeline.
	r = s.do(http.MethodPost, "/capabilities/site_info", strings.NewReader(`{"query":"When are you open?"}`), "Content-Type", "application/json")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Tuesday") {
		t.Fatalf("capability call: %d %s", r.StatusCode, r.body)
	}
	assertRateHeaders(t, "capability call", r)
	var sent map[string]any
	_ = json.Unmarshal(c.last().body, &sent)
	if sent["capability"] != "site_info" {
		t.Errorf("concierge received %s", c.last().body)
	}
	before := c.count()
	r = s.do(http.MethodPost, "/capabilities/book_demo", strings.NewReader(`{"query":"Book","email":"a@example.com"}`), "Content-Type", "application/json")
	if r.StatusCode != 401 || c.count() != before {
		t.Errorf("action without credentials over OpenAPI: %d (concierge calls %d→%d)", r.StatusCode, before, c.count())
	}
	assertErrorBody(t, r, "auth_required")

	// An agent's other calls under /capabilities/ get the door's AHP
	// answers, not the legacy site's page; the site's own pages there
	// stay the site's.
	before = c.count()
	r = s.do(http.MethodGet, "/capabilities/site_info", nil)
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET of a capability: %d Allow %q %s", r.StatusCode, r.Header.Get("Allow"), r.body)
	}
	assertErrorBody(t, r, "invalid_request")
	r = s.do(http.MethodPost, "/capabilities/no_such", strings.NewReader(`{"query":"q"}`), "Content-Type", "application/json")
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), `"available_capabilities":["site_info","get_video","book_demo"]`) {
		t.Errorf("unknown capability: %d %s", r.StatusCode, r.body)
	}
	assertErrorBody(t, r, "unknown_capability")
	if c.count() != before {
		t.Errorf("the concierge was called for a refused call")
	}
	r = s.get("/capabilities/overview")
	if r.StatusCode != 200 || string(r.body) != "legacy site" {
		t.Errorf("the site's own page under /capabilities/: %d %s", r.StatusCode, r.body)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
