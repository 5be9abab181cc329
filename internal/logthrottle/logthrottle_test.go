package logthrottle

import (
	"testing"
	"time"
)

// One event per period passes, the first at once; the next to pass says
// how many were held back, and the count starts again.
func TestAllow(t *testing.T) {
	var th Throttle
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	step := func(at time.Duration, wantN int, wantOK bool) {
		t.Helper()
		if n, ok := th.Allow(t0.Add(at), 10*time.Second); n != wantN || ok != wantOK {
			t.Fatalf("at %s: (%d, %v), want (%d, %v)", at, n, ok, wantN, wantOK)
		}
	}
	step(0, 0, true)
	step(time.Second, 0, false)
	step(9*time.Second, 0, false)
	step(10*time.Second, 2, true)
	step(15*time.Second, 0, false)
	step(25*time.Second, 1, true)
	step(40*time.Second, 0, true)
}
