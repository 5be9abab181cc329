package limiter

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a [Redis] store.
type RedisOptions struct {
	// Prefix is prepended to every key (default "ahp:").
	Prefix string
	// Timeout bounds each call, time queued for a shared pipeline and round
	// trip included (default 50ms). It only
	// bounds a Redis that accepts connections but does not answer if the
	// client honours context deadlines: see [CheckClient].
	Timeout time.Duration
	// NoLeases decides every event of every key in Redis. By default a
	// hot key under a large limit is decided from leases (see lease.go):
	// the same bound, fewer round trips, and an X-RateLimit-Remaining
	// that is this instance's view.
	NoLeases bool

	// now, when set (by tests only), is sent to the scripts in place of the
	// Redis server's clock.
	now func() time.Time
}

// DefaultRedisTimeout is the default of RedisOptions.Timeout.
const DefaultRedisTimeout = 50 * time.Millisecond

// Redis is a [Store] whose limits and sessions are shared by every instance
// using the same Redis (a single server, Sentinel, or Cluster).
//
// Each key is read and updated atomically by a Lua script, using the Redis
// server's clock (TIME), so instances with skewed clocks agree. All the
// scripts of a [Batch] go out in one pipeline: at most one network round
// trip per Batch (on Cluster, one per node involved, in parallel), plus one
// more only when a server has lost its script cache (NOSCRIPT) or a key
// decided with others is not a hash. Batches that arrive while earlier ones
// are on the wire are coalesced into one pipeline (auto-pipelining): under
// load, many requests share a round trip, and the per-request cost of the
// client's connection pool, write and read system calls shrinks accordingly;
// an idle store sends each Batch at once. Within a pipeline, consecutive
// window checks of one key and limit (of any batch that is not gated) are
// decided by one script call (n events in order, exactly as n calls would
// decide them; a check of the same key under another limit starts a new
// call, so a key's checks keep the pipeline's order), and on a single server
// the windows of all keys by one call (unless the endpoint enforces hash
// slots: after its first CROSSSLOT refusal each key goes alone, and a gated
// batch is decided as on Cluster, in two round trips): Redis's
// cost per decision then falls with the load, rather than each decision
// paying a script's fixed cost. A hot key under a large limit is decided
// from leases, with no round trip at all for most of its events: see
// lease.go and RedisOptions.NoLeases.
//
// Key layout (P is RedisOptions.Prefix):
//
//	P rl:{KEY}:WINDOW      hash: sub-window index -> events admitted in it,
//	                       and t, o, l: their total, oldest and newest index
//	P rl:{#SHA256}:WINDOW  the same for a secret, long or '#'-prefixed key
//	P s:{SHA256}           hash: turns, tokens, last, exp (µs) of a session
//
// SHA256 is the hex SHA-256 of the key or session id, and WINDOW the Go
// duration of the limit's window ("1m0s"). On Cluster every script touches a
// single key, and the braces make it a hash tag, so any Cluster layout
// works. Keys expire once nothing in them counts any more; a session lives
// 2×Idle after it was last used. A window key holds at most SubWindows+5
// small fields (about 700 bytes in Redis), whatever the limit's N. Session
// ids are always hashed: whoever holds one can continue the conversation.
type Redis struct {
	client redis.UniversalClient
	// cluster: keys may live on different servers (Cluster, a Ring: any
	// client but a Client), so a gated batch is not one script.
	cluster bool
	// single: one server holds every key (a Client, also with Sentinel),
	// so one script may decide windows of many keys (mergeWindows).
	single  bool
	prefix  string
	timeout time.Duration
	now     func() time.Time

	// Callers run pipelines themselves (see run): inflight counts those on
	// the wire, waiting holds the callers queued meanwhile.
	mu       sync.Mutex
	inflight int
	waiting  []*pendingCalls
	closed   bool

	// limits holds each Limit's script arguments, boxed once, and its key
	// suffix: a copy-on-write map, since a site has a handful of limits.
	limits   atomic.Pointer[map[Limit]*limitArgs]
	limitsMu sync.Mutex
	// deadline is the context the latest pipeline was bounded by, shared
	// by the pipelines due in the same millisecond.
	deadline atomic.Pointer[deadlineContext]
	// enforcesSlots: the server refused a script over several slots (a
	// sharding proxy): no script decides keys of different slots from then
	// on, neither merged windows nor a gated batch.
	enforcesSlots atomic.Bool
	// leases of hot keys; nil with NoLeases.
	leases *leases
}

// Coalescing: redisFlushers pipelines may be on the wire at once, each
// carrying up to redisMaxBatch callers. More than one keeps a single slow
// reply from holding everyone; few keeps batches large.
const (
	redisFlushers = 2
	redisMaxBatch = 128
)

// NewRedis returns a store using client. The caller keeps owning client:
// Close does not close it, so one client can serve many stores. Close the
// store when done with it: callers after that get ErrStoreClosed.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "ahp:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	_, single := client.(*redis.Client)
	r := &Redis{client: client, cluster: !single, single: single, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.now}
	if !opts.NoLeases {
		r.leases = newLeases(r.localNow())
	}
	return r
}

// localNow is this instance's clock (the injected one in tests), which
// leases are timed by.
func (r *Redis) localNow() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// CheckClient reports an error if client will not honour the context
// deadlines the store sets (go-redis ignores them for socket reads and writes
// unless ContextTimeoutEnabled is set), in which case a Redis that hangs
// would hold requests for the client's ReadTimeout instead of the store's
// Timeout. Call it when configuring the client.
func CheckClient(client redis.UniversalClient) error {
	var ok bool
	switch c := client.(type) {
	case *redis.Client:
		ok = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		ok = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		ok = c.Options().ContextTimeoutEnabled
	default:
		return nil // unknown implementation: trust it
	}
	if !ok {
		return errors.New("limiter: the Redis client must be created with ContextTimeoutEnabled: true, " +
			"otherwise a Redis that stops answering holds each request for the client's ReadTimeout")
	}
	return nil
}

