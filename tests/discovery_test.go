package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/discovery"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// legacyUpstream is an old site that knows nothing of AHP: pages, a
// redirect, its own Link headers, and a file at the manifest's path.
func legacyUpstream(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><html><head><title>Legacy</title></head><body><h1>Legacy page</h1></body></html>")
	})
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/preload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", `</style.css>; rel="preload"; as="style"`)
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, "body{}")
	})
	mux.HandleFunc("/own-ahp-link", func(w http.ResponseWriter, r *http.Request) {
		// A site that half-adopted AHP already advertises a manifest.
		w.Header().Add("Link", `</old-agent.json>; rel="ahp-manifest"; type="application/agent+json", </a.css>; rel=preload`)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/.well-known/agent.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"protocolVersion":"a2a agent card"}`)
	})
	mux.HandleFunc("/llms.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "# Legacy\n> from the upstream\n")
	})
	mux.HandleFunc("/agent/converse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","response":{"answer":"method %s accept %s"}}`, r.Method, r.Header.Get("Accept"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const basicAHP = `
	ahp {
		name "Example Site"
		description "A site for tests"
		content /llms.txt
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		%s
	}
`

func ahpBlock(extra string) string { return fmt.Sprintf(basicAHP, extra) }

// manifestLinks counts the ahp-manifest links over all Link fields.
func manifestLinks(h http.Header) int {
	n := 0
	for _, v := range h.Values("Link") {
		n += strings.Count(v, `rel="ahp-manifest"`)
	}
	return n
}

func assertOneLink(t *testing.T, what string, r response) {
	t.Helper()
	if n := manifestLinks(r.Header); n != 1 {
		t.Errorf("%s: %d ahp-manifest links, want exactly 1: %q", what, n, r.Header.Values("Link"))
	}
	found := false
	for _, v := range r.Header.Values("Link") {
		if v == discovery.LinkValue {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: Link %q missing: %q", what, discovery.LinkValue, r.Header.Values("Link"))
	}
}

func TestListModules(t *testing.T) {
	out, err := caddyCmd(t, t.TempDir(), "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	if !strings.Contains(out, "\nhttp.handlers.ahp\n") {
		t.Errorf("http.handlers.ahp missing from list-modules:\n%s", out)
	}
}

func TestManifestEndpoint(t *testing.T) {
	up := legacyUpstream(t)
	s := startCaddy(t, fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
%s
	reverse_proxy %s
}`, ahpBlock(""), up.Listener.Addr()))

	r := s.get("/.well-known/agent.json")
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type":                "application/json",
		"Access-Control-Allow-Origin": "*",
		"Cache-Control":               "public, max-age=300",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(string(r.body), "a2a agent card") {
		t.Fatal("the upstream's file at the manifest path leaked through")
	}
	if problems, err := schema.Check(schema.ManifestSchema, r.body); err != nil || problems != nil {
		t.Fatalf("served manifest does not validate: %v %v\n%s", err, problems, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || m["name"] != "Example Site" || m["ahp"] != "0.1" {
		t.Errorf("manifest = %s", r.body)
	}
	if got := r.Header.Get("Content-Length"); got != fmt.Sprint(len(r.body)) {
		t.Errorf("Content-Length %s for %d bytes", got, len(r.body))
	}
	assertOneLink(t, "manifest", r)

	etag := r.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q is not strong", etag)
	}
	r2 := s.get("/.well-known/agent.json", "If-None-Match", etag)
	if r2.StatusCode != http.StatusNotModified || len(r2.body) != 0 || r2.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match: status %d, etag %q, %d body bytes", r2.StatusCode, r2.Header.Get("ETag"), len(r2.body))
	}
	assertOneLink(t, "304", r2)
	if r3 := s.get("/.well-known/agent.json", "If-None-Match", `"other", W/`+etag); r3.StatusCode != 304 {
		t.Errorf("weak match in a list: status %d, want 304", r3.StatusCode)
	}
	if r4 := s.get("/.well-known/agent.json", "If-None-Match", `"other"`); r4.StatusCode != 200 {
		t.Errorf("non-matching If-None-Match: status %d, want 200", r4.StatusCode)
	}

	head := s.do(http.MethodHead, "/.well-known/agent.json", nil)
	if head.StatusCode != 200 || head.Header.Get("ETag") != etag || head.Header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("HEAD: status %d headers %v", head.StatusCode, head.Header)
	}
	assertOneLink(t, "HEAD manifest", head)

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := s.do(method, "/.well-known/agent.json", strings.NewReader("{}"))
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, r.StatusCode)
		}
		if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
			t.Errorf("%s: Allow = %q", method, allow)
		}
		assertErrorBody(t, r, "invalid_request")
		assertOneLink(t, method+" 405", r)
	}
	opt := s.do(http.MethodOptions, "/.well-known/agent.json", nil, "Origin", "https://agent.example", "Access-Control-Request-Method", "GET")
	if opt.StatusCode != http.StatusNoContent || opt.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS: status %d headers %v", opt.StatusCode, opt.Header)
	}
}

// assertErrorBody checks an AHP error body: JSON, the code, and valid
// against the official response schema.
func assertErrorBody(t *testing.T, r response, code string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.body)
	}
	if body["status"] != "error" || body["code"] != code || body["message"] == "" {
		t.Errorf("error body = %s, want code %s", r.body, code)
	}
	if problems, err := schema.Check(schema.ResponseSchema, r.body); err != nil || problems != nil {
		t.Errorf("error body does not validate against the response schema: %v %v\n%s", err, problems, r.body)
	}
}

// Every response of the site carries exactly one ahp-manifest link:
// whatever produced it, whatever its status.
func TestLinkOnEveryResponse(t *testing.T) {
	up := legacyUpstream(t)
	deadPort := freePort(t) // nothing listens here: the upstream is down
	siteDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(siteDir, "page.html"), []byte("<html><body>static</body></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	// "secret" hashed with bcrypt
	const hash = "$2a$14$4Sc.MXC98ZZdAv5mIm9zZOa6Jt.5NGbOl/m9g5yQ1tpj9SHIdZHXW"
	s := startCaddy(t, fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
%s
	redir /moved /elsewhere 308
	basic_auth /private/* {
		alice %s
	}
	handle /static/* {
		root * %s
		uri strip_prefix /static
		file_server
	}
	handle /down/* {
		reverse_proxy 127.0.0.1:%d
	}
	handle /boom {
		error "kaboom" 500
	}
	handle /teapot {
		error 418
	}
	handle {
		reverse_proxy %s
	}
	handle_errors 418 {
		respond "custom error page {err.status_code}" 418
	}
}`, ahpBlock(""), hash, siteDir, deadPort, up.Listener.Addr()))

	page := s.get("/static/page.html")
	lastMod := page.Header.Get("Last-Modified")
	cases := []struct {
		name       string
		method     string
		path       string
		headers    []string
		wantStatus int
	}{
		{"200 from upstream", "GET", "/", nil, 200},
		{"HEAD", "HEAD", "/", nil, 200},
		{"404 from file_server", "GET", "/static/missing.html", nil, 404},
		{"200 from file_server", "GET", "/static/page.html", nil, 200},
		{"304 from file_server", "GET", "/static/page.html", []string{"If-Modified-Since", lastMod}, 304},
		{"502 upstream down", "GET", "/down/x", nil, 502},
		{"redirect from upstream", "GET", "/old", nil, 301},
		{"500 from error", "GET", "/boom", nil, 500},
		{"handle_errors page", "GET", "/teapot", nil, 418},
		{"405 from the plugin", "POST", "/.well-known/agent.json", nil, 405},
		{"negotiated redirect", "GET", "/", []string{"Accept", "application/agent+json"}, 302},
		{"POST through", "POST", "/agent/converse", nil, 200},
		{"upstream Link kept", "GET", "/preload", nil, 200},
		{"upstream ahp-manifest replaced", "GET", "/own-ahp-link", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(c.method, c.path, nil, c.headers...)
			if r.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.wantStatus, r.body)
			}
			assertOneLink(t, c.name, r)
		})
	}

	// redir and basic_auth answer before ahp runs (it is ordered after the
	// site's auth, so a protected site's plugin documents stay protected):
	// their answers carry no Link, unless the operator orders ahp first.
	for _, c := range []struct {
		path   string
		status int
	}{{"/moved", 308}, {"/private/x", 401}} {
		if r := s.get(c.path); r.StatusCode != c.status || len(r.Header.Values("Link")) != 0 {
			t.Errorf("default order, %s: %d with Link %q; want %d without", c.path, r.StatusCode, r.Header.Values("Link"), c.status)
		}
	}
	t.Run("order ahp before redir", func(t *testing.T) {
		first := startCaddyGlobals(t, "order ahp before redir", fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
%s
	redir /moved /elsewhere 308
	basic_auth /private/* {
		alice %s
	}
	reverse_proxy %s
}`, ahpBlock(""), hash, up.Listener.Addr()))
		assertOneLink(t, "redirect from redir", first.get("/moved"))
		assertOneLink(t, "401 from basic_auth", first.get("/private/x"))
	})

	t.Run("upstream links survive", func(t *testing.T) {
		r := s.get("/preload")
		if !strings.Contains(strings.Join(r.Header.Values("Link"), ","), `</style.css>; rel="preload"`) {
			t.Errorf("upstream Link lost: %q", r.Header.Values("Link"))
		}
		r = s.get("/own-ahp-link")
		all := strings.Join(r.Header.Values("Link"), ",")
		if strings.Contains(all, "old-agent.json") || !strings.Contains(all, "</a.css>; rel=preload") {
			t.Errorf("the upstream's own ahp-manifest link must go, its other links stay: %q", r.Header.Values("Link"))
		}
	})
	t.Run("handle_errors body", func(t *testing.T) {
		if r := s.get("/teapot"); !strings.Contains(string(r.body), "custom error page 418") {
			t.Errorf("handle_errors page body = %q", r.body)
		}
	})
}

func TestNegotiation(t *testing.T) {
	up := legacyUpstream(t)
	s := startCaddy(t, fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
%s
	reverse_proxy %s
}
http://localhost:{{PORT}} {
%s
	reverse_proxy %s
}`, ahpBlock(""), up.Listener.Addr(), ahpBlock("discovery inline"), up.Listener.Addr()))

	manifest := s.get("/.well-known/agent.json").body

	redirects := []string{
		"application/agent+json",
		"text/html, application/agent+json;q=0.5",
		"APPLICATION/AGENT+JSON",
		`application/agent+json; profile="a,b;c"; q=0.001`,
		"application/agent+json ; q=1.0",
	}
	for _, accept := range redirects {
		r := s.get("/blog/post", "Accept", accept)
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/.well-known/agent.json" {
			t.Errorf("Accept %q: status %d Location %q, want 302 to the manifest", accept, r.StatusCode, r.Header.Get("Location"))
		}
		if !varies(r.Header, "Accept") {
			t.Errorf("Accept %q: negotiated response lacks Vary: Accept (%q)", accept, r.Header.Values("Vary"))
		}
		h := s.do(http.MethodHead, "/blog/post", nil, "Accept", accept)
		if h.StatusCode != http.StatusFound {
			t.Errorf("HEAD Accept %q: status %d", accept, h.StatusCode)
		}
	}
	pages := []string{
		"",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"*/*",
		"application/*",
		"application/agent+json;q=0",
		"application/agent+json; q=0.000",
		"application/agent+json;q=2",
		"application/agent+jsonx",
		`text/html; foo="application/agent+json"`,
	}
	for _, accept := range pages {
		var r response
		if accept == "" {
			r = s.get("/blog/post")
		} else {
			r = s.get("/blog/post", "Accept", accept)
		}
		if r.StatusCode != 200 || !strings.Contains(string(r.body), "Legacy page") {
			t.Errorf("Accept %q: status %d, want the page", accept, r.StatusCode)
		}
		if !varies(r.Header, "Accept") {
			t.Errorf("Accept %q: page lacks Vary: Accept (%q)", accept, r.Header.Values("Vary"))
		}
	}

	// POST is never hijacked: the agent reaches the converse endpoint.
	post := s.do(http.MethodPost, "/agent/converse", strings.NewReader(`{}`), "Accept", "application/agent+json")
	if post.StatusCode != 200 || !strings.Contains(string(post.body), "method POST") {
		t.Errorf("POST with agent Accept: status %d body %s", post.StatusCode, post.body)
	}

	// discovery inline: 200 with the manifest itself.
	in := s.get("/any/page", "Host", fmt.Sprintf("localhost:%d", s.port), "Accept", "application/agent+json")
	if in.StatusCode != 200 || string(in.body) != string(manifest) {
		t.Fatalf("inline: status %d body %s", in.StatusCode, in.body)
	}
	if ct := in.Header.Get("Content-Type"); ct != "application/agent+json" {
		t.Errorf("inline Content-Type = %q", ct)
	}
	if in.Header.Get("Content-Location") != "/.well-known/agent.json" || !varies(in.Header, "Accept") {
		t.Errorf("inline headers: %v", in.Header)
	}
	assertOneLink(t, "inline", in)
	etag := in.Header.Get("ETag")
	if r := s.get("/any/page", "Host", fmt.Sprintf("localhost:%d", s.port), "Accept", "application/agent+json", "If-None-Match", etag); r.StatusCode != 304 {
		t.Errorf("inline If-None-Match: status %d", r.StatusCode)
	}
}

func varies(h http.Header, token string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

func TestContentEndpoint(t *testing.T) {
	up := legacyUpstream(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "llms.txt")
	if err := os.WriteFile(file, []byte("# Local content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startCaddy(t, fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
	ahp {
		content /llms.txt
		content_signals {
			ai_input true
		}
	}
	reverse_proxy %s
}
http://localhost:{{PORT}} {
	ahp {
		content /llms.txt %s
		content_signals {
			ai_input true
		}
	}
	reverse_proxy %s
}`, up.Listener.Addr(), file, up.Listener.Addr()))

	r := s.get("/llms.txt")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "from the upstream") {
		t.Errorf("content through upstream: %d %s", r.StatusCode, r.body)
	}
	host := fmt.Sprintf("localhost:%d", s.port)
	r = s.get("/llms.txt", "Host", host)
	if r.StatusCode != 200 || string(r.body) != "# Local content\n" {
		t.Fatalf("local content: %d %q", r.StatusCode, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	assertOneLink(t, "content", r)
	// Edits show without a reload.
	if err := os.WriteFile(file, []byte("# Edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := s.get("/llms.txt", "Host", host); string(r.body) != "# Edited\n" {
		t.Errorf("after edit: %q", r.body)
	}
	if r := s.do(http.MethodPost, "/llms.txt", nil, "Host", host); r.StatusCode != 405 {
		t.Errorf("POST content: %d", r.StatusCode)
	}
	var m map[string]any
	_ = json.Unmarshal(s.get("/.well-known/agent.json").body, &m)
	if ep, _ := m["endpoints"].(map[string]any); ep["content"] != "/llms.txt" {
		t.Errorf("manifest endpoints = %v", m["endpoints"])
	}
}

// A bad manifest stops `caddy validate` (and so run and reload) with a
// message naming the field and the fix.
func TestValidateRefusesBadManifests(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		block string
		want  []string
	}{
		{"no content signals", `ahp {
		name "x"
	}`, []string{"content_signals", "ai_input"}},
		{"MODE3 without schemas", `ahp {
		converse /agent/converse
		authentication bearer
		content_signals {
			ai_input true
		}
		capability book {
			mode MODE3
			action_type action
			description "Book"
		}
	}`, []string{"capabilities[0] (book).input_schema", "input_schema <file.json>"}},
		{"action without auth", `ahp {
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability book {
			mode MODE3
			action_type action
			description "Book"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
	}`, []string{"must require authentication", "authentication bearer"}},
		{"MODE2 without converse", `ahp {
		content_signals {
			ai_input true
		}
		capability search {
			mode MODE2
			description "Search"
		}
	}`, []string{"endpoints.converse", "converse /agent/converse"}},
		{"bad capability name", `ahp {
		converse /c
		content_signals {
			ai_input true
		}
		capability Search-Posts {
			mode MODE2
			description "Search"
		}
	}`, []string{"Search-Posts", "lowercase"}},
		{"missing manifest file", `ahp {
		manifest /nonexistent/agent.json
	}`, []string{"/nonexistent/agent.json", "manifest"}},
		{"unknown option", `ahp {
		colour blue
	}`, []string{"unknown option", "colour"}},
		{"bad discovery", `ahp {
		discovery sideways
	}`, []string{"discovery", "redirect", "inline"}},
	}
	r := strings.NewReplacer("{{REPO}}", repoRoot())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".Caddyfile")
			cfg := "http://127.0.0.1:9 {\n\t" + r.Replace(c.block) + "\n\trespond ok\n}\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyCmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
			if err == nil {
				t.Fatalf("caddy validate accepted a bad config:\n%s", out)
			}
			if strings.Contains(out, "panic") {
				t.Fatalf("caddy validate panicked:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("the example validates", func(t *testing.T) {
		out, err := caddyCmd(t, repoRoot(), "validate", "--config", "Caddyfile.example", "--adapter", "caddyfile")
		if err != nil {
			t.Fatalf("Caddyfile.example does not validate: %v\n%s", err, out)
		}
	})
}

// The example runs as the README says, on a machine with nothing else.
func TestExampleRuns(t *testing.T) {
	for _, port := range []int{2019, 8080, 8081, 8082} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
			c.Close()
			t.Skipf("port %d is busy on this machine; the example needs it", port)
		}
	}
	cmd := startExample(t)
	_ = cmd
	get := func(path string, headers ...string) response {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost:8080"+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := readAll(t, resp)
		return response{resp, b}
	}
	r := get("/.well-known/agent.json")
	if r.StatusCode != 200 {
		t.Fatalf("manifest: %d", r.StatusCode)
	}
	if problems, _ := schema.Check(schema.ManifestSchema, r.body); problems != nil {
		t.Errorf("example manifest invalid: %v", problems)
	}
	r = get("/")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Harbor") {
		t.Errorf("home page: %d", r.StatusCode)
	}
	assertOneLink(t, "example home", r)
	if r := get("/nope.html"); r.StatusCode != 404 || manifestLinks(r.Header) != 1 {
		t.Errorf("404 page: %d links %q", r.StatusCode, r.Header.Values("Link"))
	}
	if r := get("/about.html", "Accept", "application/agent+json"); r.StatusCode != 302 {
		t.Errorf("negotiation: %d", r.StatusCode)
	}
}
