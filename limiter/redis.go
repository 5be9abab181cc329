package limiter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a [Redis] store.
type RedisOptions struct {
	// Prefix is prepended to every key (default "ahp:").
	Prefix string
	// Timeout bounds each call, round trip included (default 50ms). It only
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
// agree. All the scripts of a [Batch] go out in one pipeline: one network
// round trip per Batch (on Cluster, one per node involved, in parallel),
// plus one more only when a server has lost its script cache (NOSCRIPT).
//
// Key layout (P is RedisOptions.Prefix):
//
//	P rl:{KEY}:WINDOW      hash: sub-window index -> events admitted in it
//	P rl:{#SHA256}:WINDOW  the same for a secret, long or '#'-prefixed key
//	P s:{SHA256}           hash: turns, tokens, last, exp (µs) of a session
//
// SHA256 is the hex SHA-256 of the key or session id, and WINDOW the Go
// duration of the limit's window ("1m0s"). Every script touches a single
// key, and the braces make it a hash tag, so any Cluster layout works. Keys
// expire once nothing in them counts any more; a session lives 2×Idle after
// it was last used. A window key holds at most SubWindows+2 small fields
// (about 600 bytes in Redis), whatever the limit's N. Session ids are always
// hashed: whoever holds one can continue the conversation.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time
}

// NewRedis returns a store using client. The caller keeps owning client:
// Close does not close it, so one client can serve many stores.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "ahp:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	return &Redis{client: client, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.now}
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

// windowScript decides one event under one limit; it mirrors window.take,
// whose comment explains why it never admits more than N in any window.
//
// KEYS[1]: hash, field = sub-window index, value = events admitted in it.
// ARGV: N, window (µs), sub-window width (µs), [now (µs), tests only].
// Returns {allowed 0|1, remaining, reset (µs), retry after (µs)}.
var windowScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
local n, span, g = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local lo = math.floor((now - span) / g)
local cur = math.floor(now / g)
local kv = redis.call('HGETALL', KEYS[1])
local idx, cnt, stale = {}, {}, {}
local total = 0
for i = 1, #kv, 2 do
  local j = tonumber(kv[i])
  if j < lo then
    stale[#stale + 1] = kv[i]
  else
    local c = tonumber(kv[i + 1])
    idx[#idx + 1] = j
    cnt[j] = c
    total = total + c
    if j > cur then cur = j end -- the clock went backward: keep counting forward
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local allowed = 0
if total < n then
  allowed = 1
  total = total + 1
  if not cnt[cur] then
    idx[#idx + 1] = cur
    cnt[cur] = 0
  end
  cnt[cur] = cnt[cur] + 1
  redis.call('HINCRBY', KEYS[1], string.format('%d', cur), 1)
  -- the key is useless once its newest sub-window stops counting
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(((cur + 1) * g + span - now) / 1000)))
end
table.sort(idx)
local retry = 0
if allowed == 0 then
  local left = total
  for _, j in ipairs(idx) do
    left = left - cnt[j]
    if left < n then
      retry = (j + 1) * g + span - now
      break
    end
  end
end
return {allowed, math.max(n - total, 0), (idx[1] + 1) * g + span, retry}
`)

// sessionScript decides one turn of a session; it mirrors Memory.session.
//
// KEYS[1]: hash with fields turns, tokens, last (µs, last admitted turn) and
// exp (µs, when the record is forgotten; PEXPIRE removes it about then, and
// exp makes the script exact whenever the key is actually removed).
// ARGV: max turns (<= 0: none), idle (µs), token budget (0: none), [now (µs)].
// Returns {outcome, turn, tokens used}; outcome numbers are SessionOutcome's.
var sessionScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local maxTurns, idle, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local r = redis.call('HMGET', KEYS[1], 'turns', 'tokens', 'last', 'exp')
local turns, tokens, last = tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0
if now >= (tonumber(r[4]) or now + 1) then
  redis.call('DEL', KEYS[1])
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
  redis.call('HMSET', KEYS[1], 'turns', turn, 'last', string.format('%d', now))
end
-- an expired session stays known while it is used, so the agent keeps
-- hearing that it must start a new one
redis.call('HSET', KEYS[1], 'exp', string.format('%d', now + 2 * idle))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(2 * idle / 1000)))
return {outcome, turn, tokens}
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

// Do implements [Store]: all checks of b in one pipeline.
func (r *Redis) Do(ctx context.Context, b *Batch) error {
	if err := b.validate(); err != nil {
		return err
	}
	calls := make([]scriptCall, 0, len(b.Windows)+1)
	for i := range b.Windows {
		c := &b.Windows[i]
		calls = append(calls, scriptCall{
			script: windowScript,
			keys:   []string{r.windowKey(c)},
			args:   r.args(c.Limit.Events, c.Limit.Window.Microseconds(), c.Limit.subWindow(time.Microsecond)),
		})
	}
	if s := b.Session; s != nil {
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
	var res [][]int64
	for i := range calls {
		v, err := calls[i].cmd.Int64Slice()
		if want := 3 + btoi(calls[i].script == windowScript); err != nil || len(v) != want {
			return fmt.Errorf("limiter: redis: unexpected script reply %v: %v", calls[i].cmd.Val(), err)
		}
		res = append(res, v)
	}
	for i := range b.Windows {
		v, c := res[i], &b.Windows[i]
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
	if s := b.Session; s != nil {
		v := res[len(res)-1]
		s.Outcome, s.Turn, s.TokensUsed = SessionOutcome(v[0]), int(v[1]), v[2]
	}
	return nil
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

// run sends calls in one pipeline of EVALSHA, and resends the ones a server
// did not know (NOSCRIPT, after a restart or failover) as EVAL. Scripts that
// failed with NOSCRIPT did not run, so resending them counts nothing twice.
func (r *Redis) run(ctx context.Context, calls []scriptCall) error {
	if len(calls) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if len(calls) == 1 {
		// One script needs no pipeline: go-redis's single-command path
		// is the cheaper one, and it is still one round trip.
		c := &calls[0]
		c.cmd = c.script.EvalSha(ctx, r.client, c.keys, c.args...)
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			c.cmd = c.script.Eval(ctx, r.client, c.keys, c.args...)
		}
		if err := c.cmd.Err(); err != nil {
			return fmt.Errorf("limiter: redis: %w", err)
		}
		return nil
	}
	pipe := r.client.Pipeline()
	for i := range calls {
		c := &calls[i]
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, execErr := pipe.Exec(ctx)
	if execErr == nil {
		return nil
	}
	pipe = r.client.Pipeline()
	retry := false
	for i := range calls {
		c := &calls[i]
		switch err := c.cmd.Err(); {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
			retry = true
		default:
			return fmt.Errorf("limiter: redis: %w", err)
		}
	}
	if !retry {
		// The pipeline failed as a whole (connecting, authenticating):
		// go-redis does not stamp that error on each command.
		return fmt.Errorf("limiter: redis: %w", execErr)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("limiter: redis: %w", err)
	}
	return nil
}

// Close implements [Store]; it leaves the client open.
func (r *Redis) Close() error { return nil }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