// The scripts share their Lua: the prelude (replicate_commands for Redis < 5,
// so TIME may precede writes; clock reads the injected test clock or the
// server's), the window decision and the session decision.
const luaPrelude = `
if redis.replicate_commands then redis.replicate_commands() end
local function clock(arg)
  local now = tonumber(arg)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end
`

const luaWindow = `
local floor, fmt = math.floor, string.format
local function fields(a, b)
  local f = {}
  for j = a, b do f[#f + 1] = fmt('%d', j) end
  return f
end

-- window decides c events of one key at one instant, in order: the first
-- k = min(c, room) are admitted, the others refused, exactly as c calls
-- for one event each would decide them.
local function window(K, n, span, g, now, c)
  local lo = floor((now - span) / g)
  local cur = floor(now / g)
  local curf = fmt('%d', cur)
  -- the summary and the current sub-window's count, in one read
  local r = redis.call('HMGET', K, 't', 'o', 'l', curf)
  local total, oldest, newest = tonumber(r[1]), tonumber(r[2]), tonumber(r[3])
  local count = tonumber(r[4]) or 0
  local dirty = false -- o and l change (t is written whenever it changes)
  if not total then
    total, oldest, newest = 0, nil, nil
    local kv = redis.call('HGETALL', K)
    for i = 1, #kv, 2 do
      local j = tonumber(kv[i])
      if j then
        total = total + tonumber(kv[i + 1])
        if not oldest or j < oldest then oldest = j end
        if not newest or j > newest then newest = j end
      end
    end
    dirty = true
  end
  if oldest and oldest < lo then
    -- drop the sub-windows that left the window
    local gone = fields(oldest, math.min(lo - 1, newest))
    local v = redis.call('HMGET', K, unpack(gone))
    for i = 1, #v do
      if v[i] then total = total - tonumber(v[i]) end
    end
    redis.call('HDEL', K, unpack(gone))
    oldest = nil
    if newest >= lo then
      local w = redis.call('HMGET', K, unpack(fields(lo, newest)))
      for i = 1, #w do
        if w[i] then
          oldest = lo + i - 1
          break
        end
      end
    end
    if not oldest then total, newest = 0, nil end
    dirty = true
  end
  if newest and newest > cur then -- the clock went backward: keep counting forward
    cur = newest
    curf = fmt('%d', cur)
    count = tonumber(redis.call('HGET', K, curf)) or 0
  end
  -- remaining after the first event, if admitted
  local k, rem = 0, n - total - 1
  if total < n then
    k = math.min(c, n - total)
    total = total + k
    local moved = newest ~= cur
    if moved then
      if not oldest then oldest = cur end
      newest = cur
      dirty = true
    end
    -- integers formatted here, not by Redis (%.17g)
    if dirty then
      redis.call('HSET', K, curf, fmt('%d', count + k), 't', fmt('%d', total), 'o', fmt('%d', oldest), 'l', fmt('%d', newest))
    else
      redis.call('HSET', K, curf, fmt('%d', count + k), 't', fmt('%d', total))
    end
    if moved then
      -- the key is useless once its newest sub-window stops counting, so
      -- its expiry moves only with a new sub-window
      redis.call('PEXPIRE', K, fmt('%d', math.ceil(((cur + 1) * g + span - now) / 1000)))
    end
  elseif dirty then
    if oldest then
      redis.call('HSET', K, 't', fmt('%d', total), 'o', fmt('%d', oldest), 'l', fmt('%d', newest))
    else
      redis.call('HDEL', K, 't', 'o', 'l')
    end
  end
  if k == 0 then rem = 0 end
  local retry = 0
  if k < c and oldest then
    local left = total
    local v = redis.call('HMGET', K, unpack(fields(oldest, newest)))
    for i = 1, #v do
      if v[i] then
        left = left - tonumber(v[i])
        if left < n then
          retry = (oldest + i) * g + span - now
          break
        end
      end
    end
  end
  -- then how long the counted events stay in the sub-window they were
  -- counted in (a lease is spent only within it), and the clock's
  -- reading, which the reset's delay is measured from
  return {k, rem, ((oldest or cur) + 1) * g + span, retry, (cur + 1) * g - now, now}
end
`

const luaSession = `
local function session(K, maxTurns, idle, budget, now)
  local r = redis.call('HMGET', K, 'turns', 'tokens', 'last', 'exp')
  local turns, tokens, last = tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0
  if now >= (tonumber(r[4]) or now + 1) then
    redis.call('DEL', K)
    turns, tokens, last = 0, 0, 0
  end
  local outcome, turn = 0, 0
  if turns > 0 and now - last >= idle then
    outcome = 2
  elseif maxTurns > 0 and turns >= maxTurns then
    outcome = 1
  elseif budget > 0 and tokens >= budget then
    outcome = 3
  else
    turn = turns + 1
    redis.call('HMSET', K, 'turns', turn, 'last', string.format('%d', now))
  end
  -- an expired session stays known while it is used, so the agent keeps
  -- hearing that it must start a new one
  redis.call('HSET', K, 'exp', string.format('%d', now + 2 * idle))
  redis.call('PEXPIRE', K, string.format('%d', math.ceil(2 * idle / 1000)))
  return {outcome, turn, tokens}
end
`

// jobScript adds an answer's tokens to a session (luaTokens); it mirrors
// Memory.AddJobTokens. Step 0 (AddTokens) only adds them, step 1
// (JobOpen) also opens a job, step 2 (JobClose) adds them only while a
// job is open, and closes it.
//
// KEYS[1]: the session hash. ARGV: tokens, idle (µs), step, [now (µs)].
var jobScript = newScript(luaPrelude + luaTokens + `
return addTokens(KEYS[1], ARGV[1], tonumber(ARGV[2]), clock(ARGV[4]), tonumber(ARGV[3]))
`)

