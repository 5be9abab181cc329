#!/usr/bin/env bash
# CPU profile of Caddy + ahp on the converse path with the settings a user
# would have: no CPU pinning, Caddy's default upstream pool, wrk -c32, the
# Redis store. Prints the profile's top entries (flat and cumulative) and
# plain Caddy's and the plugin's requests/s from the same run.
#
#   bench/profile.sh                 # converse with Redis, 15 s profile
#   TARGET=passthrough bench/profile.sh
#
# Needs Go, wrk and redis-server (apt-get install wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${TARGET:-converse}
SECONDS_=${PROFILE_SECONDS:-15}
CONNS=${CONNS:-32}
out=bench/out/profile
rm -rf "$out"; mkdir -p "$out"
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/upstream" ./bench/upstream
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$out/upstream" -addr 127.0.0.1:9111 >"$out/upstream.log" 2>&1 & pids+=($!)
redis-server --port 9112 --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 & pids+=($!)
cat >"$out/Caddyfile" <<EOF
{
	admin localhost:9119
	auto_https off
	persist_config off
}
http://127.0.0.1:9211 {
	reverse_proxy 127.0.0.1:9111
}
http://127.0.0.1:9212 {
	ahp {
		name "Harbor & Pine Furniture Co."
		content /llms.txt
		converse /agent/converse
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		capability site_info {
			mode MODE2
			description "General information about the workshop"
		}
		rate_limit {
			store redis redis://127.0.0.1:9112/0
			static 1000000000/minute
			unauthenticated 1000000000/minute
			authenticated 1000000000/minute
		}
	}
	reverse_proxy 127.0.0.1:9111
}
EOF
"$out/caddy" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 & pids+=($!)
for p in 9111 9112 9211 9212 9119; do
	for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.05; done
done
cat >"$out/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}'
wrk.headers["Content-Type"] = "application/json"
EOF
path=/agent/converse; script=(-s "$out/post.lua")
if [ "$TARGET" = passthrough ]; then path=/style.css; script=(); fi
rps() { wrk -t2 -c"$CONNS" -d"$2" "${script[@]}" "http://127.0.0.1:$1$path" | awk '/Requests\/sec/ {print $2}'; }
rps 9211 2s >/dev/null; rps 9212 2s >/dev/null
a1=$(rps 9211 5s); b1=$(rps 9212 5s); b2=$(rps 9212 5s); a2=$(rps 9211 5s)
echo "plain Caddy: $a1 $a2 req/s; Caddy + ahp: $b1 $b2 req/s (ABBA)"
awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" 'BEGIN { printf "ratio ahp/plain: %.3f\n", (b1/a1 + b2/a2) / 2 }'
( sleep 1; wrk -t2 -c"$CONNS" -d$((SECONDS_ + 2))s "${script[@]}" "http://127.0.0.1:9212$path" >/dev/null ) &
curl -s -o "$out/cpu.pprof" "http://localhost:9119/debug/pprof/profile?seconds=$SECONDS_"
wait $!
go tool pprof -top -nodecount=35 "$out/caddy" "$out/cpu.pprof" 2>/dev/null | sed -n 1,45p
echo "--- cumulative, plugin code ---"
go tool pprof -top -cum -nodecount=400 "$out/caddy" "$out/cpu.pprof" 2>/dev/null | grep -E 'caddy-ahp|flat%' | head -30
