package limiter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
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

	// now, when set (by tests only), is sent to the scripts in place of the
	// Redis server's clock.
	now func() time.Time
}

// DefaultRedisTimeout is the default of RedisOptions.Timeout.
const DefaultRedisTimeout = 50 * time.Millisecond

// Redis is a [Store] whose limits and sessions are shared by every instance
// using the same Redis (a single server, Sentinel, or Cluster).
//
// Each check is one Lua script that reads and updates its key atomically,
// using the Redis server's clock (TIME), so instances with skewed clocks
// agree. All the scripts of a [Batch] go out in one pipeline: at most one
// network round trip per Batch (on Cluster, one per node involved, in
// parallel), plus one more only when a server has lost its script cache
// (NOSCRIPT). Batches that arrive while earlier ones are on the wire are
// coalesced into one pipeline (auto-pipelining): under load, many requests
// share a round trip, and the per-request cost of the client's connection
// pool, write and read system calls shrinks accordingly; an idle store
// sends each Batch at once.
//
// Key layout (P is RedisOptions.Prefix):
//
//	P rl:{KEY}:WINDOW      hash: sub-window index -> events admitted in it,
//	                       and t, o, l: their total, oldest and newest index
//	P rl:{#SHA256}:WINDOW  the same for a secret, long or '#'-prefixed key
//	P s:{SHA256}           hash: turns, tokens, last, exp (µs) of a session
//
// SHA256 is the hex SHA-256 of the key or session id, and WINDOW the Go
// duration of the limit's window ("1m0s"). Every script touches a single
// key, and the braces make it a hash tag, so any Cluster layout works. Keys
// expire once nothing in them counts any more; a session lives 2×Idle after
// it was last used. A window key holds at most SubWindows+5 small fields
// (about 700 bytes in Redis), whatever the limit's N. Session ids are always
// hashed: whoever holds one can continue the conversation.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time

	queue     chan *pendingCalls
	stop      chan struct{}
	flushers  sync.WaitGroup
	closeOnce sync.Once
}

// Coalescing: redisFlushers pipelines may be on the wire at once, each
// carrying up to redisMaxBatch callers. More than one keeps a single slow
// reply from holding everyone; few keeps batches large.
const (
	redisFlushers = 2
	redisMaxBatch = 128
	redisQueue    = 1024
)

// NewRedis returns a store using client. The caller keeps owning client:
// Close does not close it, so one client can serve many stores. Close the
// store when done with it: it stops the store's background flushers.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "ahp:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	r := &Redis{
		client: client, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.now,
		queue: make(chan *pendingCalls, redisQueue),
		stop:  make(chan struct{}),
	}
	r.flushers.Add(redisFlushers)
	for range redisFlushers {
		go r.flushLoop()
	}
	return r
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
local function window(K, n, span, g, now)
  local lo = math.floor((now - span) / g)
  local cur = math.floor(now / g)
  local r = redis.call('HMGET', K, 't', 'o', 'l')
  local total, oldest, newest = tonumber(r[1]), tonumber(r[2]), tonumber(r[3])
  local dirty = false
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
  local function fields(a, b)
    local f = {}
    for j = a, b do f[#f + 1] = string.format('%d', j) end
    return f
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
  if newest and newest > cur then cur = newest end -- the clock went backward: keep counting forward
  local allowed = 0
  if total < n then
    allowed = 1
    total = total + 1
    redis.call('HINCRBY', K, string.format('%d', cur), 1)
    if not oldest then oldest = cur end
    newest = cur
    dirty = true
    -- the key is useless once its newest sub-window stops counting
    redis.call('PEXPIRE', K, string.format('%d', math.ceil(((cur + 1) * g + span - now) / 1000)))
  end
  if dirty then
    if oldest then
      redis.call('HSET', K, 't', string.format('%d', total), 'o', string.format('%d', oldest), 'l', string.format('%d', newest))
    else
      redis.call('HDEL', K, 't', 'o', 'l')
    end
  end
  local retry = 0
  if allowed == 0 and oldest then
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
  return {allowed, math.max(n - total, 0), ((oldest or cur) + 1) * g + span, retry}
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

// gatedScript decides a gated batch on one server: the unshared windows,
// then, only if all of them admitted the event, the shared windows and the
// session (see [Batch]). Skipped checks report allowed = -1 (windows) or
// outcome = -1 (the session).
//
// KEYS: the unshared windows, the shared windows, the session (if any).
// ARGV: #unshared, #shared, 1 if a session, then N, window, width per
// window, then max turns, idle, budget for the session, [now (µs)].
var gatedScript = redis.NewScript(luaPrelude + luaWindow + luaSession + `
local ng, ns, hs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4 + 3 * (ng + ns + hs)])
local out, admitted, a = {}, true, 4
for i = 1, ng + ns do
  local r = {-1, 0, 0, 0}
  if i <= ng or admitted then
    r = window(KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), now)
    if i <= ng and r[1] == 0 then admitted = false end
  end
  a = a + 3
  for j = 1, 4 do out[#out + 1] = r[j] end
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
// ARGV: N, window (µs), sub-window width (µs), [now (µs), tests only].
// Returns {allowed 0|1, remaining, reset (µs), retry after (µs)}.
var windowScript = redis.NewScript(luaPrelude + luaWindow + `
return window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), clock(ARGV[4]))
`)

// sessionScript decides one turn of a session; it mirrors Memory.session.
//
// KEYS[1]: hash with fields turns, tokens, last (µs, last admitted turn) and
// exp (µs, when the record is forgotten; PEXPIRE removes it about then, and
// exp makes the script exact whenever the key is actually removed).
// ARGV: max turns (<= 0: none), idle (µs), token budget (0: none), [now (µs)].
// Returns {outcome, turn, tokens used}; outcome numbers are SessionOutcome's.
var sessionScript = redis.NewScript(luaPrelude + luaSession + `
return session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), clock(ARGV[4]))
`)

// tokensScript adds tokens to a session, registering it at turn 1 if unknown
// (or forgotten); it mirrors Memory.AddTokens.
//
// KEYS[1]: the session hash. ARGV: tokens, idle (µs), [now (µs)].
var tokensScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local idle = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if not exp or now >= exp then
  redis.call('DEL', KEYS[1])
  redis.call('HMSET', KEYS[1], 'turns', 1, 'last', string.format('%d', now))
  exp = 0
end
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
if exp < now + 2 * idle then
  redis.call('HSET', KEYS[1], 'exp', string.format('%d', now + 2 * idle))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(2 * idle / 1000)))
end
return 1
`)

