package webbotauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
	rc := NewRedisCache(client, "test:", 0)
	url := "https://a.example" + WellKnownPath
	if _, _, ok, err := rc.Get(ctx, url); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	exp := time.Now().Add(90 * time.Second)
	if err := rc.Set(ctx, url, []byte("\x01keys"), exp); err != nil {
		t.Fatal(err)
	}
	val, got, ok, err := rc.Get(ctx, url)
	if err != nil || !ok || string(val) != "\x01keys" {
		t.Fatalf("%q %v %v", val, ok, err)
	}
	if d := got.Sub(exp); d < -time.Second || d > time.Second {
		t.Fatalf("expiry %v, want about %v", got, exp)
	}
	// Namespaced under the prefix, in one Cluster slot, expiring in Redis
	// itself, and indexed.
	if ttl := client.PTTL(ctx, "test:wba:{keys}:"+url).Val(); ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("Redis TTL %v", ttl)
	}
	if n := client.ZCard(ctx, "test:wba:{keys}").Val(); n != 1 {
		t.Fatalf("index holds %d", n)
	}
	if ttl := client.PTTL(ctx, "test:wba:{keys}").Val(); ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("index TTL %v", ttl)
	}
	// A key without expiry was not written by us: absent.
	client.Set(ctx, "test:wba:{keys}:x", "\x01", 0)
	if _, _, ok, _ := rc.Get(ctx, "x"); ok {
		t.Fatal("a key without TTL was used")
	}
}