// gatedScript decides a gated batch on one server: the unshared windows,
// then, only if all of them admitted the event, the shared windows and the
// session (see [Batch]). Skipped checks report allowed = -1 (windows) or
// outcome = -1 (the session).
//
// KEYS: the unshared windows, the shared windows, the session (if any).
// ARGV: #unshared, #shared, 1 if a session, then N, window, width, c per
// window (c > 1: this event and a lease, see lease.go), then max turns,
// idle, budget for the session, [now (µs)]. A window admits the event
// when it admits the first of its c.
var gatedScript = newScript(luaPrelude + luaWindow + luaSession + `
local ng, ns, hs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4 + 4 * (ng + ns) + 3 * hs])
local out, admitted, a = {}, true, 4
for i = 1, ng + ns do
  local r = {-1, 0, 0, 0, 0, 0}
  if i <= ng or admitted then
    r = window(KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), now, tonumber(ARGV[a + 3]))
    if i <= ng and r[1] == 0 then admitted = false end
  end
  a = a + 4
  for j = 1, 6 do out[#out + 1] = r[j] end
end
if hs == 1 then
  local r = {-1, 0, 0}
  if admitted then
    r = session(KEYS[ng + ns + 1], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), now)
  end
  for j = 1, 3 do out[#out + 1] = r[j] end
end
return out
`)

// windowScript decides one event under one limit; it mirrors window.take,
// whose comment explains why it never admits more than N in any window.
//
// KEYS[1]: hash, field = sub-window index, value = events admitted in it;
// plus t (their total), o and l (oldest and newest index held), so that a
// decision reads three fields rather than the whole hash: a busy key holds
// 60 sub-windows, and reading them all on every call made its script cost
// Redis three times as much. Expired sub-windows are removed as they leave
// (about one per sub-window width); only a refusal reads them in order, to
// compute Retry-After. A key without t (a new one, or one written by an
// earlier version) is summarised once from its fields.
// ARGV: N, window (µs), sub-window width (µs), c: how many events to
// decide (1, or the callers of one pipeline that check this key under this
// limit: see mergeWindows; or one caller's event and its lease: see
// lease.go), [now (µs), tests only].
// Returns {k, remaining, reset (µs), retry after (µs), lease (µs), now
// (µs)}: the first k of the c events are admitted, the others refused;
// remaining is the first event's (the i-th admitted one's is remaining -
// i), retry the refused ones', lease how long the admitted events stay in
// the sub-window they were counted in, now the clock they were decided by
// (reset - now is the delay until reset, whatever this instance's clock
// says). For c = 1 that is {allowed 0|1, remaining, reset, retry, lease,
// now}.
var windowScript = newScript(luaPrelude + luaWindow + `
return window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), clock(ARGV[5]), tonumber(ARGV[4]))
`)

// windowsScript decides the windows of several keys on one server, one
// call of windowScript each (see mergeWindows): their TIME, EVALSHA and
// reply are shared. A key whose decision fails (a key that is not a hash)
// answers k = -1, and its callers' call is sent again alone, to fail with
// Redis's own error; the others are decided.
//
// KEYS: one per window. ARGV: N, window, width, c per window, [now (µs)].
// Returns the six numbers of windowScript per window, in order.
var windowsScript = newScript(luaPrelude + luaWindow + `
local nw = #KEYS
local now = clock(ARGV[4 * nw + 1])
local out = {}
for i = 1, nw do
  local a = 4 * (i - 1)
  local ok, r = pcall(window, KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), now, tonumber(ARGV[a + 4]))
  if not ok then r = {-1, 0, 0, 0, 0, 0} end
  for j = 1, 6 do out[#out + 1] = r[j] end
end
return out
`)

// sessionScript decides one turn of a session; it mirrors Memory.session.
//
// KEYS[1]: hash with fields turns, tokens, last (µs, last admitted turn) and
// exp (µs, when the record is forgotten; PEXPIRE removes it about then, and
// exp makes the script exact whenever the key is actually removed).
// ARGV: max turns (<= 0: none), idle (µs), token budget (0: none), [now (µs)].
// Returns {outcome, turn, tokens used}; outcome numbers are SessionOutcome's.
var sessionScript = newScript(luaPrelude + luaSession + `
return session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), clock(ARGV[4]))
`)

// luaTokens adds tokens to a session hash, registering the session at turn
// 1 if unknown (or forgotten); step 1 also opens an async job, step 2 adds
// only while a job is open, and closes it (as Memory.AddJobTokens does).
const luaTokens = `
local function addTokens(key, tokens, idle, now, step)
  local exp = tonumber(redis.call('HGET', key, 'exp'))
  local live = exp and now < exp
  if step == 2 then
    if not live or (tonumber(redis.call('HGET', key, 'jobs')) or 0) <= 0 then
      return {0}
    end
    redis.call('HINCRBY', key, 'jobs', -1)
  else
    if not live then
      redis.call('DEL', key)
      redis.call('HMSET', key, 'turns', 1, 'last', string.format('%d', now))
      exp = 0
    end
    if step == 1 then
      redis.call('HINCRBY', key, 'jobs', 1)
    end
  end
  redis.call('HINCRBY', key, 'tokens', tokens)
  if exp < now + 2 * idle then
    redis.call('HSET', key, 'exp', string.format('%d', now + 2 * idle))
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(2 * idle / 1000)))
  end
  return {1}
end
`

// luaScript is a script's source and its SHA-1, which EVALSHA names it by.
type luaScript struct {
	src  string
	hash any // boxed once
}

func newScript(src string) *luaScript {
	sum := sha1.Sum([]byte(src))
	return &luaScript{src: src, hash: hex.EncodeToString(sum[:])}
}

// limitArgs are a Limit's script arguments and key suffix, made once.
type limitArgs struct {
	events, window, width any    // N, window (µs), sub-window width (µs)
	suffix                string // "}:" + the window as a Go duration
}

