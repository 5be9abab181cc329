package limiter

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// MemoryOptions configures a [Memory] store.
type MemoryOptions struct {
	// MaxKeys bounds the number of window keys held (default 100000).
	// A key costs about 200 bytes, up to about 1.3 KiB when its window has
	// events in every sub-window, whatever the limit's N (see
	// TestMemoryBytesPerKey).
	MaxKeys int
	// MaxSessions bounds the number of sessions held (default MaxKeys).
	MaxSessions int
	// SweepInterval is how often keys and sessions that no longer matter are
	// removed (default 1 minute; negative: never, for tests that call Sweep).
	SweepInterval time.Duration
	// Now replaces time.Now, for tests. The store reads the clock once per
	// call and measures time from its first reading.
	Now func() time.Time
}

// DefaultMaxKeys is the default of MemoryOptions.MaxKeys.
const DefaultMaxKeys = 100000

// maxPlainKey is the longest key kept as is; longer keys (and session ids)
// are hashed so a client-chosen identifier cannot make one entry large.
const maxPlainKey = 128

// evictionSample is how many entries a full shard compares to choose the
// one to evict.
const evictionSample = 8

// Memory is a [Store] for a single instance: limits are per process.
//
// It is safe for concurrent use: keys are spread over up to 64 shards, each
// with its own lock. Memory is bounded: a sweeper removes keys whose events
// no longer count and sessions past their lifetime, and a full shard evicts
// before it inserts.
//
// Eviction: a full shard samples a few of its keys and evicts one whose
// events no longer count if there is one, else the one with the fewest
// events in its window. Evicting a key forgets its count, which lets its
// owner exceed its limit by that count, so the policy forgets as little as
// it can, and a flood of fresh keys (one event each) evicts itself rather
// than a busy key: resetting a key with c events needs a flood of keys
// holding at least c events each. Sessions are evicted oldest-activity
// first (an evicted session id starts again at turn 1).
type Memory struct {
	shards      []shard
	mask        uint64
	maxKeys     int // per shard
	maxSessions int // per shard
	seed        maphash.Seed
	now         func() time.Time
	base        time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type shard struct {
	mu       sync.Mutex
	windows  map[windowKey]*window
	sessions map[sessionKey]*session
	_        [40]byte // keep hot locks on separate cache lines
}

// windowKey identifies the state of one key under one window length.
// A hashed key has an empty id and its SHA-256 in sum.
type windowKey struct {
	id   string
	sum  [32]byte
	span int64
}

type sessionKey struct {
	id  string
	sum [32]byte
}

type session struct {
	turns   int64
	tokens  int64
	jobs    int64 // async jobs open (AddJobTokens)
	last    int64 // last admitted turn
	expires int64 // the record is forgotten from then on
}

// NewMemory returns a memory store. Close stops its sweeper.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = opts.MaxKeys
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Enough shards to spread contention, few enough that each holds a
	// useful number of keys for its eviction choice.
	n := 64
	for n > 1 && min(opts.MaxKeys, opts.MaxSessions)/n < 256 {
		n /= 2
	}
	m := &Memory{
		shards:      make([]shard, n),
		mask:        uint64(n - 1),
		maxKeys:     max(opts.MaxKeys/n, 1),
		maxSessions: max(opts.MaxSessions/n, 1),
		seed:        maphash.MakeSeed(),
		now:         opts.Now,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	m.base = m.now()
	for i := range m.shards {
		m.shards[i].windows = make(map[windowKey]*window)
		m.shards[i].sessions = make(map[sessionKey]*session)
	}
	if opts.SweepInterval > 0 {
		go m.sweeper(opts.SweepInterval)
	} else {
		close(m.done)
	}
	return m
}

// elapsed is the time since m.base in nanoseconds; with time.Now it is
// monotonic, so wall-clock steps do not disturb the windows.
func (m *Memory) elapsed() int64 { return int64(m.now().Sub(m.base)) }

// Do implements [Store]. It returns an error only for an invalid check.
func (m *Memory) Do(_ context.Context, b *Batch) error {
	if err := b.validate(); err != nil {
		return err
	}
	t := m.elapsed()
	admitted := true
	for i := range b.Windows {
		if c := &b.Windows[i]; !c.Shared {
			m.check(c, t)
			admitted = admitted && (c.Decision.Allowed || b.NoGate)
		}
	}
	for i := range b.Windows {
		if c := &b.Windows[i]; c.Shared {
			c.Skipped = !admitted
			if admitted {
				m.check(c, t)
			}
		}
	}
	if s := b.Session; s != nil {
		s.Skipped = !admitted
		if admitted {
			m.session(s, t)
		}
	}
	return nil
}

func (m *Memory) check(c *WindowCheck, t int64) {
	span, g, n := int64(c.Limit.Window), c.Limit.subWindow(1), c.Limit.Events
	k := windowKey{span: span}
	var h uint64
	if c.Secret || len(c.Key) > maxPlainKey {
		k.sum = sum256(c.Key)
		h = binary.LittleEndian.Uint64(k.sum[:8])
	} else {
		k.id = c.Key
		h = maphash.String(m.seed, c.Key)
	}
	s := &m.shards[h&m.mask]
	s.mu.Lock()
	w := s.windows[k]
	if w == nil {
		if len(s.windows) >= m.maxKeys {
			s.evictWindow(t)
		}
		k.id = strings.Clone(k.id) // do not pin the caller's memory
		w = new(window)
		w.init()
		s.windows[k] = w
	}
	v := w.take(t, span, g, n)
	s.mu.Unlock()

	c.Decision = Decision{
		Allowed:   v.allowed,
		Limit:     n,
		Remaining: v.remaining,
		Reset:     m.base.Add(time.Duration(v.reset)),
		ResetIn:   time.Duration(v.reset - t), // monotonic, unlike Reset after a wall-clock step
	}
	if !v.allowed {
		c.Decision.RetryAfter = time.Duration(v.retry - t)
	}
}

// evictWindow removes one window of a full shard; see [Memory].
func (s *shard) evictWindow(t int64) {
	var (
		victim     windowKey
		found      bool
		fewest     int64
		soonestEnd int64
		seen       int
	)
	for k, w := range s.windows { // map order is random: a cheap sample
		g := max(k.span/SubWindows, 1)
		live := w.live(t, k.span, g)
		end := w.expiresAt(k.span, g)
		if live == 0 {
			victim, found = k, true
			break
		}
		if !found || live < fewest || live == fewest && end < soonestEnd {
			victim, found, fewest, soonestEnd = k, true, live, end
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	if found {
		delete(s.windows, victim)
	}
}

// sum256 is SHA-256 of s, without a heap copy of s for keys up to 256 bytes
// (converting a longer string to []byte allocates).
func sum256(s string) [32]byte {
	var buf [256]byte
	if len(s) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], s)])
	}
	return sha256.Sum256([]byte(s))
}

