package configs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// legacySite serves the bundled demo site, as nginx does in the examples.
func legacySite(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(root, "examples/site"))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestComposeTopology runs examples/compose as compose would, on loopback:
// the concierge, two replicas with the replicas' Caddyfile and the load
// balancer with its own, a real redis-server. Only the host names and ports
// are swapped (each swap must match the example exactly once), and the
// limiter's Redis timeout raised (below), so what passes here is the
// examples' configuration.
func TestComposeTopology(t *testing.T) {
	const dir = "examples/compose/"
	rdb := redistest.Start(t)
	legacy := legacySite(t)

	conciergeFile := replaceOnce(t, "concierge.caddyfile", string(readFile(t, dir+"concierge.caddyfile")),
		"\n:9000 {", "\n:{{PORT}} {")
	concierge := caddyproc.Start(t, conciergeFile)

	replicaFile := string(readFile(t, dir+"Caddyfile"))
	var replicas []*caddyproc.Server
	for i := 1; i <= 2; i++ {
		f := replaceOnce(t, "Caddyfile", replicaFile,
			"admin localhost:2019", "admin localhost:{{ADMIN}}\n\tpersist_config off",
			"redis redis://redis:6379/0", "redis redis://"+rdb.Addr()+"/0",
			"{system.hostname}", fmt.Sprintf("ahp-%d", i),
			"reverse_proxy concierge:9000", "reverse_proxy 127.0.0.1:"+strconv.Itoa(concierge.Port),
			"reverse_proxy legacy:80", "reverse_proxy "+legacy,
			"\n:8080 {", "\n:{{PORT}} {",
			// The one change beyond addresses: the limiter's Redis timeout
			// (50ms by default) raised. With two race-enabled Caddys and
			// the other packages' tests on two cores, a round trip can pass
			// 50ms; failing open, that replica then counts from memory and
			// the shared counts below are not shared (a CI run saw a sixth
			// turn admitted that way). What is tested is the sharing.
			"static 10/minute", "static 10/minute\n\t\t\ttimeout 2s",
		)
		replicas = append(replicas, caddyproc.StartFull(t, f))
	}
	lbFile := replaceOnce(t, "lb.caddyfile", string(readFile(t, dir+"lb.caddyfile")),
		"\n:8080 {", "\n:{{PORT}} {",
		"reverse_proxy ahp-1:8080 ahp-2:8080", fmt.Sprintf("reverse_proxy 127.0.0.1:%d 127.0.0.1:%d", replicas[0].Port, replicas[1].Port),
	)
	lb := caddyproc.Start(t, lbFile)

	// The site through the load balancer: the legacy page with the Link
	// header and the notice.
	page := lb.Get("/")
	if page.StatusCode != 200 || !strings.Contains(page.Header.Get("Link"), `rel="ahp-manifest"`) || !strings.Contains(string(page.Bytes), "ahp-notice") {
		t.Fatalf("GET / through the load balancer: %d, Link %q, notice %v", page.StatusCode, page.Header.Get("Link"), strings.Contains(string(page.Bytes), "ahp-notice"))
	}

	// Shared limit: `static 10/minute`. The requests alternate between the
	// replicas, and Remaining falls across both: one limit, not two.
	served := map[string]int{}
	for i := 1; i <= 10; i++ {
		r := lb.Get("/.well-known/agent.json")
		served[r.Header.Get("X-Served-By")]++
		if r.StatusCode != 200 {
			t.Fatalf("manifest request %d: %d %s", i, r.StatusCode, r.Bytes)
		}
		if got, want := r.Header.Get("X-Ratelimit-Remaining"), strconv.Itoa(10-i); got != want {
			t.Fatalf("manifest request %d (served by %s): X-RateLimit-Remaining %q, want %s: the replicas do not share the limit", i, r.Header.Get("X-Served-By"), got, want)
		}
	}
	if served["ahp-1"] != 5 || served["ahp-2"] != 5 {
		t.Fatalf("the load balancer did not alternate between the replicas: %v", served)
	}
	r := lb.Get("/.well-known/agent.json")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("11th manifest request: %d (Retry-After %q), want 429", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// The load balancer is the edge: a client's own X-Forwarded-For is
	// replaced, so it cannot pick a fresh bucket.
	r = lb.Get("/.well-known/agent.json", "X-Forwarded-For", "203.0.113.7")
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a spoofed X-Forwarded-For at the load balancer escaped the limit: %d", r.StatusCode)
	}
	// Whoever reaches a replica directly from a trusted (private) address
	// chooses the client address: that is why only the load balancer may
	// reach the replicas (docs/deployment.md).
	r = replicas[0].Get("/.well-known/agent.json", "X-Forwarded-For", "203.0.113.7")
	if r.StatusCode != 200 || r.Header.Get("X-Ratelimit-Remaining") != "9" {
		t.Fatalf("a request from a trusted proxy was not counted as its X-Forwarded-For client: %d, remaining %q", r.StatusCode, r.Header.Get("X-Ratelimit-Remaining"))
	}
	// Strict mode: the rightmost untrusted address is the client, so a
	// leftmost entry the client wrote is ignored.
	r = replicas[1].Get("/.well-known/agent.json", "X-Forwarded-For", "198.51.100.1, 203.0.113.7")
	if r.StatusCode != 200 || r.Header.Get("X-Ratelimit-Remaining") != "8" {
		t.Fatalf("trusted_proxies_strict did not take the rightmost address: %d, remaining %q", r.StatusCode, r.Header.Get("X-Ratelimit-Remaining"))
	}

	// Shared sessions: `max_turns 5`, turns alternating between replicas.
	body := `{"capability":"site_info","query":"When are you open?","session_id":"demo-1"}`
	for turn := 1; turn <= 6; turn++ {
		r := lb.Do(http.MethodPost, "/agent/converse", strings.NewReader(body), "Content-Type", "application/json")
		if turn <= 5 {
			if r.StatusCode != 200 || !strings.Contains(string(r.Bytes), `"status":"success"`) {
				t.Fatalf("turn %d (served by %s): %d %s", turn, r.Header.Get("X-Served-By"), r.StatusCode, r.Bytes)
			}
			continue
		}
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Bytes), "limit of 5 turns") {
			t.Fatalf("turn 6 (served by %s): %d %s; want 400, the session's turns being shared", r.Header.Get("X-Served-By"), r.StatusCode, r.Bytes)
		}
	}

	// Only the exact converse paths reach the concierge: another spelling is
	// the gateway's refusal, another path under /agent/ the legacy site's.
	if r := lb.Do(http.MethodPost, "/AGENT/converse", strings.NewReader(body), "Content-Type", "application/json"); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Bytes), `"status":"error"`) {
		t.Fatalf("POST /AGENT/converse: %d %s; want the gateway's 400", r.StatusCode, r.Bytes)
	}
	if r := lb.Do(http.MethodPost, "/agent/other", strings.NewReader(body), "Content-Type", "application/json"); strings.Contains(string(r.Bytes), `"status":"success"`) {
		t.Fatalf("POST /agent/other reached the concierge: %d %s", r.StatusCode, r.Bytes)
	}

	// Shared Handshake Prompt sessions: created through one replica, read
	// and filled through the other, and seen filled through the first.
	const form = `{"mode":"form-fill","schema":[{"key":"name","type":"string","required":true}],"context":{"name":""}}`
	created := replicas[0].Do(http.MethodPost, "/handshake/session", strings.NewReader(form), "Content-Type", "application/json")
	var hs struct{ SessionID, Token, Prompt string }
	if created.StatusCode != 200 || json.Unmarshal(created.Bytes, &hs) != nil || hs.SessionID == "" || hs.Token == "" {
		t.Fatalf("POST /handshake/session on ahp-1: %d %s", created.StatusCode, created.Bytes)
	}
	if !strings.Contains(hs.Prompt, "http://localhost:8080") {
		t.Errorf("the prompt does not give agents the load balancer's address (base_url):\n%s", hs.Prompt)
	}
	action := replicas[1].Do(http.MethodPost, "/handshake/action/"+hs.SessionID,
		strings.NewReader(`{"actions":[{"type":"set","key":"name","value":"Ada"}]}`),
		"Content-Type", "application/json", "X-Handshake-Token", hs.Token)
	if action.StatusCode != 200 || !strings.Contains(string(action.Bytes), `"ok":true`) {
		t.Fatalf("action on ahp-2 for a session created on ahp-1: %d %s", action.StatusCode, action.Bytes)
	}
	ctx := replicas[0].Get("/handshake/context/"+hs.SessionID, "X-Handshake-Token", hs.Token)
	if ctx.StatusCode != 200 || !strings.Contains(string(ctx.Bytes), `"Ada"`) {
		t.Fatalf("context on ahp-1 after ahp-2 filled the form: %d %s", ctx.StatusCode, ctx.Bytes)
	}
	if r := lb.Get("/handshake/context/"+hs.SessionID, "X-Handshake-Token", "wrong-token-0123456789abcdefghij"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("context with a wrong token through the load balancer: %d %s", r.StatusCode, r.Bytes)
	}
}