// argsOf returns l's arguments, boxed once: every decision sends them, and
// boxing three int64s per call showed among the store's allocations.
func (r *Redis) argsOf(l Limit) *limitArgs {
	if m := r.limits.Load(); m != nil {
		if a := (*m)[l]; a != nil {
			return a
		}
	}
	r.limitsMu.Lock()
	defer r.limitsMu.Unlock()
	old := r.limits.Load()
	if old != nil {
		if a := (*old)[l]; a != nil {
			return a
		}
	}
	a := &limitArgs{events: l.Events, window: l.Window.Microseconds(), width: l.subWindow(time.Microsecond), suffix: "}:" + l.Window.String()}
	m := make(map[Limit]*limitArgs, 1)
	if old != nil {
		if len(*old) >= maxCachedLimits {
			return a // a caller inventing limits: do not grow without bound
		}
		for k, v := range *old {
			m[k] = v
		}
	}
	m[l] = a
	r.limits.Store(&m)
	return a
}

const maxCachedLimits = 64

func (r *Redis) windowKey(c *WindowCheck) string {
	return r.windowKeyWith(c, r.argsOf(c.Limit))
}

func (r *Redis) windowKeyWith(c *WindowCheck, a *limitArgs) string {
	id := c.Key
	if c.Secret || len(id) > maxPlainKey || id != "" && id[0] == '#' {
		id = "#" + hashHex(id) // '#' marks hashes, so no plain key can take one's place
	}
	return r.prefix + "rl:{" + id + a.suffix
}

