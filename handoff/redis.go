package handoff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a [Redis] store.
type RedisOptions struct {
	// Zone names this configuration's keys (the provider's name by
	// default); instances that must share challenges use one zone.
	Zone string
	// Prefix is prepended to every key (default "ahp:handoff:").
	Prefix string
	// Timeout bounds each operation (default 100ms).
	Timeout time.Duration
	// MaxChallenges bounds the challenges the zone holds (default
	// 250000, as [MemoryOptions]): past it, issuing one drops those
	// closest to expiry, so a flood from many networks costs its victims
	// the oldest challenges, never Redis's memory.
	MaxChallenges int
}

// DefaultRedisTimeout is RedisOptions.Timeout's default.
const DefaultRedisTimeout = 100 * time.Millisecond

// Redis is a [Store] shared by every instance using the same Redis (single
// server, Sentinel or Cluster). Each operation is one Lua script: one round
// trip, atomic, so two instances receiving the same solution at once admit
// it once.
//
// Key layout (P is the prefix, Z the zone; the braces are a hash tag, so
// every key of a zone lives in one Cluster slot and each script may touch
// several):
//
//	P{Z}:c:PURPOSE:CHALLENGE  "difficulty:expires_ms", expiring with the challenge
//	P{Z}:ci                   sorted set: PURPOSE:CHALLENGE by expiry (ms), the
//	                          challenges issued and not yet expired, to bound them
//	P{Z}:v:g                  hash: velocity bucket -> admissions, all clients
//	P{Z}:v:n:NETWORK          the same for one client network
//	P{Z}:l:KEY                hash f, l, u, t, h: failures, lock level, locked
//	                          until (ms), last failure (ms), last failure no
//	                          refund can take back (ms) of a lockout key;
//	                          r<id>: an admitted claim's charge (its time,
//	                          ms) until refunded or settled; s: the id of
//	                          the charge that began the lock, while pending
//
// Times come from the caller's clock (IssueOp.Now …), not the Redis
// server's, so that tests can move time; instances' clocks only need to
// agree to well within a velocity bucket and a lock. Keys also carry a
// TTL, so that Redis forgets what no longer matters.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	max     int
}

