package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// aCaddyfile is one Caddyfile of the repository: a file, or a ConfigMap key
// (name "path#key").
type aCaddyfile struct {
	name string
	text []byte
}

// caddyfiles finds every Caddyfile in the repository.
func caddyfiles(t *testing.T) []aCaddyfile {
	t.Helper()
	var all []aCaddyfile
	for _, f := range repoFiles(t) {
		switch {
		case isCaddyfileName(f):
			all = append(all, aCaddyfile{f, readFile(t, f)})
		case strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml"):
			for _, n := range yamlDocs(t, f) {
				var d k8sDoc
				if kindOf(n) != "ConfigMap" {
					continue
				}
				if err := n.Decode(&d); err != nil {
					t.Fatalf("%s: ConfigMap: %v", f, err)
				}
				for _, key := range sortedKeys(d.Data) {
					if isCaddyfileName(key) {
						all = append(all, aCaddyfile{f + "#" + key, []byte(d.Data[key])})
					}
				}
			}
		}
	}
	return all
}

// k8sDoc is the part of a Kubernetes object these tests read.
type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
}

// yamlDocs decodes every document of a YAML file; a file that does not
// parse fails the test (every YAML file of the repository must).
func yamlDocs(t *testing.T, rel string) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, rel)))
	var docs []*yaml.Node
	for {
		d := new(yaml.Node)
		err := dec.Decode(d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		docs = append(docs, d)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kindOf is a document's top-level "kind", if it has one.
func kindOf(doc *yaml.Node) string {
	var k struct {
		Kind string `yaml:"kind"`
	}
	if doc.Decode(&k) != nil {
		return ""
	}
	return k.Kind
}

// TestEveryCaddyfileValidates runs `caddy validate --adapter caddyfile` on
// every Caddyfile of the repository: it adapts the file and provisions every
// module, as `caddy run` would, without serving. A directive that does not
// exist, a manifest the plugin refuses, a typo in an option: each fails
// here. So do the adapter's warnings (an unformatted Caddyfile, a deprecated
// option).
func TestEveryCaddyfileValidates(t *testing.T) {
	files := caddyfiles(t)
	// The discovery must find at least the ones shipped today, so that a
	// broken glob cannot pass by validating nothing.
	found := map[string]bool{}
	for _, f := range files {
		found[f.name] = true
	}
	for _, want := range []string{
		"Caddyfile.example",
		"examples/compose/Caddyfile",
		"examples/compose/lb.caddyfile",
		"examples/compose/concierge.caddyfile",
		"examples/kubernetes/caddy-ahp.yaml#Caddyfile",
	} {
		if !found[want] {
			t.Errorf("Caddyfile %s was not found (found: %v)", want, sortedKeys(found))
		}
	}
	for _, f := range files {
		t.Run(strings.ReplaceAll(f.name, "/", "_"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// Test templates may hold the harness's placeholders.
			text := strings.NewReplacer(
				"{{PORT}}", fmt.Sprint(caddyproc.FreePort(t)),
				"{{ADMIN}}", fmt.Sprint(caddyproc.FreePort(t)),
				"{{DIR}}", dir,
				"{{REPO}}", root,
			).Replace(string(f.text))
			path := filepath.Join(dir, "Caddyfile")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			// From the repository's root, as README.md runs the examples.
			out, err := caddyproc.Cmd(t, root, "validate", "--config", path, "--adapter", "caddyfile")
			if err != nil {
				t.Fatalf("caddy validate %s: %v\n%s", f.name, err, out)
			}
			if !strings.Contains(out, "Valid configuration") {
				t.Fatalf("caddy validate %s did not say the configuration is valid:\n%s", f.name, out)
			}
			problems, notes := validateOutput(out)
			for _, l := range notes {
				t.Logf("caddy validate %s: %s", f.name, l)
			}
			for _, l := range problems {
				t.Errorf("caddy validate %s: %s", f.name, l)
			}
		})
	}
}

// validateOutput sorts caddy validate's log lines: the adapter's warnings
// (an unformatted Caddyfile, a deprecated option) and any error are
// problems; a module's warnings about the configuration it was given are
// its authors' to decide, and only shown.
func validateOutput(out string) (problems, notes []string) {
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, `"level":"error"`),
			strings.Contains(line, `"level":"warn"`) && strings.Contains(line, `"adapter":"caddyfile"`):
			problems = append(problems, line)
		case strings.Contains(line, `"level":"warn"`):
			notes = append(notes, line)
		}
	}
	return problems, notes
}

// TestValidateCatchesAnUnformattedCaddyfile: the adapter's warning about
// formatting is one validateOutput reports.
func TestValidateCatchesAnUnformattedCaddyfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(":8080 {\nrespond \"x\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyproc.Cmd(t, root, "validate", "--config", path, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	if problems, _ := validateOutput(out); len(problems) != 1 || !strings.Contains(problems[0], "not formatted") {
		t.Fatalf("an unformatted Caddyfile was not reported: %q\n%s", problems, out)
	}
}

// TestValidateRefusesAnUnknownDirective keeps the check above meaningful: a
// Caddyfile with a directive this Caddy does not have fails validation.
func TestValidateRefusesAnUnknownDirective(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(":8080 {\n\tno_such_directive\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyproc.Cmd(t, root, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "no_such_directive") {
		t.Fatalf("caddy validate accepted an unknown directive (err %v):\n%s", err, out)
	}
}