func (r *Redis) sessionKey(id string) string {
	return r.prefix + "s:{" + hashHex(id) + "}"
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// scriptCall is one script invocation of a pipeline: an EVALSHA whose
// integer reply go-redis parses into []int64 (no boxing per element).
//
// A window call has no command of its own: mergeWindows makes one per
// group of window calls in a pipeline, and splitWindows gives each call
// its reply (val, err), so callers whose events one script decides build
// no command that is never sent.
type scriptCall struct {
	script *luaScript
	cmd    *redis.IntSliceCmd // nil for a window call
	// A window call: the Redis key, the limit, the injected clock's
	// reading (tests; else 0), its group in the pipeline, and its reply.
	key   string
	limit Limit
	now   int64
	count int64 // events to decide: 1, or 1 + a lease (never merged)
	group int
	val   []int64
	err   error
}

// result is the call's reply.
func (c *scriptCall) result() ([]int64, error) {
	if c.cmd == nil {
		return c.val, c.err
	}
	return c.cmd.Val(), c.cmd.Err()
}

// clock is the injected clock's reading in µs, or 0 for the server's.
func (r *Redis) clock() int64 {
	if r.now == nil {
		return 0
	}
	return r.now().UnixMicro()
}

// newCall builds EVALSHA script numkeys keys... args... [now]: one slice
// for the arguments, which are boxed once where they can be (argsOf).
func (r *Redis) newCall(script *luaScript, keys []string, args ...any) scriptCall {
	n := 3 + len(keys) + len(args)
	if r.now != nil {
		n++
	}
	a := make([]any, 3, n)
	a[0], a[1], a[2] = "evalsha", script.hash, len(keys)
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	if r.now != nil {
		a = append(a, r.now().UnixMicro())
	}
	cmd := redis.NewIntSliceCmd(context.Background(), a...)
	cmd.SetFirstKeyPos(3)
	return scriptCall{script: script, cmd: cmd}
}

// windowCall is the window script for one check, deciding events events
// (1, or 1 + a lease); its command is made when its pipeline is sent
// (mergeWindows).
func (r *Redis) windowCall(c *WindowCheck, events int64) scriptCall {
	return scriptCall{script: windowScript, key: r.windowKeyWith(c, r.argsOf(c.Limit)), limit: c.Limit, now: r.clock(), count: events}
}

// windowGroup is the window calls of one pipeline with the same key,
// limit and clock reading: one script call decides their events, in
// their order (see mergeWindows).
type windowGroup struct {
	call  scriptCall // the script call sent for the group
	send  int        // its index in the pipeline's sends
	n     int        // callers in the group
	taken int        // replies given out (splitWindows)
	res   []int64
	err   error
	vals  []int64 // the members' replies, when n > 1
}

// pipelineCalls is what one pipeline sends; pooled.
type pipelineCalls struct {
	sends    []*scriptCall
	groups   []windowGroup
	combined scriptCall // windowsScript for every group, on a single server
}

var pipelinePool = sync.Pool{New: func() any { return new(pipelineCalls) }}

func (pc *pipelineCalls) release() {
	clear(pc.sends)
	clear(pc.groups)
	pc.sends, pc.groups = pc.sends[:0], pc.groups[:0]
	pc.combined = scriptCall{}
	pipelinePool.Put(pc)
}

// mergeWindows lists the calls a pipeline sends for the callers of live.
// Window calls with the same key and limit become one call that decides
// their events in pipeline order, exactly as one call each would: under
// load the callers of a pipeline are mostly one client's (in a benchmark,
// all of them), and the script's fixed cost (EVALSHA, TIME, reading and
// writing the hash) is then paid once per pipeline, not per caller. Each
// group runs at its first member's place in the pipeline, a valid order
// for calls that were concurrent.
func (r *Redis) mergeWindows(live []*pendingCalls) *pipelineCalls {
	pc := pipelinePool.Get().(*pipelineCalls)
	for _, p := range live {
	calls:
		for i := range p.calls {
			c := &p.calls[i]
			if c.script != windowScript {
				pc.sends = append(pc.sends, c)
				continue
			}
			// Join only the latest group of this Redis key: limits with
			// different Events share the key's counter, so its calls must
			// run in pipeline order. A lease request decides alone: its
			// caller takes every event its call admits.
			for g := len(pc.groups) - 1; g >= 0; g-- {
				if w := &pc.groups[g]; w.call.key == c.key {
					if w.call.limit == c.limit && w.call.now == c.now && c.count <= 1 && w.call.count <= 1 {
						w.n++
						c.group = g
						continue calls
					}
					break
				}
			}
			c.group = len(pc.groups)
			pc.groups = append(pc.groups, windowGroup{call: scriptCall{key: c.key, limit: c.limit, now: c.now, count: c.count}, send: len(pc.sends), n: 1})
			pc.sends = append(pc.sends, nil) // the group's call, below
		}
	}
	if r.single && !r.enforcesSlots.Load() && len(pc.groups) > 1 && r.combine(pc) {
		return pc
	}
	for g := range pc.groups {
		w := &pc.groups[g]
		r.groupCall(w)
		pc.sends[w.send] = &w.call
	}
	return pc
}

// groupCall makes w's own window script call: its key, limit and count.
func (r *Redis) groupCall(w *windowGroup) {
	a := r.argsOf(w.call.limit)
	args := make([]any, 0, 9)
	args = append(args, "evalsha", windowScript.hash, 1, w.call.key, a.events, a.window, a.width, w.count())
	if r.now != nil {
		args = append(args, w.call.now)
	}
	w.call.script = windowScript
	w.call.cmd = redis.NewIntSliceCmd(context.Background(), args...)
	w.call.cmd.SetFirstKeyPos(3)
}

// count is the group's event count as a script argument: one event per
// caller, or a lone caller's event and lease.
func (w *windowGroup) count() any {
	if w.n > 1 {
		return int64(w.n)
	}
	return events(w.call.count)
}

// events is an event count as a script argument, boxed only when above 1.
func events(n int64) any {
	if n > 1 {
		return n
	}
	return oneEvent
}

// combine makes the window groups of pc one windowsScript call, at the
// first group's place, when they share a clock reading (always, but with
// an injected test clock). It reports whether it did.
func (r *Redis) combine(pc *pipelineCalls) bool {
	now := pc.groups[0].call.now
	for g := range pc.groups {
		if pc.groups[g].call.now != now {
			return false
		}
	}
	n := len(pc.groups)
	args := make([]any, 3, 4+5*n)
	args[0], args[1], args[2] = "evalsha", windowsScript.hash, n
	for g := range pc.groups {
		args = append(args, pc.groups[g].call.key)
	}
	for g := range pc.groups {
		w := &pc.groups[g]
		a := r.argsOf(w.call.limit)
		args = append(args, a.events, a.window, a.width, w.count())
	}
	if r.now != nil {
		args = append(args, now)
	}
	cmd := redis.NewIntSliceCmd(context.Background(), args...)
	cmd.SetFirstKeyPos(3)
	pc.combined = scriptCall{script: windowsScript, cmd: cmd}
	first := pc.groups[0].send
	pc.sends[first] = &pc.combined
	// Drop the other groups' places.
	k := 0
	for i, c := range pc.sends {
		if c == nil && i != first {
			continue
		}
		pc.sends[k] = c
		k++
	}
	clear(pc.sends[k:])
	pc.sends = pc.sends[:k]
	return true
}

// separate sends each failed group of a combined call alone, so its
// callers get Redis's own error (or, if it was passing, a decision). Only
// a script that failed before deciding answers -1: the window script
// fails on its first read of a key that is not a hash, before writing.
func (r *Redis) separate(ctx context.Context, pc *pipelineCalls) {
	var again []*scriptCall
	for g := range pc.groups {
		w := &pc.groups[g]
		if w.err == nil && w.res[0] >= 0 {
			continue
		}
		r.groupCall(w)
		again = append(again, &w.call)
	}
	if len(again) == 0 {
		return
	}
	if err := r.pipeline(ctx, again); err != nil {
		for _, c := range again {
			if c.cmd.Err() == nil {
				c.cmd.SetErr(err)
			}
		}
	}
	for g := range pc.groups {
		w := &pc.groups[g]
		if w.call.cmd != nil {
			w.res, w.err = w.call.cmd.Result()
			if w.err == nil && len(w.res) != windowReply {
				w.err = fmt.Errorf("unexpected script reply %v", w.res)
			}
		}
	}
}

// oneEvent is the window script's event count for a lone caller, boxed
// once.
var oneEvent any = int64(1)

var failedGroup = []int64{-1, 0, 0, 0, 0, 0}

// windowReply is how many integers the window script answers per window.
const windowReply = 6

// splitWindows gives each window call of live its reply from its group's:
// the i-th of k admitted events has remaining - i left, the refused ones
// none.
func (r *Redis) splitWindows(ctx context.Context, live []*pendingCalls, pc *pipelineCalls) {
	if c := pc.combined.cmd; c != nil {
		res, err := c.Result()
		if err == nil && len(res) != windowReply*len(pc.groups) {
			err = fmt.Errorf("unexpected script reply %v", res)
		}
		crossSlot := err != nil && redis.HasErrorPrefix(err, "CROSSSLOT")
		if crossSlot {
			// One endpoint that enforces hash slots (a sharding proxy):
			// decide each group alone, now and from now on.
			r.enforcesSlots.Store(true)
			err = nil
		}
		for g := range pc.groups {
			if w := &pc.groups[g]; err != nil {
				w.err = err
			} else if crossSlot {
				w.res = failedGroup
			} else {
				w.res = res[windowReply*g : windowReply*(g+1) : windowReply*(g+1)]
			}
		}
		if err == nil {
			r.separate(ctx, pc)
		}
	} else {
		for g := range pc.groups {
			w := &pc.groups[g]
			w.res, w.err = w.call.cmd.Result()
			if w.err == nil && len(w.res) != windowReply {
				w.err = fmt.Errorf("unexpected script reply %v", w.res)
			}
		}
	}
	for g := range pc.groups {
		if w := &pc.groups[g]; w.err == nil && w.n > 1 {
			w.vals = make([]int64, windowReply*w.n)
		}
	}
	for _, p := range live {
		for i := range p.calls {
			c := &p.calls[i]
			if c.cmd != nil {
				continue
			}
			w := &pc.groups[c.group]
			c.val, c.err = w.res, w.err
			if w.err != nil || w.n == 1 {
				continue
			}
			k, rem, reset, retry := w.res[0], w.res[1], w.res[2], w.res[3]
			j := int64(w.taken)
			v := w.vals[windowReply*w.taken : windowReply*(w.taken+1) : windowReply*(w.taken+1)]
			w.taken++
			if j < k {
				v[0], v[1], v[2] = 1, rem-j, reset
			} else {
				v[2], v[3] = reset, retry
			}
			v[4], v[5] = w.res[4], w.res[5]
			c.val = v
		}
	}
}

// evalCall is the EVAL that resends c when the server lost its scripts.
func evalCall(c scriptCall) *redis.IntSliceCmd {
	a := append([]any(nil), c.cmd.Args()...)
	a[0], a[1] = "eval", c.script.src
	cmd := redis.NewIntSliceCmd(context.Background(), a...)
	cmd.SetFirstKeyPos(3)
	return cmd
}

// Do implements [Store]: all checks of b in one pipeline, a gated batch
// in one script (see [Batch]; on Cluster, in two round trips), or none
// when every window of b is a hot key with a lease (see lease.go).
func (r *Redis) Do(ctx context.Context, b *Batch) (err error) {
	if err := b.validate(); err != nil {
		return err
	}
	b.Leased = false
	var rf *refills
	if ls := r.leases; ls != nil {
		now := r.localNow()
		if ls.fromLeases(b, now) {
			b.Leased = true
			return nil
		}
		var plan refills
		if ls.plan(b, now, &plan) {
			rf = &plan
			defer func() { ls.settle(b, rf, err) }()
		}
	}
	return r.decide(ctx, b, rf)
}

// decide runs b in Redis; rf (or nil) says how many events each window
// asks to count and takes the replies. The decision has one deadline,
// whatever the round trips it takes: Timeout bounds the decision.
func (r *Redis) decide(ctx context.Context, b *Batch, rf *refills) error {
	deadline := time.Now().Add(r.timeout)
	gate, shared := 0, 0
	for i := range b.Windows {
		if b.Windows[i].Shared {
			shared++
		} else {
			gate++
		}
	}
	if gate == 0 || (shared == 0 && b.Session == nil) || b.NoGate {
		return r.independent(ctx, b, allChecks, rf, deadline)
	}
	// Not on a Ring either: like Cluster, it sends a script to its first
	// key's server, which would count the other keys there.
	if !r.cluster && !r.enforcesSlots.Load() {
		err := r.gated(ctx, b, rf, deadline)
		if err != errCrossSlot {
			return err
		}
		// An endpoint that enforces hash slots refused the script before
		// running it (nothing was counted): decide this batch and the
		// next ones as on Cluster.
		r.enforcesSlots.Store(true)
	}
	// Cluster (or Ring): the client's windows first, the shared checks
	// only if they admitted the event.
	if err := r.independent(ctx, b, unsharedChecks, rf, deadline); err != nil {
		return err
	}
	admitted := true
	for i := range b.Windows {
		if c := &b.Windows[i]; !c.Shared && !c.Decision.Allowed {
			admitted = false
		}
	}
	for i := range b.Windows {
		b.Windows[i].Skipped = b.Windows[i].Shared && !admitted
	}
	if b.Session != nil {
		b.Session.Skipped = !admitted
	}
	if !admitted {
		return nil
	}
	return r.independent(ctx, b, sharedChecks, rf, deadline)
}

// Which checks of a batch independent decides.
const (
	allChecks      = iota // every window and the session
	unsharedChecks        // the unshared windows
	sharedChecks          // the shared windows and the session
)

// independent decides the checks of b that which selects, each on its
// own, in one pipeline, answered by deadline.
func (r *Redis) independent(ctx context.Context, b *Batch, which int, rf *refills, deadline time.Time) error {
	withSession := b.Session != nil && which != unsharedChecks
	p := getPending()
	defer p.release()
	var idx [3]int
	picked := idx[:0]
	for i := range b.Windows {
		c := &b.Windows[i]
		if (which == unsharedChecks && c.Shared) || (which == sharedChecks && !c.Shared) {
			continue
		}
		picked = append(picked, i)
		p.calls = append(p.calls, r.windowCall(c, rf.count(i)))
	}
	if withSession {
		s := b.Session
		p.calls = append(p.calls, r.newCall(sessionScript, []string{r.sessionKey(s.ID)},
			s.MaxTurns, sessionIdle(s.Idle).Microseconds(), s.TokenBudget))
	}
	if err := r.runBy(ctx, p, deadline); err != nil {
		return err
	}
	// Parse everything before writing anything, so a failed call leaves the
	// batch for a fallback store to fill in.
	for i := range p.calls {
		n := windowReply
		if p.calls[i].script == sessionScript {
			n = 3
		}
		if !scriptReply(&p.calls[i], n) {
			v, err := p.calls[i].result()
			return fmt.Errorf("limiter: redis: unexpected script reply %v: %v", v, err)
		}
	}
	for j, i := range picked {
		setWindow(&b.Windows[i], p.calls[j].val)
		rf.answer(i, p.calls[j].val)
	}
	if withSession {
		setSession(b.Session, p.calls[len(p.calls)-1].cmd.Val())
	}
	return nil
}

// errCrossSlot is gated's answer when the server refused its script for
// keys of different hash slots.
var errCrossSlot = errors.New("limiter: redis: CROSSSLOT: the gated script's keys are in different slots")

// gated decides a gated batch in one script on one server, answered by
// deadline.
func (r *Redis) gated(ctx context.Context, b *Batch, rf *refills, deadline time.Time) error {
	keys := make([]string, 0, len(b.Windows)+1)
	args := make([]any, 3, 3+4*len(b.Windows)+3)
	var orderSmall [4]int
	order := orderSmall[:0]
	gate, shared := 0, 0
	for pass := 0; pass < 2; pass++ {
		for i := range b.Windows {
			c := &b.Windows[i]
			if c.Shared != (pass == 1) {
				continue
			}
			if c.Shared {
				shared++
			} else {
				gate++
			}
			order = append(order, i)
			a := r.argsOf(c.Limit)
			keys = append(keys, r.windowKeyWith(c, a))
			args = append(args, a.events, a.window, a.width, events(rf.count(i)))
		}
	}
	hs := 0
	if s := b.Session; s != nil {
		hs = 1
		keys = append(keys, r.sessionKey(s.ID))
		args = append(args, s.MaxTurns, sessionIdle(s.Idle).Microseconds(), s.TokenBudget)
	}
	args[0], args[1], args[2] = gate, shared, hs
	p := getPending()
	defer p.release()
	p.calls = append(p.calls, r.newCall(gatedScript, keys, args...))
	if err := r.runBy(ctx, p, deadline); err != nil {
		if redis.HasErrorPrefix(p.calls[0].cmd.Err(), "CROSSSLOT") {
			return errCrossSlot
		}
		return err
	}
	cmd := p.calls[0].cmd
	if !scriptReply(&p.calls[0], windowReply*len(order)+3*hs) {
		return fmt.Errorf("limiter: redis: unexpected script reply %v: %v", cmd.Val(), cmd.Err())
	}
	res := cmd.Val()
	for j, i := range order {
		v := res[windowReply*j : windowReply*(j+1)]
		c := &b.Windows[i]
		c.Skipped = v[0] < 0
		if !c.Skipped {
			setWindow(c, v)
			rf.answer(i, v)
		}
	}
	if s := b.Session; s != nil {
		v := res[windowReply*len(order):]
		s.Skipped = v[0] < 0
		if !s.Skipped {
			setSession(s, v)
		}
	}
	return nil
}

func setWindow(c *WindowCheck, v []int64) {
	c.Decision = Decision{
		Allowed:   v[0] >= 1, // k of c events: this caller's is the first
		Limit:     c.Limit.Events,
		Remaining: v[1],
		Reset:     time.UnixMicro(v[2]),
		ResetIn:   time.Duration(v[2]-v[5]) * time.Microsecond,
	}
	if !c.Decision.Allowed {
		c.Decision.RetryAfter = time.Duration(v[3]) * time.Microsecond
	}
}

func setSession(s *SessionCheck, v []int64) {
	s.Outcome, s.Turn, s.TokensUsed = SessionOutcome(v[0]), int(v[1]), v[2]
}

// scriptReply reports whether a script answered n integers.
func scriptReply(c *scriptCall, n int) bool {
	v, err := c.result()
	return err == nil && len(v) == n
}

// AddJobTokens implements [Store]: one script, one round trip.
func (r *Redis) AddJobTokens(ctx context.Context, sessionID string, step JobStep, tokens int64, idle time.Duration) error {
	if err := validateAddTokens(sessionID, tokens); err != nil {
		return err
	}
	p := getPending()
	defer p.release()
	p.calls = append(p.calls, r.newCall(jobScript, []string{r.sessionKey(sessionID)}, tokens, sessionIdle(idle).Microseconds(), int(step)))
	return r.run(ctx, p)
}

// AddTokens implements [Store]: AddJobTokens with no job.
func (r *Redis) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return r.AddJobTokens(ctx, sessionID, jobNone, tokens, idle)
}

