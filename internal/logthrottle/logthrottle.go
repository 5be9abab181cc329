// Package logthrottle keeps a recurring failure (a dead Redis, a refused
// hook) from becoming one log line per request: one line per period, with
// the number held back since the last. Every protocol package and
// caddymodule log store failures through it; the failures themselves are
// still counted every time, by metrics.
package logthrottle

import (
	"sync"
	"time"
)

// Throttle lets one event through per period and counts the others. The
// zero value is ready; the first event always passes. The caller passes
// the time, so tests move it.
type Throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether an event at now may be logged and, if so, how
// many were held back since the last one that was.
func (t *Throttle) Allow(now time.Time, every time.Duration) (suppressed int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < every {
		t.suppressed++
		return 0, false
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	return n, true
}
