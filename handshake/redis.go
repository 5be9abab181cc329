package handshake

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// RedisStore keeps sessions in Redis, so they outlive a process and span
// instances. A session is a hash (its record, its values as
// "<by> <at> <json>", its TTL and its byte count) plus a change list
// capped at MaxChanges, both under the session's hash tag (Redis Cluster keeps them
// on one node) and renewed together by every use. Each operation is one
// Lua script, so one round trip, atomic: two agents, or an agent and the
// user, racing on one field end in a state the protection rules allow.
//
// WebSocket frames are published from inside the scripts on one channel
// per zone, in the order the scripts ran; every instance holds one
// subscription to it and delivers the frames to its own sockets.
type RedisStore struct {
	// MaxSessionBytes bounds the bytes one session's keys, values and
	// change log hold, counted as the memory store counts them (0 or
	// less: no bound): one client creating sessions at create_rate must
	// not fill the Redis every instance and the rate limiter share.
	// Set it before use.
	MaxSessionBytes int

	client  redis.UniversalClient
	prefix  string // "hpp:<zone>:"
	channel string
	timeout time.Duration
	hub     *Hub
	ps      *redis.PubSub
	done    chan struct{}
	once    sync.Once
}

// RedisOptions configures a RedisStore.
type RedisOptions struct {
	// Zone namespaces keys and the channel: sites sharing a Redis need
	// their own; instances of one site must share it.
	Zone string
	// Timeout bounds each operation (default 1s).
	Timeout time.Duration
	// MaxSessionBytes: see RedisStore (0: DefaultSessionBytes; less: no
	// bound).
	MaxSessionBytes int
}

// NewRedisStore starts a store over client, with its hub and its
// subscription. It waits up to the timeout for the subscription to be
// confirmed; a Redis that is down then is retried in the background.
func NewRedisStore(client redis.UniversalClient, opts RedisOptions) *RedisStore {
	if opts.Zone == "" {
		opts.Zone = "default"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxSessionBytes == 0 {
		opts.MaxSessionBytes = DefaultSessionBytes
	}
	s := &RedisStore{MaxSessionBytes: opts.MaxSessionBytes, client: client, prefix: "hpp:" + opts.Zone + ":", timeout: opts.Timeout, hub: NewHub(), done: make(chan struct{})}
	s.channel = s.prefix + "events"
	s.hub.remaining = s.Remaining
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	s.ps = client.Subscribe(ctx, s.channel)
	_, _ = s.ps.Receive(ctx) // the subscription confirmation
	cancel()
	ch := s.ps.Channel(redis.WithChannelSize(1024))
	go func() {
		defer close(s.done)
		for m := range ch {
			s.hub.Deliver([]byte(m.Payload))
		}
	}()
	return s
}

func (s *RedisStore) Hub() *Hub { return s.hub }

func (s *RedisStore) Close() error {
	s.once.Do(func() {
		_ = s.ps.Close()
		<-s.done
		_ = s.hub.Close()
	})
	return nil
}

func (s *RedisStore) keys(sid string) []string {
	h := s.prefix + "{" + sid + "}"
	return []string{h, h + ":c"}
}

func (s *RedisStore) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (s *RedisStore) Create(parent context.Context, rec *Record, initial *State, ttl time.Duration) error {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	k := s.keys(rec.ID)
	secs := int64(ttl / time.Second)
	fields := []any{
		"tok", hex.EncodeToString(rec.TokenHash[:]), "mode", rec.Mode, "form", b2s(rec.Form),
		"schema", string(rec.Schema.Raw), "meta", string(rec.Meta), "owner", rec.Owner, "ttl", secs,
	}
	if rec.Bound {
		fields = append(fields, "bind", hex.EncodeToString(rec.Binding[:]))
	}
	if len(rec.Extra) > 0 {
		xk, _ := json.Marshal(rec.Extra)
		fields = append(fields, "xk", string(xk))
	}
	n, size := 0, 0
	if initial != nil {
		for k, e := range initial.Values {
			fields = append(fields, "f:"+k, e.By+" "+strconv.FormatInt(e.At, 10)+" "+string(e.Value))
			n++
			size += len(k) + len(e.Value)
		}
		for k, v := range initial.Data {
			fields = append(fields, "d:"+k, string(v))
			n++
			size += len(k) + len(v)
		}
	}
	if b := s.MaxSessionBytes; b > 0 && size > b {
		return ErrSessionFull // a body_limit past the budget
	}
	// The byte count (luaBudget) starts with the values and no change.
	fields = append(fields, "n", n, "vb", size, "lb", 0, "lc", "", "lt", "")
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k[0], fields...)
		p.Expire(ctx, k[0], time.Duration(secs)*time.Second)
		return nil
	})
	return err
}