// ErrStoreClosed is returned by a store used after Close.
var ErrStoreClosed = errors.New("limiter: store closed")

// pendingCalls is one caller's scripts on their way to Redis.
type pendingCalls struct {
	ctx      context.Context // the caller's: a caller that left is not run
	deadline time.Time       // the caller's answer is due by then
	calls    []scriptCall
	small    [3]scriptCall
	done     chan error      // buffered: the answer, or errLead
	lead     []*pendingCalls // with errLead: the batch this caller now runs
}

var pendingPool = sync.Pool{New: func() any {
	p := &pendingCalls{done: make(chan error, 1)}
	p.calls = p.small[:0]
	return p
}}

func getPending() *pendingCalls { return pendingPool.Get().(*pendingCalls) }

func (p *pendingCalls) release() {
	select {
	case <-p.done: // an answer nobody read: its caller panicked
	default:
	}
	clear(p.small[:])
	p.ctx, p.calls, p.lead = nil, p.small[:0], nil
	pendingPool.Put(p)
}

// errLead tells a waiting caller that it runs the next pipeline.
var errLead = errors.New("limiter: lead the next pipeline")

// run sends p's scripts and waits for their replies. There is no flusher
// goroutine: a caller that finds fewer than redisFlushers pipelines on the
// wire sends its own scripts at once, in its own goroutine; the others
// queue, and whoever's pipeline comes back hands the whole queue, as the
// next pipeline, to the first caller in it. Under load many callers share
// a round trip; an idle store sends each call at once without waking
// another goroutine. Each pipeline is bounded by the earliest deadline of
// its callers (now + the store's timeout, or the caller's own if earlier;
// to the millisecond, see contextUntil), so every queued caller is
// answered by its deadline and needs no timer of its own: it waits on its channel alone, and a caller that left is
// skipped when its pipeline is built rather than counted late.
func (r *Redis) run(ctx context.Context, p *pendingCalls) error {
	return r.runBy(ctx, p, time.Now().Add(r.timeout))
}

