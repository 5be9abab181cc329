package caddymodule

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseMCP(t *testing.T) {
	for _, c := range []struct {
		in, path string
		origins  []string
		err      string
	}{
		{in: "mcp /mcp", path: "/mcp"},
		{in: "mcp {\n path /mcp\n origins https://a.example http://localhost:6274\n origins *\n}", path: "/mcp",
			origins: []string{"https://a.example", "http://localhost:6274", "*"}},
		{in: "mcp /agents {\n origins https://a.example\n}", path: "/agents", origins: []string{"https://a.example"}},
		{in: "mcp", err: "path is required"},
		{in: "mcp /a /b", err: "want `mcp <path>`"},
		{in: "mcp /a {\n path /b\n}", err: "once"},
		{in: "mcp {\n origins\n}", err: "list the allowed"},
		{in: "mcp {\n hosts x\n}", err: "unknown option"},
	} {
		d := caddyfile.NewTestDispenser(c.in)
		d.Next()
		path, origins, err := parseMCP(d)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || path != c.path || !slices.Equal(origins, c.origins) {
			t.Errorf("%q: %q %v %v", c.in, path, origins, err)
		}
	}
}
