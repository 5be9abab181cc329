package limiter

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// A single endpoint that enforces hash slots (a one-node cluster owning every
// slot stands in for a sharding proxy such as Redis Enterprise's): single-key
// scripts work; a script over keys of different slots is refused (CROSSSLOT).
func TestCombinedScriptOnSlotEnforcingEndpoint(t *testing.T) {
	c := slotEnforcingEndpoint(t)
	ctx := context.Background()
	r := NewRedis(c, RedisOptions{Timeout: 5 * time.Second})
	defer r.Close()
	lim := Limit{5, time.Minute}
	// one caller alone: a single-key script, works
	if err := r.Do(ctx, &Batch{Windows: []WindowCheck{{Key: "a", Limit: lim}}}); err != nil {
		t.Fatalf("single key: %v", err)
	}
	// two callers in one pipeline, distinct keys
	mk := func(k string) *pendingCalls {
		w := WindowCheck{Key: k, Limit: lim}
		return &pendingCalls{ctx: ctx, deadline: time.Now().Add(time.Minute), done: make(chan error, 1), calls: []scriptCall{r.windowCall(&w, 1)}}
	}
	pa, pb := mk("a"), mk("b")
	r.flush([]*pendingCalls{pa, pb})
	ea, eb := <-pa.done, <-pb.done
	t.Logf("two callers in one pipeline: a: %v; b: %v", ea, eb)
	if ea != nil || eb != nil {
		t.Errorf("callers on distinct keys failed together")
	}
}

// slotEnforcingEndpoint starts a one-node cluster owning every slot,
// reached through a plain client: the stand-in for a sharding proxy (a
// redis:// URL to an endpoint that enforces hash slots).
func slotEnforcingEndpoint(t *testing.T) *redis.Client {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// RedisServer skips without redis-server, as every Redis test does
	// (and fails under CI).
	cmd := exec.Command(redistest.RedisServer(t), "--port", strconv.Itoa(port), "--cluster-enabled", "yes", "--dir", t.TempDir(), "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	// The server takes a moment to accept commands, then to serve slots.
	for i := 0; ; i++ {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err == nil {
			break
		} else if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; ; i++ {
		if info, _ := c.Do(ctx, "CLUSTER", "INFO").Text(); contains(info, "cluster_state:ok") {
			break
		}
		if i > 200 {
			t.Fatal("cluster not ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}
func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
