package handoff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryOptions bounds a [Memory] store.
type MemoryOptions struct {
	// MaxChallenges bounds the challenges held (default 250000, about
	// 25 MB). A full store first drops expired challenges, then the ones
	// closest to expiry: a flood of challenge requests costs its victims
	// the oldest challenges, never unbounded memory.
	MaxChallenges int
	// MaxKeys bounds the velocity networks and the lockout keys held,
	// each (default 100000). For networks the stalest go first. A lockout
	// record goes only when it holds no lock (those quiet for the
	// lockout's Reset first, then the stalest): an active lock is never
	// dropped. While the table is full of active locks, a claim whose
	// failure could not be recorded is refused (Locked, the uniform
	// failure) until the soonest lock ends.
	MaxKeys int
}

const (
	defaultMaxChallenges = 250000
	defaultMaxKeys       = 100000
	challengeShards      = 32
)

// Memory is a [Store] for one instance. It is safe for concurrent use;
// challenges are spread over shards with a lock each, velocities and
// lockouts (written only by admissions and claims) have one lock each.
type Memory struct {
	seed maphash.Seed
	// markKey marks the challenge strings this store issues as a
	// Resilient store's fallback (see newOwnChallenge).
	markKey [32]byte
	shards  [challengeShards]challengeShard
	perCap  int

	velMu    sync.Mutex
	global   velocityRing
	networks map[string]*velocityRing
	maxKeys  int

	lockMu sync.Mutex
	locks  map[string]*lockState
	// lockFullUntil: the lock table was found full of active locks; none
	// can end before this time (unix ms), so nothing can make room
	// before it and a full scan need not be repeated.
	lockFullUntil int64
	// lastCharge numbers the charges (under lockMu).
	lastCharge uint64
}

type challengeKey struct {
	purpose Purpose
	id      [32]byte
}

type challengeEntry struct {
	difficulty int
	expires    int64 // unix ms
}

type challengeShard struct {
	mu        sync.Mutex
	m         map[challengeKey]challengeEntry
	nextSweep int64
	_         [32]byte // keep hot locks on separate cache lines
}

// velocityRing counts events in VelocityBuckets buckets of a window.
type velocityRing struct {
	index [VelocityBuckets]int64 // the bucket number each slot holds
	count [VelocityBuckets]int64
	last  int64 // the newest bucket number touched, for eviction
}

func (v *velocityRing) total(cur int64) int64 { return v.between(cur-VelocityBuckets, cur) }

// between counts the buckets after lo up to hi.
func (v *velocityRing) between(lo, hi int64) int64 {
	var n int64
	for i := range v.index {
		if v.index[i] > lo && v.index[i] <= hi {
			n += v.count[i]
		}
	}
	return n
}

// breakerWait is Difficulty.retryAfter for the global ring (under velMu).
func (m *Memory) breakerWait(p *Difficulty, now time.Time, cur int64) time.Duration {
	return p.retryAfter(now, reopens(cur, p.Breaker, m.global.between))
}

func (v *velocityRing) add(cur int64) {
	i := int(((cur % VelocityBuckets) + VelocityBuckets) % VelocityBuckets)
	if v.index[i] != cur {
		v.index[i], v.count[i] = cur, 0
	}
	v.count[i]++
	v.last = max(v.last, cur)
}

// NewMemory returns an in-memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxChallenges <= 0 {
		o.MaxChallenges = defaultMaxChallenges
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = defaultMaxKeys
	}
	m := &Memory{
		seed:     maphash.MakeSeed(),
		perCap:   max(o.MaxChallenges/challengeShards, 1),
		networks: map[string]*velocityRing{},
		maxKeys:  o.MaxKeys,
		locks:    map[string]*lockState{},
	}
	for i := range m.shards {
		m.shards[i].m = map[challengeKey]challengeEntry{}
	}
	_, _ = rand.Read(m.markKey[:])
	return m
}

// markLen is how many of a fallback challenge's 32 bytes are its mark.
const markLen = 8

