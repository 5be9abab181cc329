package limiter

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// A gated batch (every converse call with a session_id or a per_agent
// window) is one script over keys of different slots on one server. An
// endpoint that enforces hash slots refused it every time, so the call
// failed over to on_store_error although Redis was healthy. After the
// first refusal the store decides such batches as on Cluster, the failed
// one included, with the gate's semantics and nothing counted twice.
func TestGatedBatchOnSlotEnforcingEndpoint(t *testing.T) {
	c := slotEnforcingEndpoint(t)
	r := NewRedis(c, RedisOptions{Timeout: 5 * time.Second})
	defer r.Close()
	ctx := context.Background()
	client, agent := Limit{2, time.Minute}, Limit{5, time.Minute}
	if err := r.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "z|ip|192.0.2.9|unauthenticated", Limit: client}}}); err != nil {
		t.Fatalf("a single window: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    Batch
	}{
		{"client and agent windows", Batch{Windows: []WindowCheck{{Key: "z|ip|192.0.2.1|unauthenticated", Limit: client}, {Key: "z|agent|name:bot", Limit: agent, Shared: true}}}},
		{"client window and session", Batch{Windows: []WindowCheck{{Key: "z|ip|192.0.2.2|unauthenticated", Limit: client}}, Session: &SessionCheck{ID: "z|s1", MaxTurns: 10}}},
	} {
		for i := range 3 {
			b := tc.b
			b.Windows = append([]WindowCheck(nil), tc.b.Windows...)
			if b.Session != nil {
				s := *tc.b.Session
				b.Session = &s
			}
			if err := r.Do(ctx, &b); err != nil {
				t.Fatalf("%s, call %d: %v", tc.name, i+1, err)
			}
			admitted := i < 2
			if b.Windows[0].Decision.Allowed != admitted {
				t.Fatalf("%s, call %d: client window %+v; want allowed %v", tc.name, i+1, b.Windows[0].Decision, admitted)
			}
			if len(b.Windows) > 1 {
				w := b.Windows[1]
				if w.Skipped == admitted || admitted && w.Decision.Remaining != int64(4-i) {
					t.Fatalf("%s, call %d: agent window %+v (skipped %v); want skipped %v, %d left", tc.name, i+1, w.Decision, w.Skipped, !admitted, 4-i)
				}
			}
			if s := b.Session; s != nil && (s.Skipped == admitted || admitted && s.Turn != i+1) {
				t.Fatalf("%s, call %d: session turn %d (skipped %v); want skipped %v, turn %d", tc.name, i+1, s.Turn, s.Skipped, !admitted, i+1)
			}
		}
	}
}

// deadlineHook records the deadline each script and pipeline was sent
// with.
type deadlineHook struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (h *deadlineHook) note(ctx context.Context) {
	d, _ := ctx.Deadline()
	h.mu.Lock()
	h.deadlines = append(h.deadlines, d)
	h.mu.Unlock()
}

func (h *deadlineHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *deadlineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" || cmd.Name() == "eval" {
			h.note(ctx)
		}
		return next(ctx, cmd)
	}
}
func (h *deadlineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.note(ctx)
		return next(ctx, cmds)
	}
}

// "Each decision waits at most timeout" (README): on Cluster a gated
// batch takes two round trips, which used to get a fresh Timeout each, so
// a slow Redis held the decision for up to twice the timeout. They now
// share one deadline. The deadlines the hook records show it whatever the
// timeout; a long one keeps a loaded machine (CI's two cores under -race)
// from failing the decision itself (100 ms did, at load 7-8).
func TestClusterGatedDecisionWithinTimeout(t *testing.T) {
	cluster := redistest.StartCluster(t)
	c := newClusterClient(t, cluster.Addrs())
	const timeout = 10 * time.Second
	s := NewRedis(c, RedisOptions{Timeout: timeout, NoLeases: true})
	defer s.Close()
	lim := Limit{100, time.Minute}
	ctx := context.Background()
	// warm up: scripts loaded, connections open
	if err := s.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "warm", Limit: lim}, {Key: "warm-agent", Limit: lim, Shared: true}}}); err != nil {
		t.Fatal(err)
	}
	h := &deadlineHook{}
	c.AddHook(h)
	before := time.Now()
	err := s.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "z|ip|192.0.2.1|unauthenticated", Limit: lim}, {Key: "z|agent|name:bot", Limit: lim, Shared: true}},
		Session: &SessionCheck{ID: "z|s1"}})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.deadlines) < 2 {
		t.Fatalf("%d round trips, want the gated batch's two on Cluster", len(h.deadlines))
	}
	for i, d := range h.deadlines {
		// One deadline, set once, timeout after a moment within the call.
		if d.IsZero() || !d.Equal(h.deadlines[0]) || d.Before(before.Add(timeout)) || d.After(after.Add(timeout)) {
			t.Fatalf("round trip %d sent with deadline %v, the first with %v: want one deadline, %s after the decision began", i, d, h.deadlines[0], timeout)
		}
	}
}

// A Ring shards keys over servers that each run scripts on their own keys
// only: a gated batch must not be one script, which the Ring sends to the
// first key's shard, where the agent window and the session of a batch
// were counted (the same agent's counter on every shard its clients' keys
// hash to: N admitted per shard).
func TestGatedBatchOnRing(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { ring.Close() })
	r := NewRedis(ring, RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, NoLeases: true})
	defer r.Close()
	ctx := context.Background()
	agent := Limit{3, time.Minute}
	admitted := 0
	for i := range 16 {
		b := Batch{Windows: []WindowCheck{
			{Key: "ip|192.0.2." + strconv.Itoa(i), Limit: Limit{10, time.Minute}},
			{Key: "agent|bot", Limit: agent, Shared: true},
		}}
		if err := r.Do(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if b.Windows[1].Decision.Allowed {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("the shared agent window admitted %d events under %v", admitted, agent)
	}
}