// runBy is run with the store's deadline given: that of a decision
// taking more than one round trip.
func (r *Redis) runBy(ctx context.Context, p *pendingCalls, deadline time.Time) error {
	if len(p.calls) == 0 {
		return nil
	}
	p.ctx = ctx
	p.deadline = deadline
	if d, ok := ctx.Deadline(); ok && d.Before(p.deadline) {
		p.deadline = d
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrStoreClosed
	}
	if r.inflight < redisFlushers {
		r.inflight++
		r.mu.Unlock()
		var one [1]*pendingCalls
		one[0] = p
		r.lead(one[:])
		return <-p.done
	}
	r.waiting = append(r.waiting, p)
	r.mu.Unlock()
	for {
		err := <-p.done
		if err != errLead {
			return err
		}
		r.lead(p.lead)
	}
}

// lead sends batch as one pipeline, then hands the callers that queued
// meanwhile to the first of them, or ends its pipeline slot. If go-redis
// panics, the callers not yet answered get an error and the queue goes on
// before the panic does: a store must not wedge every later caller.
func (r *Redis) lead(batch []*pendingCalls) {
	defer func() {
		if v := recover(); v != nil {
			for _, p := range batch {
				if p != nil {
					p.done <- fmt.Errorf("limiter: redis: panic: %v", v)
				}
			}
			r.handOff()
			panic(v)
		}
	}()
	r.flush(batch)
	r.handOff()
}

