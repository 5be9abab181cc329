//go:build linux

package caddymodule

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestManifestCommandStderrHoldsOnlyProblems: `caddy ahp manifest` says on
// stderr what is wrong and how to fix it, nothing else: no DEBUG lines from
// provisioning (the throwaway context has no config, which gives modules
// Caddy's development logger), no "using config from file". Warnings still
// come through. The process's own stderr (file descriptor 2) is captured
// as well, since that is where Caddy's loggers write. (Linux: dup3.)
func TestManifestCommandStderrHoldsOnlyProblems(t *testing.T) {
	stderr := func(run func()) string {
		t.Helper()
		f, err := os.CreateTemp(t.TempDir(), "stderr")
		if err != nil {
			t.Fatal(err)
		}
		saved, err := syscall.Dup(2)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Dup3(saved, 2, 0); _ = syscall.Close(saved) }()
		run()
		_, _ = f.Seek(0, io.SeekStart)
		b, _ := io.ReadAll(f)
		return string(b)
	}
	const block = `	ahp {
		name Shop
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability ask {
			mode MODE2
			description Ask
		}
	}
`
	// Formatted: nothing to say.
	path := writeCaddyfile(t, "example.com {\n"+block+"\trespond hi\n}\n")
	var out, errOut string
	var err error
	process := stderr(func() { out, errOut, err = runAHP(t, "manifest", "--config", path) })
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["name"] != "Shop" {
		t.Fatalf("stdout is not the manifest: %v\n%s", err, out)
	}
	if all := errOut + process; all != "" {
		t.Errorf("a config without problems: stderr is not empty:\n%s", all)
	}

	// Not formatted: Caddy's adapter warns, and the warning is shown.
	path = writeCaddyfile(t, "example.com {\n"+strings.ReplaceAll(block, "\t", " ")+"respond hi\n}\n")
	process = stderr(func() { out, errOut, err = runAHP(t, "manifest", "--config", path) })
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	all := errOut + process
	if !strings.Contains(errOut, "WARN") || !strings.Contains(errOut, "caddy fmt") {
		t.Errorf("the adapter's warning is missing from stderr:\n%s", all)
	}
	for _, noise := range []string{"DEBUG", "INFO", "manifest ready", "using config from file"} {
		if strings.Contains(all, noise) {
			t.Errorf("stderr holds %q:\n%s", noise, all)
		}
	}
}
