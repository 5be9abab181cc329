#!/usr/bin/env bash
# Builds ./caddy: Caddy (the version go.mod pins) with its standard modules
# and this plugin, through xcaddy.
#
#   ./xcaddy.sh                      # ./caddy
#   ./xcaddy.sh --output /usr/local/bin/caddy
#   ./xcaddy.sh --with github.com/mholt/caddy-l4@v0.1.2   # more plugins
#   ./xcaddy.sh --with github.com/you/plugin=../plugin     # a local checkout
#
# It works wherever `go build ./cmd/caddy` works, and verifies every module
# as that build does:
#
# 1. Resolve. xcaddy builds in a new module of its own, whose go.sum starts
#    empty: every module would be looked up in the checksum database. So we
#    first make a module shaped like xcaddy's (the same main package, this
#    plugin replaced by the checkout, the pinned Caddy, any extra plugin)
#    with THIS repo's go.sum, and let the go command resolve it with the
#    machine's own GOPROXY and GOSUMDB: modules in go.sum are checked against
#    the hashes committed here; anything else (an extra plugin, a go.mod file
#    our own build never reads) goes to the checksum database, through the
#    module proxy when it serves one, as for any `go get`. Verification is
#    never turned off. With a warm module cache this step needs no network.
# 2. Build. xcaddy then runs offline (GOPROXY=off) from the module cache,
#    and the go command it runs (XCADDY_WHICH_GO) first hands xcaddy's module
#    the go.sum step 1 verified, so nothing is looked up again (with
#    GOPROXY=off the go command would ask sum.golang.org directly, which
#    networks that only reach a module proxy cannot). GOPROXY=off also keeps
#    xcaddy from asking a proxy for this unpublished module: "not found"
#    makes Go use the replacement, where some proxies' 403 would fail.
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

# 1. Resolve, in a module like the one xcaddy generates.
echo "==> resolving modules (Caddy $caddy_version)"
mod="$work/mod"
mkdir "$mod"
cp go.sum "$mod/go.sum"
{
	printf 'package main\n\nimport (\n\tcaddycmd "%s/cmd"\n\n\t_ "%s/modules/standard"\n\t_ "%s"\n' \
		"$caddy_module" "$caddy_module" "$self_module"
	for spec in "${extra[@]+"${extra[@]}"}"; do
		printf '\t_ "%s"\n' "${spec%%[@=]*}"
	done
	printf ')\n\nfunc main() {\n\tcaddycmd.Main()\n}\n'
} >"$mod/main.go"
# The steps xcaddy takes, in its order; go.sum is collected after each, since
# the last (tidy) drops lines the earlier ones need.
sums="$work/go.sum"
cp go.sum "$sums"
step() { "$@" && cat go.sum >>"$sums"; }
# Each command stops the script on failure (set -e does not apply inside a
# subshell followed by ||, hence the explicit checks).
(
	cd "$mod" || exit 1
	go mod init caddy 2>/dev/null || exit 1
	go mod edit -replace "$self_module=$here" || exit 1
	step go get "$caddy_module@$caddy_version" || exit 1
	# xcaddy's `go get` of this plugin, without asking a proxy for it.
	go mod edit -require "$self_module@v0.0.0-00010101000000-000000000000" || exit 1
	for spec in "${extra[@]+"${extra[@]}"}"; do
		case "$spec" in
		*=*) go mod edit -replace "${spec%%=*}=${spec#*=}" || exit 1 ;;
		*) step go get "$spec" "$caddy_module@$caddy_version" || exit 1 ;;
		esac
	done
	step go get || exit 1
	step go mod tidy -e || exit 1
) || { echo "xcaddy.sh: resolving the modules failed (above)" >&2; exit 1; }
sort -u "$sums" -o "$sums"
# Extra plugins are pinned at the versions resolved, so that the offline
# build takes exactly those.
with=()
for spec in "${extra[@]+"${extra[@]}"}"; do
	case "$spec" in
	*=*) with+=(--with "$spec") ;;
	*)
		pkg=${spec%%@*}
		version=$(cd "$mod" && go list -f '{{.Module.Version}}' "$pkg")
		echo "    $pkg@$version"
		with+=(--with "$pkg@$version")
		;;
	esac
done

# 2. Build offline, with the go.sum step 1 verified. The go command xcaddy
# runs is the real one, after handing the module xcaddy just created (in its
# own temporary folder) that go.sum.
cat >"$work/go" <<EOF
#!/bin/sh
if [ -f go.mod ] && [ ! -f go.sum ] && [ "\$PWD" != "$here" ]; then
	cp "$sums" go.sum
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
# (Not `list-modules | grep -q`: grep's early exit can fail the pipe.)
modules=$("$output" list-modules)
grep -qx 'http.handlers.ahp' <<<"$modules" || { echo "xcaddy.sh: http.handlers.ahp is missing from the build" >&2; exit 1; }
echo "    with module http.handlers.ahp"
