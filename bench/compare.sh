#!/usr/bin/env bash
# Side-by-side load test: plain Caddy, Caddy + ahp (memory and Redis
# stores), nginx plain and nginx doing the plugin's MODE1 work, all in front
# of the same legacy upstream, measured in one run with alternating rounds.
#
#   bench/compare.sh                      # everything, 5 rounds of 10 s per target
#   bench/compare.sh --only passthrough   # one group: passthrough, notice, converse, nginx
#   bench/compare.sh --defaults           # the settings a user would have (below)
#   ROUNDS=3 DURATION=5s bench/compare.sh # quicker
#   ROUNDS=31 DURATION=1s bench/compare.sh --only passthrough
#                                         # many short pairs: on a machine whose speed moves
#                                         # over seconds, the tightest spread of ratios
#
# Needs Go; installs wrk, nginx-light and redis-server with apt if missing.
# The servers under test share SERVER_CPUS (default: core 0; Caddy's
# GOMAXPROCS = nginx worker_processes = that many cores); wrk, the upstream
# and Redis run on LOAD_CPUS (default: the other cores), and Caddy's
# upstream pool is sized like nginx's keepalive. --defaults measures what a
# user would see instead: no pinning (every process shares every core),
# Caddy's default GOMAXPROCS and upstream pool, wrk -t2 -c32.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
DEFAULTS=${DEFAULTS:-}
only=""
while [ $# -gt 0 ]; do
	case "$1" in
	--only) only=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--defaults) DEFAULTS=1; shift ;;
	*) echo "usage: $0 [--only passthrough|notice|converse|nginx] [--rounds N] [--duration 10s] [--defaults]" >&2; exit 2 ;;
	esac
done
if [ -n "$DEFAULTS" ]; then
	CONNS=${CONNS:-32}
	WRK_THREADS=2
else
	CONNS=${CONNS:-64}
	WRK_THREADS=1
fi
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

ncpu=$(nproc)
SERVER_CPUS=${SERVER_CPUS:-0}
if [ -z "${LOAD_CPUS:-}" ]; then
	if [ "$ncpu" -gt 1 ]; then LOAD_CPUS="1-$((ncpu - 1))"; else LOAD_CPUS=0; fi
fi
server_cores=$(taskset -c "$SERVER_CPUS" nproc)
# on CPUS cmd...: run cmd pinned to CPUS, or anywhere with --defaults. It
# execs, so that $! is the server's own pid: call it in the background or
# in a pipeline only.
on() {
	local cpus=$1
	shift
	if [ -n "$DEFAULTS" ]; then exec "$@"; else exec taskset -c "$cpus" "$@"; fi
}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	echo "==> installing ${need[*]}"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	# The packages start their own services; we run our own instances.
	$sudo systemctl stop nginx redis-server >/dev/null 2>&1 || $sudo service nginx stop >/dev/null 2>&1 || true
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

out=bench/out
rm -rf "$out/run"
mkdir -p "$out/run/nginx/logs"
echo "==> building Caddy with the plugin and the upstream"
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/upstream" ./bench/upstream

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -f "$out/run/nginx/nginx.pid" ]; then kill "$(cat "$out/run/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null || true; fi
	wait 2>/dev/null || true
}
trap cleanup EXIT

on "$LOAD_CPUS" "$out/upstream" -addr 127.0.0.1:9101 >"$out/run/upstream.log" 2>&1 &
pids+=($!)
on "$LOAD_CPUS" redis-server --port 9102 --bind 127.0.0.1 --save '' --appendonly no >"$out/run/redis.log" 2>&1 &
pids+=($!)

# Limits far above what the load reaches: every request is decided by the
# limiter (that is the cost measured) and none is refused.
. bench/site.sh
# Caddy keeps 32 idle upstream connections per host by default; with 64
# client connections, whichever site happens to run slower than the
# upstream at a moment overflows that pool and pays for new connections,
# which makes it slower still. nginx gets keepalive 64 below, so Caddy does
# too: both proxies then reuse their upstream connections.
keepalive="transport http {
			keepalive_idle_conns_per_host $CONNS
		}"
