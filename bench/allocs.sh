#!/usr/bin/env bash
# Bytes and objects Caddy allocates per request, plain Caddy against the
# plugin's sites in one Caddy process: exact counts from the runtime's
# memstats (the admin endpoint's /debug/vars) around N requests per site.
# What the garbage collector's share of a path follows (callgrind.sh's
# "gc" column moves by a whole cycle between runs; these do not).
#
#   bench/allocs.sh                  # converse, 20000 requests per site
#   N=5000 bench/allocs.sh passthrough
#
# Sites as in callgrind.sh: plain, fields (plain Caddy setting the plugin's
# fields with its own header directive), nolimit, ahp (memory store),
# redis. Needs Go, curl, python3 and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
C=${C:-32}
path=${1:-converse}
out=bench/out/allocs
rm -rf "$out"; mkdir -p "$out"
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/upstream" ./bench/upstream
go build -o "$out/loadgen" ./bench/loadgen
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
"$out/upstream" -addr 127.0.0.1:9151 >"$out/upstream.log" 2>&1 & pids+=($!)
redis-server --port 9152 --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 & pids+=($!)
. bench/site.sh
sites_caddyfile "admin localhost:9159" 127.0.0.1:9151 redis://127.0.0.1:9152/0 925 >"$out/Caddyfile"
"$out/caddy" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 & pids+=($!)
for p in 9151 9152 9251 9252 9253 9254 9255 9256 9159; do
	for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
args=()
case $path in
converse) url=/agent/converse
	args=(-post '{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}') ;;
passthrough) url=/style.css ;;
html) url=/ ;;
*) echo "path: converse, passthrough or html" >&2; exit 2 ;;
esac
stat() { curl -fsS localhost:9159/debug/vars | python3 -c 'import json,sys; m=json.load(sys.stdin)["memstats"]; print(m["TotalAlloc"], m["Mallocs"], m["NumGC"])'; }
fields=9255
[ "$path" = converse ] && fields=9256
sites="plain:9251 fields:$fields nolimit:9253 ahp:9252 redis:9254"
for s in $sites; do "$out/loadgen" -url "http://127.0.0.1:${s#*:}$url" -n 2000 -c "$C" "${args[@]}" >/dev/null 2>&1; done
echo "$path, $N requests per site on $C connections; bytes and objects allocated per request (memstats)"
printf '%-8s %10s %10s %6s\n' site "B/req" "objs/req" GCs
for s in $sites; do
	read -r b0 m0 g0 < <(stat)
	"$out/loadgen" -url "http://127.0.0.1:${s#*:}$url" -n "$N" -c "$C" "${args[@]}" >/dev/null 2>&1
	read -r b1 m1 g1 < <(stat)
	awk -v s="${s%:*}" -v b=$((b1 - b0)) -v m=$((m1 - m0)) -v g=$((g1 - g0)) -v n="$N" \
		'BEGIN { printf "%-8s %10.0f %10.1f %6d\n", s, b / n, m / n, g }'
done
