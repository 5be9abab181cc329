package handshake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/logthrottle"
)

// MemoryStore keeps sessions in this process: the default, for one
// instance. caddymodule keeps it in a usage pool, so sessions and sockets
// survive `caddy reload`; they do not survive a restart.
type MemoryStore struct {
	// MaxSessions bounds the sessions held (default 10,000); Create
	// answers ErrFull beyond it.
	MaxSessions int
	// MaxPerClient bounds the live sessions one client (Record.Client: an
	// IP address, an IPv6 /64) holds (default 1000, a tenth of the default
	// MaxSessions), so that one client cannot fill the store and lock
	// every other user out; Create answers ErrFull beyond it.
	MaxPerClient int
	// MaxPerNetwork bounds the live sessions of one network (an IPv4 /24,
	// an IPv6 /48: what one customer or site usually holds; default 2000,
	// twice MaxPerClient), so that rotating through the /64s of a /56 or
	// the addresses of a /24 cannot fill the store either; Create answers
	// ErrFull beyond it.
	MaxPerNetwork int
	// MaxSessionBytes bounds the bytes one session's keys, values and
	// change log hold (default DefaultSessionBytes; 0 or less: no
	// bound), which the field caps alone bound only at MaxFields ×
	// MaxValueLen of values plus MaxChanges changes of two such values
	// each (about 10 MB): past it the oldest changes are forgotten, and
	// a write that does not fit even so is refused (ErrSessionFull).
	MaxSessionBytes int

	// maxBytes bounds bytes, the store-wide count (SetMaxBytes).
	maxBytes atomic.Int64
	// bytes is what maxBytes bounds: every held session's counted bytes
	// (sessionBytes). Atomic rather than under mu: writes hold only their
	// session's lock, and each costs one atomic operation.
	bytes atomic.Int64
	log   atomic.Pointer[zap.Logger]
	// fullLog throttles the warning about refusals for maxBytes.
	fullLog logthrottle.Throttle

	now      func() time.Time
	hub      *Hub
	mu       sync.RWMutex
	m        map[string]*memSession
	clients  map[string]int       // sessions held per Record.Client
	networks map[netip.Prefix]int // sessions held per network of Record.Client
	// nextExpiry is no later than the earliest expiry of the sessions held
	// (expiries only move later): before it, a sweep frees nothing, so a
	// refused Create costs no sweep.
	nextExpiry time.Time
	sweeps     int // sweeps done (tests)
	stop       chan struct{}
	done       chan struct{}
}

// DefaultSessionBytes is MaxSessionBytes's default: a form's values are
// a few KB; 256 KiB is sixteen full 16 KiB textareas. With the record
// and bookkeeping around it a session holds at most about 600 KB
// (docs/handshake-prompt.md): the store's 10,000 could hold about 6 GB
// but for DefaultMaxBytes.
const DefaultSessionBytes = 256 << 10

// DefaultMaxBytes is the store-wide bound's default (SetMaxBytes). The
// Go heap a session holds is at most about 1.4 times its counted bytes
// (measured: a 64 KB creation, then filled with tiny or with full
// values), plus about 3 KB of an idle session that MaxSessions bounds,
// so 128 MiB is at most about 220 MB of live heap and, with the garbage
// collector's default headroom (GOGC=100), about 450 MB of heap: Caddy
// on a 1 GB VM survives a flood from any number of networks (256 MiB
// would take it to about 900 MB). Real use is far below it: a usual
// form's session, filled, counts about 500 bytes, 10,000 of them 5 MB.
// Each zone's store has its own bound.
const DefaultMaxBytes = 128 << 20

// Networks counted by MaxPerNetwork.
const (
	networkBitsIPv4 = 24
	networkBitsIPv6 = 48
)

// networkOf is the network of a Record.Client (an address or a prefix such
// as an IPv6 /64); ok is false for a client that is no IP address.
func networkOf(client string) (netip.Prefix, bool) {
	var addr netip.Addr
	if strings.IndexByte(client, '/') >= 0 {
		p, err := netip.ParsePrefix(client)
		if err != nil {
			return netip.Prefix{}, false
		}
		addr = p.Addr()
	} else {
		a, err := netip.ParseAddr(client)
		if err != nil {
			return netip.Prefix{}, false
		}
		addr = a
	}
	addr = addr.Unmap()
	bits := networkBitsIPv6
	if addr.Is4() {
		bits = networkBitsIPv4
	}
	p, err := addr.Prefix(bits)
	return p, err == nil
}

