package conformance_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// TestManifestMatchesServed: `caddy ahp manifest` prints, without a
// server, byte for byte what the same Caddyfile serves when it runs.
func TestManifestMatchesServed(t *testing.T) {
	u := newUpstreams(t)
	s := caddyproc.Start(t, u.site("rate_limit {\n\t\t\tunauthenticated 20/minute\n\t\t}"))
	served := s.Get("/.well-known/agent.json")
	if served.StatusCode != http.StatusOK {
		t.Fatalf("served %d", served.StatusCode)
	}
	out, stderr, code := ahpIn(t, s.Dir, "manifest", "--config", filepath.Join(s.Dir, "Caddyfile"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if out != string(served.Bytes) {
		t.Errorf("caddy ahp manifest printed\n%s\nthe site serves\n%s", out, served.Bytes)
	}
	if ps, err := schema.Check(schema.ManifestSchema, []byte(out)); err != nil || len(ps) > 0 {
		t.Errorf("not valid: %v %v", err, ps)
	}
}

// TestManifestProblems: a bad block prints every problem with its fix on
// stderr and exits 1; nothing listens.
func TestManifestProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Caddyfile"), `{
	admin off
}
shop.example.com {
	ahp {
		name "Shop"
		converse /agent/converse
		capability book_demo {
			mode MODE3
			action_type action
			description "Book a demo"
		}
	}
	respond "shop"
}
`)
	out, stderr, code := ahpIn(t, dir, "manifest") // ./Caddyfile, as caddy run finds it
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
	for _, want := range []string{
		"shop.example.com",
		"content_signals",                // required, with the block to add
		"add `input_schema <file.json>`", // MODE3 without schemas
		"set `authentication bearer` or `authentication api_key`",
		"1 of 1 ahp block(s) have problems",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// A path that does not exist: a plain failure, not a usage error.
	if _, _, code := ahpIn(t, dir, "manifest", "--config", "nope.caddyfile"); code != 1 {
		t.Errorf("a missing config: exit %d", code)
	}
	// No config at all: a usage error.
	if _, _, code := ahpIn(t, t.TempDir(), "manifest"); code != 2 {
		t.Errorf("no config: exit %d, want 2", code)
	}
}

// TestKeyWorks: `caddy ahp key` prints a line the keys file parser
// accepts, and a Caddy loading that file lets the key through.
func TestKeyWorks(t *testing.T) {
	out, code := ahp(t, "key", "--name", "partner-portal")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	line := strings.TrimSpace(out)
	name, key, ok := strings.Cut(line, ": ")
	if !ok || name != "partner-portal" {
		t.Fatalf("line %q", line)
	}
	keys, err := auth.ParseKeys(strings.NewReader(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := keys.Verify(key); !ok || id != "partner-portal" {
		t.Fatalf("the key does not verify: %q %v", id, ok)
	}
	other, _ := ahp(t, "key")
	if other == out || !strings.HasPrefix(other, "agent-") {
		t.Errorf("a second key %q", other)
	}

	keysFile := filepath.Join(t.TempDir(), "ahp-keys")
	if err := os.WriteFile(keysFile, []byte("# made by caddy ahp key\n"+line+"\n"+other), 0o600); err != nil {
		t.Fatal(err)
	}
	u := newUpstreams(t)
	s := caddyproc.Start(t, u.site("auth {\n\t\t\tkeys_file "+keysFile+"\n\t\t}"))
	body := `{"capability":"book_demo","query":"Book a demo for Tuesday"}`
	if r := s.Do(http.MethodPost, "/agent/converse", strings.NewReader(body), "Content-Type", "application/json", "Authorization", "Bearer "+key); r.StatusCode != http.StatusOK {
		t.Errorf("with the new key: %d %s", r.StatusCode, r.Bytes)
	}
	if r := s.Do(http.MethodPost, "/agent/converse", strings.NewReader(body), "Content-Type", "application/json", "Authorization", "Bearer "+key+"x"); r.StatusCode != http.StatusForbidden {
		t.Errorf("with a wrong key: %d", r.StatusCode)
	}
}
