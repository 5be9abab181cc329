// Package configs keeps every configuration the repository ships honest,
// with the Caddy built from this repository:
//
//   - every Caddyfile (Caddyfile, Caddyfile.*, *.caddyfile anywhere in the
//     repository, and the Caddyfiles inside Kubernetes ConfigMaps) passes
//     `caddy validate` without errors or adapter warnings, so none can rot;
//   - the compose and Kubernetes YAML parse, and what they reference exists
//     (services, ports, ConfigMap keys, volumes, the files they mount);
//   - the Dockerfile builds the Caddy version go.mod pins, with the command
//     README.md gives (./xcaddy.sh), and .dockerignore keeps every file that
//     build reads;
//   - that command works on a fresh clone with an empty module cache
//     (xcaddy_test.go);
//   - the compose and Kubernetes Caddyfiles, run as real Caddy processes on
//     loopback with a real redis-server, do what the examples claim: two
//     replicas share one limit and one session, a spoofed X-Forwarded-For
//     changes nothing at the load balancer, the probe port answers.
package configs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

var root = caddyproc.RepoRoot()

// repoFiles lists the repository's files, relative to its root: tracked ones
// and new ones not yet added (so a Caddyfile is checked from the moment it is
// written), but not ignored ones (build output such as bench/out).
func repoFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files (the configuration tests find files through git; run them in a clone): %v", err)
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) == 0 {
			continue
		}
		name := string(f)
		// A file deleted in the work tree but not yet in the index.
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			continue
		}
		files = append(files, name)
	}
	return files
}

// isCaddyfileName reports whether a file (or ConfigMap key) name is a
// Caddyfile's: Caddyfile, Caddyfile.<anything>, <anything>.caddyfile.
func isCaddyfileName(name string) bool {
	base := filepath.Base(name)
	return base == "Caddyfile" || strings.HasPrefix(base, "Caddyfile.") || strings.HasSuffix(base, ".caddyfile")
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceOnce replaces each old string of pairs, which must occur exactly
// once: when an example changes, its test fails rather than quietly running
// something else.
func replaceOnce(t *testing.T, name, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once (update this test with the example)", name, pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}
