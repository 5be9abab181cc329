# Sourced by compare.sh, profile.sh and callgrind.sh: the one plugin
# configuration every benchmark measures, so their numbers compare.

# ahp_block prints the site's ahp directive; $1: extra lines (rate_limit …).
ahp_block() {
	cat <<EOF_AHP
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
		$1
	}
EOF_AHP
}

# fields_block prints a control site's header directive: plain Caddy
# setting, with its own directive, the fields the plugin adds, to measure
# what they cost whoever sets them (a share of the ratio no plugin can win
# back). $1: passthrough (a stylesheet: Link, Vary; pages also get
# Content-Signal and Content-Usage) or converse (an answer: Link and the
# spec's four X-RateLimit-* of §8). compare.sh holds them to the plugin's.
fields_block() {
	echo '	header {'
	echo '		Link "</.well-known/agent.json>; rel=\"ahp-manifest\"; type=\"application/agent+json\""'
	case $1 in
	passthrough) echo '		+Vary Accept' ;;
	converse)
		echo '		X-Ratelimit-Limit 1000000000'
		echo '		X-Ratelimit-Remaining 999999999'
		echo '		X-Ratelimit-Reset 1796287696'
		echo '		X-Ratelimit-Window 60'
		;;
	esac
	echo '	}'
}

# huge: limits no benchmark reaches, so every request is decided and admitted.
huge="static 1000000000/minute
			unauthenticated 1000000000/minute
			authenticated 1000000000/minute"

# start_pair builds Caddy and the stand-in upstream into $1 and starts, in
# the background, the upstream (:9111), a Redis (:9112) and one Caddy
# serving plain Caddy (:9211) and Caddy + ahp with the Redis store (:9212),
# admin (pprof) on :9119; it writes $1/post.lua (the converse request) and
# waits for every port. The processes are killed when the calling script
# exits (its EXIT trap). Used by profile.sh and cpu-per-request.sh, so the
# two measure the same sites.
start_pair() {
	local out=$1
	pids=()
	trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
	go build -o "$out/caddy" ./cmd/caddy
	go build -o "$out/upstream" ./bench/upstream
	"$out/upstream" -addr 127.0.0.1:9111 >"$out/upstream.log" 2>&1 & pids+=($!)
	redis-server --port 9112 --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 & pids+=($!)
	cat >"$out/Caddyfile" <<EOF_PAIR
{
	admin localhost:9119
	auto_https off
	persist_config off
}
http://127.0.0.1:9211 {
	reverse_proxy 127.0.0.1:9111
}
http://127.0.0.1:9212 {
$(ahp_block "rate_limit {
			store redis redis://127.0.0.1:9112/0
			$huge
		}")
	reverse_proxy 127.0.0.1:9111
}
EOF_PAIR
	"$out/caddy" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 & pids+=($!)
	local p
	for p in 9111 9112 9211 9212 9119; do
		for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.05; done
	done
	cat >"$out/post.lua" <<'EOF_PAIR'
wrk.method = "POST"
wrk.body = '{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}'
wrk.headers["Content-Type"] = "application/json"
EOF_PAIR
}

# sites_caddyfile prints the Caddyfile of callgrind.sh's and allocs.sh's
# sites, each proxying to the bench upstream: plain Caddy (${4}1), ahp with
# the memory store (${4}2), without a limiter (${4}3), with the Redis store
# (${4}4), and the controls, plain Caddy setting the plugin's fields with
# its own header directive, for a stylesheet (${4}5) and for a converse
# answer (${4}6). $1: the admin option (admin off, admin localhost:N);
# $2: the upstream's address; $3: the Redis URL; $4: the ports' prefix
# (924 for 9241-9246); $5: more rate_limit lines for the Redis site.
sites_caddyfile() {
	local admin=$1 up=$2 redis=$3 p=$4 redis_extra=${5:-}
	cat <<EOF_SITES
{
	$admin
	auto_https off
	persist_config off
}
http://127.0.0.1:${p}1 {
	reverse_proxy $up
}
http://127.0.0.1:${p}2 {
$(ahp_block "rate_limit {
			$huge
		}")
	reverse_proxy $up
}
http://127.0.0.1:${p}3 {
$(ahp_block "rate_limit off")
	reverse_proxy $up
}
http://127.0.0.1:${p}4 {
$(ahp_block "rate_limit {
			store redis $redis
			$redis_extra
			$huge
		}")
	reverse_proxy $up
}
http://127.0.0.1:${p}5 {
$(fields_block passthrough)
	reverse_proxy $up
}
http://127.0.0.1:${p}6 {
$(fields_block converse)
	reverse_proxy $up
}
EOF_SITES
}
