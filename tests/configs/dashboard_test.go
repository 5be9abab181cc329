package configs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// exportedMetrics reads the caddy_ahp_* metric names the plugin registers
// from caddymodule's sources: each file's subsystems ("ahp",
// "ahp_handoff" …) joined with the names it registers. A file with several
// subsystems over-approximates, which is fine for catching a dashboard
// that names a metric the code does not export.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "caddymodule", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	subRe := regexp.MustCompile(`(?:sub\s*=\s*"caddy",\s*|Subsystem:\s*)"(ahp[a-z_]*)"`)
	nameRe := regexp.MustCompile(`(?:vec|gauge|counter)\("([a-z_]+)"|Name:\s*"([a-z_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		subs := subRe.FindAllStringSubmatch(string(src), -1)
		if len(subs) == 0 {
			continue
		}
		for _, n := range nameRe.FindAllStringSubmatch(string(src), -1) {
			name := n[1] + n[2]
			for _, s := range subs {
				out["caddy_"+s[1]+"_"+name] = true
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metric names in caddymodule: the extraction is broken", len(out))
	}
	return out
}

// Every metric the Grafana dashboard queries is one the plugin exports.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	raw, err := os.ReadFile(filepath.Join(root, "examples", "grafana", "caddy-ahp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	used := map[string]bool{}
	metricRe := regexp.MustCompile(`caddy_ahp_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `site=~"$site"`) {
				t.Errorf("panel %q: query %q does not filter by the site variable", p.Title, tg.Expr)
			}
			for _, m := range metricRe.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					m = strings.TrimSuffix(m, suffix)
				}
				used[m] = true
				if !exported[m] {
					t.Errorf("panel %q queries %s, which the plugin does not export", p.Title, m)
				}
			}
		}
	}
	var unused []string
	for m := range exported {
		if !used[m] {
			unused = append(unused, m)
		}
	}
	sort.Strings(unused)
	t.Logf("%d metrics on the dashboard; not shown: %v", len(used), unused)
}
