package concierge_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// conciergeSite logs Caddy's default log to the file logFile.
func conciergeSite(logFile, description string) string {
	return fmt.Sprintf(`{
	admin localhost:{{ADMIN}}
	auto_https off
	persist_config off
	grace_period 1s
	log {
		output file %s
	}
}

http://127.0.0.1:{{PORT}} {
	ahp {
		name "Log Site"
		description %q
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
		concierge builtin {
			pages /
		}
	}
	header Content-Type text/html
	respond "<html><body><h1>Hello</h1><p>The workshop opens at nine every morning.</p></body></html>"
}
`, logFile, description)
}

func waitFor(t *testing.T, file, what string, n int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(file)
		if strings.Count(string(b), what) >= n {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestReloadMovesTheIndexLog: after a reload that sends Caddy's logs to
// another file, the kept concierge index still logs through the logger of
// the configuration that built it: its "concierge index built" lines of
// the rebuild the reload asks for never reach the new log.
func TestReloadMovesTheIndexLog(t *testing.T) {
	dir := t.TempDir()
	oldLog, newLog := filepath.Join(dir, "old.log"), filepath.Join(dir, "new.log")
	s := caddyproc.StartFull(t, conciergeSite(oldLog, "first"))
	if !waitFor(t, oldLog, "concierge index built", 1) {
		t.Fatalf("no first index build in %s", oldLog)
	}
	// The same site and options (the index and concierge are kept), Caddy's
	// log moved to another file.
	path := filepath.Join(s.Dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(s.Expand(conciergeSite(newLog, "first"))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(caddyproc.Bin(), "reload", "--config", path, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", s.Admin)).CombinedOutput()
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if !waitFor(t, newLog, "keeping the index and reading the site again", 1) {
		b, _ := os.ReadFile(newLog)
		t.Fatalf("the reload did not keep the index:\n%s", b)
	}
	if !waitFor(t, newLog, "concierge index built", 1) {
		nb, _ := os.ReadFile(newLog)
		ob, _ := os.ReadFile(oldLog)
		t.Errorf("the rebuild after the reload logged nowhere in the configured log %s (its lines go to the first configuration's logger; old log has %d 'index built' lines)\nnew log:\n%s",
			newLog, strings.Count(string(ob), "concierge index built"), nb)
	}
}