// However many origins are stored, the cache holds at most maxEntries;
// the entries closest to expiry make room, expired ones leave the index.
func TestRedisCacheBounded(t *testing.T) {
	client, _ := redisClient(t)
	ctx := context.Background()
	rc := NewRedisCache(client, "b:", 5)
	now := time.Now()
	rc.now = func() time.Time { return now }
	for i := range 50 {
		url := fmt.Sprintf("https://evil%d.example%s", i, WellKnownPath)
		// Later origins expire later: the first ones make room.
		if err := rc.Set(ctx, url, []byte("\x01v"), now.Add(time.Hour+time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	keys := client.Keys(ctx, "b:*").Val()
	if len(keys) != 6 { // five entries and the index
		t.Fatalf("%d keys in Redis: %q", len(keys), keys)
	}
	for i := 45; i < 50; i++ {
		if _, _, ok, err := rc.Get(ctx, fmt.Sprintf("https://evil%d.example%s", i, WellKnownPath)); !ok || err != nil {
			t.Fatalf("entry %d missing (%v)", i, err)
		}
	}
	// Replacing an entry does not evict another.
	if err := rc.Set(ctx, fmt.Sprintf("https://evil%d.example%s", 49, WellKnownPath), []byte("\x01w"), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := client.ZCard(ctx, "b:wba:{keys}").Val(); n != 5 {
		t.Fatalf("index holds %d after a replacement", n)
	}
	// Expired members leave the index on the next Set.
	now = now.Add(90 * time.Minute)
	if err := rc.Set(ctx, "https://new.example"+WellKnownPath, []byte("\x01v"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := client.ZCard(ctx, "b:wba:{keys}").Val(); n != 2 {
		t.Fatalf("index holds %d, want 2 (the replaced entry and the new one)", n)
	}
}

// TestSharedDirectory: instances sharing Redis fetch an agent's directory
// once between them; what they share is the agent's keys, encoded, and
// only once a signature verified with them; failures and directories no
// signature verified with stay local; Redis down, an instance fetches by
// itself.
func TestSharedDirectory(t *testing.T) {
	client, rs := redisClient(t)
	ctx := context.Background()
	a := newAgent(t)
	c := newClock()
	// The directory lists the agent's key among 63 others and pads itself
	// to near the size limit: the shared value is the keys alone.
	keys := []testAgent{a}
	for range MaxKeys - 1 {
		keys = append(keys, newAgent(t))
	}
	big := strings.TrimSuffix(jwks(keys...), "}") + `,"pad":"` + strings.Repeat("x", 50<<10) + `"}`
	ds := newDirServer(t, big)
	newInstance := func() *Verifier {
		o := ds.options(c)
		o.Shared = NewRedisCache(client, "", 0)
		return mustNew(t, o)
	}
	verify := func(v *Verifier, signer testAgent) Result {
		r := newRequest(site, "/")
		signer.signAs(r, ds.origin, c.Now())
		return v.Verify(ctx, r)
	}
	key := "ahp:wba:{keys}:" + ds.origin + WellKnownPath

	// A signature that does not verify: the directory was fetched, but
	// nothing reaches Redis.
	one, two := newInstance(), newInstance()
	r := newRequest(site, "/")
	a.signAs(r, ds.origin, c.Now())
	r.Host = "elsewhere.example"
	expect(t, one.Verify(ctx, r), Invalid, "does not verify")
	if n := ds.hits.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
	if n := client.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("keys no signature verified with were shared")
	}
	// The same instance verifies: now they are shared, encoded.
	expect(t, verify(one, a), Verified, "")
	val, err := client.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(val) != 1+MaxKeys*encodedKeySize {
		t.Fatalf("shared value of %d bytes, want %d (the keys alone)", len(val), 1+MaxKeys*encodedKeySize)
	}
	if ks, err := decodeKeys(val, false); err != nil || ks.Len() != MaxKeys {
		t.Fatalf("shared value decodes to %v keys, %v", ks.Len(), err)
	}
	if ttl := client.PTTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("shared for %v, want the directory's hour", ttl)
	}
	// Another instance verifies without fetching, any of the keys.
	expect(t, verify(two, a), Verified, "")
	expect(t, verify(two, keys[7]), Verified, "")
	if n := ds.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for two instances, want 1", n)
	}

	// A failure is not shared: each instance finds out for itself (and
	// caches it in memory).
	b := newAgent(t)
	ds2 := newDirServer(t, "")
	ds2.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	ds2.caPEM = append(ds2.caPEM, ds.caPEM...)
	inst := func() *Verifier {
		o := ds2.options(c)
		o.Shared = NewRedisCache(client, "", 0)
		return mustNew(t, o)
	}
	for _, v := range []*Verifier{inst(), inst()} {
		for range 2 {
			r := newRequest(site, "/")
			b.signAs(r, ds2.origin, c.Now())
			expect(t, v.Verify(ctx, r), Unverified, "status 404")
		}
	}
	if n := ds2.hits.Load(); n != 2 {
		t.Fatalf("%d fetches of a failing directory by two instances, want 2", n)
	}
	if keys := client.Keys(ctx, "ahp:*").Val(); len(keys) != 2 {
		t.Fatalf("Redis holds %q, want the agent's keys and the index", keys)
	}

	// Redis down: a new instance fetches by itself.
	rs.Kill()
	three := newInstance()
	expect(t, verify(three, a), Verified, "")
	if n := ds.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// The shared value is the keys alone, with their bounds, and follows
// ParseJWKS's rules on the way back.
func TestEncodedKeys(t *testing.T) {
	a, b := newAgent(t), newAgent(t)
	ks, err := ParseJWKS([]byte(`{"keys":[`+a.jwk()+`,{"kty":"OKP","crv":"Ed25519","x":"`+
		base64.RawURLEncoding.EncodeToString(b.pub)+`","nbf":1700000000,"exp":1900000000}]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	val := encodeKeys(ks)
	if len(val) != 1+2*encodedKeySize {
		t.Fatalf("%d bytes", len(val))
	}
	got, err := decodeKeys(val, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	for _, ag := range []testAgent{a, b} {
		if pub, why := got.lookup(ag.kid, now); !pub.Equal(ag.pub) {
			t.Fatalf("%s: %s", ag.kid, why)
		}
	}
	if _, why := got.lookup(b.kid, time.Unix(1900000000, 0)); why != "key expired (exp)" {
		t.Fatalf("exp lost: %q", why)
	}
	if _, why := got.lookup(b.kid, time.Unix(1600000000, 0)); why != "key not valid yet (nbf)" {
		t.Fatalf("nbf lost: %q", why)
	}
	test, _ := ParseJWKS([]byte(`{"keys":[`+rfcEd25519JWK+`]}`), true)
	for name, v := range map[string][]byte{
		"empty":         nil,
		"no keys":       {keysVersion},
		"other version": append([]byte{2}, val[1:]...),
		"truncated":     val[:len(val)-1],
		"test key":      encodeKeys(test),
		"65 keys":       append([]byte{keysVersion}, make([]byte, 65*encodedKeySize)...),
	} {
		if _, err := decodeKeys(v, false); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// While the shared cache is down, a client naming a new Signature-Agent
// per request asks it every time (before the per-network fetch budget):
// every failure is counted, but logged at most once per
// SharedCacheLogEvery, with the number held back.
func TestSharedCacheDownCountedAndLogThrottled(t *testing.T) {
	client, rs := redisClient(t)
	rs.Kill()
	c := newClock()
	ds := newDirServer(t, "")
	core, logs := observer.New(zapcore.DebugLevel)
	o := ds.options(c)
	o.Shared = NewRedisCache(client, "", 0)
	o.Logger = zap.New(core)
	o.FetchTimeout = 250 * time.Millisecond // go-redis retries a refused dial with back-off: bound each Get
	var failures atomic.Int64
	o.OnSharedCacheError = func(error) { failures.Add(1) }
	v := mustNew(t, o)
	a := newAgent(t)
	verify := func(i int) {
		r := newRequest(site, "/")
		a.signAs(r, fmt.Sprintf("https://h%d.example.com", i), c.Now())
		_ = v.Verify(context.Background(), r)
	}
	const n = 40
	for i := range n {
		verify(i)
	}
	const msg = "web bot auth: shared key cache unavailable"
	if got := logs.FilterMessage(msg).Len(); got != 1 {
		t.Fatalf("shared-cache failure logged %d times for %d requests, want once per %v", got, n, SharedCacheLogEvery)
	}
	if got := failures.Load(); got != n {
		t.Fatalf("OnSharedCacheError called %d times for %d failing requests", got, n)
	}
	c.Advance(SharedCacheLogEvery)
	verify(n)
	lines := logs.FilterMessage(msg).All()
	if len(lines) != 2 {
		t.Fatalf("after %v, %d lines, want a second one", SharedCacheLogEvery, len(lines))
	}
	if held := lines[1].ContextMap()["suppressed_since_last"]; held != int64(n-1) {
		t.Errorf("suppressed_since_last %v, want %d", held, n-1)
	}
}
