package handoff

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// Redis never holds a claim code or an exchange code, in a key name, a
// hash field or a value: not the code itself, nor its hex SHA-256 in the
// clear (a lockout key and the code's rate-limit window hash what they
// are given). A claim verified, a wrong code, a bad proof of work, a
// challenge string that is the code, and exchanges by GET and POST, all
// through the handler with its Redis challenge store and Redis rate
// limits, on miniredis, a real server and a real Cluster.
func TestRedisHoldsNoCode(t *testing.T) {
	const code = "RAPTOR-SECR-ETCO-DE12-3456"
	const wrong = "RAPTOR-WRON-GCOD-E987-6543"
	const exchange = "rr_exch_SECRETEXCHANGE0123456789"
	forEachRedis(t, func(t *testing.T, newStore func(RedisOptions) *Redis) {
		s := newStore(RedisOptions{})
		rl := limiter.NewRedis(s.client, limiter.RedisOptions{Prefix: "ahp:test:", Timeout: 2 * time.Second})
		t.Cleanup(func() { rl.Close() })
		f := newFixture(t, func(c *Config) {
			c.Store = s
			c.Limits.Store = rl
			c.Lockout = Lockout{After: 5, Base: time.Minute, Max: time.Hour, Reset: 2 * time.Hour}
		})
		f.be.fn = claimBackend(code)
		start := func() challengeAnswer {
			t.Helper()
			r := f.do("POST", "/v1/sandboxes/sbx1/claim", `{}`)
			var a struct {
				Claim struct {
					PoW challengeAnswer `json:"pow_challenge"`
				} `json:"claim"`
			}
			if err := json.Unmarshal(r.body, &a); err != nil || !ValidChallenge(a.Claim.PoW.Challenge) {
				t.Fatalf("claim start: %d %s", r.StatusCode, r.body)
			}
			return a.Claim.PoW
		}
		pc := start()
		if r := f.do("POST", DefaultVerifyPath, verifyBody(wrong, pc.Challenge, solveT(t, pc))); r.StatusCode == 200 {
			t.Fatalf("a wrong code verified: %s", r.body)
		}
		pc = start()
		f.do("POST", DefaultVerifyPath, verifyBody(code, pc.Challenge, badNonce(t, pc)))
		f.do("POST", DefaultVerifyPath, verifyBody(code, strings.Repeat("ab", 32), "1"))
		f.do("POST", DefaultVerifyPath, `{"claim_code":"`+code+`","proof_of_work":{"challenge":"`+code+`","nonce":"1"}}`)
		pc = start()
		if r := f.do("POST", DefaultVerifyPath, verifyBody(code, pc.Challenge, solveT(t, pc))); r.StatusCode != 200 {
			t.Fatalf("the right code: %d %s", r.StatusCode, r.body)
		}
		f.do("GET", "/exchange/"+exchange, "")
		f.do("POST", "/exchange/"+exchange, "")

		secrets := []string{code, wrong, exchange, codeKey(code), codeKey(wrong)}
		n := 0
		eachEntry(t, s.client, func(where, text string) {
			n++
			for _, sec := range secrets {
				if strings.Contains(strings.ToLower(text), strings.ToLower(sec)) {
					t.Errorf("%s %q holds a code (%s)", where, text, sec)
				}
			}
		})
		if n < 5 {
			t.Fatalf("only %d Redis entries seen: the flow did not use Redis", n)
		}
	})
}

// eachEntry calls fn with every key name, hash field, set or list member
// and value in Redis (on every master of a Cluster, which visits them at
// once: fn is called under a lock).
func eachEntry(t *testing.T, c redis.UniversalClient, fn func(where, text string)) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	fn0 := fn
	fn = func(where, text string) {
		mu.Lock()
		defer mu.Unlock()
		fn0(where, text)
	}
	dump := func(ctx context.Context, c redis.Cmdable) error {
		keys, err := c.Keys(ctx, "*").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			fn("key", k)
			typ, err := c.Type(ctx, k).Result()
			if err != nil {
				return err
			}
			var items []string
			switch typ {
			case "string":
				v, err := c.Get(ctx, k).Result()
				if err != nil && err != redis.Nil {
					return err
				}
				items = []string{v}
			case "hash":
				m, err := c.HGetAll(ctx, k).Result()
				if err != nil {
					return err
				}
				for f, v := range m {
					items = append(items, f, v)
				}
			case "zset":
				items, err = c.ZRange(ctx, k, 0, -1).Result()
			case "set":
				items, err = c.SMembers(ctx, k).Result()
			case "list":
				items, err = c.LRange(ctx, k, 0, -1).Result()
			}
			if err != nil {
				return err
			}
			for _, it := range items {
				fn(typ+" entry of "+k, it)
			}
		}
		return nil
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return dump(ctx, m) })
	} else {
		err = dump(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
}
