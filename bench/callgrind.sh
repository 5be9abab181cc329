#!/usr/bin/env bash
# Instructions per request of the whole Caddy (valgrind callgrind), plain
# Caddy against the plugin's sites, in one Caddy process. Load does not move
# these counts (within about 0.5% between runs), so they show costs the
# throughput ratios of compare.sh cannot resolve on a shared machine.
#
#   bench/callgrind.sh                          # passthrough, html, converse; 2000 requests each
#   N=6000 bench/callgrind.sh converse          # one path, more requests
#   TOP=25 bench/callgrind.sh passthrough       # also: functions whose cost differs most
#
# Paths: passthrough (GET /style.css: the ahp site adds discovery headers),
# html (GET /: the MODE1 notice), converse (POST /agent/converse: the
# gateway without limiter, with the memory store, with the Redis store).
# Sites, all in front of bench/upstream and one redis-server:
#   plain     reverse_proxy only
#   ahp       ahp with the memory store (compare.sh's "caddy + ahp")
#   nolimit   ahp with rate_limit off
#   redis     ahp with the Redis store (timeout 5s: valgrind is slow)
#   fields    plain Caddy setting, with its own header directive, the
#             fields the plugin adds (compare.sh's controls): a stylesheet's
#             Link and Vary; a converse answer's Link and the four
#             X-RateLimit-* of the spec's §8. What they cost whoever sets them.
# Each measurement: WARM requests per site with instrumentation off, then
# exactly N requests on C keep-alive connections with it on, plain first.
# GODEBUG=asyncpreemptoff=1 because callgrind aborts on Go's preemption
# signal. "gc" is the garbage collector's share (mark and sweep functions):
# it moves by a cycle more or less between runs, so "no gc" is the steadier
# figure. Output files stay in bench/out/callgrind (callgrind_annotate them).
#
# Needs valgrind (apt-get install valgrind), redis-server and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
C=${C:-32}
WARM=${WARM:-1000}
GOMAXPROCS=${GOMAXPROCS:-2}
paths=${1:-passthrough,html,converse}
out=bench/out/callgrind
rm -rf "$out"; mkdir -p "$out"
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 2; }
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/upstream" ./bench/upstream
go build -o "$out/loadgen" ./bench/loadgen

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$out/upstream" -addr 127.0.0.1:9141 >"$out/upstream.log" 2>&1 & pids+=($!)
redis-server --port 9142 --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 & pids+=($!)
. bench/site.sh
sites_caddyfile "admin off" 127.0.0.1:9141 redis://127.0.0.1:9142/0 924 "timeout 5s" >"$out/Caddyfile"
GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off GOMAXPROCS=$GOMAXPROCS valgrind --tool=callgrind --instr-atstart=no \
	--callgrind-out-file="$PWD/$out/cg.%p" "$out/caddy" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 &
vp=$!
pids+=($vp)
for p in 9141 9142 9241 9242 9243 9244 9245 9246; do
	for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