func (r *Redis) windowKey(c *WindowCheck) string {
	id := c.Key
	if c.Secret || len(id) > maxPlainKey || id != "" && id[0] == '#' {
		id = "#" + hashHex(id) // '#' marks hashes, so no plain key can take one's place
	}
	return r.prefix + "rl:{" + id + "}:" + c.Limit.Window.String()
}

func (r *Redis) sessionKey(id string) string {
	return r.prefix + "s:{" + hashHex(id) + "}"
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// scriptCall is one script invocation of a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// args appends the injected clock, if any, for tests.
func (r *Redis) args(a ...any) []any {
	if r.now != nil {
		a = append(a, r.now().UnixMicro())
	}
	return a
}

// Do implements [Store]: all checks of b in one pipeline, a gated batch
// in one script (see [Batch]; on Cluster, in two round trips).
func (r *Redis) Do(ctx context.Context, b *Batch) error {
	if err := b.validate(); err != nil {
		return err
	}
	gate, shared := 0, 0
	for i := range b.Windows {
		if b.Windows[i].Shared {
			shared++
		} else {
			gate++
		}
	}
	if gate == 0 || (shared == 0 && b.Session == nil) {
		return r.independent(ctx, b, allChecks)
	}
	if _, cluster := r.client.(*redis.ClusterClient); !cluster {
		return r.gated(ctx, b)
	}
	// Cluster: the client's windows first, the shared checks only if
	// they admitted the event.
	if err := r.independent(ctx, b, unsharedChecks); err != nil {
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
	return r.independent(ctx, b, sharedChecks)
}

// Which checks of a batch independent decides.
const (
	allChecks      = iota // every window and the session
	unsharedChecks        // the unshared windows
	sharedChecks          // the shared windows and the session
)

// independent decides the checks of b that which selects, each on its
// own, in one pipeline.
func (r *Redis) independent(ctx context.Context, b *Batch, which int) error {
	withSession := b.Session != nil && which != unsharedChecks
	var small [3]scriptCall
	calls := small[:0]
	var idx [3]int
	picked := idx[:0]
	for i := range b.Windows {
		c := &b.Windows[i]
		if (which == unsharedChecks && c.Shared) || (which == sharedChecks && !c.Shared) {
			continue
		}
		picked = append(picked, i)
		calls = append(calls, scriptCall{
			script: windowScript,
			keys:   []string{r.windowKey(c)},
			args:   r.args(c.Limit.Events, c.Limit.Window.Microseconds(), c.Limit.subWindow(time.Microsecond)),
		})
	}
	if withSession {
		s := b.Session
		calls = append(calls, scriptCall{
			script: sessionScript,
			keys:   []string{r.sessionKey(s.ID)},
			args:   r.args(s.MaxTurns, sessionIdle(s.Idle).Microseconds(), s.TokenBudget),
		})
	}
	if err := r.run(ctx, calls); err != nil {
		return err
	}
	// Parse everything before writing anything, so a failed call leaves the
	// batch for a fallback store to fill in.
	var resSmall [3][4]int64
	res := resSmall[:0]
	if len(calls) > len(resSmall) {
		res = make([][4]int64, 0, len(calls))
	}
	for i := range calls {
		n := 4
		if calls[i].script == sessionScript {
			n = 3
		}
		res = append(res, [4]int64{})
		if !scriptReply(calls[i].cmd, res[i][:n]) {
			return fmt.Errorf("limiter: redis: unexpected script reply %v: %v", calls[i].cmd.Val(), calls[i].cmd.Err())
		}
	}
	for j, i := range picked {
		setWindow(&b.Windows[i], res[j][:4])
	}
	if withSession {
		setSession(b.Session, res[len(calls)-1][:3])
	}
	return nil
}

// gated decides a gated batch in one script on one server.
func (r *Redis) gated(ctx context.Context, b *Batch) error {
	keys := make([]string, 0, len(b.Windows)+1)
	args := make([]any, 3, 4+3*(len(b.Windows)+1))
	order := make([]int, 0, len(b.Windows))
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
			keys = append(keys, r.windowKey(c))
			args = append(args, c.Limit.Events, c.Limit.Window.Microseconds(), c.Limit.subWindow(time.Microsecond))
		}
	}
	hs := 0
	if s := b.Session; s != nil {
		hs = 1
		keys = append(keys, r.sessionKey(s.ID))
		args = append(args, s.MaxTurns, sessionIdle(s.Idle).Microseconds(), s.TokenBudget)
	}
	args[0], args[1], args[2] = gate, shared, hs
	calls := []scriptCall{{script: gatedScript, keys: keys, args: r.args(args...)}}
	if err := r.run(ctx, calls); err != nil {
		return err
	}
	var resSmall [3*4 + 3]int64
	n := 4*len(order) + 3*hs
	res := resSmall[:]
	if n > len(res) {
		res = make([]int64, n)
	}
	if !scriptReply(calls[0].cmd, res[:n]) {
		return fmt.Errorf("limiter: redis: unexpected script reply %v: %v", calls[0].cmd.Val(), calls[0].cmd.Err())
	}
	for j, i := range order {
		v := res[4*j : 4*j+4]
		c := &b.Windows[i]
		c.Skipped = v[0] < 0
		if !c.Skipped {
			setWindow(c, v)
		}
	}
	if s := b.Session; s != nil {
		v := res[4*len(order):]
		s.Skipped = v[0] < 0
		if !s.Skipped {
			setSession(s, v)
		}
	}
	return nil
}

