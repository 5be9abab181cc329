#!/usr/bin/env bash
# Caddy + ahp against plain Caddy with the settings a user would have: no
# CPU pinning, Caddy's default upstream pool, wrk -c32, the Redis store.
# Measures paired ratios (ROUNDS rounds, each plain and ahp back to back,
# the order alternating: ABBA) for the targets asked, then takes a CPU
# profile of the plugin's site on the first target and prints its top
# entries (flat and cumulative).
#
#   bench/profile.sh                        # converse: ratios, 15 s profile
#   TARGET=all bench/profile.sh             # converse, html and passthrough ratios; converse profile
#   TARGET=passthrough bench/profile.sh
#   ROUNDS=9 DURATION=5s PROFILE_SECONDS=0 bench/profile.sh   # more rounds, no profile
#
# Needs Go, wrk and redis-server (apt-get install wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${TARGET:-converse}
SECONDS_=${PROFILE_SECONDS:-15}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
case "$TARGET" in
all) targets=(converse html passthrough) ;;
converse | html | passthrough) targets=("$TARGET") ;;
*) echo "TARGET must be converse, html, passthrough or all" >&2; exit 2 ;;
esac
out=bench/out/profile
rm -rf "$out"; mkdir -p "$out"
. bench/site.sh
start_pair "$out"
curl -fsS http://127.0.0.1:9212/ | grep -q 'class="ahp-notice"' || { echo "the notice is missing on :9212" >&2; exit 1; }

target_args() { # target -> path and wrk script
	case "$1" in
	converse) path=/agent/converse; script=(-s "$out/post.lua") ;;
	html) path=/; script=() ;;
	passthrough) path=/style.css; script=() ;;
	esac
}
rps() { wrk -t2 -c"$CONNS" -d"$2" "${script[@]}" "http://127.0.0.1:$1$path" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, no pinning, wrk -t2 -c$CONNS, default upstream pool, Redis store"
for t in "${targets[@]}"; do
	target_args "$t"
	rps 9211 2s >/dev/null; rps 9212 2s >/dev/null
	ratios=()
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then a=$(rps 9211 "$DURATION"); b=$(rps 9212 "$DURATION"); else b=$(rps 9212 "$DURATION"); a=$(rps 9211 "$DURATION"); fi
		ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')")
		echo "  $t round $r: plain Caddy $a req/s, Caddy + ahp $b req/s, ratio ${ratios[-1]}"
	done
	printf '%s: ratio ahp/plain %s (median of %d paired rounds of %s: %s)\n' "$t" "$(printf '%s\n' "${ratios[@]}" | median)" "$ROUNDS" "$DURATION" "${ratios[*]}"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

[ "$SECONDS_" -gt 0 ] || exit 0
target_args "${targets[0]}"
( sleep 1; wrk -t2 -c"$CONNS" -d$((SECONDS_ + 2))s "${script[@]}" "http://127.0.0.1:9212$path" >/dev/null ) &
curl -s -o "$out/cpu.pprof" "http://localhost:9119/debug/pprof/profile?seconds=$SECONDS_"
wait $!
echo "--- profile of the ${targets[0]} path (Caddy + ahp), flat ---"
go tool pprof -top -nodecount=35 "$out/caddy" "$out/cpu.pprof" 2>/dev/null | sed -n 1,45p
echo "--- cumulative, plugin code ---"
go tool pprof -top -cum -nodecount=400 "$out/caddy" "$out/cpu.pprof" 2>/dev/null | grep -E 'caddy-ahp|flat%' | head -30
