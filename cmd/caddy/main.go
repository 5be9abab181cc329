// Command caddy is Caddy with its standard modules plus the AHP plugin:
// `go build ./cmd/caddy` gives the same binary xcaddy.sh builds.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-ahp/caddy-ahp"
)

func main() {
	caddycmd.Main()
}