func setWindow(c *WindowCheck, v []int64) {
	c.Decision = Decision{
		Allowed:   v[0] == 1,
		Limit:     c.Limit.Events,
		Remaining: v[1],
		Reset:     time.UnixMicro(v[2]),
	}
	if !c.Decision.Allowed {
		c.Decision.RetryAfter = time.Duration(v[3]) * time.Microsecond
	}
}

func setSession(s *SessionCheck, v []int64) {
	s.Outcome, s.Turn, s.TokensUsed = SessionOutcome(v[0]), int(v[1]), v[2]
}

// scriptReply reads a script's reply of len(v) integers into v without
// the allocations of Cmd.Int64Slice, which showed in profiles under load.
func scriptReply(cmd *redis.Cmd, v []int64) bool {
	if cmd.Err() != nil {
		return false
	}
	arr, _ := cmd.Val().([]any)
	if len(arr) != len(v) {
		return false
	}
	for i, e := range arr {
		n, ok := e.(int64)
		if !ok {
			return false
		}
		v[i] = n
	}
	return true
}

// AddTokens implements [Store].
func (r *Redis) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	if err := validateAddTokens(sessionID, tokens); err != nil {
		return err
	}
	return r.run(ctx, []scriptCall{{
		script: tokensScript,
		keys:   []string{r.sessionKey(sessionID)},
		args:   r.args(tokens, sessionIdle(idle).Microseconds()),
	}})
}

// ErrStoreClosed is returned by a store used after Close.
var ErrStoreClosed = errors.New("limiter: store closed")

// pendingCalls is one caller's scripts waiting for a flusher.
type pendingCalls struct {
	ctx      context.Context // the caller's: a caller that left is not run
	deadline time.Time       // the caller's answer is due by then
	calls    []scriptCall
	done     chan error // buffered: a flusher never waits for a caller that gave up
}

