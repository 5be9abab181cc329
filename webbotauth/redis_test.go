package webbotauth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

func redisClient(t *testing.T) (redis.UniversalClient, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c, rs
}

func TestRedisCache(t *testing.T) {
	client, _ := redisClient(t)
	ctx := context.Background()
	rc := NewRedisCache(client, "test:")
	if _, _, ok, err := rc.Get(ctx, "https://a.example"+WellKnownPath); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	exp := time.Now().Add(90 * time.Second)
	if err := rc.Set(ctx, "https://a.example"+WellKnownPath, []byte(`{"keys":[]}`), exp); err != nil {
		t.Fatal(err)
	}
	val, got, ok, err := rc.Get(ctx, "https://a.example"+WellKnownPath)
	if err != nil || !ok || string(val) != `{"keys":[]}` {
		t.Fatalf("%q %v %v", val, ok, err)
	}
	if d := got.Sub(exp); d < -time.Second || d > time.Second {
		t.Fatalf("expiry %v, want about %v", got, exp)
	}
	// Namespaced under the prefix, expiring in Redis itself.
	if ttl := client.PTTL(ctx, "test:wba:dir:https://a.example"+WellKnownPath).Val(); ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("Redis TTL %v", ttl)
	}
	// A key without expiry was not written by us: absent.
	client.Set(ctx, "test:wba:dir:x", "{}", 0)
	if _, _, ok, _ := rc.Get(ctx, "x"); ok {
		t.Fatal("a key without TTL was used")
	}
}

// TestSharedDirectory: instances sharing Redis fetch an agent's directory
// once between them, share failures too, and fetch on their own when
// Redis is down.
func TestSharedDirectory(t *testing.T) {
	client, rs := redisClient(t)
	a := newAgent(t)
	c := newClock()
	ds := newDirServer(t, jwks(a))
	newInstance := func() *Verifier {
		o := ds.options(c)
		o.Shared = NewRedisCache(client, "")
		return mustNew(t, o)
	}
	verify := func(v *Verifier) Result {
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		return v.Verify(context.Background(), r)
	}
	one, two := newInstance(), newInstance()
	expect(t, verify(one), Verified, "")
	expect(t, verify(two), Verified, "")
	if n := ds.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for two instances, want 1", n)
	}

	// A failure is shared too (negative cache), so a broken directory
	// is not hammered by every instance.
	b := newAgent(t)
	ds2 := newDirServer(t, "")
	ds2.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	ds2.caPEM = append(ds2.caPEM, ds.caPEM...)
	inst := func() *Verifier {
		o := ds2.options(c)
		o.Shared = NewRedisCache(client, "")
		return mustNew(t, o)
	}
	for _, v := range []*Verifier{inst(), inst()} {
		r := newRequest(site, "/")
		b.signAs(r, ds2.origin, c.Now())
		expect(t, v.Verify(context.Background(), r), Unverified, "status 404")
	}
	if n := ds2.hits.Load(); n != 1 {
		t.Fatalf("%d fetches of a failing directory by two instances, want 1", n)
	}

	// Redis down: a new instance fetches by itself.
	rs.Kill()
	three := newInstance()
	expect(t, verify(three), Verified, "")
	if n := ds.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}
