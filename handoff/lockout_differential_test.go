package handoff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestLockoutMemoryAndRedisAgree drives Memory and Redis (miniredis)
// with the same random claims, refunds and clock moves (60 seeds of 60
// steps: a review ran 300), and compares
// every outcome: the Lua scripts claim to be lockState's rules.
func TestLockoutMemoryAndRedisAgree(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: 2})
	defer c.Close()
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := NewMemory(MemoryOptions{})
		rds := NewRedis(c, RedisOptions{Zone: fmt.Sprintf("d%d", seed), Timeout: time.Second})
		lo := &Lockout{After: 1 + rng.IntN(3), Base: time.Duration(1+rng.IntN(3)) * time.Second, Max: 10 * time.Second, Reset: time.Duration(2+rng.IntN(8)) * time.Second}
		now := t0
		var pendM, pendR []*AdmitOp
		var log []string
		keysets := [][]string{{"a"}, {"a", "b"}, {"b"}}
		for step := 0; step < 60; step++ {
			switch op := rng.IntN(10); {
			case op < 6: // a claim, good or bad work
				keys := keysets[rng.IntN(len(keysets))]
				good := rng.IntN(3) > 0
				var outs [2]*AdmitOp
				for i, s := range []Store{mem, rds} {
					ch, iop := issue(t, s, PurposeClaim, "n", now, policy())
					w := 0
					if good {
						w = iop.Difficulty
					}
					outs[i] = admit(t, s, &AdmitOp{Purpose: PurposeClaim, Challenge: ch, Work: w, Network: "n", Now: now, LockKeys: keys, Lockout: lo})
				}
				m, r := outs[0], outs[1]
				log = append(log, fmt.Sprintf("%d claim good=%v keys=%v -> mem %s/%v/%v redis %s/%v/%v", step, good, keys, m.Outcome, m.LockStarted, m.RetryAfter, r.Outcome, r.LockStarted, r.RetryAfter))
				if m.Outcome != r.Outcome || m.LockStarted != r.LockStarted || m.RetryAfter != r.RetryAfter {
					t.Fatalf("seed %d lockout %+v: memory and redis differ\n%s", seed, *lo, joinLines(log))
				}
				if m.Outcome == Admitted {
					pendM, pendR = append(pendM, m), append(pendR, r)
				}
			case op < 8: // refund one pending claim
				if len(pendM) == 0 {
					continue
				}
				i := rng.IntN(len(pendM))
				refund(t, mem, pendM[i])
				refund(t, rds, pendR[i])
				log = append(log, fmt.Sprintf("%d refund #%d", step, i))
				pendM = append(pendM[:i], pendM[i+1:]...)
				pendR = append(pendR[:i], pendR[i+1:]...)
			default:
				d := time.Duration(rng.IntN(4000)) * time.Millisecond
				now = now.Add(d)
				mr.FastForward(d)
				log = append(log, fmt.Sprintf("%d +%v", step, d))
			}
		}
	}
}

func joinLines(l []string) string {
	s := ""
	for _, x := range l {
		s += x + "\n"
	}
	return s
}

var _ = context.Background