var pendingPool = sync.Pool{New: func() any { return &pendingCalls{done: make(chan error, 1)} }}

// run hands calls to a flusher and waits for their replies. The flusher
// answers every caller by its deadline (now + the store's timeout, or the
// caller's own if earlier), so the wait needs no timer of its own: one
// context and timer per pipeline, not per request. A caller that gives up
// leaves its pendingCalls to the flusher (it is not reused), so nothing is
// written after the caller left.
func (r *Redis) run(ctx context.Context, calls []scriptCall) error {
	if len(calls) == 0 {
		return nil
	}
	p := pendingPool.Get().(*pendingCalls)
	p.ctx, p.calls = ctx, calls
	p.deadline = time.Now().Add(r.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(p.deadline) {
		p.deadline = d
	}
	select {
	case r.queue <- p:
	case <-ctx.Done():
		return fmt.Errorf("limiter: redis: %w", ctx.Err())
	case <-r.stop:
		return ErrStoreClosed
	}
	select {
	case err := <-p.done:
		p.ctx, p.calls = nil, nil
		pendingPool.Put(p)
		return err
	case <-ctx.Done():
		return fmt.Errorf("limiter: redis: %w", ctx.Err())
	case <-r.stop:
		return ErrStoreClosed
	}
}

// flushLoop sends whatever callers are queued in one pipeline, then again:
// while a pipeline is on the wire, the next batch builds up in the queue.
func (r *Redis) flushLoop() {
	defer r.flushers.Done()
	batch := make([]*pendingCalls, 0, redisMaxBatch)
	for {
		select {
		case p := <-r.queue:
			batch = append(batch[:0], p)
		case <-r.stop:
			return
		}
	fill:
		for len(batch) < redisMaxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		r.flush(batch)
		clear(batch)
	}
}

// flush runs the scripts of batch and tells each caller how its own went,
// by the earliest deadline among them: callers only wait in the queue while
// a pipeline is on the wire, so in a healthy store they all have about the
// full timeout left, and when Redis hangs each is answered when its time
// is up.
func (r *Redis) flush(batch []*pendingCalls) {
	now := time.Now()
	var deadline time.Time
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- fmt.Errorf("limiter: redis: %w", err) // it left; don't run its scripts late
			continue
		}
		if !now.Before(p.deadline) {
			p.done <- fmt.Errorf("limiter: redis: %w", context.DeadlineExceeded)
			continue
		}
		if deadline.IsZero() || p.deadline.Before(deadline) {
			deadline = p.deadline
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if len(live) == 1 && len(live[0].calls) == 1 {
		// One script needs no pipeline: go-redis's single-command path is
		// the cheaper one.
		p := live[0]
		c := &p.calls[0]
		c.cmd = c.script.EvalSha(ctx, r.client, c.keys, c.args...)
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			c.cmd = c.script.Eval(ctx, r.client, c.keys, c.args...)
		}
		p.done <- wrapRedisErr(c.cmd.Err())
		return
	}
	failed := r.pipeline(ctx, live)
	for _, p := range live {
		err := failed
		for i := 0; err == nil && i < len(p.calls); i++ {
			err = p.calls[i].cmd.Err()
		}
		p.done <- wrapRedisErr(err)
	}
}

// pipeline sends the scripts of batch in one pipeline of EVALSHA, and
// resends those a server did not know (NOSCRIPT, after a restart or
// failover) as EVAL: they did not run, so nothing counts twice. It returns
// an error only when the pipeline failed as a whole; a script's own error
// stays on its command, for its caller alone.
func (r *Redis) pipeline(ctx context.Context, batch []*pendingCalls) error {
	pipe := r.client.Pipeline()
	for _, p := range batch {
		for i := range p.calls {
			c := &p.calls[i]
			c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
	}
	_, execErr := pipe.Exec(ctx)
	if execErr == nil {
		return nil
	}
	pipe = r.client.Pipeline()
	stamped, retry := false, false
	for _, p := range batch {
		for i := range p.calls {
			c := &p.calls[i]
			switch err := c.cmd.Err(); {
			case err == nil:
			case redis.HasErrorPrefix(err, "NOSCRIPT"):
				c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
				stamped, retry = true, true
			default:
				stamped = true
			}
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
			for _, p := range batch {
				for i := range p.calls {
					if c := p.calls[i].cmd; c.Err() == nil && c.Val() == nil {
						c.SetErr(err)
					}
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

// Close implements [Store]: it stops the flushers and leaves the client
// open. Callers still waiting get ErrStoreClosed.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.flushers.Wait()
	})
	return nil
}
