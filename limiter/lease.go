package limiter

import (
	"crypto/sha256"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// Leases: fewer round trips for hot keys (Redis store).
//
// Under load most decisions are a few hot keys' (an agent hammering the
// gateway, an identity many clients share), and each costs a round trip
// whose system calls, wake-ups and Redis CPU outweigh the decision itself.
// A lease is events counted in Redis ahead of time: a decision for a hot
// key asks Redis to count its own event plus a lease of s more, and the
// instance hands those out locally, with no round trip, until they are
// spent or the sub-window they were counted in ends, whichever is first.
//
// Why "never more than N in any window" still holds: a leased event is
// counted in Redis before it is handed out, in the sub-window that was
// current when Redis counted it, and it is handed out only while that
// sub-window is still current (on the local clock, measured from before
// the request was sent, so the local deadline is never later than
// Redis's). So every event is counted no later than it is admitted, in the
// sub-window of its admission, and the argument of window.take goes
// through: take the event of an interval [a, a+Window] that was counted
// last; when it was counted, every other event of the interval was counted
// too, in a sub-window that still reached into its window, and Redis
// admitted it only if the total stayed at or under N.
//
// What it costs: events leased and not handed out before their sub-window
// ends still count until it leaves the window, so the other bound of
// [Limit] becomes "refused only if N events were admitted or leased": the
// error is still only toward refusing. At most one lease per key is
// outstanding on an instance, its size is at most N/(8·SubWindows) and a
// sixteenth of what the key has left (so near the limit every event is
// decided in Redis, one by one), and it is sized to be spent: the events
// this instance handed out per second under the last lease, times what is
// left of the current sub-window (a new hot key's first lease is 2); a
// lease that ends wholly unspent retires the key. Refusals are always
// Redis's own: when Redis refuses a hot key's event, it says when the
// next one could be admitted, and until then every event of that key is
// refused here without a round trip (exact: see refuse), under any limit,
// so a client hammering past its limit costs Redis nothing more. The
// X-RateLimit-Remaining of an event handed out from a lease is this
// instance's view: Redis's remaining when the lease was counted plus the
// lease's events not handed out yet; other instances' events since then
// are not in it.
//
// Which keys: those decided in Redis hotAfter times within one sub-window
// on this instance; leases only under a limit of at least minLeaseEvents
// (2 events a sub-window for a lease of the smallest useful size). Cold
// keys keep no state here beyond a slot of a small fixed table.

const (
	hotAfter       = 4                  // decisions in one sub-window that make a key hot
	minLeaseEvents = 2 * 8 * SubWindows // smallest N under which keys are leased
	maxLeaseSize   = 1024               // largest lease, in events
	maxLeases      = 1024               // hot keys held at once
	hotSlots       = 256                // the hot-key table's slots
	maxLeaseChecks = 4                  // windows of a batch that can be leased
	leaseInitial   = 2                  // a new hot key's first lease size
	leaseHeadroom  = 16                 // a lease is at most 1/16 of what is left
	leaseShare     = 8 * SubWindows     // ... and at most N/leaseShare
)

// leaseKey identifies a key's lease: the check's key (its SHA-256 when
// secret) under one limit.
type leaseKey struct {
	key    string
	secret bool
	limit  Limit
}

// lease is one hot key's events counted in Redis ahead of time.
type lease struct {
	mu        sync.Mutex
	gen       uint64    // bumped with each new lease: a give-back names its lease
	left      int64     // counted in Redis, not handed out yet
	granted   int64     // the current lease's size when counted
	start     time.Time // when it was asked for (local clock)
	until     time.Time // hand out only before this: its sub-window's end
	spent     time.Time // when its last event was handed out, or zero
	remaining int64     // Redis's remaining once the lease was counted
	reset     time.Time
	// resetAt is reset on this instance's clock (start plus Redis's delay
	// until reset), which a decision's ResetIn is measured to.
	resetAt time.Time
	rate    float64 // events a second this instance hands out, estimated
	// Redis refused the key's last event: until refusedUntil no event is
	// admitted whatever any instance does (see refuse).
	refusedUntil   time.Time
	refusedReset   time.Time
	refusedResetAt time.Time // refusedReset on this instance's clock
	retired        bool      // the last lease went wholly unspent: cold again
	refilling      bool      // a caller is asking Redis for the next lease
}

// leases is the Redis store's lease state: the hot keys' leases and the
// table that finds hot keys.
type leases struct {
	mu   sync.RWMutex
	m    map[leaseKey]*lease
	hot  [hotSlots]hotSlot
	seed maphash.Seed
	base time.Time
}

// hotSlot counts the remote decisions of the key it holds within one
// sub-window; a new sub-window starts it over (see noteHot).
type hotSlot struct {
	mu  sync.Mutex
	h   uint64
	sub int64
	n   int32
}

func newLeases(now time.Time) *leases {
	return &leases{m: make(map[leaseKey]*lease), seed: maphash.MakeSeed(), base: now}
}

func leaseKeyOf(c *WindowCheck) leaseKey {
	if c.Secret {
		sum := sha256.Sum256([]byte(c.Key))
		return leaseKey{key: string(sum[:]), secret: true, limit: c.Limit}
	}
	return leaseKey{key: c.Key, limit: c.Limit}
}

// leasable reports whether keys under l may be leased.
func leasable(l Limit) bool { return l.Events >= minLeaseEvents }

func (ls *leases) get(k leaseKey) *lease {
	ls.mu.RLock()
	l := ls.m[k]
	ls.mu.RUnlock()
	return l
}

// fromLeases decides b locally when Redis need not be asked: each window
// admits the event from its lease, or refuses it while Redis's last
// refusal of its key stands (see refuse), with [Batch]'s gate: when an
// unshared window refuses, the shared windows and the session are
// skipped; otherwise a session always goes to Redis. It reports whether it
// decided b; if not, b is untouched and any event taken is given back.
func (ls *leases) fromLeases(b *Batch, now time.Time) bool {
	n := len(b.Windows)
	if n == 0 || n > maxLeaseChecks {
		return false
	}
	var held [maxLeaseChecks]*lease
	var gens [maxLeaseChecks]uint64
	var out [maxLeaseChecks]Decision
	taken := 0
	admitted, ok := true, true
	for pass := 0; pass < 2 && ok; pass++ {
		shared := pass == 1
		if shared && !admitted && !b.NoGate {
			break // the gate refused: the shared windows are skipped
		}
		for i := 0; i < n && ok; i++ {
			c := &b.Windows[i]
			if c.Shared != shared {
				continue
			}
			l := ls.get(leaseKeyOf(c))
			if l == nil {
				ok = false
				break
			}
			l.mu.Lock()
			// A lease's events were counted before any later refusal:
			// they are spent first.
			switch {
			case l.left > 0 && now.Before(l.until):
				l.left--
				if l.left == 0 {
					l.spent = now
				}
				held[taken], gens[taken] = l, l.gen
				taken++
				out[i] = Decision{Allowed: true, Limit: c.Limit.Events, Remaining: l.remaining + l.left, Reset: l.reset, ResetIn: max(l.resetAt.Sub(now), 0)}
			case now.Before(l.refusedUntil):
				out[i] = Decision{Limit: c.Limit.Events, Reset: l.refusedReset, ResetIn: max(l.refusedResetAt.Sub(now), 0), RetryAfter: l.refusedUntil.Sub(now)}
				admitted = admitted && shared
			default:
				ok = false
			}
			l.mu.Unlock()
		}
	}
	if b.NoGate {
		admitted = true // nothing was skipped
	}
	if ok && admitted && b.Session != nil {
		ok = false // Redis decides the turn
	}
	if !ok {
		ls.giveBack(held[:taken], gens[:taken])
		return false
	}
	for i := range b.Windows {
		c := &b.Windows[i]
		c.Skipped = c.Shared && !admitted
		if !c.Skipped {
			c.Decision = out[i]
		}
	}
	if b.Session != nil {
		b.Session.Skipped = true
	}
	return true
}

// giveBack returns events taken from leases that are still the ones they
// were taken from: an event of an earlier lease was counted in an earlier
// sub-window and must not be handed out in a later one.
func (ls *leases) giveBack(held []*lease, gens []uint64) {
	for i, l := range held {
		l.mu.Lock()
		if l.gen == gens[i] {
			l.left++
			l.spent = time.Time{}
		}
		l.mu.Unlock()
	}
}

// refills is what one remote decision asks for its windows' leases and
// what Redis answered, per window of the batch.
type refills struct {
	start  time.Time // before the request was sent: leases run from here
	lease  [maxLeaseChecks]*lease
	gen    [maxLeaseChecks]uint64 // the lease's generation when asked
	events [maxLeaseChecks]int64  // events Redis is asked to count: 1, or 1 + a lease
	reply  [maxLeaseChecks][windowReply]int64
	got    [maxLeaseChecks]bool
}

// count is how many events window i of the batch asks Redis to count.
func (rf *refills) count(i int) int64 {
	if rf == nil || i >= maxLeaseChecks || rf.events[i] == 0 {
		return 1
	}
	return rf.events[i]
}

// answer records Redis's reply for window i.
func (rf *refills) answer(i int, v []int64) {
	if rf != nil && i < maxLeaseChecks && rf.lease[i] != nil {
		copy(rf.reply[i][:], v)
		rf.got[i] = true
	}
}

// plan notes b's windows as decided remotely (finding hot keys) and, for
// the hot ones whose lease is spent or over, asks for the next lease.
// It reports whether any window has a lease to settle afterwards.
func (ls *leases) plan(b *Batch, now time.Time, rf *refills) bool {
	if len(b.Windows) > maxLeaseChecks {
		return false
	}
	rf.start = now
	any := false
	for i := range b.Windows {
		c := &b.Windows[i]
		k := leaseKeyOf(c)
		l := ls.get(k)
		if l == nil {
			if !ls.noteHot(k, now) {
				continue
			}
			if l = ls.add(k, now); l == nil {
				continue
			}
		}
		l.mu.Lock()
		if l.retired {
			l.mu.Unlock()
			if !ls.noteHot(k, now) {
				continue
			}
			l.mu.Lock()
			l.retired, l.rate = false, 0
		}
		rf.lease[i], rf.events[i], rf.gen[i] = l, 1, l.gen
		any = true
		if leasable(c.Limit) && !l.refilling && (l.left <= 0 || !now.Before(l.until)) {
			size := min(l.next(now, c.Limit), l.remaining/leaseHeadroom, c.Limit.Events/leaseShare, maxLeaseSize)
			if size >= 1 {
				l.refilling = true
				rf.events[i] = 1 + size
			}
		}
		l.mu.Unlock()
	}
	return any
}

// next is the size of the key's next lease (l.mu held): the events this
// instance is expected to hand out before the current sub-window ends, at
// the rate it handed out the last lease's, so that a lease is mostly spent
// rather than left to count for nothing.
func (l *lease) next(now time.Time, lim Limit) int64 {
	if l.granted > 0 {
		used := l.granted - l.left
		if used == 0 && !now.Before(l.until) {
			l.retired, l.granted = true, 0 // nothing of it was wanted: the key cooled down
			return 0
		}
		end := l.until // the lease was live from start until spent or over
		if !l.spent.IsZero() && l.spent.Before(end) {
			end = l.spent
		}
		if now.Before(end) {
			end = now
		}
		if d := end.Sub(l.start); d > 0 {
			r := float64(used) / d.Seconds()
			if l.rate > 0 {
				r = (l.rate + r) / 2
			}
			l.rate = r
		}
		l.granted = 0
	}
	if l.rate <= 0 || l.until.IsZero() {
		return leaseInitial
	}
	// Sub-windows end every g after the last lease's end (a boundary on
	// this clock, a little early: it was measured from before the request).
	g := time.Duration(lim.subWindow(time.Microsecond)) * time.Microsecond
	left := l.until.Sub(now)
	if left <= 0 {
		left = g - (-left)%g
	}
	return int64(math.Ceil(l.rate * left.Seconds()))
}

// settle gives each leased window of b what Redis answered: the next
// lease, and the key's remaining for sizing it. err is the decision's
// error; a failed or skipped window gets no lease.
func (ls *leases) settle(b *Batch, rf *refills, err error) {
	for i := range b.Windows {
		l := rf.lease[i]
		if l == nil {
			continue
		}
		v := &rf.reply[i]
		ok := err == nil && rf.got[i] && !b.Windows[i].Skipped && v[0] >= 0
		l.mu.Lock()
		refill := rf.events[i] > 1
		if refill {
			l.refilling = false
		}
		if ok {
			k := v[0]
			if k == 0 && v[3] > 0 {
				l.refuse(rf.start, v)
			}
			if refill {
				// Redis's remaining counts the lease's events as spent.
				l.remaining = v[1] - max(k-1, 0)
				l.gen++
				l.left, l.granted = max(k-1, 0), max(k-1, 0)
				l.start, l.spent = rf.start, time.Time{}
				// Redis's clock reading was truncated to the µs: one µs less
				// keeps the end at or before the sub-window's.
				l.until = rf.start.Add(time.Duration(v[4]-1) * time.Microsecond)
				l.reset, l.resetAt = time.UnixMicro(v[2]), resetAt(rf.start, v)
			} else if !l.refilling && l.gen == rf.gen[i] {
				// A reply that may have been decided before a lease
				// counted since would overstate what is left: only one
				// with no lease asked or granted meanwhile is taken.
				l.remaining = v[1]
			}
		}
		l.mu.Unlock()
	}
}

// refuse records Redis's refusal of the key at start (v: the window
// script's reply). Redis answers with the earliest time any event would be
// admitted given what it counts now, and until then nothing it counts
// leaves the window in a way that makes room (the sub-windows that leave
// first still leave N or more), while other instances can only add: every
// event decided before then would be refused, so it is refused here
// without asking. Measured from start (before the request was sent), so
// never late but for the under-a-µs Redis's clock was truncated by, which
// only refuses that much longer; and the Retry-After it then reports is
// Redis's.
func (l *lease) refuse(start time.Time, v *[windowReply]int64) {
	l.refusedUntil = start.Add(time.Duration(v[3]) * time.Microsecond)
	l.refusedReset, l.refusedResetAt = time.UnixMicro(v[2]), resetAt(start, v)
}

// resetAt is when Redis's reply v, to a request sent at start, says the
// key's Remaining next grows, on this instance's clock: by Redis's delay,
// not its absolute time, which a skewed clock would misread.
func resetAt(start time.Time, v *[windowReply]int64) time.Time {
	return start.Add(time.Duration(v[2]-v[5]) * time.Microsecond)
}

// noteHot counts a remote decision of k and reports whether k is hot:
// decided hotAfter times within the current sub-window. A key may sit in
// either of two slots, and a new key takes the one with fewer decisions
// this sub-window: with one slot, two hot keys hashed to it (1 in 256)
// started each other's count over at every decision and neither was ever
// found, and any cold key hashed there set a hot one's count back. Now a
// cold key sets it back only when its other slot has as many decisions.
func (ls *leases) noteHot(k leaseKey, now time.Time) bool {
	g := max(int64(k.limit.Window/SubWindows), 1)
	sub := int64(now.Sub(ls.base)) / g
	h, i, j := ls.slots(k)
	a, b := &ls.hot[i], &ls.hot[j]
	a.mu.Lock()
	b.mu.Lock()
	s := a
	switch {
	case a.h == h:
	case b.h == h:
		s = b
	case b.count(sub) < a.count(sub):
		s = b
	}
	if s.h != h || s.sub != sub {
		s.h, s.sub, s.n = h, sub, 0
	}
	s.n++
	hot := s.n >= hotAfter
	b.mu.Unlock()
	a.mu.Unlock()
	return hot
}

// slots is k's hash and its two slots in the hot table, never the same
// one, in index order (the order they are locked in).
func (ls *leases) slots(k leaseKey) (h, i, j uint64) {
	h = maphash.String(ls.seed, k.key) ^ uint64(k.limit.Window)*0x9e3779b97f4a7c15 ^ uint64(k.limit.Events)
	i = h % hotSlots
	j = (i + 1 + (h>>32)%(hotSlots-1)) % hotSlots
	return h, min(i, j), max(i, j)
}

// count is the slot's decisions in sub-window sub (s.mu held).
func (s *hotSlot) count(sub int64) int32 {
	if s.sub != sub {
		return 0
	}
	return s.n
}

// add returns k's lease, new if need be, or nil when maxLeases keys are
// leased already.
func (ls *leases) add(k leaseKey, now time.Time) *lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.m[k]; l != nil {
		return l
	}
	if len(ls.m) >= maxLeases {
		ls.sweep(now)
		if len(ls.m) >= maxLeases {
			return nil
		}
	}
	l := &lease{remaining: k.limit.Events}
	k.key = strings.Clone(k.key) // do not pin the caller's memory
	ls.m[k] = l
	return l
}

// sweep drops the leases that are over and not being refilled (ls.mu
// held); an event of a dropped lease is never handed out, so the only
// cost is its key's next decision going to Redis.
func (ls *leases) sweep(now time.Time) {
	for k, l := range ls.m {
		l.mu.Lock()
		over := !l.refilling && !now.Before(l.until) && !now.Before(l.refusedUntil)
		l.mu.Unlock()
		if over {
			delete(ls.m, k)
		}
	}
}
