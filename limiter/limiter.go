// Package limiter decides whether an event (a request, a session turn) is
// admitted under sliding-window rate limits and per-session limits.
//
// Two stores implement [Store]: [Memory] for a single instance and [Redis]
// for limits shared by many instances. [Resilient] combines them and applies
// the failure policy when Redis misbehaves. Every check of a [Batch] is
// decided in one call, and for Redis in at most one network round trip:
// none when every window is a hot key with a lease (lease.go).
//
// This package does not know Caddy; the caddymodule package adapts it.
package limiter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrStoreUnavailable is returned by a [Resilient] store that fails closed
// while its primary store is failing.
var ErrStoreUnavailable = errors.New("limiter: rate-limit store unavailable")

// ErrInvalidCheck is wrapped by the errors a store returns for a malformed
// check (a zero limit, an empty session id, ...). It is a caller bug, not a
// store failure, so [Resilient] never falls back on it.
var ErrInvalidCheck = errors.New("limiter: invalid check")

// SubWindows is the number of sub-windows a window is divided into. It sets
// the precision of the sliding window: see [Limit] for the bound.
const SubWindows = 60

// MinWindow is the shortest window a [Limit] may have.
const MinWindow = time.Millisecond

// Limit admits at most Events events in any interval of length Window.
//
// Both stores keep, per key, one counter per sub-window of width
// g = Window/SubWindows (at most SubWindows+2 counters, whatever Events is),
// and count a sub-window that only partly overlaps the sliding window as if
// it lay fully inside it. The approximation only errs toward refusing:
//
//   - never more than Events events are admitted in any closed interval
//     [a, a+Window], edges included;
//   - an event at time t is refused only if at least Events events were
//     admitted in (t-Window-g, t], that is only when an exact sliding window
//     of Events per Window+g would refuse it too, given the events admitted
//     so far: with 120/minute an event may be refused up to one second
//     before an exact limiter would admit it, never admitted early. With
//     the Redis store's leases (limits of 960 or more per window), events
//     leased and left unspent count as admitted here.
type Limit struct {
	Events int64
	Window time.Duration
}

var units = [...]struct {
	name string
	d    time.Duration
}{
	{"second", time.Second},
	{"minute", time.Minute},
	{"hour", time.Hour},
	{"day", 24 * time.Hour},
}

const limitForms = `"N/second", "N/minute", "N/hour" or "N/day" with a whole number N >= 1, e.g. "120/minute"`

// ParseLimit parses "N/unit", where unit is second, minute, hour or day
// (a trailing "s" is tolerated), e.g. "120/minute" or "1000000/hour".
func ParseLimit(s string) (Limit, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate limit %q: want %s", s, limitForms)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 1 || n > MaxEvents {
		return Limit{}, fmt.Errorf("rate limit %q: %q is not a whole number from 1 to 2^53; want %s", s, num, limitForms)
	}
	unit = strings.ToLower(strings.TrimSpace(unit))
	for _, u := range units {
		if unit == u.name || unit == u.name+"s" {
			return Limit{Events: n, Window: u.d}, nil
		}
	}
	return Limit{}, fmt.Errorf("rate limit %q: unknown unit %q; want %s", s, unit, limitForms)
}

// String formats the limit as "N/unit", the form of the manifest's
// rate_limits. A window that is not a whole unit is written as a Go
// duration ("10/1m30s"), which ParseLimit rejects.
func (l Limit) String() string {
	for _, u := range units {
		if l.Window == u.d {
			return strconv.FormatInt(l.Events, 10) + "/" + u.name
		}
	}
	return strconv.FormatInt(l.Events, 10) + "/" + l.Window.String()
}

// MaxEvents is the largest Limit.Events: the Redis scripts count in Lua's
// doubles, exact up to 2^53 (a larger limit is no limit anyway).
const MaxEvents = 1 << 53

func (l Limit) validate() error {
	if l.Events < 1 || l.Events > MaxEvents || l.Window < MinWindow {
		return fmt.Errorf("%w: limit %s: want at least 1 event per at least %s", ErrInvalidCheck, l, MinWindow)
	}
	return nil
}

// subWindow is the width g of one sub-window of l.Window in units of unit.
func (l Limit) subWindow(unit time.Duration) int64 {
	return max(int64(l.Window/unit)/SubWindows, 1)
}

// Decision is the outcome of one window check, in the terms of the
// X-RateLimit-* and Retry-After headers.
type Decision struct {
	Allowed   bool
	Limit     int64     // N of the limit
	Remaining int64     // events still admitted now (>= 0)
	Reset     time.Time // when Remaining next grows (X-RateLimit-Reset)
	// ResetIn is how long until Reset by the store's own clock (Redis's,
	// not this instance's): a delay that instances with skewed clocks
	// agree on (the IETF RateLimit field's t).
	ResetIn    time.Duration
	RetryAfter time.Duration // > 0 only when refused: earliest time an event would be admitted
}

// WindowCheck is one sliding-window limit applied to one key.
type WindowCheck struct {
	// Key names the counter, e.g. "ip:203.0.113.0/64" or "agent:my-bot/1.0";
	// the store adds its own prefix. The counter is Key's under
	// Limit.Window: checks with the same Key and Window share it, even with
	// different Events, so give each tier its own key ("static:ip:...").
	Key string
	// Secret marks a key that holds a secret (an API key, a bearer token):
	// the store hashes it (SHA-256) before it becomes a Redis or map key.
	Secret bool
	Limit  Limit
	// Shared marks a window that many clients spend together (an agent
	// identity's): see [Batch] for when it is counted.
	Shared bool

	Decision Decision // out
	// Skipped (out) reports that a shared window was neither decided nor
	// counted, because an unshared window of the batch refused the event.
	Skipped bool
}

