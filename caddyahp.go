// Package caddyahp is the Caddy plugin that makes any website an Agent
// Handshake Protocol (AHP) site. Import it (or build with
// `xcaddy build --with github.com/caddy-ahp/caddy-ahp`) to register the
// http.handlers.ahp module and the `ahp` Caddyfile directive.
package caddyahp

import (
	// The Caddy module lives in caddymodule so that the protocol packages
	// stay free of Caddy; importing this package registers it.
	_ "github.com/caddy-ahp/caddy-ahp/caddymodule"
)