func (m *Memory) sessionShard(id string) (*shard, sessionKey) {
	var k sessionKey
	var h uint64
	if len(id) > maxPlainKey {
		k.sum = sum256(id)
		h = binary.LittleEndian.Uint64(k.sum[:8])
	} else {
		k.id = id
		h = maphash.String(m.seed, id)
	}
	return &m.shards[h&m.mask], k
}

// record returns the live record of k, creating it (turns 0) if needed.
func (m *Memory) record(s *shard, k sessionKey, t int64) *session {
	r := s.sessions[k]
	if r != nil && t >= r.expires {
		*r = session{}
		return r
	}
	if r == nil {
		if len(s.sessions) >= m.maxSessions {
			s.evictSession(t)
		}
		k.id = strings.Clone(k.id)
		r = new(session)
		s.sessions[k] = r
	}
	return r
}

func (m *Memory) session(c *SessionCheck, t int64) {
	idle := int64(sessionIdle(c.Idle))
	s, k := m.sessionShard(c.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := m.record(s, k, t)
	c.Turn, c.TokensUsed = 0, r.tokens
	switch {
	case r.turns > 0 && t-r.last >= idle:
		c.Outcome = SessionExpired
	case c.MaxTurns > 0 && r.turns >= int64(c.MaxTurns):
		c.Outcome = SessionTooManyTurns
	case c.TokenBudget > 0 && r.tokens >= c.TokenBudget:
		c.Outcome = SessionOverBudget
	default:
		c.Outcome = SessionOK
		r.turns++
		r.last = t
		c.Turn = int(r.turns)
	}
	// An expired session stays known while it is still being used, so the
	// agent keeps hearing that it must start a new one.
	r.expires = t + 2*idle
}

// AddTokens implements [Store]: AddJobTokens with no job.
func (m *Memory) AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error {
	return m.AddJobTokens(ctx, sessionID, jobNone, tokens, idle)
}

// AddJobTokens implements [Store].
func (m *Memory) AddJobTokens(_ context.Context, sessionID string, step JobStep, tokens int64, idle time.Duration) error {
	if err := validateAddTokens(sessionID, tokens); err != nil {
		return err
	}
	t := m.elapsed()
	s, k := m.sessionShard(sessionID)
	s.mu.Lock()
	defer s.mu.Unlock()
	var r *session
	if step == JobClose {
		if r = s.sessions[k]; r == nil || t >= r.expires || r.jobs <= 0 {
			return nil // no job open: counted already, or never opened
		}
		r.jobs--
	} else {
		r = m.record(s, k, t)
		if r.turns == 0 {
			// A session id the concierge assigned on the turn that created it.
			r.turns, r.last = 1, t
		}
		if step == JobOpen {
			r.jobs++
		}
	}
	r.tokens += tokens
	r.expires = max(r.expires, t+2*int64(sessionIdle(idle)))
	return nil
}

// evictSession removes one session of a full shard: a dead one if the
// sample holds one, else the one idle the longest.
func (s *shard) evictSession(t int64) {
	var (
		victim sessionKey
		oldest int64
		found  bool
		seen   int
	)
	for k, r := range s.sessions {
		if t >= r.expires {
			victim, found = k, true
			break
		}
		if !found || r.last < oldest {
			victim, found, oldest = k, true, r.last
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	if found {
		delete(s.sessions, victim)
	}
}

// Sweep removes the keys whose events no longer count and the sessions past
// their lifetime. The sweeper calls it every SweepInterval.
func (m *Memory) Sweep() {
	t := m.elapsed()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, w := range s.windows {
			if w.expiresAt(k.span, max(k.span/SubWindows, 1)) <= t {
				delete(s.windows, k)
			}
		}
		for k, r := range s.sessions {
			if t >= r.expires {
				delete(s.sessions, k)
			}
		}
		s.mu.Unlock()
	}
}

// Len reports the number of window keys and sessions held.
func (m *Memory) Len() (keys, sessions int) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		keys += len(s.windows)
		sessions += len(s.sessions)
		s.mu.Unlock()
	}
	return keys, sessions
}

func (m *Memory) sweeper(every time.Duration) {
	defer close(m.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.Sweep()
		}
	}
}

// Close stops the sweeper. The store still answers afterwards.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}