// NewRedis returns a store over client; it does not own the client.
func NewRedis(client redis.UniversalClient, o RedisOptions) *Redis {
	if o.Prefix == "" {
		o.Prefix = "ahp:handoff:"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	// A brace in the zone would end the hash tag early.
	if o.MaxChallenges <= 0 {
		o.MaxChallenges = defaultMaxChallenges
	}
	zone := strings.NewReplacer("{", "(", "}", ")").Replace(o.Zone)
	return &Redis{client: client, prefix: o.Prefix + "{" + zone + "}:", timeout: o.Timeout, max: o.MaxChallenges}
}

// The shared Lua: velocity counting and lockout records. Numbers are
// written with %.0f: Lua 5.1's default formatting turns large integers
// into exponent notation.
const luaCommon = `
local function int(x) return string.format('%.0f', x) end
local function velocity(key, cur)
  local v = redis.call('HGETALL', key)
  local n = 0
  for i = 1, #v, 2 do
    local b = tonumber(v[i])
    if b > cur - 10 and b <= cur then n = n + tonumber(v[i + 1]) end
  end
  return n
end
-- reopens is reopens in store.go: how many bucket boundaries pass before
-- the key's count falls below limit.
local function reopens(key, cur, limit)
  local v = redis.call('HGETALL', key)
  for k = 1, 9 do
    local n = 0
    for i = 1, #v, 2 do
      local b = tonumber(v[i])
      if b > cur - 10 + k and b <= cur then n = n + tonumber(v[i + 1]) end
    end
    if n < limit then return k end
  end
  return 10
end
local function count(key, cur, ttl)
  local fields = redis.call('HKEYS', key)
  for i = 1, #fields do
    if tonumber(fields[i]) <= cur - 10 then redis.call('HDEL', key, fields[i]) end
  end
  redis.call('HINCRBY', key, int(cur), 1)
  redis.call('PEXPIRE', key, ttl)
end
-- difficulty is Difficulty.For: the policy's bits at velocities g, n.
local function difficulty(g, n, base, ceiling, gs, ns)
  local d = base
  if gs > 0 then d = d + math.floor(g / gs) end
  if ns > 0 then d = d + math.floor(n / ns) end
  return math.min(d, ceiling)
end
local function locked_for(key, now)
  local u = tonumber(redis.call('HGET', key, 'u') or '0') or 0
  if u > now then return u - now end
  return 0
end
-- settle is lockState.settle: the pending charges (fields r<id>) become
-- final, their latest time in h; it returns h.
local function settle(key, h)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 114 then -- 'r'
      h = math.max(h, tonumber(all[i + 1]))
      redis.call('HDEL', key, all[i])
    end
  end
  redis.call('HDEL', key, 's')
  return h
end
-- fail is lockState.fail: a charge when id is not '' (kept as field
-- r<id>, and as s when it began the lock); it returns whether a lock
-- began.
local function fail(key, now, after, base, maxl, reset, id)
  local s = redis.call('HMGET', key, 'f', 'l', 'u', 't', 'h', 's')
  local f, lv, u, t = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0, tonumber(s[4]) or 0
  -- A record without h (written before charges had ids) holds settled
  -- failures only.
  local h = tonumber(s[5]) or t
  if now - t >= reset then
    f = 0; lv = 0; h = 0
    if s[1] then settle(key, 0) end
  elseif s[6] then
    h = settle(key, h)
  end
  f = f + 1; t = now
  local started = 0
  if f >= after then
    lv = lv + 1; f = 0
    local d = maxl
    if lv <= 62 then d = math.min(base * math.pow(2, lv - 1), maxl) end
    u = now + math.floor(d); started = 1
    h = settle(key, h)
  end
  if id ~= '' then
    redis.call('HSET', key, 'r' .. id, int(now))
    if started == 1 then redis.call('HSET', key, 's', id) end
  else
    h = math.max(h, now)
  end
  redis.call('HSET', key, 'f', int(f), 'l', int(lv), 'u', int(u), 't', int(t), 'h', int(h))
  local ttl = reset
  if u - now > ttl then ttl = u - now end
  redis.call('PEXPIRE', key, int(ttl + 1000))
  return started
end
`

// issueScript: KEYS global velocity, network velocity, challenge,
// challenge index; ARGV now, bucket_ms, base, ceiling, global_step,
// network_step, breaker, ttl_ms, purpose, max challenges, the challenge
// keys' prefix, the challenge's index member. Returns {difficulty (-1:
// tripped), global, network}. A spent challenge stays in the index until
// it would have expired (admission need not touch it): the bound counts
// challenges issued within a TTL.
var issueScript = redis.NewScript(luaCommon + `
local now, bucket = tonumber(ARGV[1]), tonumber(ARGV[2])
local cur = math.floor(now / bucket)
local g = velocity(KEYS[1], cur)
local n = velocity(KEYS[2], cur)
local breaker = tonumber(ARGV[7])
if ARGV[9] == 'create' and breaker > 0 and g >= breaker then return {-1, g, n, reopens(KEYS[1], cur, breaker)} end
local d = difficulty(g, n, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
local ttl = tonumber(ARGV[8])
local exp = now + ttl
if redis.call('SET', KEYS[3], int(d) .. ':' .. int(exp), 'PX', int(ttl), 'NX') then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', int(now))
  local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[10]) + 1
  if over > 0 then
    -- Full: the challenges closest to expiry go (the keys share the
    -- index's hash tag, so a Cluster node holds them all).
    local old = redis.call('ZPOPMIN', KEYS[4], over)
    for i = 1, #old, 2 do redis.call('DEL', ARGV[11] .. old[i]) end
  end
  redis.call('ZADD', KEYS[4], int(exp), ARGV[12])
  redis.call('PEXPIRE', KEYS[4], int(ttl))
end
return {d, g, n}
`)

// admitCreateScript: KEYS challenge, global velocity, network velocity;
// ARGV now, work, bucket_ms, breaker, velocity_ttl_ms, base, ceiling,
// global_step, network_step. Returns {-2, g} tripped, {-1} refused,
// {difficulty, g} admitted (the difficulty required: the stored one, or
// the policy's for this network now when higher; g counting this
// creation).
var admitCreateScript = redis.NewScript(luaCommon + `
local now, work, bucket = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = math.floor(now / bucket)
local breaker = tonumber(ARGV[4])
local g = velocity(KEYS[2], cur)
if breaker > 0 and g >= breaker then return {-2, g, reopens(KEYS[2], cur, breaker)} end
local v = redis.call('GET', KEYS[1])
if not v then return {-1} end
redis.call('DEL', KEYS[1])
local sep = string.find(v, ':', 1, true)
local d, exp = tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
d = math.max(d, difficulty(g, velocity(KEYS[3], cur), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])))
if exp <= now or work < d then return {-1} end
local ttl = tonumber(ARGV[5])
count(KEYS[2], cur, ttl)
count(KEYS[3], cur, ttl)
return {d, g + 1}
`)

// admitExemptScript: KEYS global velocity, network velocity; ARGV now,
// bucket_ms, breaker, velocity_ttl_ms. Returns {-2, g} tripped, {0, g}
// admitted (g counting this creation).
var admitExemptScript = redis.NewScript(luaCommon + `
local now, bucket = tonumber(ARGV[1]), tonumber(ARGV[2])
local cur = math.floor(now / bucket)
local breaker = tonumber(ARGV[3])
local g = velocity(KEYS[1], cur)
if breaker > 0 and g >= breaker then return {-2, g, reopens(KEYS[1], cur, breaker)} end
local ttl = tonumber(ARGV[4])
count(KEYS[1], cur, ttl)
count(KEYS[2], cur, ttl)
return {0, g + 1}
`)

// admitClaimScript: KEYS challenge, global velocity, network velocity,
// lockout keys...; ARGV now, work, after (0: charge nothing), base_ms,
// max_ms, reset_ms, bucket_ms, base, ceiling, global_step, network_step,
// charge id. Returns {-3, wait_ms} locked, {-1, started} refused,
// {difficulty, started} admitted: an admitted claim is charged a failure
// at once, in this script, under the charge id (see AdmitOp.Charge). Work
// that met the stored difficulty, refused only because the difficulty
// rose since, is not charged to the lockout.
var admitClaimScript = redis.NewScript(luaCommon + `
local now, work = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for i = 4, #KEYS do wait = math.max(wait, locked_for(KEYS[i], now)) end
if wait > 0 then return {-3, wait} end
local v = redis.call('GET', KEYS[1])
local ok = false
local d = 0
if v then
  redis.call('DEL', KEYS[1])
  local sep = string.find(v, ':', 1, true)
  local exp
  d, exp = tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
  if exp > now and work >= d then
    local cur = math.floor(now / tonumber(ARGV[7]))
    d = math.max(d, difficulty(velocity(KEYS[2], cur), velocity(KEYS[3], cur), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])))
    if work < d then return {-1, 0} end
    ok = true
  end
end
local out = {-1, 0}
local id = ''
if ok then out = {d, 0}; id = ARGV[12] end
local after, base, maxl, reset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if after == 0 then return out end
for i = 4, #KEYS do
  if fail(KEYS[i], now, after, base, maxl, reset, id) == 1 then out[2] = 1 end
end
return out
`)

// refundScript is lockState.refund: KEYS lockout keys; ARGV after, the
// charge id. A key whose record no longer holds the charge (refunded,
// settled by a lock, forgotten, expired) is left alone.
var refundScript = redis.NewScript(luaCommon + `
local after, id = tonumber(ARGV[1]), ARGV[2]
for i = 1, #KEYS do
  local k = KEYS[i]
  if redis.call('HDEL', k, 'r' .. id) == 1 then
    local s = redis.call('HMGET', k, 'f', 'l', 'u', 'h', 's')
    local f, lv, u, h = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0, tonumber(s[4]) or 0
    if s[5] == id then
      lv = lv - 1; f = after - 1; u = 0
      redis.call('HDEL', k, 's')
    elseif f > 0 then
      f = f - 1
    end
    if f == 0 and lv == 0 then
      redis.call('DEL', k)
    else
      -- The last failure still counted: settled, or a pending charge.
      local t = h
      local all = redis.call('HGETALL', k)
      for j = 1, #all, 2 do
        if string.byte(all[j], 1) == 114 then t = math.max(t, tonumber(all[j + 1])) end
      end
      redis.call('HSET', k, 'f', int(f), 'l', int(lv), 'u', int(u), 't', int(t))
    end
  end
end
return 0
`)

func (s *Redis) challengeKey(p Purpose, challenge string) string {
	return s.prefix + "c:" + p.String() + ":" + challenge
}

func (s *Redis) velocityKeys(network string) (global, net string) {
	return s.prefix + "v:g", s.prefix + "v:n:" + network
}

// lockKey keeps keys short and free of client-chosen bytes.
func (s *Redis) lockKey(key string) string {
	if len(key) > 64 {
		sum := sha256.Sum256([]byte(key))
		key = "#" + hex.EncodeToString(sum[:])
	}
	return s.prefix + "l:" + key
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Issue implements Store.
func (s *Redis) Issue(ctx context.Context, op *IssueOp) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	g, n := s.velocityKeys(op.Network)
	p := op.Policy
	ck := s.challengeKey(op.Purpose, op.Challenge)
	res, err := issueScript.Run(ctx, s.client, []string{g, n, ck, s.prefix + "ci"},
		op.Now.UnixMilli(), p.bucket().Milliseconds(), p.Base, p.Ceiling, p.GlobalStep, p.NetworkStep, p.Breaker,
		op.TTL.Milliseconds(), op.Purpose.String(), s.max, s.prefix+"c:", ck[len(s.prefix)+2:]).Int64Slice()
	if err != nil {
		return fmt.Errorf("handoff: redis issue: %w", err)
	}
	if len(res) != 3 && !(len(res) == 4 && res[0] < 0) {
		return errors.New("handoff: redis issue: unexpected reply")
	}
	op.GlobalVelocity, op.NetworkVelocity = res[1], res[2]
	if res[0] < 0 {
		op.Tripped, op.RetryAfter = true, p.retryAfter(op.Now, reply(res, 3))
		return nil
	}
	op.Difficulty = int(res[0])
	return nil
}

// Admit implements Store.
func (s *Redis) Admit(ctx context.Context, op *AdmitOp) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := op.Now.UnixMilli()
	var res []int64
	var err error
	var id uint64
	p := op.policy()
	g, n := s.velocityKeys(op.Network)
	switch op.Purpose {
	case PurposeCreate:
		res, err = admitCreateScript.Run(ctx, s.client, []string{s.challengeKey(op.Purpose, op.Challenge), g, n},
			now, op.Work, p.bucket().Milliseconds(), p.Breaker, ms(velocityTTL(p)),
			p.Base, p.Ceiling, p.GlobalStep, p.NetworkStep).Int64Slice()
	case PurposeClaim:
		keys := make([]string, 3, 3+len(op.LockKeys))
		keys[0], keys[1], keys[2] = s.challengeKey(op.Purpose, op.Challenge), g, n
		for _, k := range op.LockKeys {
			keys = append(keys, s.lockKey(k))
		}
		// Without a lockout, after 0: the keys are checked, never charged.
		after, l := 0, op.Lockout
		if l != nil && len(op.LockKeys) > 0 {
			after = l.After
		} else {
			l = &Lockout{}
		}
		// The id is chosen here and sent with the call; random, so that
		// instances sharing the zone never pick the same. A charge whose
		// reply is lost is never refunded (the claim never reached the
		// backend): it errs toward locking.
		id = rand.Uint64() | 1
		res, err = admitClaimScript.Run(ctx, s.client, keys, now, op.Work, after, ms(l.Base), ms(l.Max), ms(l.Reset),
			p.bucket().Milliseconds(), p.Base, p.Ceiling, p.GlobalStep, p.NetworkStep, strconv.FormatUint(id, 10)).Int64Slice()
		if after == 0 {
			id = 0
		}
	default:
		return fmt.Errorf("handoff: unknown purpose %d", op.Purpose)
	}
	if err != nil {
		return fmt.Errorf("handoff: redis admit: %w", err)
	}
	if len(res) == 0 {
		return errors.New("handoff: redis admit: empty reply")
	}
	switch {
	case res[0] == -2 && len(res) >= 2:
		op.Outcome, op.GlobalVelocity, op.RetryAfter = Tripped, res[1], p.retryAfter(op.Now, reply(res, 2))
	case res[0] == -3 && len(res) == 2:
		op.Outcome, op.RetryAfter = Locked, time.Duration(res[1])*time.Millisecond
	case res[0] == -1:
		op.Outcome = Refused
		op.LockStarted = len(res) == 2 && res[1] == 1
	case res[0] >= 0 && op.Purpose == PurposeCreate:
		op.Outcome, op.Difficulty = Admitted, int(res[0])
		if len(res) == 2 {
			op.GlobalVelocity = res[1]
		}
	case res[0] >= 0 && len(res) == 2:
		op.Outcome, op.Difficulty, op.LockStarted = Admitted, int(res[0]), res[1] == 1
		op.Charge.id = id
	default:
		return errors.New("handoff: redis admit: unexpected reply")
	}
	return nil
}

