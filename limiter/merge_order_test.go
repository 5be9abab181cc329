package limiter

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// One batch, three unshared windows on the same key and window, Events 10,
// 5, 10 (they share one counter by the package's rule). 3 events already
// spent. One call each, in order: 10 admits (4), 5 admits (5), 10 admits (6).
func TestMergedSameKeyDifferentEventsOneBatch(t *testing.T) {
	srv := redistest.Start(t)
	for _, single := range []bool{true, false} {
		clock := newClock()
		r := NewRedis(newClient(t, srv.Addr()), RedisOptions{Prefix: testPrefix(t) + map[bool]string{true: "single:", false: "groups:"}[single], Timeout: 5 * time.Second, now: clock.Now})
		r.single = single // false: one windowScript per group, as on Cluster
		m := NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: -1})
		l10, l5 := Limit{10, time.Minute}, Limit{5, time.Minute}
		for _, s := range []Store{r, m} {
			for range 3 {
				b := Batch{Windows: []WindowCheck{{Key: "x", Limit: l10}}}
				if err := s.Do(context.Background(), &b); err != nil {
					t.Fatal(err)
				}
			}
		}
		var got [2]Batch
		for i, s := range []Store{r, m} {
			got[i] = Batch{Windows: []WindowCheck{{Key: "x", Limit: l10}, {Key: "x", Limit: l5}, {Key: "x", Limit: l10}}}
			if err := s.Do(context.Background(), &got[i]); err != nil {
				t.Fatal(err)
			}
		}
		for j := range got[0].Windows {
			rd, md := got[0].Windows[j].Decision, got[1].Windows[j].Decision
			t.Logf("single=%v window %d (%v): redis allowed=%v rem=%d | memory allowed=%v rem=%d", single, j, got[0].Windows[j].Limit, rd.Allowed, rd.Remaining, md.Allowed, md.Remaining)
			if rd.Allowed != md.Allowed || rd.Remaining != md.Remaining {
				t.Errorf("single=%v window %d: redis %+v, memory %+v", single, j, rd, md)
			}
		}
	}
}

// Two callers in one pipeline: P0 [x 5/min], P1 [x 10/min, x 5/min]; 3 spent.
// In pipeline order: P0 admits (4), P1's 10 admits (5), P1's 5 refuses.
// In the other order (P1 then P0): P1 10 (4), P1 5 (5), P0 refused.
// Merged: P0 and P1's 5-limit run first as one group: all three admitted.
func TestMergedSameKeyDifferentEventsTwoCallers(t *testing.T) {
	srv := redistest.Start(t)
	clock := newClock()
	r := NewRedis(newClient(t, srv.Addr()), RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, now: clock.Now})
	l10, l5 := Limit{10, time.Minute}, Limit{5, time.Minute}
	for range 3 {
		b := Batch{Windows: []WindowCheck{{Key: "x", Limit: l10}}}
		if err := r.Do(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
	}
	b0 := Batch{Windows: []WindowCheck{{Key: "x", Limit: l5}}}
	b1 := Batch{Windows: []WindowCheck{{Key: "x", Limit: l10}, {Key: "x", Limit: l5}}}
	mk := func(b *Batch) *pendingCalls {
		p := &pendingCalls{ctx: context.Background(), deadline: time.Now().Add(time.Minute), done: make(chan error, 1)}
		for i := range b.Windows {
			p.calls = append(p.calls, r.windowCall(&b.Windows[i], 1))
		}
		return p
	}
	p0, p1 := mk(&b0), mk(&b1)
	r.flush([]*pendingCalls{p0, p1})
	if err := <-p0.done; err != nil {
		t.Fatal(err)
	}
	if err := <-p1.done; err != nil {
		t.Fatal(err)
	}
	setWindow(&b0.Windows[0], p0.calls[0].val)
	setWindow(&b1.Windows[0], p1.calls[0].val)
	setWindow(&b1.Windows[1], p1.calls[1].val)
	a := []bool{b0.Windows[0].Decision.Allowed, b1.Windows[0].Decision.Allowed, b1.Windows[1].Decision.Allowed}
	t.Logf("P0 5/min %v, P1 10/min %v, P1 5/min %v", a[0], a[1], a[2])
	if a[0] && a[1] && a[2] {
		t.Errorf("all three admitted: no order of the two batches admits all three (the 5/min counter would reach 6 before P1's 5/min check... any serial order refuses one)")
	}
}