// errNoExpiry: a session's hash has no TTL (none of our scripts leaves
// one so); the hub asks again later rather than end it.
var errNoExpiry = errors.New("handshake: session has no expiry in Redis")

// Remaining is the session's PTTL: Redis's clock decides, not this
// instance's, in one round trip that renews nothing.
func (s *RedisStore) Remaining(parent context.Context, sid string) (time.Duration, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	d, err := s.client.PTTL(ctx, s.keys(sid)[0]).Result()
	switch {
	case err != nil:
		return 0, err
	case d == -2: // go-redis passes Redis's "no such key" through as is
		return 0, ErrNotFound
	case d < 0:
		return 0, errNoExpiry
	}
	return d, nil
}

func (s *RedisStore) Lookup(parent context.Context, sid string) (*Record, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	v, err := s.client.HMGet(ctx, s.keys(sid)[0], "tok", "mode", "form", "schema", "meta", "owner", "bind", "xk").Result()
	if err != nil {
		return nil, err
	}
	str := func(i int) string {
		x, _ := v[i].(string)
		return x
	}
	if str(0) == "" {
		return nil, ErrNotFound
	}
	rec := &Record{ID: sid, Mode: str(1), Form: str(2) == "1", Meta: json.RawMessage(str(4)), Owner: str(5)}
	if !decodeHash(&rec.TokenHash, str(0)) {
		return nil, fmt.Errorf("handshake: session %s has a malformed token hash", sid)
	}
	if b := str(6); b != "" {
		// A binding that cannot be read fails the session, rather than
		// leaving it open to every browser.
		if !decodeHash(&rec.Binding, b) {
			return nil, fmt.Errorf("handshake: session %s has a malformed browser binding", sid)
		}
		rec.Bound = true
	}
	if rec.Schema, err = ParseSchema(json.RawMessage(str(3))); err != nil {
		return nil, fmt.Errorf("handshake: session %s has a malformed schema: %v", sid, err)
	}
	// xk: absent in sessions an older instance created (none then).
	if xk := str(7); xk != "" {
		if err := json.Unmarshal([]byte(xk), &rec.Extra); err != nil {
			return nil, fmt.Errorf("handshake: session %s has malformed extra keys: %v", sid, err)
		}
	}
	if len(rec.Meta) == 0 {
		rec.Meta = json.RawMessage("{}")
	}
	return rec, nil
}

