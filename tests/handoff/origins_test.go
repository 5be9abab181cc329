package handoff_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// A sandbox content origin through Caddy, with encode in the site and an
// upstream that tries everything §13 and §14 forbid: only the content
// routes are served, noindex is on every answer (Caddy's own error answer
// for a dead upstream included), cookies, SVG, scripts and redirects
// never leave.
func TestSandboxContentOrigin(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Set-Cookie", "tracker=1")
			io.WriteString(w, "<!DOCTYPE html><title>FAQ</title><h1>FAQ</h1>"+strings.Repeat("<p>An answer, long enough to compress.</p>", 40))
		case "/assets/logo.png":
			h.Set("Content-Type", "image/png") // but it is an SVG
			io.WriteString(w, `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)
		case "/assets/app.js":
			h.Set("Content-Type", "text/javascript")
			io.WriteString(w, "alert(1)")
		case "/assets/moved":
			http.Redirect(w, r, "https://phishing.example/", http.StatusFound)
		case "/assets/page":
			h.Set("Content-Type", "text/html")
			io.WriteString(w, `<p>hi</p><script>steal()</script>`)
		case "/admin":
			io.WriteString(w, "the backend's admin")
		}
	}))
	t.Cleanup(up.Close)
	s := caddyproc.Start(t, `http://*.sandbox.localhost:{{PORT}} {
	encode gzip
	agent_handoff sandbox_content
	reverse_proxy `+up.Listener.Addr().String()+`
}

http://dead.test:{{PORT}} {
	agent_handoff sandbox_content
	reverse_proxy 127.0.0.1:9
}
`)
	host := fmt.Sprintf("abc.sandbox.localhost:%d", s.Port)
	get := func(path string, headers ...string) caddyproc.Response {
		return s.Do("GET", path, nil, append([]string{"Host", host}, headers...)...)
	}
	page := get("/", "Accept-Encoding", "gzip")
	if page.StatusCode != 200 || page.Header.Get("Set-Cookie") != "" || page.Header.Get("X-Robots-Tag") != "noindex, nofollow" ||
		page.Header.Get("Content-Security-Policy") != handoff.DefaultContentCSP || page.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("page: %d %v", page.StatusCode, page.Header)
	}
	for _, p := range []string{"/assets/logo.png", "/assets/app.js", "/assets/moved", "/assets/page", "/admin", "/ASSETS/logo.png", "/assets/../admin"} {
		r := get(p)
		if r.StatusCode != 404 || r.Header.Get("Location") != "" || r.Header.Get("X-Robots-Tag") == "" ||
			strings.Contains(string(r.Bytes), "svg") || strings.Contains(string(r.Bytes), "alert") || strings.Contains(string(r.Bytes), "admin") {
			t.Errorf("%s: %d %v %q", p, r.StatusCode, r.Header, r.Bytes)
		}
	}
	if r := s.Do("POST", "/", strings.NewReader("x"), "Host", host); r.StatusCode != 405 {
		t.Errorf("POST: %d", r.StatusCode)
	}
	dead := s.Do("GET", "/", nil, "Host", fmt.Sprintf("dead.test:%d", s.Port))
	if dead.StatusCode != 502 || dead.Header.Get("X-Robots-Tag") != "noindex, nofollow" {
		t.Errorf("Caddy's error answer: %d %v", dead.StatusCode, dead.Header)
	}
}

// Configuration mistakes fail `caddy validate` with a message naming the
// directive and the fix.
func TestConfigValidate(t *testing.T) {
	for i, c := range []struct{ block, want string }{
		{"agent_handoff {\n\t\tprovider X\n\t\tdifficulty 30 20\n\t}", "agent_handoff difficulty: ceiling 20"},
		{"agent_handoff {\n\t\tprovider X\n\t\tstore redis\n\t}", "agent_handoff store redis: give a URL"},
		{"agent_handoff {\n\t\tcreate /v1/sandboxes\n\t}", "agent_handoff: name the provider"},
		{"agent_handoff {\n\t\tprovider X\n\t\trate_limit {\n\t\t\tcreate lots\n\t\t}\n\t}", "agent_handoff rate_limit create"},
		{"agent_handoff {\n\t\tprovider X\n\t\tverify /v1/sandboxes\n\t}", "the path is already create's"},
		{"agent_handoff sandbox_content {\n\t\ttypes image/svg+xml\n\t}", "never serves it"},
		{"agent_handoff {\n\t\tprovider X\n\t\tchallenge_ttl 1h\n\t}", "at most 5 minutes"},
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "Caddyfile")
			cfg := "http://localhost:" + strconv.Itoa(caddyproc.FreePort(t)) + " {\n\t" + c.block + "\n\trespond ok\n}\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyproc.Cmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s: validate said (err %v):\n%s\nwant %q", c.block, err, lastLine(out), c.want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// `caddy ahp solve` finds the notes' vectors; wrong arguments exit 2.
func TestSolveCommand(t *testing.T) {
	dir := t.TempDir()
	out, err := caddyproc.Cmd(t, dir, "ahp", "solve", "4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f", "12")
	if err != nil || strings.Split(out, "\n")[0] != "4757" {
		t.Fatalf("solve at 12 bits: %v\n%s", err, out)
	}
	out, err = caddyproc.Cmd(t, dir, "ahp", "solve", "--json", "4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f", "10")
	if err != nil || !strings.HasPrefix(out, `{"type":"proof_of_work","challenge":"4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f","nonce":"725"}`) {
		t.Fatalf("solve --json: %v\n%s", err, out)
	}
	out, err = caddyproc.Cmd(t, dir, "ahp", "solve", "abc", "many")
	if code := exitCode(err); code != 2 || !strings.Contains(out, "difficulty") {
		t.Fatalf("a bad difficulty: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

var metricLine = regexp.MustCompile(`(?m)^(caddy_ahp_handoff_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

// The plugin's metrics, by site, through Caddy's admin /metrics.
func TestMetrics(t *testing.T) {
	e := startEdge(t, `		velocity {
			network_step 1
		}`)
	e.create()
	e.create()
	c := e.challenge("/v1/sandboxes/challenge")
	e.apiCall("POST", "/v1/sandboxes", admission(c, unsolved(c)))
	e.apiCall("GET", "/v1/sandboxes/nothing", "")
	got := scrapeHandoff(t, e)
	for series, want := range map[string]string{
		`caddy_ahp_handoff_admissions_total{outcome="admitted",site="Test FAQ"}`:      "2",
		`caddy_ahp_handoff_admissions_total{outcome="refused",site="Test FAQ"}`:       "1",
		`caddy_ahp_handoff_challenges_issued_total{purpose="create",site="Test FAQ"}`: "3",
		`caddy_ahp_handoff_uniform_failures_total{site="Test FAQ"}`:                   "1",
		`caddy_ahp_handoff_velocity{site="Test FAQ"}`:                                 "2",
		`caddy_ahp_handoff_difficulty{site="Test FAQ"}`:                               "8",
	} {
		if got[series] != want {
			t.Errorf("%s = %q, want %s", series, got[series], want)
		}
	}
}
