package caddymodule

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseMCP(t *testing.T) {
	for _, c := range []struct {
		in, path       string
		origins, hosts []string
		err            string
	}{
		{in: "mcp /mcp", path: "/mcp"},
		{in: "mcp {\n path /mcp\n origins https://a.example http://localhost:6274\n origins *\n}", path: "/mcp",
			origins: []string{"https://a.example", "http://localhost:6274", "*"}},
		{in: "mcp /agents {\n origins https://a.example\n}", path: "/agents", origins: []string{"https://a.example"}},
		{in: "mcp", err: "path is required"},
		{in: "mcp /a /b", err: "want `mcp <path>`"},
		{in: "mcp /a {\n path /b\n}", err: "once"},
		{in: "mcp {\n origins\n}", err: "list the allowed"},
		{in: "mcp /mcp {\n hosts shop.example www.shop.example\n}", path: "/mcp", hosts: []string{"shop.example", "www.shop.example"}},
		{in: "mcp /mcp {\n hosts\n}", err: "list the site's host names"},
		{in: "mcp {\n allowed_hosts x\n}", err: "unknown option"},
	} {
		d := caddyfile.NewTestDispenser(c.in)
		d.Next()
		mc, err := parseMCP(d)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || mc.Path != c.path || !slices.Equal(mc.Origins, c.origins) || !slices.Equal(mc.Hosts, c.hosts) {
			t.Errorf("%q: %+v %v", c.in, mc, err)
		}
	}
}