// decodeHash reads a SHA-256 written as hex. The length is checked first:
// hex.Decode writes past dst for a longer value, and a record of another
// shape must be an error, not a panic (Lookup also runs in the sockets'
// heartbeat, where a panic ends the process).
func decodeHash(dst *[32]byte, s string) bool {
	if len(s) != hex.EncodedLen(len(dst)) {
		return false
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err == nil
}

// Scripts. Times come from the Redis server's clock (TIME), so instances
// with skewed clocks agree on the order of changes; they are Unix
// microseconds built as strings (Lua numbers would print 1.7e+15).
const luaNow = `
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
`

// renew: both keys live ttl seconds from now.
const luaRenew = `
local function renew(ttl)
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
`

// values returns the value fields (f: or d:) of the hash, flattened.
const luaValues = `
local function values(form)
  local all = redis.call('HGETALL', KEYS[1])
  local p = form and 'f:' or 'd:'
  local out = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == p then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
  return out
end
`

// luaBudget keeps a session's byte budget in its hash, counted as the
// memory store counts it: vb, the bytes of its keys and values; lb, the
// key and replaced value of each kept change, whose costs lc lists
// oldest first (so forgetting one needs no parsing); lt, the time of the
// newest change, which tells a change list that a writer without these
// fields touched since. Such a session (an older version's) is counted
// once, its kept changes at their whole length (a bound: they hold more
// than their key and replaced value). Needs luaNow.
const luaBudget = `
local vb, lb, costs, first, last, lt, recounted = 0, 0, {}, 1, 0, '', false
local function loadBudget()
  local f = redis.call('HMGET', KEYS[1], 'vb', 'lb', 'lc', 'lt')
  local n = redis.call('LLEN', KEYS[2])
  local ok = f[1] and f[2] and f[3] and f[4]
  if ok then
    for c in string.gmatch(f[3], '%d+') do
      last = last + 1
      costs[last] = tonumber(c)
    end
    ok = last == n
    if ok and n > 0 then
      local e = redis.call('LINDEX', KEYS[2], -1)
      ok = string.sub(e, 1, #f[4] + 2) == '[' .. f[4] .. ','
    end
  end
  if ok then
    vb, lb, lt = tonumber(f[1]), tonumber(f[2]), f[4]
    return
  end
  recounted = true
  vb, lb, costs, last, lt = 0, 0, {}, 0, ''
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local p = string.sub(all[i], 1, 2)
    if p == 'f:' then
      local val = string.match(all[i + 1], '^%S+ %d+ (.*)$') or all[i + 1]
      vb = vb + #all[i] - 2 + #val
    elseif p == 'd:' then
      vb = vb + #all[i] - 2 + #all[i + 1]
    end
  end
  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    last = last + 1
    costs[last] = #e
    lb = lb + #e
    lt = string.match(e, '^%[(%d+),') or ''
  end
end
local function forget()
  redis.call('LPOP', KEYS[2])
  lb = lb - costs[first]
  first = first + 1
end
-- fits makes room within budget (0 or less: none) for a write that
-- replaces was bytes of value by is (its key's included when new) and
-- logs a change of cost bytes, forgetting the oldest changes; false,
-- changing nothing, when it would not fit even with no change kept.
local function fits(budget, was, is, cost)
  if budget <= 0 then return true end
  local values = vb - was + is
  if values + cost > budget then return false end
  while first <= last and values + lb + cost > budget do forget() end
  return true
end
-- record logs a change of cost bytes after a write that grew the values
-- by grow bytes, forgetting the oldest change past maxChanges.
local function record(entry, cost, grow, maxChanges)
  redis.call('RPUSH', KEYS[2], entry)
  last = last + 1
  costs[last] = cost
  lb = lb + cost
  vb = vb + grow
  lt = now
  if last - first + 1 > maxChanges then forget() end
end
local function saveBudget()
  redis.call('HSET', KEYS[1], 'vb', vb, 'lb', lb, 'lc', table.concat(costs, ' ', first, last), 'lt', lt)
end
`

var stateScript = redis.NewScript(luaRenew + luaValues + `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
renew(ttl)
local out = values(ARGV[1] == '1')
table.insert(out, 1, ttl)
return out
`)

// applyScript: ARGV = channel, sid, form, stream, intervalMs, maxChanges,
// maxFields, budget, nRequired, (key, keyJSON) * nRequired, nWrites,
// (key, keyJSON, valueJSON, preRejected) * nWrites. Returns
// {outcomes, ttl, values...} with one outcome letter per write:
// a(pplied), r(ejected), t(oo many fields), l(arge: past the budget).
var applyScript = redis.NewScript(luaNow + luaRenew + luaValues + luaBudget + `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
local form = ARGV[3] == '1'
local stream = ARGV[4] == '1'
local maxChanges = tonumber(ARGV[6])
local maxFields = tonumber(ARGV[7])
local budget = tonumber(ARGV[8])
local nreq = tonumber(ARGV[9])
local i = 10 + 2 * nreq
local nw = tonumber(ARGV[i])
i = i + 1
loadBudget()
local nkeys = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local out, frames, rejected, applied, cleared = {}, {}, {}, 0, 0
local prefix = form and 'f:' or 'd:'
local by = form and 'ai' or 'agent'
for w = 1, nw do
  local key, kj, v, pre = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if pre == '1' then
    out[w] = 'r'
    rejected[#rejected + 1] = kj
  else
    local old = redis.call('HGET', KEYS[1], prefix .. key)
    if not old and nkeys >= maxFields then
      out[w] = 't'
    else
      local from, mine = 'null', false
      if old then
        if form then
          local oby, oat, oval = string.match(old, '^(%S+) (%d+) (.*)$')
          mine = (oby == 'user' or oby == 'user_edit')
          from = oval or 'null'
        else
          from = old
        end
      end
      local was, is = 0, #v
      if old then was = #from else is = is + #key end
      if mine then
        out[w] = 'r'
        rejected[#rejected + 1] = kj
      elseif not fits(budget, was, is, #key + #from) then
        out[w] = 'l'
      else
        if not old then nkeys = nkeys + 1 end
        if form then
          redis.call('HSET', KEYS[1], prefix .. key, 'ai ' .. now .. ' ' .. v)
        else
          redis.call('HSET', KEYS[1], prefix .. key, v)
        end
        record('[' .. now .. ',"' .. by .. '",' .. kj .. ',' .. from .. ',' .. v .. ']', #key + #from, is - was, maxChanges)
        out[w] = 'a'
        applied = applied + 1
        if v == 'null' then cleared = cleared + 1 end
        if stream then
          frames[#frames + 1] = '{"type":"action","key":' .. kj .. ',"value":' .. v .. '}'
        end
      end
    end
  end
end
local missing = {}
if form then
  for r = 0, nreq - 1 do
    local e = redis.call('HGET', KEYS[1], 'f:' .. ARGV[10 + 2 * r])
    local val = e and string.match(e, '^%S+ %d+ (.*)$')
    if not val or val == 'null' or val == '""' or val == '[]' or val == '{}' then
      missing[#missing + 1] = ARGV[11 + 2 * r]
    end
  end
end
redis.call('HSET', KEYS[1], 'n', nkeys)
saveBudget()
renew(ttl)
frames[#frames + 1] = '{"type":"done","applied":' .. applied .. ',"cleared":' .. cleared .. ',"rejected":[' .. table.concat(rejected, ',') ..
  '],"missing":[' .. table.concat(missing, ',') .. ']}'
local interval = stream and ARGV[5] or '0'
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n' .. interval .. '\n' .. table.concat(frames, '\n'))
local res = form and values(true) or {}
table.insert(res, 1, ttl)
table.insert(res, 1, table.concat(out))
return res
`)

// notifyScript: ARGV = form, key, keyJSON, valueJSON, maxFields,
// maxChanges, budget. Returns 'ok', 'full' (too many fields) or 'large'
// (past the budget).
var notifyScript = redis.NewScript(luaNow + luaRenew + luaBudget + `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
local form = ARGV[1] == '1'
local key, v = ARGV[2], ARGV[4]
local field = (form and 'f:' or 'd:') .. key
local old = redis.call('HGET', KEYS[1], field)
if not old and tonumber(redis.call('HGET', KEYS[1], 'n') or '0') >= tonumber(ARGV[5]) then return 'full' end
local by, from = 'user', 'null'
if old then
  if form then
    local oby, oat, oval = string.match(old, '^(%S+) (%d+) (.*)$')
    if oby == 'ai' then by = 'user_edit' end
    from = oval or 'null'
  else
    from = old
  end
end
loadBudget()
local was, is = 0, #v
if old then was = #from else is = is + #key end
if not fits(tonumber(ARGV[7]), was, is, #key + #from) then
  if recounted then saveBudget() end
  return 'large'
end
if not old then redis.call('HINCRBY', KEYS[1], 'n', 1) end
if form then
  redis.call('HSET', KEYS[1], field, by .. ' ' .. now .. ' ' .. v)
else
  redis.call('HSET', KEYS[1], field, v)
end
record('[' .. now .. ',"' .. by .. '",' .. ARGV[3] .. ',' .. from .. ',' .. v .. ']', #key + #from, is - was, tonumber(ARGV[6]))
saveBudget()
renew(ttl)
return 'ok'
`)

var changesScript = redis.NewScript(luaRenew + `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
renew(ttl)
local out = redis.call('LRANGE', KEYS[2], 0, -1)
table.insert(out, 1, ttl)
return out
`)

// extendScript: ARGV = channel, sid, extra, limit (seconds). Returns the
// new TTL, or -1-TTL (the TTL unchanged) when it would pass the limit.
var extendScript = redis.NewScript(luaRenew + `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
local nt = tonumber(ttl) + tonumber(ARGV[3])
if tonumber(ARGV[4]) > 0 and nt > tonumber(ARGV[4]) then return -1 - tonumber(ttl) end
redis.call('HSET', KEYS[1], 'ttl', nt)
renew(nt)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n0\n{"type":"extended","expiresIn":' .. nt .. '}')
return nt
`)

func (s *RedisStore) run(parent context.Context, sc *redis.Script, sid string, args ...any) (any, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	v, err := sc.Run(ctx, s.client, s.keys(sid), args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return v, err
}

// state builds a State from a script's {ttl, field, value, ...} tail.
func (s *RedisStore) state(rec *Record, ttl any, flat []any) (*State, error) {
	st := &State{}
	st.ExpiresIn, _ = strconv.ParseInt(fmt.Sprint(ttl), 10, 64)
	keys := make([]string, 0, len(flat)/2)
	if rec.Form {
		st.Values = make(map[string]Entry, len(flat)/2)
	} else {
		st.Data = make(map[string]json.RawMessage, len(flat)/2)
	}
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		key := f[2:]
		keys = append(keys, key)
		if rec.Form {
			e, err := parseEntry(v)
			if err != nil {
				return nil, fmt.Errorf("handshake: session %s field %q: %v", rec.ID, key, err)
			}
			st.Values[key] = e
		} else {
			st.Data[key] = json.RawMessage(v)
		}
	}
	st.Keys = orderKeys(rec.Schema, keys)
	return st, nil
}

func parseEntry(v string) (Entry, error) {
	by, rest, ok1 := strings.Cut(v, " ")
	at, val, ok2 := strings.Cut(rest, " ")
	us, err := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return Entry{}, errors.New("malformed entry")
	}
	return Entry{Value: json.RawMessage(val), By: by, At: us}, nil
}

