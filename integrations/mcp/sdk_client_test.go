package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// headerTransport adds fixed headers to every request of an SDK client.
type headerTransport struct {
	header http.Header
	base   http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

func connect(t *testing.T, ts *httptest.Server, header http.Header, version string) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := ts.Client()
	if header != nil {
		hc = &http.Client{Transport: headerTransport{header, ts.Client().Transport}}
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "go-sdk-test", Version: "1.0"}, nil)
	var opts *sdk.ClientSessionOptions
	if version != "" {
		opts = &sdk.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: hc, MaxRetries: -1}, opts)
	if err != nil {
		t.Fatalf("connect (protocol %q): %v", version, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func firstText(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatal("empty content")
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content[0] is %T, want text", res.Content[0])
	}
	return tc.Text
}

// TestSDKClient connects the official Go SDK's client over Streamable
// HTTP in every revision we serve: its default, 2026-07-28 (stateless: it
// probes server/discover, then every request carries its _meta and the
// Mcp-* headers), and each initialize-era one. Each lists the tools, calls
// one through the gateway, and sees a refused action as a tool error.
func TestSDKClient(t *testing.T) {
	for _, version := range []string{"", "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"} {
		t.Run("protocol="+version, func(t *testing.T) {
			_, site, ts := start(t, nil, Options{})
			cs := connect(t, ts, nil, version)
			ctx := context.Background()

			init := cs.InitializeResult()
			want := version
			if want == "" {
				want = modernVersion
			}
			if init.ProtocolVersion != want {
				t.Errorf("negotiated %q, want %q", init.ProtocolVersion, want)
			}
			if init.ServerInfo == nil || init.ServerInfo.Name != "Test Shop" || init.ServerInfo.Version != manifest.Version {
				t.Errorf("serverInfo = %+v", init.ServerInfo)
			}
			if init.Capabilities.Tools == nil || init.Capabilities.Resources == nil {
				t.Errorf("capabilities = %+v, want tools and resources", init.Capabilities)
			}

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			if want := []string{"site_info", "content_search", "inventory_check", "book_demo", "get_quote"}; !slices.Equal(names, want) {
				t.Errorf("tools = %v, want %v (MODE2 and MODE3, manifest order, no MODE1)", names, want)
			}

			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{"query": "Who runs this shop?"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError {
				t.Fatalf("isError: %+v", res.Content)
			}
			if got := firstText(t, res); got != "site_info says: Who runs this shop?" {
				t.Errorf("content[0].text = %q", got)
			}
			sc, _ := res.StructuredContent.(map[string]any)
			if sc["status"] != "success" || sc["session_id"] != "s-1" {
				t.Errorf("structuredContent = %v", res.StructuredContent)
			}
			last := site.Last(t)
			if last.Method != http.MethodPost || last.Path != "/agent/converse" || last.Parsed == nil || last.Parsed.Capability != "site_info" {
				t.Errorf("internal request = %s %s %+v", last.Method, last.Path, last.Parsed)
			}

			// A refused action is a tool error, and the client goes on.
			before := len(site.Received())
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "book_demo", Arguments: map[string]any{"query": "Book a demo"}})
			if err != nil || !res.IsError || !strings.HasPrefix(firstText(t, res), "auth_required: ") {
				t.Fatalf("refused action: %v %+v", err, res)
			}
			if sc, _ := res.StructuredContent.(map[string]any); sc["code"] != "auth_required" {
				t.Errorf("structuredContent = %v", res.StructuredContent)
			}
			if len(site.Received()) != before {
				t.Error("the refused action reached the concierge")
			}
			if _, err := cs.ListResources(ctx, nil); err != nil {
				t.Errorf("resources/list after the refusal: %v", err)
			}
		})
	}
}

