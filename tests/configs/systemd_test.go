package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// TestSystemdUnit: systemd-analyze accepts examples/systemd/caddy-ahp.service
// (directives, sandboxing options, the system-call filter), and the caddy
// commands it runs take the flags it gives them in this Caddy. systemd does
// not run here, so the unit is never started; this is what can be checked
// without it. `verify` checks that ExecStart's binary exists, so the unit is
// verified with the path of the Caddy the tests built.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed; .ci/run installs it (Debian package systemd)")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd); CI runs this test")
	}
	const rel, installed = "examples/systemd/caddy-ahp.service", "/usr/local/bin/caddy"
	unit := string(readFile(t, rel))

	// The commands: ExecStart and ExecReload run the binary ./xcaddy.sh
	// installs, with flags this Caddy knows.
	var commands [][]string
	for _, line := range strings.Split(unit, "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && (key == "ExecStart" || key == "ExecReload") {
			commands = append(commands, strings.Fields(value))
		}
	}
	if len(commands) != 2 {
		t.Fatalf("%s: want one ExecStart and one ExecReload, got %q", rel, commands)
	}
	for _, cmd := range commands {
		if len(cmd) < 2 || cmd[0] != installed {
			t.Errorf("%s: %q does not run %s (where its comment installs the binary)", rel, cmd, installed)
			continue
		}
		help, err := caddyproc.Cmd(t, t.TempDir(), "help", cmd[1])
		if err != nil {
			t.Errorf("caddy help %s: %v\n%s", cmd[1], err, help)
			continue
		}
		for _, arg := range cmd[2:] {
			// --environ prints the whole environment, which EnvironmentFile
			// filled with the Redis password and API keys, into the journal.
			if arg == "--environ" {
				t.Errorf("%s: `caddy %s --environ` writes the secrets of EnvironmentFile to the journal", rel, cmd[1])
			}
			if strings.HasPrefix(arg, "--") && !strings.Contains(help, arg+" ") {
				t.Errorf("%s: `caddy %s` has no flag %s:\n%s", rel, cmd[1], arg, help)
			}
		}
	}
	if !strings.Contains(unit, "\nUser=caddy\n") || strings.Contains(unit, "\nUser=root\n") {
		t.Errorf("%s: the service must run as the caddy user", rel)
	}
	// Relative paths in the Caddyfile (./agent.json, ./llms.txt) resolve
	// from the working directory: the Caddyfile's, not systemd's /.
	for i, arg := range commands[0] {
		if arg == "--config" && i+1 < len(commands[0]) {
			if want := "\nWorkingDirectory=" + filepath.Dir(commands[0][i+1]) + "\n"; !strings.Contains(unit, want) {
				t.Errorf("%s: want %q, the directory of the Caddyfile, so that its relative paths resolve as under `caddy run`", rel, strings.TrimSpace(want))
			}
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "caddy-ahp.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, installed, caddyproc.Bin())), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", rel, err, out)
	}
}