type memSession struct {
	rec *Record

	mu      sync.Mutex
	ttl     time.Duration
	expires time.Time
	values  map[string]Entry
	data    map[string]json.RawMessage
	order   []string // keys in the order they appeared
	sorted  []string // order in answer order (orderKeys), nil when stale
	// changes is a ring of at most MaxChanges: n of them, oldest at
	// first. It is shortened from the oldest when the session's bytes
	// would be over its budget.
	changes []Change
	first   int
	n       int
	// valueBytes and logBytes are what MaxSessionBytes counts: the bytes
	// of the keys and values held, and of the changes' keys and From
	// values. A
	// change's To is the key's value, or the From of a later change of
	// the key, which the ring keeps as long as it keeps this one: every
	// value the session holds is counted, once or more.
	valueBytes, logBytes int
	// recordBytes are the record's own (schema, meta, ids), fixed at
	// creation: counted by the store's bound (a 64 KB creation holds
	// over 100 KB of record and no value), not by MaxSessionBytes.
	recordBytes int
}

// sessionBytes is what the session counts toward the store's bound;
// ms.mu is held.
func (ms *memSession) sessionBytes() int { return ms.valueBytes + ms.logBytes + ms.recordBytes }

// recordBytes is the bytes of a record the store's bound counts: what
// its fields hold beyond their fixed size.
func recordBytes(rec *Record) int {
	n := len(rec.ID) + len(rec.Mode) + len(rec.Meta) + len(rec.Owner) + len(rec.Client)
	for _, k := range rec.Extra {
		n += len(k)
	}
	if sc := rec.Schema; sc != nil {
		n += len(sc.Raw)
		for i := range sc.Fields {
			f := &sc.Fields[i]
			n += len(f.Key) + len(f.Type) + len(f.options) + 4*len(f.sorted)
		}
	}
	return n
}

