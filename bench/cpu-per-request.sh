#!/usr/bin/env bash
# Caddy's CPU per request, plain Caddy and Caddy + ahp (Redis store) served
# by one Caddy process under the same load (default settings: no pinning,
# wrk -t2 -c32): a CPU profile of each site in turn, PAIRS times, each
# divided by the requests served while it ran. Steadier than throughput
# ratios on a machine whose speed moves (docs/performance.md, issue 12's
# eighth pass), and it says where the difference goes.
#
#   bench/cpu-per-request.sh                    # converse
#   TARGET=passthrough bench/cpu-per-request.sh
#   PAIRS=3 SECONDS_PER=20 bench/cpu-per-request.sh
#
# Needs Go, wrk and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${TARGET:-converse}
PAIRS=${PAIRS:-2}
S=${SECONDS_PER:-12}
out=bench/out/cpu-per-request
rm -rf "$out"; mkdir -p "$out"
. bench/site.sh
start_pair "$out"
case "$TARGET" in
converse) path=/agent/converse; script=(-s "$out/post.lua") ;;
passthrough) path=/style.css; script=() ;;
html) path=/; script=() ;;
*) echo "TARGET must be converse, passthrough or html" >&2; exit 2 ;;
esac
# frame label -> regexp of the pprof node (cumulative time)
frames=(
	"net/http conn.serve|^net/http\.\(\*conn\)\.serve$"
	"reverse_proxy|reverseproxy\.\(\*Handler\)\.ServeHTTP$"
	"the plugin's handler|caddy-ahp/caddymodule\.\(\*Handler\)\.ServeHTTP$"
)
for port in 9211 9212; do wrk -t2 -c32 -d3s "${script[@]}" "http://127.0.0.1:$port$path" >/dev/null; done
echo "$TARGET, $PAIRS pairs of ${S}s profiles; µs of Caddy's CPU per request (all of Caddy, then frames, cumulative)"
for i in $(seq 1 "$PAIRS"); do
	for port in 9211 9212; do
		name=plain; [ "$port" = 9212 ] && name="caddy + ahp"
		wrk -t2 -c32 -d$((S + 2))s "${script[@]}" "http://127.0.0.1:$port$path" >"$out/wrk-$port-$i.txt" & w=$!
		sleep 1
		curl -s -o "$out/cpu-$port-$i.pprof" "http://localhost:9119/debug/pprof/profile?seconds=$S"
		wait $w
		rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$port-$i.txt")
		reqs=$(awk -v r="$rps" -v s="$S" 'BEGIN { print r * s }')
		top=$(go tool pprof -top -cum -unit=us -nodecount=100000 "$out/caddy" "$out/cpu-$port-$i.pprof" 2>/dev/null)
		total=$(printf '%s\n' "$top" | awk '/Total samples/ { for (i = 1; i <= NF; i++) if ($i == "=") { v = $(i + 1); sub(/us$/, "", v); print v } }')
		line=$(printf 'pair %d %-12s %9.0f req/s  all %6.1f' "$i" "$name" "$rps" "$(awk -v t="$total" -v n="$reqs" 'BEGIN { print t / n }')")
		for f in "${frames[@]}"; do
			label=${f%%|*} re=${f#*|}
			us=$(printf '%s\n' "$top" | awk -v re="$re" '$NF ~ re { v = $4; sub(/us$/, "", v); print v; exit }')
			line+=$(printf '  %s %6.1f' "$label" "$(awk -v t="${us:-0}" -v n="$reqs" 'BEGIN { print t / n }')")
		done
		echo "$line"
	done
done
