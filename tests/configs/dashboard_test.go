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
// from caddymodule's sources, in the three forms they take there: a
// subsystem and a name written together (Subsystem: "ahp_x", Name: "y"), a
// file's subsystem constant (const ns, sub = "caddy", "ahp_x") with the
// names registered under it (vec("y" …), Subsystem: sub, Name: "y"), and
// collectors of their own (prometheus.NewDesc("caddy_ahp_z" …)).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "caddymodule", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	pairRe := regexp.MustCompile(`Subsystem:\s*"(ahp[a-z_]*)",\s*Name:\s*"([a-z_]+)"`)
	subRe := regexp.MustCompile(`sub\s*=\s*"caddy",\s*"(ahp[a-z_]*)"`)
	nameRe := regexp.MustCompile(`(?:vec|gauge|counter)\("([a-z_]+)"|Subsystem:\s*sub,\s*Name:\s*"([a-z_]+)"`)
	descRe := regexp.MustCompile(`NewDesc\(\s*"(caddy_ahp_[a-z_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for _, m := range pairRe.FindAllStringSubmatch(src, -1) {
			out["caddy_"+m[1]+"_"+m[2]] = true
		}
		for _, m := range descRe.FindAllStringSubmatch(src, -1) {
			out[m[1]] = true
		}
		subs := subRe.FindAllStringSubmatch(src, -1)
		if len(subs) > 1 {
			t.Fatalf("%s declares %d subsystem constants; the extraction expects one a file", f, len(subs))
		}
		if len(subs) == 0 {
			continue
		}
		for _, n := range nameRe.FindAllStringSubmatch(src, -1) {
			out["caddy_"+subs[0][1]+"_"+n[1]+n[2]] = true
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metric names in caddymodule: the extraction is broken", len(out))
	}
	return out
}

// Every metric the Grafana dashboard queries is one the plugin exports,
// and every metric the plugin exports is on the dashboard (README.md says it
// shows all of them).
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
	if len(unused) > 0 {
		t.Errorf("the plugin exports metrics the dashboard does not show: %v", unused)
	}
	if !exported["caddy_ahp_concierge_index"] {
		t.Errorf("caddy_ahp_concierge_index (a collector of its own) was not found in caddymodule: the extraction is broken")
	}
}
