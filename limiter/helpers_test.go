package limiter

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is the injected clock of the tests: time only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_750_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// storeKind builds a store of one kind reading the given clock. Stores
// built by the same kind within one test share their state (one Redis, or
// one memory store), like instances of one deployment.
type storeKind struct {
	name string
	open func(t *testing.T, now func() time.Time) Store
}

func memoryKind() storeKind {
	return storeKind{"memory", func(t *testing.T, now func() time.Time) Store {
		m := NewMemory(MemoryOptions{Now: now, SweepInterval: -1})
		t.Cleanup(func() { m.Close() })
		return m
	}}
}

// redisKind opens stores on a fresh client each time (as separate instances
// would), with a key prefix unique to the test.
func redisKind(name string, newClient func(t *testing.T) redis.UniversalClient) storeKind {
	return storeKind{name, func(t *testing.T, now func() time.Time) Store {
		s := NewRedis(newClient(t), RedisOptions{Prefix: testPrefix(t), Timeout: 5 * time.Second, now: now})
		t.Cleanup(func() { s.Close() })
		return s
	}}
}

func testPrefix(t *testing.T) string { return "test:" + t.Name() + ":" }

func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func newClusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func check(t *testing.T, s Store, key string, l Limit) Decision {
	t.Helper()
	b := Batch{Windows: []WindowCheck{{Key: key, Limit: l}}}
	if err := s.Do(context.Background(), &b); err != nil {
		t.Fatalf("Do: %v", err)
	}
	return b.Windows[0].Decision
}

// countingConn counts the writes on a connection: with go-redis, one
// flushed write per round trip.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func countingDialer(writes *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, writes}, nil
	}
}

// roundTrips counts the commands and pipelines go-redis sends.
type roundTrips struct {
	cmds, pipelines atomic.Int64
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !strings.EqualFold(cmd.Name(), "hello") && !strings.EqualFold(cmd.Name(), "client") {
			h.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

// quietLogger drops go-redis's own log lines: the fault tests make it
// report every refused dial, which buries the test output.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}