// newOwnChallenge returns a fresh challenge string this store recognizes
// as its own (owns): 24 random bytes and 8 bytes of a keyed SHA-256 of
// them. A [Resilient] store issues these while it falls back, so that no
// challenge the fallback holds is one the primary may hold too, and a
// fallback challenge is spent here whatever the primary's state.
func (m *Memory) newOwnChallenge() string {
	var b [32]byte
	_, _ = rand.Read(b[:32-markLen]) // crypto/rand.Read never fails (Go 1.24+)
	mac := m.mark(b[:32-markLen])
	copy(b[32-markLen:], mac[:markLen])
	var out [ChallengeLen]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// owns reports whether challenge came from newOwnChallenge. A random
// challenge (the primary's) carries the mark with probability 2^-64; a
// forged mark only sends its submission here, where it is unknown.
func (m *Memory) owns(challenge string) bool {
	var b [32]byte
	if !decodeChallenge(&b, challenge) {
		return false
	}
	mac := m.mark(b[:32-markLen])
	return subtle.ConstantTimeCompare(mac[:markLen], b[32-markLen:]) == 1
}

// decodeChallenge decodes 64 lowercase hex digits without allocating.
func decodeChallenge(dst *[32]byte, s string) bool {
	if len(s) != ChallengeLen {
		return false
	}
	for i := range dst {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (m *Memory) mark(random []byte) [sha256.Size]byte {
	var in [32 + 32 - markLen]byte
	copy(in[:], m.markKey[:])
	copy(in[32:], random)
	return sha256.Sum256(in[:])
}

func (m *Memory) key(p Purpose, challenge string) (challengeKey, *challengeShard, bool) {
	k := challengeKey{purpose: p}
	if len(challenge) != 64 {
		return k, nil, false
	}
	if _, err := hex.Decode(k.id[:], []byte(challenge)); err != nil {
		return k, nil, false
	}
	return k, &m.shards[maphash.Comparable(m.seed, k.id)%challengeShards], true
}

// velocities reads the global and network counts (under velMu).
func (m *Memory) velocities(network string, cur int64) (global, net int64) {
	global = m.global.total(cur)
	if r := m.networks[network]; r != nil {
		net = r.total(cur)
	}
	return global, net
}

// Issue implements Store.
func (m *Memory) Issue(_ context.Context, op *IssueOp) error {
	k, sh, ok := m.key(op.Purpose, op.Challenge)
	if !ok {
		return errBadChallenge
	}
	now := op.Now.UnixMilli()
	cur := now / op.Policy.bucket().Milliseconds()
	m.velMu.Lock()
	g, n := m.velocities(op.Network, cur)
	m.velMu.Unlock()
	op.GlobalVelocity, op.NetworkVelocity = g, n
	if op.Purpose == PurposeCreate && op.Policy.tripped(g) {
		m.velMu.Lock()
		op.Tripped, op.RetryAfter = true, m.breakerWait(op.Policy, op.Now, cur)
		m.velMu.Unlock()
		return nil
	}
	op.Difficulty = op.Policy.For(g, n)
	sh.mu.Lock()
	if now >= sh.nextSweep || len(sh.m) >= m.perCap {
		sh.sweep(now, m.perCap)
	}
	if _, dup := sh.m[k]; !dup {
		sh.m[k] = challengeEntry{difficulty: op.Difficulty, expires: now + op.TTL.Milliseconds()}
	}
	sh.mu.Unlock()
	return nil
}

// sweep drops expired challenges (every ten seconds); a shard still full
// then evicts the soonest-expiring of samples of eight until a tenth of its
// room is free, so a flood at capacity costs a few map probes per insert.
func (sh *challengeShard) sweep(now int64, limit int) {
	if now >= sh.nextSweep {
		sh.nextSweep = now + 10_000
		for k, e := range sh.m {
			if e.expires <= now {
				delete(sh.m, k)
			}
		}
	}
	if len(sh.m) < limit {
		return
	}
	for len(sh.m) > limit-max(limit/10, 1) {
		var victim challengeKey
		var soonest int64 = 1<<63 - 1
		seen := 0
		for k, e := range sh.m {
			if e.expires < soonest {
				victim, soonest = k, e.expires
			}
			if seen++; seen == 8 {
				break
			}
		}
		delete(sh.m, victim)
	}
}

// Admit implements Store. A creation's breaker check, spend and count
// are one step under the velocity lock, as in Redis's one script:
// concurrent admissions cannot overshoot the breaker. The work must reach
// the challenge's stored difficulty and the policy's difficulty for the
// admitting network now, whichever is higher.
func (m *Memory) Admit(_ context.Context, op *AdmitOp) error {
	now := op.Now.UnixMilli()
	if op.Purpose == PurposeCreate {
		m.admitCreate(op, now)
		return nil
	}
	m.admitClaim(op, now)
	return nil
}

// admitClaim is Admit for a claim, under lockMu throughout: the lockout
// check, the spend and the failure charged are one step, as in Redis's
// one script, so claims sent at once meet the lockout as claims sent one
// after another.
func (m *Memory) admitClaim(op *AdmitOp, now int64) {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	if len(op.LockKeys) > 0 {
		var wait int64
		for _, key := range op.LockKeys {
			if s := m.locks[key]; s != nil && s.until > now {
				wait = max(wait, s.until-now)
			}
		}
		// Fail closed: a claim whose failure could not be recorded is
		// not checked at all, or a full table would give a code unlimited
		// guesses.
		if wait == 0 && op.Lockout != nil && !m.roomFor(op.LockKeys, now, op.Lockout) {
			wait = max(m.lockFullUntil-now, 1)
		}
		if wait > 0 {
			op.Outcome, op.RetryAfter = Locked, time.Duration(wait)*time.Millisecond
			return
		}
	}
	pol := op.policy()
	cur := now / pol.bucket().Milliseconds()
	m.velMu.Lock()
	g, n := m.velocities(op.Network, cur)
	m.velMu.Unlock()
	e, ok := m.spend(op.Purpose, op.Challenge)
	need := max(e.difficulty, pol.For(g, n))
	if !ok || e.expires <= now || op.Work < need {
		op.Outcome = Refused
		// Work that met the challenge's own difficulty, refused only
		// because the difficulty rose since, is no failure of the
		// client's: it is not charged to the lockout.
		if !(ok && e.expires > now && op.Work >= e.difficulty) {
			op.LockStarted = m.charge(op.LockKeys, now, op.Lockout, nil)
		}
		return
	}
	op.Outcome, op.Difficulty = Admitted, need
	op.LockStarted = m.charge(op.LockKeys, now, op.Lockout, &op.Charge)
}

// admitCreate is Admit for a creation, under velMu throughout.
func (m *Memory) admitCreate(op *AdmitOp, now int64) {
	cur := now / op.Policy.bucket().Milliseconds()
	m.velMu.Lock()
	defer m.velMu.Unlock()
	g, n := m.velocities(op.Network, cur)
	if op.Policy.tripped(g) {
		op.Outcome, op.GlobalVelocity, op.RetryAfter = Tripped, g, m.breakerWait(op.Policy, op.Now, cur)
		return
	}
	e, ok := m.spend(op.Purpose, op.Challenge)
	need := max(e.difficulty, op.Policy.For(g, n))
	if !ok || e.expires <= now || op.Work < need {
		op.Outcome = Refused
		return
	}
	m.global.add(cur)
	m.ring(op.Network).add(cur)
	op.Outcome, op.Difficulty, op.GlobalVelocity = Admitted, need, g+1
}

// spend removes the challenge and returns what was stored with it.
func (m *Memory) spend(p Purpose, challenge string) (challengeEntry, bool) {
	k, sh, ok := m.key(p, challenge)
	if !ok {
		return challengeEntry{}, false
	}
	sh.mu.Lock()
	e, found := sh.m[k]
	if found {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
	return e, found
}

// AdmitExempt implements Store. The breaker's check and the count are
// one step under the velocity lock.
func (m *Memory) AdmitExempt(_ context.Context, op *ExemptOp) error {
	now := op.Now.UnixMilli()
	cur := now / op.Policy.bucket().Milliseconds()
	m.velMu.Lock()
	defer m.velMu.Unlock()
	g, _ := m.velocities(op.Network, cur)
	if op.Policy.tripped(g) {
		op.Outcome, op.GlobalVelocity, op.RetryAfter = Tripped, g, m.breakerWait(op.Policy, op.Now, cur)
		return nil
	}
	m.global.add(cur)
	m.ring(op.Network).add(cur)
	op.Outcome, op.GlobalVelocity = Admitted, g+1
	return nil
}

// ring returns the network's ring, making room when the map is full
// (under velMu).
func (m *Memory) ring(network string) *velocityRing {
	r := m.networks[network]
	if r != nil {
		return r
	}
	if len(m.networks) >= m.maxKeys {
		var victim string
		var stalest int64 = 1<<63 - 1
		seen := 0
		for k, v := range m.networks {
			if v.last < stalest {
				victim, stalest = k, v.last
			}
			if seen++; seen == 8 {
				break
			}
		}
		delete(m.networks, victim)
	}
	r = new(velocityRing)
	m.networks[network] = r
	return r
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, op *AdmitOp) error {
	id := op.Charge.id
	if op.Purpose != PurposeClaim || op.Outcome != Admitted || op.Lockout == nil || id == 0 {
		return nil
	}
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	for _, key := range op.LockKeys {
		s := m.locks[key]
		if s == nil {
			continue
		}
		until := s.until
		if s.refund(id, op.Lockout) {
			delete(m.locks, key)
		}
		if s.until != until {
			// A lock was lifted: lockFullUntil may no longer hold.
			m.lockFullUntil = 0
		}
	}
	op.Charge.id = 0
	return nil
}

// charge counts one failure against each key, and reports whether a
// lock began; when c is not nil the failure is a charge a refund may take
// back, and c gets its id (under lockMu, after roomFor made room for the
// keys).
func (m *Memory) charge(keys []string, now int64, p *Lockout, c *Charge) bool {
	if p == nil || len(keys) == 0 {
		return false
	}
	var id uint64
	if c != nil {
		m.lastCharge++
		id = m.lastCharge
		c.id = id
	}
	started := false
	for _, key := range keys {
		s := m.locks[key]
		if s == nil {
			s = new(lockState)
			m.locks[key] = s
		}
		started = s.fail(now, p, id) || started
	}
	return started
}

// roomFor makes room for the keys not yet in the table and reports
// whether all of them fit (under lockMu).
func (m *Memory) roomFor(keys []string, now int64, p *Lockout) bool {
	need := 0
	for _, key := range keys {
		if m.locks[key] == nil {
			need++
		}
	}
	for len(m.locks)+need > m.maxKeys {
		if !m.makeRoom(now, p) {
			return false
		}
	}
	return true
}

// makeRoom drops a record that holds no lock (under lockMu): from a
// sample of eight, one quiet for Reset (it no longer matters) or else
// the stalest; when the sample holds only active locks, from the whole
// table, dropping every quiet record at once. It never drops an active
// lock: with none to drop it remembers when the soonest lock ends and
// reports false until then at no cost.
func (m *Memory) makeRoom(now int64, p *Lockout) bool {
	if now < m.lockFullUntil {
		return false
	}
	reset := p.Reset.Milliseconds()
	var victim string
	var stalest int64 = 1<<63 - 1
	found, seen := false, 0
	for k, s := range m.locks {
		if s.until <= now {
			if now-s.last >= reset {
				delete(m.locks, k)
				return true
			}
			if s.last < stalest {
				victim, stalest, found = k, s.last, true
			}
		}
		if seen++; seen == 8 {
			break
		}
	}
	if !found {
		var soonest int64 = 1<<63 - 1
		quiet := false
		for k, s := range m.locks {
			switch {
			case s.until > now:
				soonest = min(soonest, s.until)
			case now-s.last >= reset:
				delete(m.locks, k)
				quiet = true
			case s.last < stalest:
				victim, stalest, found = k, s.last, true
			}
		}
		if quiet {
			return true
		}
		if !found {
			m.lockFullUntil = soonest
			return false
		}
	}
	delete(m.locks, victim)
	return true
}

var _ Store = (*Memory)(nil)

var errBadChallenge = errors.New("handoff: a challenge is 64 lowercase hex digits")
