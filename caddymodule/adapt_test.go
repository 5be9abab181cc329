package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden JSON of testdata/adapt/*.caddyfiletest")

const separator = "\n----------\n"

// TestCaddyfileAdapt adapts every testdata/adapt/*.caddyfiletest (a
// Caddyfile, a line of dashes, the JSON `caddy adapt` must produce) and
// compares. Run with -update after an intended change, then read the diff.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(raw), separator)
			if !ok {
				t.Fatalf("%s has no %q separator", file, strings.TrimSpace(separator))
			}
			got, warnings, err := adapter.Adapt([]byte(caddyfile+"\n"), map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("adapt warning: %s", w.String())
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			if *update {
				if err := os.WriteFile(file, []byte(caddyfile+separator+pretty.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if pretty.String() != want {
				t.Errorf("adapted JSON differs from %s (run go test ./caddymodule -run TestCaddyfileAdapt -update and check the diff)\ngot:\n%s", file, pretty.String())
			}
		})
	}
}

// A rate_limit option's mistake fails at adapt time, naming the option
// and what it takes.
func TestRateLimitLeasesOption(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for in, want := range map[string]string{
		"leases sometimes": `ahp rate_limit leases "sometimes": want auto`,
		"leases":           "leases: want exactly one value",
	} {
		cfg := ":8080 {\n\tahp {\n\t\trate_limit {\n\t\t\t" + in + "\n\t\t}\n\t}\n}\n"
		_, _, err := adapter.Adapt([]byte(cfg), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", in, err, want)
		}
	}
}
