#!/usr/bin/env bash
# Builds ./caddy: Caddy (the version go.mod pins) with its standard modules
# and this plugin, through xcaddy.
#
#   ./xcaddy.sh                      # ./caddy
#   ./xcaddy.sh --output /usr/local/bin/caddy
#   ./xcaddy.sh --with github.com/mholt/caddy-ratelimit   # extra plugins are passed on
#
# The plugin is built from this checkout. xcaddy would otherwise ask the Go
# module proxy for github.com/caddy-ahp/caddy-ahp, which fails for a module
# that is not published (some proxies answer 403, not 404, and Go then gives
# up). So we first fill the module cache from this repo's go.mod, then let
# xcaddy resolve everything from that cache (GOPROXY=off). Extra --with
# plugins are downloaded into the cache first, while the network is used.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

output="$here/caddy"
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--output) output=$2; shift 2 ;;
	--with) extra+=(--with "$2"); shift 2 ;;
	*) echo "xcaddy.sh: unknown argument $1 (use --output <path> or --with <module>)" >&2; exit 2 ;;
	esac
done
case "$output" in /*) ;; *) output="$PWD/$output" ;; esac

command -v go >/dev/null || { echo "xcaddy.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }

xcaddy_version=v0.4.5
caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)

# xcaddy itself, from PATH or installed once into GOBIN.
xcaddy=$(command -v xcaddy || true)
if [ -z "$xcaddy" ]; then
	echo "==> installing xcaddy $xcaddy_version"
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
	xcaddy="$(go env GOPATH)/bin/xcaddy"
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] && xcaddy="$gobin/xcaddy"
fi

echo "==> downloading modules into the cache (Caddy $caddy_version)"
go mod download
# xcaddy's generated module resolves imports against the whole module
# graph, which needs a few zips our own build never opens (Go checks every
# module that could provide an import path). A handful of modules deep in
# the graph are not on the proxy at all; they are never built, so their
# absence is fine.
go mod download all 2>/dev/null || echo "    (some modules of the full graph are unavailable; they are not needed for the build)"
for ((i = 1; i < ${#extra[@]}; i += 2)); do
	mod=${extra[$i]}
	case "$mod" in *=*) continue ;; esac # local replacements need no download
	(cd "$(mktemp -d)" && go mod init xcaddy-fetch >/dev/null 2>&1 && go get "$mod" >/dev/null)
done

echo "==> building $output with xcaddy"
GOPROXY=off GOFLAGS=-mod=mod "$xcaddy" build "$caddy_version" \
	--output "$output" \
	--with "github.com/caddy-ahp/caddy-ahp=$here" \
	"${extra[@]+"${extra[@]}"}"

echo "==> built $output"
"$output" version
"$output" list-modules | grep -q '^http.handlers.ahp$' || { echo "xcaddy.sh: http.handlers.ahp is missing from the build" >&2; exit 1; }
echo "    with module http.handlers.ahp"