// NewMemoryStore starts a memory store with its hub and an expiry sweep.
func NewMemoryStore() *MemoryStore {
	s := &MemoryStore{MaxSessions: 10000, MaxPerClient: 1000, MaxPerNetwork: 2000, MaxSessionBytes: DefaultSessionBytes, now: time.Now, hub: NewHub(), m: map[string]*memSession{},
		clients: map[string]int{}, networks: map[netip.Prefix]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.maxBytes.Store(DefaultMaxBytes)
	s.log.Store(zap.NewNop())
	s.hub.remaining = s.Remaining
	go s.sweep()
	return s
}

// SetMaxBytes bounds the bytes of all the store's sessions together
// (default DefaultMaxBytes; 0 or less: no bound): the sum of every
// session's MaxSessionBytes count (keys, values, the changes' keys and
// From values) and its record (schema, meta). Past it Create answers
// ErrFull and a write that would grow a session is refused as
// MaxSessionBytes refuses it (ErrSessionFull; an action's TooLarge),
// once forgetting the session's own oldest changes does not make room.
// It may be called on a store in use (a reload's new configuration):
// lowering it below what is held refuses growth until sessions expire.
func (s *MemoryStore) SetMaxBytes(n int64) { s.maxBytes.Store(n) }

// MaxBytes is the store-wide bound (SetMaxBytes).
func (s *MemoryStore) MaxBytes() int64 { return s.maxBytes.Load() }

// Bytes is what SetMaxBytes bounds: the bytes the sessions held count,
// expired ones not yet swept included.
func (s *MemoryStore) Bytes() int64 { return s.bytes.Load() }

// SetLogger is where the store warns that MaxBytes refuses sessions or
// writes (at most once a minute); nil: nowhere. Safe on a store in use.
func (s *MemoryStore) SetLogger(l *zap.Logger) {
	if l == nil {
		l = zap.NewNop()
	}
	s.log.Store(l)
}

// fullLogEvery is how often refusals for MaxBytes are logged: a full
// store refuses every creation, and each must not be a log line.
const fullLogEvery = time.Minute

// reserve adds n > 0 bytes to the store's count unless that takes it past
// MaxBytes.
func (s *MemoryStore) reserve(n int64) bool {
	limit := s.maxBytes.Load()
	for {
		held := s.bytes.Load()
		if limit > 0 && held+n > limit {
			return false
		}
		if s.bytes.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

// refusedForBytes tells the operator, at most once per fullLogEvery, why
// users see "too many sessions" or "too much data in the session".
func (s *MemoryStore) refusedForBytes(what string) {
	if n, ok := s.fullLog.Allow(s.now(), fullLogEvery); ok {
		s.log.Load().Warn("handshake: the memory store holds its max_bytes; "+what+" refused until sessions expire (raise store memory max_bytes if real users reach it)",
			zap.Int64("max_bytes", s.maxBytes.Load()), zap.Int64("held_bytes", s.bytes.Load()), zap.Int("suppressed", n))
	}
}

// SetClock replaces the store's clock (tests).
func (s *MemoryStore) SetClock(now func() time.Time) { s.now = now; s.hub.now = now }

func (s *MemoryStore) Hub() *Hub { return s.hub }

// Len is the number of sessions held, expired ones not yet swept included.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

func (s *MemoryStore) sweep() {
	defer close(s.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep forgets expired sessions.
func (s *MemoryStore) Sweep() {
	s.mu.Lock()
	s.sweepLocked(s.now())
	s.mu.Unlock()
}

// sweepLocked forgets expired sessions and notes when the next one
// expires; s.mu is held.
func (s *MemoryStore) sweepLocked(now time.Time) {
	var next time.Time
	s.sweeps++
	for id, ms := range s.m {
		ms.mu.Lock()
		expires := ms.expires
		if now.Before(expires) {
			ms.mu.Unlock()
			if next.IsZero() || expires.Before(next) {
				next = expires
			}
			continue
		}
		// Released under the session's lock, and the session made
		// expired for every clock: a write that found it before the
		// sweep finds it gone, and cannot count bytes no longer held.
		s.bytes.Add(-int64(ms.sessionBytes()))
		ms.expires = time.Time{}
		ms.mu.Unlock()
		delete(s.m, id)
		if c := ms.rec.Client; c != "" {
			if s.clients[c]--; s.clients[c] <= 0 {
				delete(s.clients, c)
			}
			if n, ok := networkOf(c); ok {
				if s.networks[n]--; s.networks[n] <= 0 {
					delete(s.networks, n)
				}
			}
		}
	}
	s.nextExpiry = next
}

// errBytesFull: the memory store holds MaxBytes.
var errBytesFull = fmt.Errorf("%w: the store holds its max_bytes", ErrFull)

// fullLocked says why Create must refuse (nil: there is room); s.mu is held.
func (s *MemoryStore) fullLocked(client string, network netip.Prefix, hasNetwork bool) error {
	switch {
	case len(s.m) >= s.MaxSessions:
		return ErrFull
	case client != "" && s.MaxPerClient > 0 && s.clients[client] >= s.MaxPerClient:
		return errClientFull
	case hasNetwork && s.MaxPerNetwork > 0 && s.networks[network] >= s.MaxPerNetwork:
		return errNetworkFull
	}
	return nil
}

func (s *MemoryStore) Create(_ context.Context, rec *Record, initial *State, ttl time.Duration) error {
	ms := &memSession{rec: rec, ttl: ttl, expires: s.now().Add(ttl), values: map[string]Entry{}, data: map[string]json.RawMessage{}}
	if initial != nil {
		ms.order = append(ms.order, initial.Keys...)
		for k, v := range initial.Values {
			v.Value = keep(v.Value)
			ms.values[k] = v
			ms.valueBytes += len(k) + len(v.Value)
		}
		for k, v := range initial.Data {
			ms.data[k] = keep(v)
			ms.valueBytes += len(k) + len(v)
		}
	}
	if b := s.MaxSessionBytes; b > 0 && ms.valueBytes > b {
		return ErrSessionFull // a body_limit past the budget
	}
	ms.recordBytes = recordBytes(rec)
	need := int64(ms.sessionBytes())
	client := rec.Client
	network, hasNetwork := networkOf(client)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fullLocked(client, network, hasNetwork); err != nil {
		// Expired sessions go first; until the next one expires a sweep
		// frees nothing, so a flood of refused creations costs no sweep.
		if s.nextExpiry.IsZero() || now.Before(s.nextExpiry) {
			return err
		}
		s.sweepLocked(now)
		if err := s.fullLocked(client, network, hasNetwork); err != nil {
			return err
		}
	}
	if !s.reserve(need) {
		swept := false
		if !s.nextExpiry.IsZero() && !now.Before(s.nextExpiry) {
			s.sweepLocked(now)
			swept = s.reserve(need)
		}
		if !swept {
			s.refusedForBytes("new sessions")
			return errBytesFull
		}
	}
	s.m[rec.ID] = ms
	if s.nextExpiry.IsZero() || ms.expires.Before(s.nextExpiry) {
		s.nextExpiry = ms.expires
	}
	if client != "" {
		s.clients[client]++
		if hasNetwork {
			s.networks[network]++
		}
	}
	return nil
}

// get returns the live session, locked; callers unlock.
func (s *MemoryStore) get(sid string) (*memSession, error) {
	s.mu.RLock()
	ms := s.m[sid]
	s.mu.RUnlock()
	if ms == nil {
		return nil, ErrNotFound
	}
	ms.mu.Lock()
	if !s.now().Before(ms.expires) {
		ms.mu.Unlock()
		return nil, ErrNotFound
	}
	return ms, nil
}

func (s *MemoryStore) Lookup(_ context.Context, sid string) (*Record, error) {
	ms, err := s.get(sid)
	if err != nil {
		return nil, err
	}
	ms.mu.Unlock()
	return ms.rec, nil
}

func (s *MemoryStore) Remaining(_ context.Context, sid string) (time.Duration, error) {
	ms, err := s.get(sid)
	if err != nil {
		return 0, err
	}
	defer ms.mu.Unlock()
	return ms.expires.Sub(s.now()), nil
}

func (ms *memSession) touch(now time.Time) { ms.expires = now.Add(ms.ttl) }

func (ms *memSession) expiresIn(now time.Time) int64 {
	return max(0, int64(ms.expires.Sub(now)/time.Second))
}

// snapshot copies the state (the maps are the session's; callers may keep
// the copy after unlocking). Values are immutable byte slices, shared.
func (ms *memSession) snapshot(now time.Time) *State {
	st := &State{ExpiresIn: ms.expiresIn(now)}
	if ms.sorted == nil {
		ms.sorted = orderKeys(ms.rec.Schema, ms.order)
	}
	st.Keys = ms.sorted // replaced, never modified, when a key is added
	if ms.rec.Form {
		st.Values = make(map[string]Entry, len(ms.values))
		for k, v := range ms.values {
			st.Values[k] = v
		}
	} else {
		st.Data = make(map[string]json.RawMessage, len(ms.data))
		for k, v := range ms.data {
			st.Data[k] = v
		}
	}
	return st
}

func (s *MemoryStore) State(_ context.Context, rec *Record) (*State, error) {
	ms, err := s.get(rec.ID)
	if err != nil {
		return nil, err
	}
	defer ms.mu.Unlock()
	now := s.now()
	ms.touch(now)
	return ms.snapshot(now), nil
}

func (ms *memSession) has(key string) bool {
	if ms.rec.Form {
		_, ok := ms.values[key]
		return ok
	}
	_, ok := ms.data[key]
	return ok
}

func (ms *memSession) addKey(k string) {
	ms.order = append(ms.order, k)
	ms.sorted = nil
}

// record appends a change, overwriting the oldest once MaxChanges are
// kept (a ring: a busy session costs no copying).
func (ms *memSession) record(c Change) {
	ms.logBytes += changeBytes(c)
	switch {
	case ms.n == len(ms.changes) && ms.n < MaxChanges:
		if ms.first != 0 {
			ms.changes, ms.first = ms.log(), 0
		}
		ms.changes = append(ms.changes, c)
		ms.n++
	case ms.n == len(ms.changes):
		ms.logBytes -= changeBytes(ms.changes[ms.first])
		ms.changes[ms.first] = c
		ms.first = (ms.first + 1) % len(ms.changes)
	default:
		ms.changes[(ms.first+ms.n)%len(ms.changes)] = c
		ms.n++
	}
}

// forget drops the oldest change.
func (ms *memSession) forget() {
	ms.logBytes -= changeBytes(ms.changes[ms.first])
	ms.changes[ms.first] = Change{}
	ms.first = (ms.first + 1) % len(ms.changes)
	ms.n--
}

func changeBytes(c Change) int { return len(c.Key) + len(c.From) }

// oldest is the i-th oldest change kept.
func (ms *memSession) oldest(i int) *Change {
	return &ms.changes[(ms.first+i)%len(ms.changes)]
}

// fits makes room for a write that replaces a value of was bytes (0: a
// new key) by one of is bytes (its key's included when new) and records
// c: within the session's budget (MaxSessionBytes) and the store's
// (MaxBytes), forgetting the session's oldest changes as needed. What the
// write adds to the store's count is taken now, and what it frees given
// back, so that the caller's write (which must follow) leaves the count
// exact. It reports false, changing nothing, when the write would not fit
// even with no change kept; store says the store's bound refused it.
func (s *MemoryStore) fits(ms *memSession, was, is int, c Change) (ok, store bool) {
	budget := s.MaxSessionBytes
	values, cost := ms.valueBytes-was+is, changeBytes(c)
	if budget > 0 && values+cost > budget {
		return false, false
	}
	// drop: how many of the oldest changes go; logged: the bytes of the
	// others. A full ring would forget its oldest to record c anyway.
	drop, logged := 0, ms.logBytes
	for drop < ms.n && (ms.n-drop >= MaxChanges || budget > 0 && values+logged+cost > budget) {
		logged -= changeBytes(*ms.oldest(drop))
		drop++
	}
	held := ms.valueBytes + ms.logBytes
	for {
		grow := int64(values + logged + cost - held)
		if grow <= 0 {
			s.bytes.Add(grow)
			break
		}
		if s.reserve(grow) {
			break
		}
		if drop == ms.n {
			return false, true
		}
		// The store is full: the session's own history makes room.
		logged -= changeBytes(*ms.oldest(drop))
		drop++
	}
	for ; drop > 0; drop-- {
		ms.forget()
	}
	return true, false
}

// log returns the changes, oldest first, in a new slice.
func (ms *memSession) log() []Change {
	out := make([]Change, 0, ms.n)
	if end := ms.first + ms.n; end <= len(ms.changes) {
		return append(out, ms.changes[ms.first:end]...)
	}
	out = append(out, ms.changes[ms.first:]...)
	return append(out, ms.changes[:(ms.first+ms.n)%len(ms.changes)]...)
}

func (s *MemoryStore) Apply(_ context.Context, rec *Record, b *Batch) (*State, error) {
	ms, err := s.get(rec.ID)
	if err != nil {
		return nil, err
	}
	defer ms.mu.Unlock()
	now := s.now()
	at := micros(now)
	var frames [][]byte
	var rejected []string
	applied, cleared := 0, 0
	listening := s.hub.Has(rec.ID) // frames are built only for sockets that are here
	for i := range b.Writes {
		w := &b.Writes[i]
		if w.Outcome == Rejected {
			rejected = append(rejected, w.Key)
			continue
		}
		if !ms.has(w.Key) && len(ms.order) >= MaxFields {
			w.Outcome = TooMany
			continue
		}
		if rec.Form {
			old, ok := ms.values[w.Key]
			if ok && (old.By == ByUser || old.By == ByUserEdit) {
				w.Outcome = Rejected
				rejected = append(rejected, w.Key)
				continue
			}
			from := old.Value
			if !ok {
				from = nullJSON
			}
			c := Change{Key: w.Key, From: from, To: w.Value, By: ByAI, At: at}
			was, is := len(old.Value), len(w.Value)
			if !ok {
				is += len(w.Key)
			}
			if fit, byStore := s.fits(ms, was, is, c); !fit {
				w.Outcome = TooLarge
				if byStore {
					s.refusedForBytes("writes that grow a session")
				}
				continue
			}
			if !ok {
				ms.addKey(w.Key)
			}
			w.Value = keep(w.Value)
			c.To = w.Value
			ms.values[w.Key] = Entry{Value: w.Value, By: ByAI, At: at}
			ms.valueBytes += is - was
			ms.record(c)
		} else {
			old, ok := ms.data[w.Key]
			from := old
			if !ok {
				from = nullJSON
			}
			c := Change{Key: w.Key, From: from, To: w.Value, By: ByAgent, At: at}
			was, is := len(old), len(w.Value)
			if !ok {
				is += len(w.Key)
			}
			if fit, byStore := s.fits(ms, was, is, c); !fit {
				w.Outcome = TooLarge
				if byStore {
					s.refusedForBytes("writes that grow a session")
				}
				continue
			}
			if !ok {
				ms.addKey(w.Key)
			}
			w.Value = keep(w.Value)
			c.To = w.Value
			ms.data[w.Key] = w.Value
			ms.valueBytes += is - was
			ms.record(c)
		}
		w.Outcome = Applied
		applied++
		if string(w.Value) == "null" {
			cleared++
		}
		if b.Stream && listening {
			frames = append(frames, actionFrame(w.Key, w.Value))
		}
	}
	ms.touch(now)
	var missing []string
	if rec.Form {
		missing = missingKeys(b.Required, ms.values)
	}
	if listening {
		frames = append(frames, doneFrame(applied, cleared, rejected, missing))
		interval := time.Duration(0)
		if b.Stream {
			interval = b.Interval
		}
		// Delivered while the session is locked: frames of concurrent
		// batches reach the hub in the order the batches were applied.
		s.hub.Deliver(encodeEvent(rec.ID, interval, frames...))
	}
	return ms.snapshot(now), nil
}

var nullJSON = json.RawMessage("null")

// keep copies a value the session keeps out of the request body it was
// cut from: a one-byte value must not hold a 64 KiB body (padding, or
// members the store ignores) alive.
func keep(v json.RawMessage) json.RawMessage { return bytes.Clone(v) }

func missingKeys(required []string, values map[string]Entry) []string {
	missing := []string{}
	for _, k := range required {
		if e, ok := values[k]; !ok || isEmpty(e.Value) {
			missing = append(missing, k)
		}
	}
	return missing
}

// Notify: a user edit of an ai field becomes user_edit, any other user.
func (s *MemoryStore) Notify(_ context.Context, rec *Record, key string, value json.RawMessage) error {
	ms, err := s.get(rec.ID)
	if err != nil {
		return err
	}
	defer ms.mu.Unlock()
	now := s.now()
	at := micros(now)
	has := ms.has(key)
	if !has && len(ms.order) >= MaxFields {
		return ErrTooManyFields
	}
	var old []byte
	by := ByUser
	if rec.Form {
		e := ms.values[key]
		old = e.Value
		if e.By == ByAI {
			by = ByUserEdit
		}
	} else {
		old = ms.data[key]
	}
	from := old
	if !has {
		from = nullJSON
	}
	c := Change{Key: key, From: from, To: value, By: by, At: at}
	was, is := len(old), len(value)
	if !has {
		is += len(key)
	}
	if fit, byStore := s.fits(ms, was, is, c); !fit {
		if byStore {
			s.refusedForBytes("writes that grow a session")
		}
		return ErrSessionFull
	}
	if !has {
		ms.addKey(key)
	}
	c.To = keep(value)
	if rec.Form {
		ms.values[key] = Entry{Value: c.To, By: by, At: at}
	} else {
		ms.data[key] = c.To
	}
	ms.valueBytes += is - was
	ms.record(c)
	ms.touch(now)
	return nil
}

func (s *MemoryStore) Changes(_ context.Context, rec *Record) ([]Change, int64, error) {
	ms, err := s.get(rec.ID)
	if err != nil {
		return nil, 0, err
	}
	defer ms.mu.Unlock()
	now := s.now()
	ms.touch(now)
	return ms.log(), ms.expiresIn(now), nil
}

func (s *MemoryStore) Extend(_ context.Context, rec *Record, extra, limit time.Duration) (int64, bool, error) {
	ms, err := s.get(rec.ID)
	if err != nil {
		return 0, false, err
	}
	defer ms.mu.Unlock()
	if limit > 0 && ms.ttl+extra > limit {
		return int64(ms.ttl / time.Second), false, nil
	}
	now := s.now()
	ms.ttl += extra
	ms.touch(now)
	in := ms.expiresIn(now)
	s.hub.Deliver(encodeEvent(rec.ID, 0, extendedFrame(in)))
	return in, true, nil
}

func (s *MemoryStore) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	return s.hub.Close()
}

// orderKeys: the schema's keys first, in schema order, then the others
// sorted, so both stores answer in the same order.
func orderKeys(schema *Schema, keys []string) []string {
	out := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	present := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		present[k] = struct{}{}
	}
	if schema != nil {
		for _, f := range schema.Fields {
			if _, ok := present[f.Key]; ok {
				if _, dup := seen[f.Key]; !dup {
					seen[f.Key] = struct{}{}
					out = append(out, f.Key)
				}
			}
		}
	}
	rest := make([]string, 0, len(keys)-len(out))
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
