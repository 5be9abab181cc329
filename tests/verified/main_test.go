// Package verified_test runs `ahp { verified_agents }` in a real Caddy
// built from this repository: agents sign requests with Ed25519 keys
// (Web Bot Auth), their key directories are served by TLS test servers
// whose certificate Caddy trusts through `trusted_ca` (both from
// internal/webbotauthtest), and the site behind Caddy is a real HTTP
// upstream that records what reached it.
package verified_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

// upstream is the site behind Caddy: pages, a stylesheet, a robots.txt,
// and the concierge at /agent/converse. It records the verified-agent header of every request.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	path     string
	verified []string // X-Ahp-Verified-Agent as it arrived, in every spelling PHP reads as it
}

// asPHPReadsIt is every value of name in h under any spelling a CGI-style
// site (php_fastcgi, PHP, WSGI) reads as HTTP_X_AHP_VERIFIED_AGENT: a
// client's X_Ahp_Verified_Agent would pose as the plugin's.
func asPHPReadsIt(h http.Header, name string) []string {
	var out []string
	for k, v := range h {
		if httpx.SameField(k, name) {
			out = append(out, v...)
		}
	}
	return out
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, seen{path: r.URL.Path, verified: asPHPReadsIt(r.Header, "X-Ahp-Verified-Agent")})
		u.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/robots.txt" {
			// Sites named norobots.* have none.
			if strings.HasPrefix(r.Host, "norobots.") {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, siteRobots)
			return
		}
		if r.URL.Path == "/style.css" {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			_, _ = io.WriteString(w, "body{margin:0}\n")
			return
		}
		if r.URL.Path == "/own-signals" {
			// A page whose upstream states signals of its own.
			w.Header().Set("Content-Signal", "ai-train=yes")
			w.Header().Set("Content-Usage", "train-ai=y")
		}
		if r.URL.Path == "/agent/converse" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"Open daily."},"meta":{"tokens_used":5,"mode":"MODE2"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><head><title>Shop</title></head><body><p>Welcome</p></body></html>")
	}))
	t.Cleanup(u.Close)
	return u
}

// siteRobots is the upstream's own robots.txt.
const siteRobots = "User-agent: *\nDisallow: /private/\n"

func (u *upstream) last() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return seen{}
	}
	return u.seen[len(u.seen)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// writeTemp writes content to a new file and returns its path.
func writeTemp(t testing.TB, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// edge is a running Caddy with its sites' hosts.
type edge struct {
	*caddyproc.Server
}

func (e *edge) authority(host string) string { return host + ":" + strconv.Itoa(e.Port) }

// call sends method path to host with headers (name, value pairs).
func (e *edge) call(method, host, path, body string, headers ...string) caddyproc.Response {
	e.T().Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		headers = append(headers, "Content-Type", "application/json")
	}
	return e.Do(method, path, rd, append([]string{"Host", e.authority(host)}, headers...)...)
}

// signed sends a request signed by a for host and path.
func (e *edge) signed(a *webbotauthtest.Agent, method, host, path, body string, headers ...string) caddyproc.Response {
	e.T().Helper()
	return e.call(method, host, path, body, append(a.Headers(e.authority(host), path), headers...)...)
}

// converseBody is a capability call naming agentName (may be "").
func converseBody(agentName string) string {
	if agentName == "" {
		return `{"capability":"site_info","query":"When are you open?"}`
	}
	return `{"capability":"site_info","query":"When are you open?","context":{"requesting_agent":"` + agentName + `"}}`
}

// scrape reads Caddy's admin /metrics: series (name and labels as
// exposed) → value, for the series starting with prefix.
func (e *edge) scrape(prefix string) map[string]float64 {
	e.T().Helper()
	resp, err := caddyproc.Client.Get(fmt.Sprintf("http://localhost:%d/metrics", e.Admin))
	if err != nil {
		e.T().Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T().Fatal(err)
	}
	m := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.T().Fatalf("metrics line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}