func (s *RedisStore) State(ctx context.Context, rec *Record) (*State, error) {
	v, err := s.run(ctx, stateScript, rec.ID, b2s(rec.Form))
	if err != nil {
		return nil, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return nil, ErrNotFound
	}
	return s.state(rec, a[0], a[1:])
}

func (s *RedisStore) Apply(ctx context.Context, rec *Record, b *Batch) (*State, error) {
	args := make([]any, 0, 11+2*len(b.Required)+4*len(b.Writes))
	args = append(args, s.channel, rec.ID, b2s(rec.Form), b2s(b.Stream), b.Interval.Milliseconds(), MaxChanges, MaxFields, s.MaxSessionBytes, len(b.Required))
	for _, k := range b.Required {
		args = append(args, k, string(jsonstr.AppendString(nil, k)))
	}
	args = append(args, len(b.Writes))
	for _, w := range b.Writes {
		args = append(args, w.Key, string(jsonstr.AppendString(nil, w.Key)), string(w.Value), b2s(w.Outcome == Rejected))
	}
	v, err := s.run(ctx, applyScript, rec.ID, args...)
	if err != nil {
		return nil, err
	}
	a, _ := v.([]any)
	if len(a) < 2 {
		return nil, fmt.Errorf("handshake: unexpected apply reply %v", v)
	}
	outcomes, _ := a[0].(string)
	if len(outcomes) != len(b.Writes) {
		return nil, fmt.Errorf("handshake: apply reply has %d outcomes for %d writes", len(outcomes), len(b.Writes))
	}
	for i := range b.Writes {
		switch outcomes[i] {
		case 'a':
			b.Writes[i].Outcome = Applied
		case 'r':
			b.Writes[i].Outcome = Rejected
		case 't':
			b.Writes[i].Outcome = TooMany
		case 'l':
			b.Writes[i].Outcome = TooLarge
		}
	}
	return s.state(rec, a[1], a[2:])
}

