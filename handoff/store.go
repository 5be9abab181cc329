package handoff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Purpose separates the two kinds of challenge: one issued for sandbox
// creation is never accepted for a claim, nor the reverse (spec §19.2).
type Purpose uint8

const (
	PurposeCreate Purpose = 1
	PurposeClaim  Purpose = 2
)

func (p Purpose) String() string {
	switch p {
	case PurposeCreate:
		return "create"
	case PurposeClaim:
		return "claim"
	}
	return fmt.Sprintf("Purpose(%d)", uint8(p))
}

// Outcome is a store's verdict on a submitted proof of work.
type Outcome uint8

const (
	// Admitted: the challenge was known, unexpired, unspent and solved at
	// its required difficulty (AdmitOp.Difficulty); it is now spent.
	Admitted Outcome = iota + 1
	// Refused: unknown, expired, already spent, or solved below its
	// required difficulty. One outcome for all, so nothing tells them
	// apart.
	Refused
	// Tripped: the circuit breaker is open (creation velocity over the
	// hard limit); the challenge was left unspent.
	Tripped
	// Locked: a lockout holds for the client or the claim code; the
	// challenge was left unspent.
	Locked
)

func (o Outcome) String() string {
	switch o {
	case Admitted:
		return "admitted"
	case Refused:
		return "refused"
	case Tripped:
		return "tripped"
	case Locked:
		return "locked"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// VelocityBuckets is how many sub-windows a velocity window is counted in:
// a velocity is the sum of the last VelocityBuckets buckets, so it covers
// between 9/10 of the window and the whole window, and decays a tenth of
// the window at a time.
const VelocityBuckets = 10

// Difficulty is the adaptive proof-of-work policy of spec §11.2: the
// difficulty of a new challenge rises one bit per GlobalStep admissions in
// the window over all clients, and one bit per NetworkStep admissions in
// the window from the client's network (/24 IPv4, /48 IPv6), from Base up
// to Ceiling; it decays as the admissions leave the window.
type Difficulty struct {
	Base, Ceiling int
	// Window over which admissions are counted (default 10 minutes).
	Window time.Duration
	// GlobalStep and NetworkStep: admissions per Window that add one bit;
	// 0 turns that signal off.
	GlobalStep, NetworkStep int64
	// Breaker refuses creation (503) while the global count is at least
	// Breaker; 0 turns the breaker off.
	Breaker int64
}

// DefaultVelocityWindow is Difficulty.Window's default.
const DefaultVelocityWindow = 10 * time.Minute

func (d *Difficulty) bucket() time.Duration {
	w := d.Window
	if w <= 0 {
		w = DefaultVelocityWindow
	}
	return max(w/VelocityBuckets, time.Millisecond)
}

// For is the difficulty of a challenge issued while global admissions in
// the window are global and the client network's are network.
func (d *Difficulty) For(global, network int64) int {
	bits := int64(d.Base)
	if d.GlobalStep > 0 {
		bits += global / d.GlobalStep
	}
	if d.NetworkStep > 0 {
		bits += network / d.NetworkStep
	}
	return int(min(bits, int64(d.Ceiling)))
}

// tripped reports whether the breaker refuses creation at this velocity.
func (d *Difficulty) tripped(global int64) bool { return d.Breaker > 0 && global >= d.Breaker }

// retryAfter is how long until the breaker admits again when, with
// nothing more counted (nothing is while it refuses), the velocity falls
// below it at the boundaries-th bucket boundary from now (1 to
// VelocityBuckets, reopens). Telling the time to the next boundary
// instead sent agents back ten times a window while a burst of one
// bucket held the breaker open for the whole window.
func (d *Difficulty) retryAfter(now time.Time, boundaries int64) time.Duration {
	bm := d.bucket().Milliseconds()
	boundaries = min(max(boundaries, 1), VelocityBuckets)
	return time.Duration((boundaries-1)*bm+bm-now.UnixMilli()%bm) * time.Millisecond
}

// reopens is how many bucket boundaries from bucket cur pass before the
// sum of the counts falls below limit, count(b) being bucket b's (the
// buckets counted at cur are cur-VelocityBuckets+1 to cur).
func reopens(cur, limit int64, count func(lo, hi int64) int64) int64 {
	for k := int64(1); k < VelocityBuckets; k++ {
		if count(cur-VelocityBuckets+k, cur) < limit {
			return k
		}
	}
	return VelocityBuckets
}

// Validate checks the policy.
func (d *Difficulty) Validate() error {
	switch {
	case d.Base < 1 || d.Base > MaxDifficulty:
		return fmt.Errorf("base difficulty %d: want 1 to %d bits", d.Base, MaxDifficulty)
	case d.Ceiling < d.Base || d.Ceiling > MaxDifficulty:
		return fmt.Errorf("ceiling %d: want between the base (%d) and %d bits", d.Ceiling, d.Base, MaxDifficulty)
	case d.Window < 0 || (d.Window > 0 && d.Window < VelocityBuckets*time.Millisecond):
		return fmt.Errorf("velocity window %s: want at least %s", d.Window, VelocityBuckets*time.Millisecond)
	case d.GlobalStep < 0 || d.NetworkStep < 0 || d.Breaker < 0:
		return errors.New("velocity steps and breaker must not be negative")
	}
	return nil
}

// Lockout is the progressive lockout of claim verification (spec §19.5):
// After failures lock the key for Base, the next After failures for twice
// as long, and so on up to Max; a key that saw no failure for Reset starts
// over. A failure is a refused proof of work or an admitted claim: an
// admitted claim counts from its admission, so that claims sent at once
// cannot all pass the check before any is counted, and the backend
// verifying it takes it back ([AdmitOp.Charge]).
type Lockout struct {
	After int
	Base  time.Duration
	Max   time.Duration
	Reset time.Duration
}

// MaxLockoutAfter bounds Lockout.After.
const MaxLockoutAfter = 1000

// Validate checks the policy.
func (l *Lockout) Validate() error {
	switch {
	case l.After < 1:
		return fmt.Errorf("lockout after %d failures: want at least 1", l.After)
	case l.After > MaxLockoutAfter:
		// Each claim in flight keeps its charge in the key's record until
		// refunded or settled; a bound on those keeps records small.
		return fmt.Errorf("lockout after %d failures: want at most %d (a lockout that lets more guesses through protects nothing)", l.After, MaxLockoutAfter)
	case l.Base < time.Millisecond:
		return fmt.Errorf("lockout base %s: want at least 1ms", l.Base)
	case l.Max < l.Base:
		return fmt.Errorf("lockout max %s: want at least the base %s", l.Max, l.Base)
	case l.Reset <= l.Max:
		// Quiet time counts from the last failure, lock time included: a
		// lock as long as reset ends with its record forgotten, so locks
		// would stop growing there, short of max.
		return fmt.Errorf("lockout reset %s: want longer than max %s, or locks stop growing at reset (reset counts from the last failure, lock time included); e.g. reset %s", l.Reset, l.Max, 24*l.Max)
	}
	return nil
}

// lockFor is the length of the level-th lock (level >= 1).
func (l *Lockout) lockFor(level int64) int64 {
	base, maxl := l.Base.Milliseconds(), l.Max.Milliseconds()
	if level > 62 {
		return maxl
	}
	d := float64(base) * math.Pow(2, float64(level-1))
	if d >= float64(maxl) {
		return maxl
	}
	return int64(d)
}

// lockState is one key's failure record; the Redis scripts keep the same
// fields (f, l, u, t, h, s and r<id>) and apply the same rules.
type lockState struct {
	failures int64 // since the last lock began
	level    int64 // locks so far
	until    int64 // unix ms; locked while now < until
	last     int64 // unix ms of the last failure
	settled  int64 // unix ms of the last failure no refund can take back
	// pending are the charges a refund may still take back: those since
	// the last lock began, or the one that began it while no failure
	// followed. At most After.
	pending []pendingCharge
}

// pendingCharge is an admitted claim's failure, until its refund.
type pendingCharge struct {
	id      uint64
	at      int64 // unix ms
	started bool  // it began the current lock
}

// fail records a failure at now, a charge when id is not 0, and reports
// whether a lock began. A lock settles the charges it counted: a refund
// no longer lifts a lock another failure began (it errs toward locking);
// so does a failure after the lock began for the charge that began it.
func (s *lockState) fail(now int64, p *Lockout, id uint64) bool {
	if now-s.last >= p.Reset.Milliseconds() {
		// Forgotten: a refund of what came before finds nothing.
		s.failures, s.level, s.settled, s.pending = 0, 0, 0, s.pending[:0]
	} else if len(s.pending) == 1 && s.pending[0].started {
		s.settle()
	}
	s.failures++
	s.last = now
	started := false
	if s.failures >= int64(p.After) {
		s.level++
		s.failures = 0
		s.until = now + p.lockFor(s.level)
		s.settle()
		started = true
	}
	if id != 0 {
		s.pending = append(s.pending, pendingCharge{id: id, at: now, started: started})
	} else {
		s.settled = max(s.settled, now)
	}
	return started
}

// settle makes the pending charges final.
func (s *lockState) settle() {
	for _, c := range s.pending {
		s.settled = max(s.settled, c.at)
	}
	s.pending = s.pending[:0]
}

// refund takes back the charge id if it is still pending, and reports
// whether the record now holds nothing (no failure, no level). A charge
// that began the lock lifts it, back to the failures before; the last
// failure's time becomes that of the latest failure still counted, so
// that a verified claim does not put off the Reset of earlier failures.
func (s *lockState) refund(id uint64, p *Lockout) (empty bool) {
	i := 0
	for i < len(s.pending) && s.pending[i].id != id {
		i++
	}
	if i == len(s.pending) {
		return false
	}
	c := s.pending[i]
	s.pending = append(s.pending[:i], s.pending[i+1:]...)
	if c.started {
		s.level--
		s.failures = int64(p.After) - 1
		s.until = 0
	} else if s.failures > 0 {
		s.failures--
	}
	s.last = s.settled
	for _, c := range s.pending {
		s.last = max(s.last, c.at)
	}
	return s.failures == 0 && s.level == 0
}

// IssueOp issues a challenge: the store computes its difficulty from the
// velocities and keeps both until the challenge expires.
type IssueOp struct {
	Purpose Purpose
	// Challenge is 64 lowercase hex digits. A falling-back [Resilient]
	// store replaces it with the fallback's own: hand out op.Challenge.
	Challenge string
	Network   string // the client's network, for its velocity
	Now       time.Time
	TTL       time.Duration
	Policy    *Difficulty

	// Out.
	Difficulty      int
	GlobalVelocity  int64
	NetworkVelocity int64
	Tripped         bool          // PurposeCreate only: nothing was stored
	RetryAfter      time.Duration // when Tripped
	Degraded        bool          // answered by a fallback store
}

// AdmitOp spends a challenge: Work is the number of leading zero bits the
// submitted nonce gives (computed before the store is asked). The work
// required is the higher of the difficulty stored with the challenge and
// the one Policy gives the admitting Network now (spec §11.2, §23.1): a
// challenge stockpiled while quiet, or fetched from a quiet network, buys
// nothing once the velocity has raised the difficulty.
type AdmitOp struct {
	Purpose   Purpose
	Challenge string
	Work      int
	Network   string
	Now       time.Time
	Policy    *Difficulty
	// Claims only: the lockout keys (client and claim code), checked
	// first and charged with a failure when the proof of work is refused
	// and when the claim is admitted (see Charge).
	LockKeys []string
	Lockout  *Lockout

	// Out.
	Outcome        Outcome
	Difficulty     int           // Admitted: the difficulty required (stored, or now if higher)
	GlobalVelocity int64         // PurposeCreate
	RetryAfter     time.Duration // Tripped, Locked
	LockStarted    bool          // Refused, or Admitted claim: its failure began a lock
	// Charge: an admitted claim counts as a failure from the moment it is
	// admitted, in the same step as the lockout check, so that claims
	// sent at once meet the lockout as claims sent one after another
	// (After admitted, the rest Locked). The backend refusing the code
	// then costs nothing more; the backend verifying it gives the
	// failure back through [Store.Refund].
	Charge   Charge
	Degraded bool
}

// Charge is what admitting a claim charged to its lockout keys, for
// [Store.Refund]: an id the charge is kept under in each key's record, so
// that a refund takes back this charge only, once, and nothing once the
// record has started over.
type Charge struct {
	id uint64 // 0: nothing charged, or refunded
}

// ExemptOp admits a creation that needs no proof of work (a verified
// agent on the operator's list): it is refused while the circuit breaker
// is open and otherwise counted toward the velocities like any admitted
// creation, so exempt creations raise the difficulty and trip the breaker
// as much as solved ones; no challenge is spent.
type ExemptOp struct {
	Network string // the client's network, for its velocity
	Now     time.Time
	Policy  *Difficulty

	// Out.
	Outcome        Outcome // Admitted or Tripped
	GlobalVelocity int64   // after this creation when Admitted
	RetryAfter     time.Duration
	Degraded       bool
}

// noPolicy stands in for a missing AdmitOp.Policy: base 0, nothing added.
var noPolicy Difficulty

func (op *AdmitOp) policy() *Difficulty {
	if op.Policy == nil {
		return &noPolicy
	}
	return op.Policy
}

// Store keeps challenges, velocities and lockouts. Each operation is
// atomic and, for Redis, one round trip.
type Store interface {
	Issue(ctx context.Context, op *IssueOp) error
	Admit(ctx context.Context, op *AdmitOp) error
	AdmitExempt(ctx context.Context, op *ExemptOp) error
	// Refund gives back the failure Admit charged to the lockout keys of
	// op, a claim it admitted, when the backend verified that claim; the
	// store that charged it (a [Resilient] store's fallback when op was
	// Degraded) refunds it. Any other op is left alone.
	Refund(ctx context.Context, op *AdmitOp) error
}

// ErrStoreUnavailable is returned by a [Resilient] store that fails closed
// while its primary store is failing.
var ErrStoreUnavailable = errors.New("handoff: store unavailable")
