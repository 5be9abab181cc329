package limiter

// bucket counts the events admitted in one sub-window.
type bucket struct {
	idx int64 // sub-window index: floor(t/g)
	n   int64
}

// window is the bounded state of one key under one limit: the non-empty
// sub-windows that may still overlap the sliding window, oldest first.
// It never holds more than SubWindows+2 buckets (about 1 KiB), whatever the
// limit's N; a key seen once holds one bucket in the inline array.
type window struct {
	buckets []bucket
	total   int64 // sum of buckets[i].n
	inline  [2]bucket
}

func (w *window) init() { w.buckets = w.inline[:0] }

// verdict is the outcome of take, with times in the caller's clock units.
type verdict struct {
	allowed   bool
	remaining int64
	reset     int64 // when remaining next grows
	retry     int64 // when refused: earliest time an event is admitted
}

// take decides one event at time t under a limit of n events per span,
// with sub-windows of width g (all in one clock unit).
//
// It counts every event recorded in a sub-window that reaches into
// [t-span, t]: all the events of that closed interval, plus at most those
// of (t-span-g, t-span). Admitting only while that count is below n keeps
// every closed interval of length span at or under n (when the last event of
// such an interval was admitted, all earlier ones were counted), and refuses
// only when n events were admitted in (t-span-g, t].
//
// Both bounds assume a clock that does not go backward: the memory store
// reads the monotonic clock, the Redis store the server's clock. If it does
// step back, the state stays ordered and bounded and new events are counted
// in the newest sub-window, which only delays when they stop counting.
func (w *window) take(t, span, g, n int64) verdict {
	w.expire(floorDiv(t-span, g))
	cur := floorDiv(t, g)
	if k := len(w.buckets); k > 0 && w.buckets[k-1].idx > cur {
		// The clock stepped back: see above.
		cur = w.buckets[k-1].idx
	}
	v := verdict{allowed: w.total < n}
	if v.allowed {
		w.total++
		if k := len(w.buckets); k > 0 && w.buckets[k-1].idx == cur {
			w.buckets[k-1].n++
		} else {
			w.buckets = append(w.buckets, bucket{idx: cur, n: 1})
		}
	}
	v.remaining = max(n-w.total, 0)
	// A sub-window stops counting once t-span passes its end.
	v.reset = (w.buckets[0].idx+1)*g + span
	if !v.allowed {
		left := w.total
		for _, b := range w.buckets {
			left -= b.n
			if left < n {
				v.retry = (b.idx+1)*g + span
				break
			}
		}
	}
	return v
}

// expire drops the sub-windows before index lo.
func (w *window) expire(lo int64) {
	i := 0
	for i < len(w.buckets) && w.buckets[i].idx < lo {
		w.total -= w.buckets[i].n
		i++
	}
	if i > 0 {
		// Shift down rather than reslice so the array is reused forever.
		w.buckets = w.buckets[:copy(w.buckets, w.buckets[i:])]
	}
}

// live is the number of events that still count at time t.
func (w *window) live(t, span, g int64) int64 {
	lo := floorDiv(t-span, g)
	total := w.total
	for _, b := range w.buckets {
		if b.idx >= lo {
			break
		}
		total -= b.n
	}
	return total
}

// expiresAt is when the last bucket stops counting: the state can go.
func (w *window) expiresAt(span, g int64) int64 {
	if len(w.buckets) == 0 {
		return 0
	}
	return (w.buckets[len(w.buckets)-1].idx+1)*g + span
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