func (s *RedisStore) Notify(ctx context.Context, rec *Record, key string, value json.RawMessage) error {
	v, err := s.run(ctx, notifyScript, rec.ID, b2s(rec.Form), key, string(jsonstr.AppendString(nil, key)), string(value), MaxFields, MaxChanges, s.MaxSessionBytes)
	if err != nil {
		return err
	}
	switch v {
	case "full":
		return ErrTooManyFields
	case "large":
		return ErrSessionFull
	}
	return nil
}

func (s *RedisStore) Changes(ctx context.Context, rec *Record) ([]Change, int64, error) {
	v, err := s.run(ctx, changesScript, rec.ID)
	if err != nil {
		return nil, 0, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return nil, 0, ErrNotFound
	}
	ttl, _ := strconv.ParseInt(fmt.Sprint(a[0]), 10, 64)
	out := make([]Change, 0, len(a)-1)
	for _, e := range a[1:] {
		str, _ := e.(string)
		var parts []json.RawMessage
		if json.Unmarshal([]byte(str), &parts) != nil || len(parts) != 5 {
			continue
		}
		var c Change
		if json.Unmarshal(parts[0], &c.At) != nil || json.Unmarshal(parts[1], &c.By) != nil || json.Unmarshal(parts[2], &c.Key) != nil {
			continue
		}
		c.From, c.To = parts[3], parts[4]
		out = append(out, c)
	}
	return out, ttl, nil
}

func (s *RedisStore) Extend(ctx context.Context, rec *Record, extra, limit time.Duration) (int64, bool, error) {
	v, err := s.run(ctx, extendScript, rec.ID, s.channel, rec.ID, int64(extra/time.Second), int64(limit/time.Second))
	if err != nil {
		return 0, false, err
	}
	n, _ := v.(int64)
	if n < 0 {
		return -1 - n, false, nil
	}
	return n, true, nil
}