// TestSDKClientErrors: an unknown tool is a JSON-RPC invalid params;
// arguments the tool refuses are tool errors the model can correct; with
// a bearer token the action succeeds. In the stateless revision and in a
// 2025 one.
func TestSDKClientErrors(t *testing.T) {
	for _, version := range []string{modernVersion, "2025-06-18"} {
		t.Run(version, func(t *testing.T) {
			_, site, ts := start(t, nil, Options{})
			cs := connect(t, ts, nil, version)
			ctx := context.Background()

			_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{"query": "x"}})
			assertRPCError(t, err, codeInvalidParams, "unknown tool")

			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "site_info", Arguments: map[string]any{}})
			if err != nil || !res.IsError || !strings.HasPrefix(firstText(t, res), "missing_field: ") {
				t.Errorf("no query: %v %+v", err, res)
			}
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "inventory_check", Arguments: map[string]any{"query": "stock?", "sku": 12}})
			if err != nil || !res.IsError || !strings.Contains(firstText(t, res), "sku") {
				t.Errorf("bad sku: %v %+v", err, res)
			}

			authed := connect(t, ts, http.Header{"Authorization": {sitetest.Bearer}}, version)
			res, err = authed.CallTool(ctx, &sdk.CallToolParams{Name: "book_demo", Arguments: map[string]any{"query": "Book a demo", "date": "2026-12-01"}})
			if err != nil || res.IsError {
				t.Fatalf("authenticated call: %v %+v", err, res)
			}
			if got := firstText(t, res); got != "book_demo says: Book a demo\n\nArguments: {\"date\":\"2026-12-01\"}" {
				t.Errorf("answer = %q", got)
			}
			if got := site.Last(t).Header.Get("Authorization"); got != sitetest.Bearer {
				t.Errorf("internal Authorization = %q", got)
			}
		})
	}
}

func assertRPCError(t *testing.T, err error, code int64, contains string) {
	t.Helper()
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) {
		t.Fatalf("error = %v, want a JSON-RPC error %d", err, code)
	}
	if werr.Code != code || !strings.Contains(werr.Message, contains) {
		t.Errorf("JSON-RPC error = %d %q, want %d containing %q", werr.Code, werr.Message, code, contains)
	}
}

// TestSDKClientResources lists and reads the MODE1 content through the
// site, and reads an async status URI given by an accepted answer, in the
// stateless revision (not found is -32602) and in 2025-11-25 (-32002).
func TestSDKClientResources(t *testing.T) {
	for version, notFound := range map[string]int64{modernVersion: codeInvalidParams, "2025-11-25": codeResourceNotFound} {
		t.Run(version, func(t *testing.T) {
			_, site, ts := start(t, nil, Options{})
			cs := connect(t, ts, http.Header{"Authorization": {sitetest.Bearer}}, version)
			ctx := context.Background()

			list, err := cs.ListResources(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Resources) != 1 {
				t.Fatalf("resources = %+v", list.Resources)
			}
			r0 := list.Resources[0]
			if r0.URI != ts.URL+"/llms.txt" || r0.MIMEType != "text/plain" || r0.Name != "llms.txt" {
				t.Errorf("resource = %+v", r0)
			}
			read, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: r0.URI})
			if err != nil {
				t.Fatal(err)
			}
			if len(read.Contents) != 1 || read.Contents[0].Text != sitetest.Content || read.Contents[0].MIMEType != "text/plain" {
				t.Errorf("contents = %+v", read.Contents)
			}
			if last := site.Last(t); last.Method != http.MethodGet || last.Path != "/llms.txt" || last.Header.Get("Accept-Encoding") != "" {
				t.Errorf("internal read = %s %s %v", last.Method, last.Path, last.Header)
			}

			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "get_quote", Arguments: map[string]any{"query": "Quote for 100 units"}})
			if err != nil || res.IsError {
				t.Fatalf("async call: %v %+v", err, res)
			}
			poll := ts.URL + "/agent/converse/status/xyz-456"
			if got := firstText(t, res); !strings.Contains(got, `"xyz-456"`) || !strings.Contains(got, poll) {
				t.Errorf("accepted text = %q, want the session id and %s", got, poll)
			}
			status, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: poll})
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(status.Contents[0].Text), &body); err != nil || body["status"] != "pending" {
				t.Errorf("status read = %+v (%v)", status.Contents, err)
			}

			_, err = cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: ts.URL + "/admin/secrets"})
			assertRPCError(t, err, notFound, "not a resource")
		})
	}
}