// TestKubernetesSidecar runs the ConfigMap's Caddyfile: the site proxies to
// the legacy container's loopback port with the plugin in front, and the
// probe port answers /healthz (and nothing else) without touching the site.
func TestKubernetesSidecar(t *testing.T) {
	rdb := redistest.Start(t)
	legacy := legacySite(t)
	var caddyfile string
	for _, n := range yamlDocs(t, "examples/kubernetes/caddy-ahp.yaml") {
		var d k8sDoc
		if kindOf(n) == "ConfigMap" && n.Decode(&d) == nil {
			caddyfile = d.Data["Caddyfile"]
		}
	}
	probe := caddyproc.FreePort(t)
	f := replaceOnce(t, "caddy-ahp.yaml#Caddyfile", caddyfile,
		"admin localhost:2019", "admin localhost:{{ADMIN}}\n\tpersist_config off",
		"redis redis://redis:6379/0", "redis redis://"+rdb.Addr()+"/0",
		"reverse_proxy 127.0.0.1:8081", "reverse_proxy "+legacy,
		"\n:8080 {", "\n:{{PORT}} {",
		"\n:8082 {", fmt.Sprintf("\n:%d {", probe),
	)
	s := caddyproc.StartFull(t, f)

	page := s.Get("/about.html")
	if page.StatusCode != 200 || !strings.Contains(page.Header.Get("Link"), `rel="ahp-manifest"`) || !strings.Contains(string(page.Bytes), "ahp-notice") {
		t.Fatalf("GET /about.html: %d, Link %q", page.StatusCode, page.Header.Get("Link"))
	}
	m := s.Get("/.well-known/agent.json")
	if m.StatusCode != 200 || m.Header.Get("X-Ratelimit-Limit") == "" {
		t.Fatalf("manifest: %d, X-RateLimit-Limit %q", m.StatusCode, m.Header.Get("X-Ratelimit-Limit"))
	}
	for path, want := range map[string]int{"/healthz": 200, "/": 404, "/.well-known/agent.json": 404} {
		resp, err := caddyproc.Client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", probe, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("probe port %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
