package limiter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// A converse request checked against the IP and agent limits and its
// session, in one call. The agent's window and the session are shared with
// other clients, so they count only requests the client's own window
// admits: the third request, refused for the IP, spends neither. With Redis, the primary would be
// limiter.NewRedis(client, limiter.RedisOptions{}) on a client created with
// ContextTimeoutEnabled (see CheckClient); here a memory store stands in.
func Example() {
	perIP, _ := limiter.ParseLimit("2/minute")
	perAgent, _ := limiter.ParseLimit("60/minute")
	store := limiter.NewResilient(
		limiter.NewMemory(limiter.MemoryOptions{}), // the shared store
		limiter.NewMemory(limiter.MemoryOptions{}), // per-instance fallback
		limiter.ResilientOptions{FailOpen: true},
	)
	defer store.Close()

	b := limiter.Batch{
		Windows: []limiter.WindowCheck{
			{Key: "ip:203.0.113.7", Limit: perIP},
			{Key: "agent:my-bot/1.0", Limit: perAgent, Shared: true},
		},
		Session: &limiter.SessionCheck{ID: "conv-1", MaxTurns: 10, Idle: 10 * time.Minute, TokenBudget: 10000},
	}
	for range 3 {
		if err := store.Do(context.Background(), &b); err != nil {
			fmt.Println("error:", err)
			return
		}
		ip := b.Windows[0].Decision
		if b.Session.Skipped {
			fmt.Printf("allowed=%v remaining=%d session=skipped\n", b.Allowed(), ip.Remaining)
			continue
		}
		fmt.Printf("allowed=%v remaining=%d session=%s turn=%d\n", b.Allowed(), ip.Remaining, b.Session.Outcome, b.Session.Turn)
	}
	fmt.Println("X-RateLimit-Limit:", b.Windows[0].Decision.Limit, "window:", perIP)
	// Output:
	// allowed=true remaining=1 session=ok turn=1
	// allowed=true remaining=0 session=ok turn=2
	// allowed=false remaining=0 session=skipped
	// X-RateLimit-Limit: 2 window: 2/minute
}