// SessionOutcome is the verdict on one session turn.
type SessionOutcome uint8

const (
	SessionOK           SessionOutcome = iota // the turn is admitted and counted
	SessionTooManyTurns                       // the session already had MaxTurns turns
	SessionExpired                            // the session was idle for Idle or longer
	SessionOverBudget                         // the session spent its TokenBudget
)

var sessionOutcomes = [...]string{"ok", "too_many_turns", "expired", "over_budget"}

func (o SessionOutcome) String() string {
	if int(o) < len(sessionOutcomes) {
		return sessionOutcomes[o]
	}
	return "SessionOutcome(" + strconv.Itoa(int(o)) + ")"
}

// DefaultSessionIdle is used when SessionCheck.Idle is not positive
// (spec 6.5: sessions expire after 10 minutes of inactivity).
const DefaultSessionIdle = 10 * time.Minute

// SessionCheck is one converse turn of a session (spec 6.5 and 11.4).
//
// A session record lives for 2×Idle after it was last used, so a turn after
// Idle of inactivity is reported as SessionExpired rather than starting over;
// an id unknown to the store (or forgotten) starts at turn 1.
type SessionCheck struct {
	ID          string
	MaxTurns    int           // refuse the turn after MaxTurns; <= 0: no turn limit
	Idle        time.Duration // refuse a turn after Idle of inactivity; <= 0: DefaultSessionIdle
	TokenBudget int64         // refuse when the session spent >= TokenBudget tokens; 0: no budget

	Outcome    SessionOutcome // out
	Turn       int            // out: this turn's number when Outcome is SessionOK
	TokensUsed int64          // out: tokens spent by the session so far
	// Skipped (out) reports that the turn was neither decided nor counted,
	// because an unshared window of the batch refused the event.
	Skipped bool
}

func (s *SessionCheck) validate() error {
	if s.ID == "" {
		return fmt.Errorf("%w: empty session id", ErrInvalidCheck)
	}
	if s.TokenBudget < 0 {
		return fmt.Errorf("%w: negative token budget", ErrInvalidCheck)
	}
	return nil
}

func sessionIdle(idle time.Duration) time.Duration {
	if idle <= 0 {
		return DefaultSessionIdle
	}
	return idle
}

// Batch is everything one request needs decided, in one store call.
//
// The unshared windows (the client's own) are decided first, each
// counting the event if it admits it. The shared windows and the session
// are gated on them: when a batch has unshared windows and any of them
// refuses, the shared windows and the session are Skipped (neither decided
// nor counted), so a client over its own limit cannot spend what it shares
// with others (an agent identity's window, a session's turns). Past the
// gate the shared checks are independent of one another: a shared window
// counts the event if it admits it, and the session counts the turn if it
// admits it, whatever the other decides. That is the price of deciding in
// one round trip: on one Redis server (or Sentinel) a gated batch is one
// script; on Redis Cluster, whose keys live on different nodes (or on an
// endpoint that enforces hash slots), it takes a second round trip for the
// shared checks, only when the gate admits, within the same Timeout.
type Batch struct {
	Windows []WindowCheck
	Session *SessionCheck // optional
	// NoGate decides the shared windows and the session whatever the
	// unshared windows decide, for a caller that lets a refused event
	// through anyway (a dry run): what it spends is then counted and
	// checked too. The checks are then all independent (on Redis Cluster,
	// in one round trip).
	NoGate bool

	// Degraded reports (out) that the batch was answered by the fallback
	// store of a [Resilient] because the shared store was failing.
	Degraded bool
	// Leased reports (out) that a [Redis] store answered the batch from
	// this instance's leases or cached refusals, with no round trip.
	Leased bool
}

// Allowed reports whether every window admitted the event.
func (b *Batch) Allowed() bool {
	for i := range b.Windows {
		if !b.Windows[i].Decision.Allowed {
			return false
		}
	}
	return true
}

func (b *Batch) validate() error {
	for i := range b.Windows {
		if err := b.Windows[i].Limit.validate(); err != nil {
			return err
		}
	}
	if b.Session != nil {
		return b.Session.validate()
	}
	return nil
}

// Store decides batches of checks.
type Store interface {
	// Do evaluates all checks of b and fills in their outputs.
	Do(ctx context.Context, b *Batch) error
	// AddTokens adds tokens to the tokens spent by a session, after the
	// concierge answered (meta.tokens_used). An unknown id is registered as a
	// session at turn 1, so ids assigned by the concierge are counted.
	AddTokens(ctx context.Context, sessionID string, tokens int64, idle time.Duration) error
	// AddJobTokens accounts an async job of a session (AHP §9). JobOpen
	// does what AddTokens does and opens a job; JobClose adds tokens only
	// while a job of the session is open, and closes one, so the result
	// of a job, which an agent may poll any number of times, counts once.
	AddJobTokens(ctx context.Context, sessionID string, step JobStep, tokens int64, idle time.Duration) error
	// Close releases the store's own resources.
	Close() error
}

// JobStep is what AddJobTokens records of an async job.
type JobStep uint8

const (
	// jobNone: an answer's tokens, no job (AddTokens).
	jobNone JobStep = iota
	// JobOpen: the concierge accepted a job (status "accepted").
	JobOpen
	// JobClose: a poll answered a job's result.
	JobClose
)

func validateAddTokens(sessionID string, tokens int64) error {
	if sessionID == "" {
		return fmt.Errorf("%w: empty session id", ErrInvalidCheck)
	}
	if tokens < 0 {
		return fmt.Errorf("%w: negative token count %d", ErrInvalidCheck, tokens)
	}
	return nil
}
