package limiter

import (
	"context"
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

// slowHook delays every script and pipeline by d (or until its context
// ends): a Redis that answers, slowly.
type slowHook struct{ d time.Duration }

func (h slowHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h slowHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" || cmd.Name() == "eval" {
			select {
			case <-time.After(h.d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmd)
	}
}
func (h slowHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		select {
		case <-time.After(h.d):
		case <-ctx.Done():
			return ctx.Err()
		}
		return next(ctx, cmds)
	}
}

// "Each decision waits at most timeout" (README): on Cluster a gated
// batch takes two round trips, which used to get a fresh Timeout each, so
// a slow Redis held the decision for up to twice the timeout. They now
// share one deadline.
func TestClusterGatedDecisionWithinTimeout(t *testing.T) {
	cluster := redistest.StartCluster(t)
	c := newClusterClient(t, cluster.Addrs())
	const timeout = 100 * time.Millisecond
	s := NewRedis(c, RedisOptions{Timeout: timeout, NoLeases: true})
	defer s.Close()
	lim := Limit{100, time.Minute}
	ctx := context.Background()
	// warm up: scripts loaded, connections open
	if err := s.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "warm", Limit: lim}, {Key: "warm-agent", Limit: lim, Shared: true}}}); err != nil {
		t.Fatal(err)
	}
	c.AddHook(slowHook{70 * time.Millisecond})
	start := time.Now()
	err := s.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "z|ip|192.0.2.1|unauthenticated", Limit: lim}, {Key: "z|agent|name:bot", Limit: lim, Shared: true}},
		Session: &SessionCheck{ID: "z|s1"}})
	took := time.Since(start)
	t.Logf("took %s, err %v", took.Round(time.Millisecond), err)
	// The first round trip takes 70 ms, so the second cannot finish in
	// time: the decision fails at the deadline, not 70 ms after it.
	if err == nil || took > timeout+50*time.Millisecond {
		t.Fatalf("a gated decision on Cluster took %s with timeout %s (err %v); want it to fail by the timeout", took.Round(time.Millisecond), timeout, err)
	}
}