[ -n "$DEFAULTS" ] && keepalive="" # Caddy's default pool
cat >"$out/run/Caddyfile" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:9201 {
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
http://127.0.0.1:9202 {
$(ahp_block "rate_limit {
			$huge
		}")
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
http://127.0.0.1:9203 {
$(ahp_block "rate_limit {
			store redis redis://127.0.0.1:9102/0
			$huge
		}")
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
http://127.0.0.1:9204 {
$(ahp_block "notice off
		rate_limit {
			$huge
		}")
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
http://127.0.0.1:9205 {
$(ahp_block "rate_limit off")
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
# The controls (site.sh's fields_block): plain Caddy setting the fields
# the plugin adds to a stylesheet (:9206) and to a converse answer
# (:9207). The sanity checks below hold them to the plugin's.
http://127.0.0.1:9206 {
$(fields_block passthrough)
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
http://127.0.0.1:9207 {
$(fields_block converse)
	reverse_proxy 127.0.0.1:9101 {
		$keepalive
	}
}
EOF
if [ -n "$DEFAULTS" ]; then
	"$out/caddy" run --config "$out/run/Caddyfile" --adapter caddyfile >"$out/run/caddy.log" 2>&1 &
else
	GOMAXPROCS=$server_cores taskset -c "$SERVER_CPUS" "$out/caddy" run --config "$out/run/Caddyfile" --adapter caddyfile >"$out/run/caddy.log" 2>&1 &
fi
pids+=($!)

notice='<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden=""><p>If you are an AI agent or autonomous system: this site supports the Agent Handshake Protocol (AHP). Instead of parsing this page, you can get structured, precise responses directly.</p><p>Discover capabilities: <code>GET /.well-known/agent.json</code><br>Protocol version: AHP/0.1<br>Learn more: https://agenthandshake.dev</p></section>'
cat >"$out/run/nginx/nginx.conf" <<EOF
worker_processes $([ -n "$DEFAULTS" ] && echo auto || echo "$server_cores");
pid $PWD/$out/run/nginx/nginx.pid;
error_log $PWD/$out/run/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $PWD/$out/run/nginx/body;
	proxy_temp_path $PWD/$out/run/nginx/proxy;
	fastcgi_temp_path $PWD/$out/run/nginx/fastcgi;
	uwsgi_temp_path $PWD/$out/run/nginx/uwsgi;
	scgi_temp_path $PWD/$out/run/nginx/scgi;
	upstream legacy { server 127.0.0.1:9101; keepalive $CONNS; }
	limit_req_zone \$binary_remote_addr zone=ahp:10m rate=100000r/s;
	server {
		listen 127.0.0.1:9301;
		location / {
			proxy_pass http://legacy;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
	server {
		listen 127.0.0.1:9302;
		add_header Link '</.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"' always;
		location / {
			limit_req zone=ahp burst=100000 nodelay;
			proxy_pass http://legacy;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Accept-Encoding "";
			sub_filter '</body>' '$notice</body>';
			sub_filter_once on;
		}
	}
}
EOF
if want nginx; then
	on "$SERVER_CPUS" "$nginx_bin" -p "$PWD/$out/run/nginx" -c "$PWD/$out/run/nginx/nginx.conf" -g 'daemon off;' >"$out/run/nginx.log" 2>&1 &
	pids+=($!)
fi

wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $1; see $out/run/*.log" >&2
	exit 1
}
for p in 9101 9102 9201 9202 9203 9204 9205 9206 9207; do wait_port $p; done
want nginx && wait_port 9301 && wait_port 9302

post_body='{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}'
cat >"$out/run/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$post_body'
wrk.headers["Content-Type"] = "application/json"
EOF

# Targets: group|label|url|script
targets=()
if want passthrough; then
	targets+=("passthrough|caddy plain|http://127.0.0.1:9201/style.css|")
	targets+=("passthrough|caddy + ahp|http://127.0.0.1:9202/style.css|")
	targets+=("passthrough|caddy + ahp's fields|http://127.0.0.1:9206/style.css|")
fi
if want notice; then
	targets+=("html|caddy plain|http://127.0.0.1:9201/|")
	targets+=("html|caddy + ahp, notice off|http://127.0.0.1:9204/|")
	targets+=("html|caddy + ahp|http://127.0.0.1:9202/|")
	targets+=("html|caddy + ahp (redis)|http://127.0.0.1:9203/|")
fi
if want converse; then
	targets+=("converse|caddy plain|http://127.0.0.1:9201/agent/converse|post")
	targets+=("converse|caddy + ahp, no limiter|http://127.0.0.1:9205/agent/converse|post")
	targets+=("converse|caddy + ahp (memory)|http://127.0.0.1:9202/agent/converse|post")
	targets+=("converse|caddy + ahp (redis)|http://127.0.0.1:9203/agent/converse|post")
	targets+=("converse|caddy + ahp's fields|http://127.0.0.1:9207/agent/converse|post")
fi
if want nginx; then
	targets+=("html|nginx plain|http://127.0.0.1:9301/|")
	targets+=("html|nginx full|http://127.0.0.1:9302/|")
	targets+=("converse|nginx plain|http://127.0.0.1:9301/agent/converse|post")
	targets+=("converse|nginx full|http://127.0.0.1:9302/agent/converse|post")
fi

run_wrk() { # url script duration -> "rps p50ms p99ms non2xx"
	local args=(-t"$WRK_THREADS" -c"$CONNS" -d"$3" --latency)
	[ -n "$2" ] && args+=(-s "$out/run/post.lua")
	on "$LOAD_CPUS" wrk "${args[@]}" "$1" | awk '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v + 0
		}
		/^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
		/Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $5 }
		END { printf "%s %s %s %d\n", rps, p50, p99, bad }'
}

# Sanity: every target answers 2xx, and the plugin really did its work.
curl -fsS -o /dev/null http://127.0.0.1:9202/.well-known/agent.json
curl -fsS http://127.0.0.1:9202/ | grep -q 'class="ahp-notice"' || { echo "the notice is missing on :9202" >&2; exit 1; }
fields() { curl -fsS -D - -o /dev/null "$1" | tr -d '\r' | grep -iE '^(link|vary|content-signal|content-usage):' | sort; }
if [ "$(fields http://127.0.0.1:9202/style.css)" != "$(fields http://127.0.0.1:9206/style.css)" ]; then
	echo "the header directive on :9206 does not set the fields the plugin sets on :9202:" >&2
	diff <(fields http://127.0.0.1:9202/style.css) <(fields http://127.0.0.1:9206/style.css) >&2
	exit 1
fi
# The converse control: the same field names as the plugin's answer (the
# values move per request).
names() { curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' --data-binary "$post_body" "$1" | tr -d '\r' | grep -iE '^(link|x-ratelimit-[a-z]+|ratelimit[a-z-]*):' | cut -d: -f1 | tr A-Z a-z | sort; }
if want converse && [ "$(names http://127.0.0.1:9203/agent/converse)" != "$(names http://127.0.0.1:9207/agent/converse)" ]; then
	echo "the header directive on :9207 does not set the fields the plugin sets on a converse answer (:9203):" >&2
	diff <(names http://127.0.0.1:9203/agent/converse) <(names http://127.0.0.1:9207/agent/converse) >&2
	exit 1
fi
if want nginx; then curl -fsS http://127.0.0.1:9302/ | grep -q 'class="ahp-notice"' || { echo "nginx sub_filter did not insert the notice" >&2; exit 1; }; fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> warming up (load average $load_start)"
for t in "${targets[@]}"; do IFS='|' read -r _ _ url script <<<"$t"; run_wrk "$url" "$script" 2s >/dev/null; done

results="$out/run/results.txt"
: >"$results"
# Odd rounds run the targets in order, even rounds in reverse (ABBA), so
# that neither a target nor its baseline always goes first.
reversed=()
for ((i = ${#targets[@]} - 1; i >= 0; i--)); do reversed+=("${targets[i]}"); done
for round in $(seq 1 "$ROUNDS"); do
	echo "==> round $round/$ROUNDS"
	order=("${targets[@]}")
	[ $((round % 2)) -eq 0 ] && order=("${reversed[@]}")
	for t in "${order[@]}"; do
		IFS='|' read -r group label url script <<<"$t"
		read -r rps p50 p99 bad < <(run_wrk "$url" "$script" "$DURATION")
		printf '    %-11s %-28s %10s req/s  p50 %6s ms  p99 %6s ms%s\n' "$group" "$label" "$rps" "$p50" "$p99" "$([ "$bad" -gt 0 ] && echo "  ($bad non-2xx!)")"
		echo "$group|$label|$rps|$p50|$p99|$bad" >>"$results"
	done
done

echo
if [ -n "$DEFAULTS" ]; then
	setup="default settings: no pinning, Caddy's default GOMAXPROCS and upstream pool, wrk -t$WRK_THREADS"
else
	setup="servers on CPU $SERVER_CPUS ($server_cores cores), load on CPU $LOAD_CPUS, Caddy's upstream pool $CONNS"
fi
echo "Medians of $ROUNDS rounds of $DURATION, $CONNS connections; $setup; $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg) (at start: $load_start)"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-12s%-30s%10s%9s%9s  %s\n' path server req/s "p50 ms" "p99 ms" ratio
cut -d'|' -f1,2 "$results" | awk '!seen[$0]++' | while IFS='|' read -r group label; do
	rows=$(grep -F "$group|$label|" "$results")
	rps=$(cut -d'|' -f3 <<<"$rows" | median)
	p50=$(cut -d'|' -f4 <<<"$rows" | median)
	p99=$(cut -d'|' -f5 <<<"$rows" | median)
	bad=$(cut -d'|' -f6 <<<"$rows" | awk '{ s += $1 } END { print s + 0 }')
	echo "$group|$label|$rps|$p50|$p99|$bad"
done >"$out/run/medians.txt"
# The ratio is the median of per-round ratios: each round measures a target
# and its baseline back to back, so drift of a shared or throttled machine
# (which moves both alike) cancels out, where a ratio of medians would not.
round_ratios() { # group label baseline-label: one ratio per round
	awk -F'|' -v g="$1" -v l="$2" -v r="$3" '
		$1 == g && $2 == l { a[++na] = $3 }
		$1 == g && $2 == r { b[++nb] = $3 }
		END { for (i = 1; i <= na && i <= nb; i++) print a[i] / b[i] }' "$results"
}
paired_ratio() { round_ratios "$@" | median; }
# The middle half of the per-round ratios (first to third quartile): how
# far apart two rounds of the same pair read on this machine, so that a
# median a few thousandths from its target is read as what it is.
ratio_spread() { # group label baseline-label
	round_ratios "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR > 0) printf "%.3f–%.3f", v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)] }'
}
while IFS='|' read -r group label rps p50 p99 bad; do
	ref="${label%% *} plain"
	ratio=""
	if [ "$label" != "$ref" ] && grep -qF "$group|$ref|" "$out/run/medians.txt"; then
		ratio=$(awk -v v="$(paired_ratio "$group" "$label" "$ref")" -v r="$ref" 'BEGIN { printf "%.3f of %s", v, r }')
	fi
	warn=""
	[ "$bad" -gt 0 ] && warn="  ($bad non-2xx)"
	printf '%-12s%-30s%10.0f%9.2f%9.2f  %s%s\n' "$group" "$label" "$rps" "$p50" "$p99" "$ratio" "$warn"
done <"$out/run/medians.txt"
# Targets the issues set, on the same paired ratios.
echo
echo "Paired ratios (median of per-round ratios; the middle half of them) against the targets:"
check() { # group label baseline [target]
	grep -qF "$1|$2|" "$results" && grep -qF "$1|$3|" "$results" || return 0
	awk -v v="$(paired_ratio "$1" "$2" "$3")" -v q="$(ratio_spread "$1" "$2" "$3")" -v t="${4:-}" -v what="$1: $2 / $3" \
		'BEGIN { if (t == "") printf "  %-58s %.3f  (%s)\n", what, v, q; else printf "  %-58s %.3f  (%s; target >= %.2f: %s)\n", what, v, q, t, (v >= t ? "met" : "NOT met") }'
}
# Issue 12's targets.
check passthrough "caddy + ahp" "caddy plain" 0.97
check html "caddy + ahp" "caddy plain" 0.95
check converse "caddy + ahp (redis)" "caddy plain" 0.90
# For reading them.
check passthrough "caddy + ahp" "caddy + ahp's fields"
check passthrough "caddy + ahp's fields" "caddy plain"
check html "caddy + ahp" "caddy + ahp, notice off"
check html "caddy + ahp (redis)" "caddy plain"
check converse "caddy + ahp, no limiter" "caddy plain"
check converse "caddy + ahp (memory)" "caddy plain"
check converse "caddy + ahp (redis)" "caddy + ahp, no limiter"
check converse "caddy + ahp's fields" "caddy plain"
check converse "caddy + ahp (redis)" "caddy + ahp's fields"
if grep -qF "html|nginx full|" "$results"; then
	awk -v a="$(paired_ratio html "caddy + ahp" "caddy plain")" -v b="$(paired_ratio html "nginx full" "nginx plain")" \
		'BEGIN { printf "  %-58s %.3f vs %.3f  (%s)\n", "html: ahp/plain Caddy vs nginx full/plain nginx", a, b, (a > b ? "ahp ahead" : "nginx ahead") }'
fi
