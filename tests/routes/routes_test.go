package routes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

const (
	// ahpBlock is an ahp block with one MODE2 capability, the converse
	// endpoint at {converse} and both front doors.
	ahpBlock = `ahp {
		name "Routes"
		content_signals {
			ai_input true
		}
		converse {converse}
		capability ask {
			mode MODE2
			description "Ask"
			response_types text/answer
		}
		openapi /openapi.json
		mcp /mcp
	}`
	// conciergeRoute answers for the concierge, on exactly the manifest's
	// paths, and says which path it was given.
	conciergeRoute = `@concierge path {converse} {converse}/status/*
	handle @concierge {
		header X-Concierge-Path {http.request.uri.path}
		header Content-Type application/json
		respond ` + "`" + `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"from the concierge"},"meta":{"tokens_used":1,"capability_used":"ask","mode":"MODE2","cached":false}}` + "`" + ` 200
	}`
	statusID = "0123456789abcdef0123456789abcdef"
)

func site(converse, before, after string) string {
	r := strings.NewReplacer("{converse}", converse)
	return ":{{PORT}} {\n\t" + before + "\n\t" + r.Replace(ahpBlock) + "\n\t" + r.Replace(conciergeRoute) + "\n\t" + after + "\n}\n"
}

const (
	askDirect = `{"capability":"ask","query":"hello"}`
	askMCP    = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask","arguments":{"query":"hello"}}}`
)

// reachesConcierge checks that all three doors and the status path reach
// the concierge route, the direct call and the poll on the manifest's
// paths.
func reachesConcierge(t *testing.T, s *caddyproc.Server, converse string) {
	t.Helper()
	for _, c := range []struct{ door, path, body, wantPath string }{
		{"direct converse", converse, askDirect, converse},
		{"OpenAPI door", "/capabilities/ask", `{"query":"hello"}`, ""},
		{"MCP door", "/mcp", askMCP, ""},
	} {
		r := s.Do("POST", c.path, strings.NewReader(c.body),
			"Content-Type", "application/json", "Accept", "application/json, text/event-stream")
		if r.StatusCode != 200 || !strings.Contains(string(r.Bytes), "from the concierge") {
			t.Errorf("%s: POST %s = %d %q (Allow %q); want 200 with the concierge's answer",
				c.door, c.path, r.StatusCode, r.Bytes, r.Header.Get("Allow"))
		}
		if got := r.Header.Get("X-Concierge-Path"); c.wantPath != "" && got != c.wantPath {
			t.Errorf("%s: the concierge was given %q, want the manifest's %s", c.door, got, c.wantPath)
		}
	}
	status := converse + "/status/" + statusID
	r := s.Get(status)
	if r.StatusCode != 200 || r.Header.Get("X-Concierge-Path") != status {
		t.Errorf("GET %s = %d %q (concierge given %q); want the concierge's answer on the status path",
			status, r.StatusCode, r.Bytes, r.Header.Get("X-Concierge-Path"))
	}
}

// A single-page app served the way Caddy's docs show it: a top-level
// `try_files {path} /index.html` rewrites every path that is not a file,
// the gateway's too. The gateway claims them by the path the client sent
// and forwards them on that path, so the site's concierge route gets
// them, not file_server (405) or the app's index.html (as a job status).
func TestSPATryFilesReachesConcierge(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html><body>app</body></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := caddyproc.Start(t, site("/agent/converse", "root * "+root+"\n\ttry_files {path} /index.html", "file_server"))
	reachesConcierge(t, s, "/agent/converse")
	if r := s.Get("/some/app/route"); r.StatusCode != 200 || !strings.Contains(string(r.Bytes), "app") {
		t.Errorf("GET /some/app/route = %d %q; want the app's index.html", r.StatusCode, r.Bytes)
	}
}

// A rewrite onto the converse path is the gateway's (and is forwarded
// there); a rewrite away from it does not take the call elsewhere: the
// manifest's path wins, as for the MCP and OpenAPI doors' calls.
func TestRewritesKeepTheManifestPath(t *testing.T) {
	s := caddyproc.Start(t, site("/agent/converse",
		"rewrite /old-api /agent/converse\n\trewrite /agent/converse /api/ahp",
		`respond "the site" 200`))
	reachesConcierge(t, s, "/agent/converse")
	r := s.Do("POST", "/old-api", strings.NewReader(askDirect), "Content-Type", "application/json")
	if r.StatusCode != 200 || r.Header.Get("X-Concierge-Path") != "/agent/converse" {
		t.Errorf("POST /old-api (rewritten onto the converse path) = %d %q (concierge given %q); want the concierge on /agent/converse",
			r.StatusCode, r.Bytes, r.Header.Get("X-Concierge-Path"))
	}
	r = s.Do("POST", "/old-api", strings.NewReader(`{"capability":"nope","query":"x"}`), "Content-Type", "application/json")
	if r.StatusCode != 400 || !strings.Contains(string(r.Bytes), `"unknown_capability"`) {
		t.Errorf("POST /old-api, unknown capability = %d %q; want the gateway's 400 unknown_capability", r.StatusCode, r.Bytes)
	}
}

