// Package routes tests, through a real Caddy, which requests the plugin
// claims as its own whatever the site's Caddyfile does around it: a
// try_files fallback, a rewrite or a stripped prefix before ahp, a matcher
// on ahp. The gateway's paths reach the gateway, and the calls it admits
// reach the site's concierge route on the manifest's paths.
package routes

import (
	"os"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }
