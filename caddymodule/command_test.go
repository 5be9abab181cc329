package caddymodule

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// ahpCommand builds `caddy ahp` as caddycmd would, under a root command
// like caddy's.
func ahpCommand() *cobra.Command {
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	cmd := &cobra.Command{Use: "ahp"}
	buildAHPCommand(cmd)
	root.AddCommand(cmd)
	return cmd
}

// runAHP runs `caddy ahp args...` in process and returns stdout, stderr and
// the error cobra returned.
func runAHP(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := ahpCommand().Root()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"ahp"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestAHPSubcommandsRegistered(t *testing.T) {
	names := map[string]bool{}
	for _, c := range ahpCommand().Commands() {
		names[c.Name()] = true
		if c.Short == "" {
			t.Errorf("%s has no Short", c.Name())
		}
	}
	for _, want := range []string{"check", "manifest", "key", "version"} {
		if !names[want] {
			t.Errorf("caddy ahp %s is not registered (have %v)", want, names)
		}
	}
	// A subcommand registered from another file's init() shows up too.
	registerAHPSubcommand(func() *cobra.Command { return &cobra.Command{Use: "extra-test", Short: "test"} })
	defer func() {
		ahpSubcommands.Lock()
		ahpSubcommands.list = ahpSubcommands.list[:len(ahpSubcommands.list)-1]
		ahpSubcommands.Unlock()
	}()
	out, _, err := runAHP(t, "--help")
	if err != nil || !strings.Contains(out, "extra-test") || !strings.Contains(out, "check") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}

// TestHelpExitCodes: the top-level help names every exit code a
// subcommand uses (check's 3 and 130 too).
func TestHelpExitCodes(t *testing.T) {
	long := caddycmd.Commands()["ahp"].Long
	for _, want := range []string{"2 usage error", "3 when inconclusive", "130 when interrupted"} {
		if !strings.Contains(long, want) {
			t.Errorf("caddy ahp --help does not say %q:\n%s", want, long)
		}
	}
}

func TestExitCodes(t *testing.T) {
	if err := reportError(&cobra.Command{}, nil); err != nil {
		t.Errorf("nil error: %v", err)
	}
	var stderr bytes.Buffer
	c := &cobra.Command{Use: "x"}
	c.SetErr(&stderr)
	if err := reportError(c, errors.New("boom")); !errors.Is(err, errSilent) || !strings.Contains(stderr.String(), "x: boom") {
		t.Errorf("plain error: %v, %q", err, stderr.String())
	}
	stderr.Reset()
	if err := reportError(c, exitCode(1)); !errors.Is(err, errSilent) || stderr.Len() != 0 {
		t.Errorf("exitCode(1): %v, %q", err, stderr.String())
	}
	err := reportError(c, usageErrorf("bad %s", "flag"))
	if err == nil || !strings.Contains(err.Error(), "status 2") || !strings.Contains(stderr.String(), "--help") {
		t.Errorf("usage error: %v, %q", err, stderr.String())
	}
	_, errOut, err := runAHP(t, "nope")
	if err == nil || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("unknown subcommand: %v %q", err, errOut)
	}
	_, errOut, err = runAHP(t, "check", "--no-such-flag")
	if err == nil || !strings.Contains(err.Error(), "status 2") || !strings.Contains(errOut, "unknown flag") {
		t.Errorf("bad flag: %v %q", err, errOut)
	}
	for _, d := range []string{"0", "-1s"} {
		_, errOut, err = runAHP(t, "solve", "--timeout", d, "abc", "1")
		if err == nil || !strings.Contains(err.Error(), "status 2") || !strings.Contains(errOut, "positive duration") {
			t.Errorf("solve --timeout %s: %v %q", d, err, errOut)
		}
	}
}