port() { # $1 site, $2 path
	case $1 in plain) echo 9241 ;; ahp) echo 9242 ;; nolimit) echo 9243 ;; redis) echo 9244 ;;
	fields) if [ "$2" = converse ]; then echo 9246; else echo 9245; fi ;; esac
}
body='{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}'
load() { # path site n
	local url args=()
	case $1 in
	passthrough) url=/style.css ;;
	html) url=/ ;;
	converse) url=/agent/converse; args=(-post "$body") ;;
	esac
	"$out/loadgen" -url "http://127.0.0.1:$(port "$2" "$1")$url" -n "$3" -c "$C" "${args[@]}"
}
sites() { case $1 in converse) echo plain fields nolimit ahp redis ;; passthrough) echo plain fields ahp ;; *) echo plain ahp ;; esac; }
curl -fsS http://127.0.0.1:9242/ | grep -q 'class="ahp-notice"' || { echo "the notice is missing" >&2; exit 1; }
declare -A dump
i=0
for p in ${paths//,/ }; do
	for s in $(sites "$p"); do load "$p" "$s" "$WARM" 2>/dev/null; done
	for s in $(sites "$p"); do
		callgrind_control -i on $vp >/dev/null
		load "$p" "$s" "$N" 2>&1 | sed "s/^/  $p $s: /"
		callgrind_control -i off $vp >/dev/null
		i=$((i + 1))
		callgrind_control --dump="$p-$s" $vp >/dev/null
		dump[$p-$s]=$i
	done
done
kill -INT $vp; wait $vp 2>/dev/null || true
pid_files=$(ls "$out"/cg.*.* | head -1); base=${pid_files%.*}
# per file: total and gc instructions per request
count() {
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null | awk -v n="$N" '
		/^ *[0-9,]+ \( *[0-9.]+%\)  [^P]/ {
			v = $1; gsub(/,/, "", v); f = $0
			sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, "", f); sub(/ \[.*$/, "", f); sub(/^[^:]*:/, "", f)
			tot += v
			if (f ~ /^runtime\.(scan|tryDefer|gc|markroot|wbBuf|findObject|greyobject|typePointers|bulkBarrier|sweep|gcWrite|markBits|heapBits|spanOf|\(\*mspan\)\.(typePointers|markBits|nextFreeIndex|heapBits)|\(\*gcWork\)|\(\*gcBits|scanframe|scanstack|pcvalue|step|funcInfo|findfunc|\(\*unwinder\)|adjustframe|adjustpointers|getStackMap|readvarint|\(\*stkframe\))|gcWriteBarrier|scanblock|spanSet/) gc += v
		}
		END { printf "%.0f %.0f\n", tot / n, (tot - gc) / n }'
}
# exclusive cost per function and request, for TOP
bys() {
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null | awk -v n="$N" '
		/^ *[0-9,]+ \( *[0-9.]+%\)  [^P]/ { v = $1; gsub(/,/, "", v); f = $0
			sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, "", f); sub(/ \[.*$/, "", f); sub(/^[^:]*:/, "", f); a[f] += v / n }
		END { for (k in a) printf "%s\t%.1f\n", k, a[k] }'
}
if [ -n "${TOP:-}" ]; then
	for p in ${paths//,/ }; do
		for s in $(sites "$p"); do bys "$base.${dump[$p-$s]}" >"$out/$p-$s.txt"; done
		for s in $(sites "$p"); do
			[ "$s" = plain ] && continue
			# also the plugin against the control (what it adds beyond the
			# fields) and the limiting sites against nolimit (what a decision costs)
			bases=plain
			[[ $s == ahp || $s == redis ]] && [ -n "${dump[$p-fields]:-}" ] && bases+=" fields"
			[[ $s == ahp || $s == redis ]] && [ -n "${dump[$p-nolimit]:-}" ] && bases+=" nolimit"
			for b in $bases; do
				echo
				echo "$p: $s - $b, exclusive instructions per request, largest differences"
				awk -F'\t' 'FNR == NR { a[$1] = $2; next } { b[$1] = $2 } END { for (k in a) if (!(k in b)) b[k] = 0; for (k in b) { if (!(k in a)) a[k] = 0; printf "%9.0f %9.0f %9.0f  %s\n", a[k], b[k], b[k] - a[k], k } }' \
					"$out/$p-$b.txt" "$out/$p-$s.txt" | sort -k3 -rn | awk -v n="$TOP" 'NR <= n'
			done
		done
	done
fi
echo
echo "callgrind, $N requests per site on $C connections after $WARM warm-up, GOMAXPROCS=$GOMAXPROCS; instructions per request"
printf '%-12s %-8s %10s %10s %10s  %s\n' path site total "no gc" gc "ratio plain/site (no gc)"
for p in ${paths//,/ }; do
	read -r pt pn < <(count "$base.${dump[$p-plain]}")
	for s in $(sites "$p"); do
		read -r t n < <(count "$base.${dump[$p-$s]}")
		r=""
		[ "$s" != plain ] && r=$(awk -v a="$pt" -v b="$t" -v c="$pn" -v d="$n" 'BEGIN { printf "%.3f (%.3f)", a / b, c / d }')
		printf '%-12s %-8s %10d %10d %10d  %s\n' "$p" "$s" "$t" "$n" $((t - n)) "$r"
	done
done
