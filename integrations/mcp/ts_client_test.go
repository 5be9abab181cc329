package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
)

// tsClientDir holds the TypeScript SDK check: package.json pins
// @modelcontextprotocol/sdk, package-lock.json pins the rest.
const tsClientDir = "testdata/ts-client"

// TestTypeScriptClient runs the official TypeScript MCP SDK's client
// (StreamableHTTPClientTransport, revision 2025-11-25) against the server:
// tools, a call, an unknown tool, a refused action (a tool error, after
// which the client goes on), resources, an authenticated call. It needs
// node and the SDK installed under testdata/ts-client (npm ci --prefix
// integrations/mcp/testdata/ts-client); when they are missing it tries npm
// ci itself. Locally, no node or no npm registry is a loud skip; with
// CI=true anything short of a passing check fails.
func TestTypeScriptClient(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	node, err := exec.LookPath("node")
	if err != nil {
		if ci {
			t.Fatal("node is not on PATH: CI must run the TypeScript MCP SDK client check (.ci/run installs Node.js)")
		}
		t.Skip("SKIPPED LOUDLY: node is not on PATH, so the TypeScript MCP SDK client check did not run (install Node.js 20+)")
	}
	if err := ensureTSClient(t); err != nil {
		if ci {
			t.Fatalf("the TypeScript SDK is not installed and could not be: %v\n(CI should run: npm ci --prefix integrations/mcp/testdata/ts-client)", err)
		}
		t.Skipf("SKIPPED LOUDLY: the TypeScript MCP SDK client check did not run: %v", err)
	}

	_, site, ts := start(t, nil, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(tsClientDir, "client.mjs"), ts.URL+"/mcp", sitetest.Key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.mjs: %v\nstdout: %s\nstderr: %s", err, stdout, stderr.Bytes())
	}

	type textBlock struct{ Type, Text string }
	type callResult struct {
		Content           []textBlock
		StructuredContent map[string]any
		IsError           bool
	}
	type attempt struct {
		OK    *callResult
		Error *struct {
			Code    *int
			Message string
		}
	}
	var out struct {
		ProtocolVersion string
		ServerVersion   map[string]any
		Tools           []struct {
			Name     string
			Required []string
		}
		Call            callResult
		UnknownTool     attempt
		Unauthenticated attempt
		AfterRefusal    attempt
		Authenticated   attempt
		Resources       []struct{ URI, MIMEType string }
		Read            []struct{ URI, MIMEType, Text string }
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("client output: %v\n%s", err, stdout)
	}
	t.Logf("TypeScript SDK negotiated %s", out.ProtocolVersion)

	if !isLegacy(out.ProtocolVersion) {
		t.Errorf("negotiated %q", out.ProtocolVersion)
	}
	if out.ServerVersion["name"] != "Test Shop" || out.ServerVersion["version"] != "0.1" {
		t.Errorf("serverInfo = %v", out.ServerVersion)
	}
	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
		if len(tl.Required) == 0 || tl.Required[0] != "query" {
			t.Errorf("%s: required = %v", tl.Name, tl.Required)
		}
	}
	if strings.Join(names, ",") != "site_info,content_search,inventory_check,book_demo,get_quote" {
		t.Errorf("tools = %v", names)
	}
	if out.Call.IsError || len(out.Call.Content) == 0 || out.Call.Content[0].Text != "site_info says: Who runs this shop?" {
		t.Errorf("site_info call = %+v", out.Call)
	}
	if out.Call.StructuredContent["status"] != "success" {
		t.Errorf("structuredContent = %v", out.Call.StructuredContent)
	}
	if e := out.UnknownTool.Error; e == nil || e.Code == nil || *e.Code != codeInvalidParams {
		t.Errorf("unknown tool = %+v", out.UnknownTool)
	}
	// Issue 12: a refused action is a tool result (HTTP 200, isError),
	// not a transport error, and the client goes on to list resources.
	if r := out.Unauthenticated.OK; r == nil || !r.IsError || len(r.Content) == 0 || !strings.HasPrefix(r.Content[0].Text, "auth_required: ") ||
		r.StructuredContent["code"] != "auth_required" {
		t.Errorf("book_demo without credentials = %+v, want a tool error naming auth_required", out.Unauthenticated)
	}
	if r := out.AfterRefusal.OK; r == nil || r.IsError {
		t.Errorf("the session did not survive the refusal: %+v", out.AfterRefusal)
	}
	if r := out.Authenticated.OK; r == nil || r.IsError || !strings.HasPrefix(r.Content[0].Text, "book_demo says: Book a demo") {
		t.Errorf("book_demo with credentials = %+v", out.Authenticated)
	}
	if len(out.Resources) != 1 || out.Resources[0].URI != ts.URL+"/llms.txt" {
		t.Errorf("resources = %+v", out.Resources)
	}
	if len(out.Read) != 1 || out.Read[0].Text != sitetest.Content {
		t.Errorf("read = %+v", out.Read)
	}
	if got := site.Last(t).Header.Get("Authorization"); got != sitetest.Bearer {
		t.Errorf("the authenticated call reached the site with Authorization %q", got)
	}
}

// ensureTSClient installs the pinned SDK with npm ci when it is missing.
func ensureTSClient(t *testing.T) error {
	marker := filepath.Join(tsClientDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tsClientDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return &npmError{err: err, out: string(out)}
	}
	_, err = os.Stat(marker)
	return err
}

type npmError struct {
	err error
	out string
}

func (e *npmError) Error() string {
	return "npm ci: " + e.err.Error() + ": " + strings.TrimSpace(e.out)
}