// A site under a prefix that `uri strip_prefix` takes off before ahp: the
// manifest's converse path keeps the prefix, and the call reaches the
// concierge route with it.
func TestStripPrefixKeepsTheManifestPath(t *testing.T) {
	s := caddyproc.Start(t, site("/app/agent/converse", "uri strip_prefix /app", `respond "the app: {http.request.uri.path}" 200`))
	reachesConcierge(t, s, "/app/agent/converse")
	if r := s.Get("/app/about"); string(r.Bytes) != "the app: /about" {
		t.Errorf("GET /app/about = %d %q; want the app's page with the prefix stripped", r.StatusCode, r.Bytes)
	}
}

// README: "A request matcher limits the pages the handler takes". The
// plugin's own paths stay its own: the manifest the pages advertise is
// served, and a call to the converse path, the status path or a front
// door meets the gateway, never the concierge route unchecked.
func TestMatcherOnAHPKeepsItsOwnPaths(t *testing.T) {
	s := caddyproc.Start(t, `:{{PORT}} {
	ahp /docs/* {
		name "Docs"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		authentication bearer
		capability book {
			mode MODE3
			action_type action
			description "Book"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
		openapi /openapi.json
		mcp /mcp
	}
	# A broad route to the concierge, as an operator might write it.
	@concierge path /agent/*
	handle @concierge {
		respond "the concierge, reached" 200
	}
	respond "a page" 200
}
`)
	if r := s.Get("/docs/intro"); !strings.Contains(r.Header.Get("Link"), "/.well-known/agent.json") {
		t.Errorf("GET /docs/intro: Link %q; a page under the matcher advertises the manifest", r.Header.Get("Link"))
	}
	if r := s.Get("/about"); r.Header.Get("Link") != "" || string(r.Bytes) != "a page" {
		t.Errorf("GET /about = %q, Link %q; a page outside the matcher is the site's alone", r.Bytes, r.Header.Get("Link"))
	}
	if m := s.Get("/.well-known/agent.json"); m.StatusCode != 200 || !strings.Contains(string(m.Bytes), `"ahp"`) {
		t.Errorf("GET /.well-known/agent.json = %d %s %q; want the manifest", m.StatusCode, m.Header.Get("Content-Type"), m.Bytes)
	}
	if r := s.Get("/openapi.json"); r.StatusCode != 200 || !strings.Contains(string(r.Bytes), `"openapi"`) {
		t.Errorf("GET /openapi.json = %d %q; want the OpenAPI document", r.StatusCode, r.Bytes)
	}
	for _, c := range []struct {
		method, path, body, contentType string
		want                            int
	}{
		{"POST", "/agent/converse", "not json", "text/plain", 415},
		{"POST", "/agent/converse", `{"capability":"book","query":"book it"}`, "application/json", 401},
		{"POST", "/capabilities/book", `{"query":"book it","email":"a@example.com"}`, "application/json", 401},
		{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, "application/json", 200},
		{"DELETE", "/agent/converse/status/" + statusID, "", "", 405},
		// Spellings the gateway refuses must meet it, not the broad route.
		{"POST", "/agent/converse/", "not json", "text/plain", 400},
		{"POST", "/agent//converse", "not json", "text/plain", 400},
		{"POST", "/agent/./converse", "not json", "text/plain", 400},
		// Spellings Caddy's path matcher would not fold, which a matcher
		// on the route would have let by: a second percent-decoding,
		// '\' for '/' (IIS and .NET read it so).
		{"POST", "/agent/%2563onverse", "not json", "text/plain", 400},
		{"POST", `/agent\converse`, "not json", "text/plain", 400},
	} {
		r := s.Do(c.method, c.path, strings.NewReader(c.body), "Content-Type", c.contentType, "Accept", "application/json, text/event-stream")
		if r.StatusCode != c.want || strings.Contains(string(r.Bytes), "the concierge, reached") || string(r.Bytes) == "a page" {
			t.Errorf("%s %s (%s) = %d %q; want the plugin's %d", c.method, c.path, c.contentType, r.StatusCode, r.Bytes, c.want)
		}
	}
}