func (r *Redis) handOff() {
	r.mu.Lock()
	if len(r.waiting) == 0 {
		r.inflight--
		r.mu.Unlock()
		return
	}
	n := min(len(r.waiting), redisMaxBatch)
	next := make([]*pendingCalls, n)
	copy(next, r.waiting)
	rest := copy(r.waiting, r.waiting[n:])
	clear(r.waiting[rest:])
	r.waiting = r.waiting[:rest]
	r.mu.Unlock()
	next[0].lead = next
	next[0].done <- errLead
}

// deadlineContext bounds pipelines; the ones due in the same millisecond
// share it, so a busy store arms about one timer per millisecond rather
// than one per pipeline.
type deadlineContext struct {
	context.Context
	at     time.Time
	cancel context.CancelFunc // called by the timer at the deadline
}

// contextUntil is a context done at deadline rounded up to the next
// millisecond: a call never gets less than its Timeout, and at most a
// millisecond more.
func (r *Redis) contextUntil(deadline time.Time) context.Context {
	at := deadline
	if ns := deadline.Nanosecond() % int(time.Millisecond); ns != 0 {
		at = deadline.Add(time.Millisecond - time.Duration(ns)) // keeps the monotonic reading
	}
	if c := r.deadline.Load(); c != nil && c.at.Equal(at) {
		return c
	}
	c := &deadlineContext{at: at}
	c.Context, c.cancel = context.WithDeadline(context.Background(), at)
	r.deadline.Store(c)
	return c
}

// flush runs the scripts of batch and tells each caller how its own went,
// by the earliest deadline among them: callers only wait in the queue while
// a pipeline is on the wire, so in a healthy store they all have about the
// full timeout left, and when Redis hangs each is answered when its time
// is up.
//
// Each caller's entry in batch is cleared as it is answered (the caller may
// reuse it at once), so lead knows whom a panic left unanswered.
func (r *Redis) flush(batch []*pendingCalls) {
	now := time.Now()
	var deadline time.Time
	n := 0
	for i, p := range batch {
		batch[i] = nil
		switch err := p.ctx.Err(); {
		case err != nil:
			p.done <- fmt.Errorf("limiter: redis: %w", err) // it left; don't run its scripts late
		case !now.Before(p.deadline):
			p.done <- fmt.Errorf("limiter: redis: %w", context.DeadlineExceeded)
		default:
			if deadline.IsZero() || p.deadline.Before(deadline) {
				deadline = p.deadline
			}
			batch[n] = p
			n++
		}
	}
	live := batch[:n]
	if len(live) == 0 {
		return
	}
	ctx := r.contextUntil(deadline)
	pc := r.mergeWindows(live)
	defer pc.release()
	sends := pc.sends
	var failed error
	if len(sends) == 1 {
		// One script needs no pipeline: go-redis's single-command path is
		// the cheaper one.
		c := sends[0]
		err := r.client.Process(ctx, c.cmd)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			c.cmd = evalCall(*c)
			err = r.client.Process(ctx, c.cmd)
		}
		if c.cmd.Err() == nil && err != nil {
			c.cmd.SetErr(err)
		}
	} else {
		failed = r.pipeline(ctx, sends)
	}
	r.splitWindows(ctx, live, pc)
	for i, p := range live {
		err := failed
		for j := 0; err == nil && j < len(p.calls); j++ {
			_, err = p.calls[j].result()
		}
		live[i] = nil
		p.done <- wrapRedisErr(err)
	}
}

// pipeline sends calls in one pipeline of EVALSHA, and resends those a
// server did not know (NOSCRIPT, after a restart or failover) as EVAL:
// they did not run, so nothing counts twice. It returns an error only when
// the pipeline failed as a whole; a script's own error stays on its
// command, for its callers alone.
func (r *Redis) pipeline(ctx context.Context, calls []*scriptCall) error {
	pipe := r.client.Pipeline()
	for _, c := range calls {
		_ = pipe.Process(ctx, c.cmd)
	}
	_, execErr := pipe.Exec(ctx)
	if execErr == nil {
		return nil
	}
	pipe = r.client.Pipeline()
	stamped, retry := false, false
	for _, c := range calls {
		switch err := c.cmd.Err(); {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			c.cmd = evalCall(*c)
			_ = pipe.Process(ctx, c.cmd)
			stamped, retry = true, true
		default:
			stamped = true
		}
	}
	if !stamped {
		// Connecting or authenticating failed: go-redis does not stamp
		// that error on each command.
		return execErr
	}
	if retry {
		if _, err := pipe.Exec(ctx); err != nil {
			// Errors of single scripts are on their commands; anything
			// else failed the resent ones as a whole.
			for _, c := range calls {
				if c.cmd.Err() == nil && c.cmd.Val() == nil {
					c.cmd.SetErr(err)
				}
			}
		}
	}
	return nil
}

func wrapRedisErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("limiter: redis: %w", err)
}

// Close implements [Store]: callers still queued get ErrStoreClosed, and
// later ones too; the client stays open.
func (r *Redis) Close() error {
	r.mu.Lock()
	r.closed = true
	waiting := r.waiting
	r.waiting = nil
	r.mu.Unlock()
	for _, p := range waiting {
		p.done <- ErrStoreClosed
	}
	return nil
}
