#!/usr/bin/env bash
# Builds ./caddy: Caddy (the version go.mod pins) with its standard modules
# and this plugin, through xcaddy.
#
#   ./xcaddy.sh                      # ./caddy
#   ./xcaddy.sh --output /usr/local/bin/caddy
#   ./xcaddy.sh --with github.com/mholt/caddy-ratelimit   # extra plugins are passed on
#
# It works wherever `go build ./cmd/caddy` works, with the same verified
# modules:
#
# 1. `go mod download` fills the module cache from this repo's go.mod; the
#    go command checks every module it fetches or finds in the cache against
#    go.sum (the hashes committed with this repo).
# 2. xcaddy then builds offline from that cache (GOPROXY=off). The plugin is
#    this checkout (a replace), so nobody asks a module proxy for
#    github.com/caddy-ahp/caddy-ahp (an unpublished module; some proxies
#    answer 403, which Go does not treat as "not found").
# 3. xcaddy builds in a new module of its own, with an empty go.sum. The go
#    command would then look every module up in the checksum database, and
#    with GOPROXY=off it asks sum.golang.org directly, which networks that
#    only reach a module proxy cannot. So the go command xcaddy runs
#    (XCADDY_WHICH_GO) first gives xcaddy's module this repo's go.sum: each
#    module is checked against the hash committed here, exactly as in our own
#    build. Checksum verification is never turned off; a module that is not
#    in go.sum still goes to the checksum database (and fails loudly offline).
# 4. Extra --with plugins are resolved first, online, in a module like
#    xcaddy's (this plugin + the pinned Caddy + the extra plugin): the go
#    command verifies what they add through the checksum database (via the
#    module proxy when it serves one, as it does for any `go get`), and their
#    hashes join the go.sum handed to xcaddy, pinned at the versions resolved.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
orig=$PWD
abs() { case "$1" in /*) echo "$1" ;; *) echo "$orig/$1" ;; esac; }

output="$here/caddy"
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--output) output=$(abs "$2"); shift 2 ;;
	--with)
		case "$2" in
		*=*) extra+=("${2%%=*}=$(abs "${2#*=}")") ;; # a local checkout of a plugin
		*) extra+=("$2") ;;
		esac
		shift 2 ;;
	*) echo "xcaddy.sh: unknown argument $1 (use --output <path> or --with <module>[@version][=<dir>])" >&2; exit 2 ;;
	esac
done
cd "$here"

command -v go >/dev/null || { echo "xcaddy.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }
realgo=$(command -v go)

xcaddy_version=v0.4.5
caddy_module=github.com/caddyserver/caddy/v2
caddy_version=$(go list -m -f '{{.Version}}' "$caddy_module")
self_module=$(go list -m -f '{{.Path}}')

# xcaddy itself, from PATH or installed once into GOBIN.
xcaddy=$(command -v xcaddy || true)
if [ -z "$xcaddy" ]; then
	echo "==> installing xcaddy $xcaddy_version"
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
	xcaddy="$(go env GOPATH)/bin/xcaddy"
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] && xcaddy="$gobin/xcaddy"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp go.sum "$work/go.sum"

echo "==> downloading modules into the cache (Caddy $caddy_version)"
go mod download
# xcaddy's generated module resolves imports against the whole module
# graph, which needs a few zips our own build never opens (Go checks every
# module that could provide an import path). A handful of modules deep in
# the graph are not on the proxy at all; they are never built, so their
# absence is fine.
go mod download all 2>/dev/null || echo "    (some modules of the full graph are unavailable; they are not needed for the build)"

# Extra plugins are resolved online in a module like the one xcaddy
# generates (the same main package, this plugin replaced by the checkout, the
# pinned Caddy), so that its go.sum holds every module xcaddy will use.
with=()
if [ ${#extra[@]} -gt 0 ]; then
	echo "==> resolving extra plugins"
	fetch="$work/fetch"
	mkdir "$fetch"
	cp go.sum "$fetch/go.sum"
	imports=""
	for spec in "${extra[@]}"; do
		imports="$imports
	_ \"${spec%%[@=]*}\""
	done
	printf 'package main\n\nimport (\n\tcaddycmd "%s/cmd"\n\n\t_ "%s/modules/standard"\n\t_ "%s"%s\n)\n\nfunc main() { caddycmd.Main() }\n' \
		"$caddy_module" "$caddy_module" "$self_module" "$imports" >"$fetch/main.go"
	(
		cd "$fetch"
		go mod init caddy >/dev/null 2>&1
		go mod edit -replace "$self_module=$here" -require "$self_module@v0.0.0-00010101000000-000000000000" -require "$caddy_module@$caddy_version"
		for spec in "${extra[@]}"; do
			case "$spec" in
			*=*) go mod edit -replace "${spec%%=*}=${spec#*=}" ;;
			*) go get "$spec" "$caddy_module@$caddy_version" ;;
			esac
		done
		go mod tidy -e
	) || { echo "xcaddy.sh: cannot resolve ${extra[*]}" >&2; exit 1; }
	for spec in "${extra[@]}"; do
		case "$spec" in
		*=*) with+=(--with "$spec"); continue ;;
		esac
		pkg=${spec%%@*}
		version=$(cd "$fetch" && go list -f '{{.Module.Version}}' "$pkg")
		echo "    $pkg@$version"
		with+=(--with "$pkg@$version")
	done
	sort -u "$fetch/go.sum" "$work/go.sum" -o "$work/go.sum"
fi

# The go command xcaddy runs: the real one, after handing the module xcaddy
# just created (in its own temporary folder) the verified go.sum.
cat >"$work/go" <<EOF
#!/bin/sh
if [ -f go.mod ] && [ ! -f go.sum ] && [ "\$PWD" != "$here" ]; then
	cp "$work/go.sum" go.sum
fi
exec "$realgo" "\$@"
EOF
chmod +x "$work/go"

echo "==> building $output with xcaddy"
XCADDY_WHICH_GO="$work/go" GOPROXY=off GOFLAGS="$(go env GOFLAGS) -mod=mod" \
	"$xcaddy" build "$caddy_version" \
	--output "$output" \
	--with "$self_module=$here" \
	"${with[@]+"${with[@]}"}"

echo "==> built $output"
"$output" version
"$output" list-modules | grep -q '^http.handlers.ahp$' || { echo "xcaddy.sh: http.handlers.ahp is missing from the build" >&2; exit 1; }
echo "    with module http.handlers.ahp"
