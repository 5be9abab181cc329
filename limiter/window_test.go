package limiter

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// arrivals returns n non-decreasing arrival times starting at start, about
// twice as fast as a limit of limit per span allows on average: bursts at
// one instant, steps of whole sub-windows, gaps of exactly span and span±1
// (window edges, about once per window's worth of events) and rare pauses
// of several windows.
func arrivals(r *rand.Rand, n int, start, span, limit int64) []int64 {
	ts := make([]int64, n)
	t := start
	rate := max(span/limit, 1)
	g := max(span/SubWindows, 1)
	for i := range ts {
		switch {
		case r.Int64N(4*limit+10) == 0:
			t += span + r.Int64N(3) - 1
		case r.Int64N(40*limit+100) == 0:
			t += span * (1 + r.Int64N(3))
		case r.IntN(5) == 0: // same instant
		case r.Int64N(limit+5) == 0:
			t += g * (1 + r.Int64N(2))
		default:
			t += r.Int64N(rate/4 + 1)
		}
		ts[i] = t
	}
	return ts
}

// verifyWindow checks the documented bounds of a limit of n per span with
// sub-window width g: no closed interval [t-span, t] holds more than n
// admitted events, and every refusal at t saw n admitted events in
// (t-span-g, t]. admitted and refused must be sorted.
func verifyWindow(t *testing.T, admitted, refused []int64, n, span, g int64) {
	t.Helper()
	lo := 0
	for i, at := range admitted {
		for admitted[lo] < at-span {
			lo++
		}
		if got := int64(i - lo + 1); got > n {
			t.Fatalf("%d events admitted in [%d, %d], a closed window of length %d; limit %d", got, at-span, at, span, n)
		}
	}
	for _, rt := range refused {
		from, _ := slices.BinarySearch(admitted, rt-span-g+1)
		to, found := slices.BinarySearch(admitted, rt+1)
		_ = found
		if got := int64(to - from); got < n {
			t.Fatalf("refused at %d with only %d events admitted in (%d, %d]; the bound promises admission below %d", rt, got, rt-span-g, rt, n)
		}
	}
}

func TestWindowProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n := []int64{1, 2, 3, 7, 30, 120, 1000}[r.IntN(7)]
		span := []int64{1, 59, 60, 61, 1000, 60_000_000, int64(time.Hour)}[r.IntN(7)]
		g := max(span/SubWindows, 1)
		var w window
		w.init()
		var admitted, refused []int64
		for _, at := range arrivals(r, 3000, r.Int64N(1<<40), span, n) {
			v := w.take(at, span, g, n)
			if v.allowed {
				admitted = append(admitted, at)
			} else {
				refused = append(refused, at)
				if v.retry <= at {
					t.Fatalf("refused at %d with retry at %d", at, v.retry)
				}
			}
			if v.remaining < 0 || v.remaining > n-1 {
				t.Fatalf("remaining %d for a limit of %d after an event", v.remaining, n)
			}
			if v.reset <= at || v.reset > at+span+g {
				t.Fatalf("reset %d at %d, span %d: want in (t, t+span+g]", v.reset, at, span)
			}
			if len(w.buckets) > SubWindows+2 {
				t.Fatalf("%d buckets held; bound is %d", len(w.buckets), SubWindows+2)
			}
		}
		verifyWindow(t, admitted, refused, n, span, g)
	}
}

// RetryAfter and Reset are exact in the store's clock unit: one unit before
// them nothing changes.
func TestWindowRetryAndReset(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := int64(1 + r.IntN(20))
		span := int64(60_000 + r.IntN(100))
		g := span / SubWindows
		var w window
		w.init()
		at := int64(r.IntN(1 << 30))
		var v verdict
		for _, at2 := range arrivals(r, 200, at, span, n) {
			at = at2
			if v = w.take(at, span, g, n); !v.allowed {
				break
			}
		}
		if v.allowed {
			continue
		}
		if w.take(v.retry-1, span, g, n).allowed {
			t.Fatalf("admitted one unit before retry time %d", v.retry)
		}
		rem := w.take(v.reset-1, span, g, n).remaining
		if v.reset < v.retry && rem != 0 {
			t.Fatalf("remaining %d one unit before reset", rem)
		}
		if !w.take(v.retry, span, g, n).allowed {
			t.Fatalf("refused at retry time %d", v.retry)
		}
	}
}

// A key's state is the same size whether the limit is 30 per minute or a
// million per hour.
func TestWindowStateDoesNotGrowWithN(t *testing.T) {
	for _, n := range []int64{30, 1_000_000, 1 << 50} {
		span := int64(time.Hour)
		g := span / SubWindows
		var w window
		w.init()
		maxCap := 0
		// Events in every sub-window for three windows, many per sub-window.
		for at := int64(0); at < 3*span; at += g / 50 {
			w.take(at, span, g, n)
			maxCap = max(maxCap, cap(w.buckets))
		}
		if maxCap > 64 {
			t.Errorf("limit %d: bucket capacity grew to %d; want at most 64 (1 KiB)", n, maxCap)
		}
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range [][3]int64{{7, 2, 3}, {-7, 2, -4}, {-6, 2, -3}, {0, 5, 0}, {-1, 60, -1}} {
		if got := floorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}