// TestKeyLine: a new key's line is accepted by the keys file parser, and
// the key verifies under its name.
func TestKeyLine(t *testing.T) {
	out, _, err := runAHP(t, "key", "--name", "partner-portal")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out)
	name, key, ok := strings.Cut(line, ": ")
	if !ok || name != "partner-portal" || len(key) < 40 {
		t.Fatalf("line %q", line)
	}
	keys, err := auth.ParseKeys(strings.NewReader(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := keys.Verify(key); !ok || id != "partner-portal" {
		t.Errorf("verify: %q %v", id, ok)
	}
	out2, _, _ := runAHP(t, "key")
	if strings.TrimSpace(out2) == line || !strings.HasPrefix(out2, "agent-") {
		t.Errorf("second key %q", out2)
	}
	if _, _, err := runAHP(t, "key", "--name", "no spaces"); err == nil {
		t.Error("a bad name accepted")
	}
}

func TestVersion(t *testing.T) {
	out, _, err := runAHP(t, "version")
	if err != nil || !strings.HasPrefix(out, "caddy-ahp "+Version+" (AHP 0.1, Caddy ") {
		t.Errorf("version: %v %q", err, out)
	}
}

func writeCaddyfile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestManifestCommand renders a Caddyfile's manifest without a server,
// with the plugin's overlay (rate limits, integrations) in it.
func TestManifestCommand(t *testing.T) {
	path := writeCaddyfile(t, `
{
	ahp {
		redis redis://127.0.0.1:1/0
	}
}
example.com {
	ahp {
		name "Manifest Test"
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability site_info {
			mode MODE2
			description "About"
		}
		rate_limit {
			store redis
		}
		mcp /mcp
	}
	respond "hi"
}
`)
	out, errOut, err := runAHP(t, "manifest", "--config", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	problems, err := schema.Check(schema.ManifestSchema, []byte(out))
	if err != nil || len(problems) > 0 {
		t.Fatalf("the printed manifest is not valid: %v %v\n%s", err, problems, out)
	}
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	if m["name"] != "Manifest Test" || m["rate_limits"] == nil || m["integrations"] == nil {
		t.Errorf("manifest %s", out)
	}
}

func TestManifestCommandProblems(t *testing.T) {
	path := writeCaddyfile(t, `
a.example.com {
	ahp {
		capability book {
			mode MODE3
			action_type action
			description "Book"
		}
		converse /agent/converse
	}
}
b.example.com {
	ahp {
		name "Fine"
		content_signals {
			ai_input false
		}
	}
}
`)
	out, errOut, err := runAHP(t, "manifest", "--config", path)
	if err == nil {
		t.Fatal("a bad config passed")
	}
	for _, want := range []string{"a.example.com", "content_signals", "input_schema", "authentication", "1 of 2 ahp block(s) have problems"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "# site: b.example.com") || !strings.Contains(out, `"name": "Fine"`) {
		t.Errorf("the good block was not printed:\n%s", out)
	}
	out, errOut, err = runAHP(t, "manifest", "--config", path, "--site", "b.example.com")
	if err != nil || strings.Contains(out, "# site") || !strings.Contains(out, `"Fine"`) {
		t.Errorf("--site: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, err := runAHP(t, "manifest", "--config", path, "--site", "c.example.com"); err == nil || !strings.Contains(errOut, "no ahp block serves") {
		t.Errorf("unknown --site: %v %s", err, errOut)
	}
	noAHP := writeCaddyfile(t, "example.com {\n\trespond hi\n}\n")
	if _, errOut, err := runAHP(t, "manifest", "--config", noAHP); err == nil || !strings.Contains(errOut, "no ahp handler") {
		t.Errorf("no ahp: %v %s", err, errOut)
	}
}

// `caddy ahp manifest` prints the manifest of a config with the built-in
// concierge (checked, not started: no site runs), as `caddy validate`
// accepts it; the repository's own Caddyfile.example is one.
func TestManifestCommandWithBuiltinConcierge(t *testing.T) {
	path := writeCaddyfile(t, `
example.com {
	ahp {
		name "Concierge Site"
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability site_info {
			mode MODE2
			description "About"
			response_types text/answer
		}
		concierge builtin
	}
	respond "hi"
}
`)
	out, errOut, err := runAHP(t, "manifest", "--config", path)
	if err != nil {
		t.Fatalf("caddy ahp manifest refused a valid config with concierge builtin: %v\nstderr: %s", err, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["name"] != "Concierge Site" {
		t.Fatalf("no manifest printed: %v\n%s", err, out)
	}
}

func TestManifestCommandOnCaddyfileExample(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	wd, _ := os.Getwd()
	if err := os.Chdir(root); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	out, errOut, err := runAHP(t, "manifest", "--config", "Caddyfile.example")
	if err != nil || !strings.Contains(out, "Harbor") {
		t.Fatalf("caddy ahp manifest --config Caddyfile.example: %v\nstderr: %s", err, errOut)
	}
}

// `caddy ahp manifest` fills the global `{ ahp { redis <url> } }` in for
// `verified_agents { shared_cache redis }` as for rate_limit.
func TestManifestCommandSharedCacheGlobalRedis(t *testing.T) {
	path := writeCaddyfile(t, `
{
	ahp {
		redis redis://127.0.0.1:1/0
	}
}
example.com {
	ahp {
		name "Shared Cache"
		content_signals {
			ai_input true
		}
		verified_agents {
			shared_cache redis
		}
	}
	respond "hi"
}
`)
	out, errOut, err := runAHP(t, "manifest", "--config", path)
	if err != nil || !strings.Contains(out, "Shared Cache") {
		t.Fatalf("caddy ahp manifest refused a config caddy validate accepts: %v\nstderr: %s", err, errOut)
	}
}

// TestCheckListJSON: --list --json prints the catalogue as JSON.
func TestCheckListJSON(t *testing.T) {
	out, _, err := runAHP(t, "check", "--list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var cat []conformance.Check
	if err := json.Unmarshal([]byte(out), &cat); err != nil {
		t.Fatalf("not JSON: %v\n%.200s", err, out)
	}
	if len(cat) != len(conformance.Catalogue) || cat[0].ID != conformance.Catalogue[0].ID || cat[0].Group == "" {
		t.Errorf("%d checks, first %+v", len(cat), cat[0])
	}
}

// TestCheckTLSFlags: --cacert trusts a private CA (exit 0 where the
// default run fails), --insecure prints the warning line; an unreadable or
// invalid --cacert file is a usage error (exit 2) naming the flag.
func TestCheckTLSFlags(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{"ai_train":false,"ai_input":true,"search":true}}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"check", "--rate", "1000", "--only", "discovery.manifest_status"}
	if _, _, err := runAHP(t, append(base, srv.URL)...); err == nil {
		t.Errorf("a private CA's site passed without --cacert")
	}
	if out, errOut, err := runAHP(t, append(base, "--cacert", ca, srv.URL)...); err != nil {
		t.Errorf("--cacert: %v\n%s%s", err, out, errOut)
	}
	out, _, err := runAHP(t, append(base, "--insecure", srv.URL)...)
	if err != nil || !strings.Contains(out, conformance.InsecureWarning) {
		t.Errorf("--insecure: %v\n%s", err, out)
	}
	for _, file := range []string{filepath.Join(dir, "missing.pem"), junk} {
		_, errOut, err := runAHP(t, append(base, "--cacert", file, srv.URL)...)
		if err == nil || !strings.Contains(err.Error(), "status 2") || !strings.Contains(errOut, "--cacert") {
			t.Errorf("--cacert %s: %v %q", file, err, errOut)
		}
	}
}
