package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseMCP reads the ahp block's mcp option, in either form:
//
//	mcp /mcp
//	mcp [/mcp] {
//	    path    /mcp
//	    origins https://agent.example http://localhost:6274 ...
//	    hosts   shop.example www.shop.example ...
//	}
//
// origins are the browser origins allowed besides the endpoint's own
// (MCP's Streamable HTTP transport validates Origin against DNS
// rebinding); "*" allows any. hosts are the site's own host names: with
// them, a browser's Origin counts as the endpoint's own only on a request
// sent to one of them, which a site block answering every host (`:80`)
// needs against DNS rebinding. The values are checked by mcp.New at
// provisioning, which names the option in its error.
func parseMCP(d *caddyfile.Dispenser) (*MCPConfig, error) {
	c := new(MCPConfig)
	args := d.RemainingArgs()
	if len(args) > 1 {
		return nil, d.Errf("ahp mcp: want `mcp <path>` or a block, one option per line: mcp {\n\tpath /mcp\n\torigins <origin>...\n\thosts <name>...\n}")
	}
	if len(args) == 1 {
		c.Path = args[0]
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "path":
			if !d.NextArg() || c.Path != "" {
				return nil, d.Errf("ahp mcp path: give the endpoint's path once, e.g. `path /mcp`")
			}
			c.Path = d.Val()
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "origins":
			more := d.RemainingArgs()
			if len(more) == 0 {
				return nil, d.Errf("ahp mcp origins: list the allowed browser origins, e.g. `origins https://agent.example`")
			}
			c.Origins = append(c.Origins, more...)
		case "hosts":
			more := d.RemainingArgs()
			if len(more) == 0 {
				return nil, d.Errf("ahp mcp hosts: list the site's host names, e.g. `hosts shop.example www.shop.example`")
			}
			c.Hosts = append(c.Hosts, more...)
		default:
			return nil, d.Errf("ahp mcp: unknown option %q (want path, origins or hosts)", d.Val())
		}
	}
	if c.Path == "" {
		return nil, d.Errf("ahp mcp: the endpoint's path is required, e.g. `mcp /mcp`")
	}
	return c, nil
}
