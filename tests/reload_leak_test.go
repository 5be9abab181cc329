package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// Reloads must not leak: every pooled store, Redis client, subscription,
// index and timer a configuration took is released when it is replaced
// (or refused), whether the reload keeps the pooled objects (same keys) or
// replaces them all (zone, timeout and clock skew changed each time).
// Counted in a real Caddy through the admin API's goroutine profile.

var totalRE = regexp.MustCompile(`goroutine profile: total (\d+)`)

// reloadGoroutines is the lowest goroutine count seen over a couple of seconds
// (old servers wind down after grace_period).
func reloadGoroutines(t *testing.T, s *caddyproc.Server) (int, string) {
	t.Helper()
	best, dump := -1, ""
	for i := 0; i < 8; i++ {
		time.Sleep(400 * time.Millisecond)
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d/debug/pprof/goroutine?debug=1", s.Admin))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := totalRE.FindSubmatch(b)
		if m == nil {
			t.Fatalf("pprof: %s", b)
		}
		n, _ := strconv.Atoi(string(m[1]))
		if best < 0 || n < best {
			best, dump = n, string(b)
		}
	}
	return best, dump
}

func lifecycleSite(redis string, i int, changeKeys bool) string {
	zone, timeout, skew := "z", "50ms", "1m"
	if changeKeys {
		zone = fmt.Sprintf("z%d", i)
		timeout = fmt.Sprintf("%dms", 50+i)
		skew = fmt.Sprintf("%ds", 60+i)
	}
	return fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	handshake_prompt {
		store redis %[1]s
		zone %[2]s
	}
	ahp {
		name "Reload Site"
		description "About the site %[3]d"
		content /llms.txt
		converse /agent/converse
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		capability site_info {
			mode MODE2
			description "General information"
			response_types text/answer
		}
		concierge builtin
		markdown
		rate_limit {
			store redis %[1]s
			timeout %[4]s
		}
		verified_agents {
			clock_skew %[5]s
		}
	}
	header Content-Type text/html
	respond "<html><body><h1>Hello</h1><p>The workshop opens at nine.</p></body></html>"
}

http://api.localhost:{{PORT}} {
	agent_handoff {
		provider "Test FAQ" https://docs.test/agents
		store redis %[1]s
		zone %[2]s
	}
	respond "ok"
}
`, redis, zone, i, timeout, skew)
}

func checkReloads(t *testing.T, changeKeys bool) {
	rs := redistest.Start(t)
	url := "redis://" + rs.Addr() + "/0"
	s := caddyproc.Start(t, lifecycleSite(url, 0, changeKeys))
	// Warm up: two reloads, some traffic.
	for i := 1; i <= 2; i++ {
		s.Reload(lifecycleSite(url, i, changeKeys))
		s.Get("/")
	}
	g0, _ := reloadGoroutines(t, s)
	const n = 12
	for i := 3; i < 3+n; i++ {
		s.Reload(lifecycleSite(url, i, changeKeys))
		s.Get("/")
	}
	g1, dump := reloadGoroutines(t, s)
	t.Logf("goroutines after warm-up %d, after %d more reloads %d", g0, n, g1)
	if g1-g0 > n/2 {
		t.Errorf("goroutines grew from %d to %d over %d reloads (leak per reload)\n%s", g0, g1, n, dump)
	}
}

func TestReloadGoroutinesSameKeys(t *testing.T)    { checkReloads(t, false) }
func TestReloadGoroutinesChangedKeys(t *testing.T) { checkReloads(t, true) }

func caddyCmdReload(s *caddyproc.Server, path string) ([]byte, error) {
	return exec.Command(caddyproc.Bin(), "reload", "--config", path, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", s.Admin)).CombinedOutput()
}

// Refused reloads (the last site block is invalid) that provisioned new
// pooled stores first must leave nothing running.
func TestFailedReloadGoroutines(t *testing.T) {
	rs := redistest.Start(t)
	url := "redis://" + rs.Addr() + "/0"
	s := caddyproc.Start(t, lifecycleSite(url, 0, true))
	s.Get("/")
	g0, _ := reloadGoroutines(t, s)
	bad := "\nhttp://bad.localhost:{{PORT}} {\n\tagent_handoff {\n\t\tprovider X\n\t\ttimeout 10m\n\t}\n}\n"
	path := s.Dir + "/Caddyfile"
	for i := 1; i <= 10; i++ {
		if err := os.WriteFile(path, []byte(s.Expand("{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n}\n"+lifecycleSite(url, i, true)+bad)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := caddyCmdReload(s, path); err == nil {
			t.Fatalf("the broken config was accepted: %s", out)
		}
	}
	s.Get("/")
	g1, dump := reloadGoroutines(t, s)
	t.Logf("goroutines before %d, after 10 refused reloads %d", g0, g1)
	if g1-g0 > 5 {
		t.Errorf("goroutines grew from %d to %d over 10 refused reloads\n%s", g0, g1, dump)
	}
}
