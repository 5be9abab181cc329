package limiter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// Steady state: keys exist, events are admitted (a limit no benchmark
// reaches), the real clock.
var benchLimit = Limit{1 << 50, time.Minute}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("ip:198.51.%d.%d", i/256, i%256)
	}
	return keys
}

// warmup is how many batches run before timing: enough to create every key.
const warmup = 10000

func runSerial(b *testing.B, s Store, batch func(i int) *Batch, onStart func()) {
	ctx := context.Background()
	for i := range warmup {
		if err := s.Do(ctx, batch(i)); err != nil {
			b.Fatal(err)
		}
	}
	if onStart != nil {
		onStart()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.Do(ctx, batch(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func runParallel(b *testing.B, s Store, keys []string, limit Limit, onStart func()) {
	ctx := context.Background()
	for _, k := range keys {
		bt := Batch{Windows: []WindowCheck{{Key: k, Limit: limit}}}
		if err := s.Do(ctx, &bt); err != nil {
			b.Fatal(err)
		}
	}
	if onStart != nil {
		onStart()
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		bt := Batch{Windows: []WindowCheck{{Limit: limit}}}
		for pb.Next() {
			bt.Windows[0].Key = keys[i%len(keys)]
			i++
			if err := s.Do(ctx, &bt); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBaseline is the floor any in-process limiter pays per decision:
// read the clock, lock, look a key up in a map. Compare BenchmarkMemory with
// it in the same run (ns/op ratio) rather than with absolute numbers from
// another machine.
func BenchmarkBaseline(b *testing.B) {
	keys := benchKeys(10000)
	var mu sync.Mutex
	m := make(map[string]int64, len(keys))
	for _, k := range keys {
		m[k] = 0
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t := time.Now().UnixNano()
		mu.Lock()
		m[keys[i%len(keys)]] = t
		mu.Unlock()
	}
}

func BenchmarkMemory(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	keys := benchKeys(10000)
	bt := Batch{Windows: []WindowCheck{{Limit: benchLimit}}}
	runSerial(b, m, func(i int) *Batch {
		bt.Windows[0].Key = keys[i%len(keys)]
		return &bt
	}, nil)
}

func BenchmarkMemoryRefused(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	bt := Batch{Windows: []WindowCheck{{Key: "ip:192.0.2.1", Limit: Limit{30, time.Hour}}}}
	runSerial(b, m, func(int) *Batch { return &bt }, nil)
	if bt.Windows[0].Decision.Allowed {
		b.Fatal("admitted")
	}
}

func BenchmarkMemorySecretKey(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	bt := Batch{Windows: []WindowCheck{{Key: "sk-live-0123456789abcdef0123456789", Secret: true, Limit: benchLimit}}}
	runSerial(b, m, func(int) *Batch { return &bt }, nil)
}

// A converse request: IP and agent windows and a session turn.
func BenchmarkMemoryConverseBatch(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	keys := benchKeys(10000)
	bt := Batch{
		Windows: []WindowCheck{{Limit: benchLimit}, {Key: "agent:my-bot/1.0", Limit: benchLimit}},
		Session: &SessionCheck{},
	}
	runSerial(b, m, func(i int) *Batch {
		bt.Windows[0].Key = keys[i%len(keys)]
		bt.Session.ID = keys[i%len(keys)]
		return &bt
	}, nil)
}

func BenchmarkMemoryParallel(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	runParallel(b, m, benchKeys(10000), benchLimit, nil)
}

// Every goroutine on one key: the worst case for the shard locks.
func BenchmarkMemoryParallelOneKey(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	runParallel(b, m, benchKeys(1), benchLimit, nil)
}

func benchRedis(b *testing.B, opts ...RedisOptions) (*Redis, *atomic.Int64) {
	srv := redistest.Start(b)
	var writes atomic.Int64
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Dialer: countingDialer(&writes)})
	// Without options the store decides every event in Redis, so these
	// benchmarks keep measuring the round trip and its auto-pipelining
	// (benchLimit is large enough to lease); benchHotKey passes its own.
	o := RedisOptions{NoLeases: true}
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Timeout = time.Second
	s := NewRedis(c, o)
	b.Cleanup(func() { s.Close(); c.Close() })
	return s, &writes
}

func reportRoundTrips(b *testing.B, writes *atomic.Int64, start int64) {
	b.ReportMetric(float64(writes.Load()-start)/float64(b.N), "roundtrips/op")
}

func BenchmarkRedis(b *testing.B) {
	s, writes := benchRedis(b)
	keys := benchKeys(10000)
	bt := Batch{Windows: []WindowCheck{{Limit: benchLimit}}}
	var start int64
	runSerial(b, s, func(i int) *Batch {
		bt.Windows[0].Key = keys[i%len(keys)]
		return &bt
	}, func() { start = writes.Load() })
	reportRoundTrips(b, writes, start)
}

func BenchmarkRedisConverseBatch(b *testing.B) {
	s, writes := benchRedis(b)
	keys := benchKeys(10000)
	bt := Batch{
		Windows: []WindowCheck{{Limit: benchLimit}, {Key: "agent:my-bot/1.0", Limit: benchLimit}},
		Session: &SessionCheck{},
	}
	var start int64
	runSerial(b, s, func(i int) *Batch {
		bt.Windows[0].Key = keys[i%len(keys)]
		bt.Session.ID = keys[i%len(keys)]
		return &bt
	}, func() { start = writes.Load() })
	reportRoundTrips(b, writes, start)
}

func BenchmarkRedisParallel(b *testing.B) {
	s, writes := benchRedis(b)
	var start int64
	runParallel(b, s, benchKeys(10000), benchLimit, func() { start = writes.Load() })
	reportRoundTrips(b, writes, start)
}

// 64 callers at once, like a busy server's requests: they share round
// trips (roundtrips/op below 1), which is where auto-pipelining pays.
func BenchmarkRedisParallel64(b *testing.B) {
	s, writes := benchRedis(b)
	var start int64
	b.SetParallelism(32) // × GOMAXPROCS=2 goroutines
	runParallel(b, s, benchKeys(10000), benchLimit, func() { start = writes.Load() })
	reportRoundTrips(b, writes, start)
}

// 64 callers on one key (one agent hammering the gateway, as in
// bench/compare.sh): with leases most decisions take no round trip;
// BenchmarkRedisHotKey64Exact is the same load decided one by one.
func BenchmarkRedisHotKey64(b *testing.B) { benchHotKey(b, RedisOptions{}) }

func BenchmarkRedisHotKey64Exact(b *testing.B) { benchHotKey(b, RedisOptions{NoLeases: true}) }

func benchHotKey(b *testing.B, opts RedisOptions) {
	s, writes := benchRedis(b, opts)
	var start int64
	b.SetParallelism(32) // × GOMAXPROCS=2 goroutines
	runParallel(b, s, benchKeys(1), benchLimit, func() { start = writes.Load() })
	reportRoundTrips(b, writes, start)
}

// The failure policy's cost on the healthy path, over a memory primary.
func BenchmarkResilientParallel(b *testing.B) {
	r := NewResilient(NewMemory(MemoryOptions{}), NewMemory(MemoryOptions{}), ResilientOptions{FailOpen: true})
	defer r.Close()
	runParallel(b, r, benchKeys(10000), benchLimit, nil)
}
