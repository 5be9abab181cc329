package limiter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// Differential: real Do calls forced into one pipeline (both flusher slots
// held while they queue), mixing independent batches of 1-3 windows, gated
// batches (unshared + shared + session), callers that left, and a clock that
// sometimes steps back; against the memory store deciding the batches one by
// one in queue order. Key "d" has two limits on one window (2 and 1 per
// 6s), which share its counter by the package's rule.
func TestMergedPipelinesMatchSequentialCalls(t *testing.T) {
	srv := redistest.Start(t)
	for _, single := range []bool{true, false} {
		clock := newClock()
		r := NewRedis(newClient(t, srv.Addr()), RedisOptions{Prefix: testPrefix(t) + map[bool]string{true: "s:", false: "g:"}[single], Timeout: 5 * time.Second, now: clock.Now, NoLeases: true}) // every caller queues
		r.single = single
		m := NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: -1})
		type kl struct {
			key string
			l   Limit
		}
		pool := []kl{{"a", Limit{5, 6 * time.Second}}, {"b", Limit{3, time.Minute}}, {"c", Limit{40, time.Minute}}, {"d", Limit{2, 6 * time.Second}}, {"a", Limit{7, time.Minute}}, {"b", Limit{5, time.Minute}}, {"d", Limit{1, 6 * time.Second}}}
		sessions := []string{"s1", "s2"}
		rng := rand.New(rand.NewPCG(1, uint64(len(t.Name()))))
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		decisions := 0
		for step := 0; step < 300; step++ {
			switch rng.IntN(6) {
			case 0:
			case 1:
				clock.Add(-time.Duration(rng.IntN(3000)) * time.Millisecond)
			default:
				clock.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			}
			n := 1 + rng.IntN(10)
			batches := make([]*Batch, n)
			gone := make([]bool, n)
			for i := range batches {
				b := &Batch{}
				nw := 1 + rng.IntN(3)
				gatedB := rng.IntN(3) == 0
				for j := 0; j < nw; j++ {
					p := pool[rng.IntN(len(pool))]
					b.Windows = append(b.Windows, WindowCheck{Key: p.key, Limit: p.l, Shared: gatedB && j > 0})
				}
				if gatedB && rng.IntN(2) == 0 {
					b.Session = &SessionCheck{ID: sessions[rng.IntN(2)], MaxTurns: 20, Idle: 10 * time.Second}
				}
				batches[i] = b
				gone[i] = rng.IntN(8) == 0
			}
			// hold both slots; queue the callers in order
			r.mu.Lock()
			r.inflight = redisFlushers
			r.mu.Unlock()
			errs := make([]chan error, n)
			for i, b := range batches {
				errs[i] = make(chan error, 1)
				ctx := context.Background()
				if gone[i] {
					ctx = cancelled
				}
				go func() { errs[i] <- r.Do(ctx, b) }()
				for {
					r.mu.Lock()
					q := len(r.waiting)
					r.mu.Unlock()
					if q == i+1 {
						break
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			r.handOff() // the first queued caller leads all of them
			for i := range batches {
				if err := <-errs[i]; (err != nil) != gone[i] {
					t.Fatalf("step %d caller %d: %v (gone %v)", step, i, err, gone[i])
				}
			}
			r.mu.Lock()
			held := r.inflight
			r.mu.Unlock()
			for range held {
				r.handOff()
			}
			// The reference: the order mergeWindows/combine execute in.
			type send struct {
				gated   int      // caller index of a gated batch, or -1
				members [][2]int // a group's (caller, window) members
				key     string
				l       Limit
			}
			var sends []*send
			var groups []*send
			for i, b := range batches {
				if gone[i] {
					continue
				}
				gate, shared := 0, 0
				for _, w := range b.Windows {
					if w.Shared {
						shared++
					} else {
						gate++
					}
				}
				if !(gate == 0 || (shared == 0 && b.Session == nil)) {
					sends = append(sends, &send{gated: i})
					continue
				}
			win:
				for j, w := range b.Windows {
					for gi := len(groups) - 1; gi >= 0; gi-- {
						g := groups[gi]
						if g.key == w.Key && g.l.Window == w.Limit.Window {
							if g.l == w.Limit {
								g.members = append(g.members, [2]int{i, j})
								continue win
							}
							break
						}
					}
					g := &send{gated: -1, key: w.Key, l: w.Limit, members: [][2]int{{i, j}}}
					groups = append(groups, g)
					sends = append(sends, g)
				}
			}
			if single && len(groups) > 1 {
				var out []*send
				placed := false
				for _, s := range sends {
					if s.gated >= 0 {
						out = append(out, s)
					} else if !placed {
						out = append(out, groups...)
						placed = true
					}
				}
				sends = out
			}
			wants := make([]*Batch, n)
			for i, b := range batches {
				wants[i] = &Batch{Windows: append([]WindowCheck(nil), b.Windows...)}
				if b.Session != nil {
					s := *b.Session
					wants[i].Session = &s
				}
			}
			for _, s := range sends {
				if s.gated >= 0 {
					if err := m.Do(context.Background(), wants[s.gated]); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for _, mb := range s.members {
					one := Batch{Windows: []WindowCheck{wants[mb[0]].Windows[mb[1]]}}
					if err := m.Do(context.Background(), &one); err != nil {
						t.Fatal(err)
					}
					wants[mb[0]].Windows[mb[1]] = one.Windows[0]
				}
			}
			for i, b := range batches {
				if gone[i] {
					continue
				}
				want := wants[i]
				for j := range b.Windows {
					g, w := b.Windows[j], want.Windows[j]
					decisions++
					if g.Skipped != w.Skipped || g.Decision.Allowed != w.Decision.Allowed || g.Decision.Remaining != w.Decision.Remaining ||
						!g.Decision.Reset.Equal(w.Decision.Reset) || g.Decision.RetryAfter != w.Decision.RetryAfter {
						t.Fatalf("single=%v step %d caller %d window %d (%s %v shared=%v): redis %+v skipped=%v, memory %+v skipped=%v",
							single, step, i, j, g.Key, g.Limit, g.Shared, g.Decision, g.Skipped, w.Decision, w.Skipped)
					}
				}
				if b.Session != nil && (b.Session.Skipped != want.Session.Skipped || b.Session.Outcome != want.Session.Outcome || b.Session.Turn != want.Session.Turn) {
					t.Fatalf("step %d caller %d session: redis %+v memory %+v", step, i, *b.Session, *want.Session)
				}
			}
		}
		t.Logf("single=%v: %d window decisions compared", single, decisions)
	}
}
