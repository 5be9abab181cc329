package concierge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// TestConfigErrors: mistakes in `concierge builtin` and `markdown` stop
// `caddy validate` with a message naming the option and the fix; a MODE2
// capability the built-in concierge cannot make is a warning.
func TestConfigErrors(t *testing.T) {
	const base = `
		name "T"
		description "d"
		content_signals {
			ai_input true
		}
`
	const search = `		converse /agent/converse
		capability content_search {
			mode MODE2
			description "Search"
			response_types text/answer
		}
`
	cases := []struct {
		name, block string
		ok          bool
		want        []string
	}{
		{"no converse endpoint", base + "\t\tconcierge builtin\n", false, []string{"concierge builtin", "add `converse /agent/converse`"}},
		{"nothing it can answer", base + `		converse /agent/converse
		authentication bearer
		capability book {
			mode MODE3
			action_type action
			description "Book"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
		concierge builtin
`, false, []string{"concierge builtin: no capability it can answer", "response_types include text/answer"}},
		{"not builtin", base + search + "\t\tconcierge remote\n", false, []string{"want `concierge builtin`", "reverse_proxy"}},
		{"refresh too often", base + search + "\t\tconcierge builtin {\n\t\t\trefresh 5s\n\t\t}\n", false, []string{"concierge refresh", "at least 1m"}},
		{"start page not a path", base + search + "\t\tconcierge builtin {\n\t\t\tpages sitemap.xml\n\t\t}\n", false, []string{"concierge pages", "must be a path"}},
		{"start page off the site", base + search + "\t\tconcierge builtin {\n\t\t\tpages //evil.example/x\n\t\t}\n", false, []string{"concierge pages", "must be a path"}},
		{"max_pages", base + search + "\t\tconcierge builtin {\n\t\t\tmax_pages lots\n\t\t}\n", false, []string{"concierge max_pages", "whole number"}},
		{"max_text", base + search + "\t\tconcierge builtin {\n\t\t\tmax_text 2TB\n\t\t}\n", false, []string{"concierge max_text", "1GiB"}},
		{"unknown option", base + search + "\t\tconcierge builtin {\n\t\t\tdepth 3\n\t\t}\n", false, []string{"ahp concierge: unknown option", "depth", "known: pages"}},
		{"markdown size", base + "\t\tmarkdown {\n\t\t\tmax_size 10\n\t\t}\n", false, []string{"markdown max_size", "1KiB to 64MiB"}},
		{"markdown argument", base + "\t\tmarkdown always\n", false, []string{"ahp markdown", "always", "`markdown off`"}},
		{"a MODE2 data capability is a warning", base + search + `		capability catalogue {
			mode MODE2
			description "Products"
			response_types application/data
		}
		concierge builtin {
			pages /sitemap.xml /
			max_pages 50
			max_text 4MiB
			refresh off
			host www.example.com
		}
		markdown {
			max_size 2MiB
		}
`, true, []string{"catalogue", "cannot make"}},
	}
	dir := t.TempDir()
	r := strings.NewReplacer("{{REPO}}", caddyproc.RepoRoot())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".Caddyfile")
			cfg := "http://127.0.0.1:9 {\n\tahp {\n" + r.Replace(c.block) + "\t}\n\trespond ok\n}\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyproc.Cmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
			if c.ok != (err == nil) {
				t.Fatalf("validate: err %v, want ok=%v\n%s", err, c.ok, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}
