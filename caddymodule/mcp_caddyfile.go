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
//	}
//
// origins are the browser origins allowed besides the endpoint's own
// (MCP's Streamable HTTP transport validates Origin against DNS
// rebinding); "*" allows any. The values are checked by mcp.New at
// provisioning, which names the option in its error.
func parseMCP(d *caddyfile.Dispenser) (path string, origins []string, err error) {
	args := d.RemainingArgs()
	if len(args) > 1 {
		return "", nil, d.Errf("ahp mcp: want `mcp <path>` or a block `mcp { path /mcp; origins <origin>... }`")
	}
	if len(args) == 1 {
		path = args[0]
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "path":
			if !d.NextArg() || path != "" {
				return "", nil, d.Errf("ahp mcp path: give the endpoint's path once, e.g. `path /mcp`")
			}
			path = d.Val()
			if d.NextArg() {
				return "", nil, d.ArgErr()
			}
		case "origins":
			more := d.RemainingArgs()
			if len(more) == 0 {
				return "", nil, d.Errf("ahp mcp origins: list the allowed browser origins, e.g. `origins https://agent.example`")
			}
			origins = append(origins, more...)
		default:
			return "", nil, d.Errf("ahp mcp: unknown option %q (want path or origins)", d.Val())
		}
	}
	if path == "" {
		return "", nil, d.Errf("ahp mcp: the endpoint's path is required, e.g. `mcp /mcp`")
	}
	return path, origins, nil
}