// AdmitExempt implements Store.
func (s *Redis) AdmitExempt(ctx context.Context, op *ExemptOp) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	g, n := s.velocityKeys(op.Network)
	p := op.Policy
	res, err := admitExemptScript.Run(ctx, s.client, []string{g, n},
		op.Now.UnixMilli(), p.bucket().Milliseconds(), p.Breaker, ms(velocityTTL(p))).Int64Slice()
	if err != nil {
		return fmt.Errorf("handoff: redis admit exempt: %w", err)
	}
	switch {
	case len(res) < 2:
		return errors.New("handoff: redis admit exempt: unexpected reply")
	case res[0] == -2:
		op.Outcome, op.GlobalVelocity, op.RetryAfter = Tripped, res[1], p.retryAfter(op.Now, reply(res, 2))
	default:
		op.Outcome, op.GlobalVelocity = Admitted, res[1]
	}
	return nil
}

// Refund implements Store.
func (s *Redis) Refund(ctx context.Context, op *AdmitOp) error {
	id := op.Charge.id
	if op.Purpose != PurposeClaim || op.Outcome != Admitted || op.Lockout == nil || id == 0 || len(op.LockKeys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys := make([]string, len(op.LockKeys))
	for i, k := range op.LockKeys {
		keys[i] = s.lockKey(k)
	}
	if err := refundScript.Run(ctx, s.client, keys, op.Lockout.After, strconv.FormatUint(id, 10)).Err(); err != nil {
		return fmt.Errorf("handoff: redis refund: %w", err)
	}
	op.Charge.id = 0
	return nil
}

// reply is res[i], 0 when the reply is shorter.
func reply(res []int64, i int) int64 {
	if i < len(res) {
		return res[i]
	}
	return 0
}

// velocityTTL keeps velocity keys a little longer than their window.
func velocityTTL(p *Difficulty) time.Duration {
	return p.bucket()*(VelocityBuckets+1) + time.Second
}

var _ Store = (*Redis)(nil)
