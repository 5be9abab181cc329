package handshake

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// Every use renews both keys of a session to its TTL (sliding expiry, on
// Redis's own clock); a session whose keys expired is a 404.
func TestRedisExpiry(t *testing.T) {
	f := newFixtureOn(t, "redis")
	rs := f.h.cfg.Store.(*RedisStore)
	s := f.create(contactForm)
	f.do("POST", "/handshake/notify/"+s.ID, `{"key":"name","value":"x"}`) // creates the change list
	keys := rs.keys(s.ID)
	ctx := context.Background()
	ttl := func(k string) time.Duration {
		d, err := rs.client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, k := range keys {
		if d := ttl(k); d < 1790*time.Second || d > 1800*time.Second {
			t.Fatalf("%s ttl %s", k, d)
		}
		rs.client.Expire(ctx, k, 100*time.Second)
	}
	if a := f.agent("GET", s, "/handshake/context/", ""); a.status != 200 {
		t.Fatal(a.status)
	}
	for _, k := range keys {
		if d := ttl(k); d < 1790*time.Second {
			t.Fatalf("%s not renewed by a read: %s", k, d)
		}
	}
	// extend grows the TTL of both keys
	f.do("POST", "/handshake/session/"+s.ID+"/extend", `{"extraSeconds":600}`, "X-Handshake-Token", s.Token)
	for _, k := range keys {
		if d := ttl(k); d < 2390*time.Second {
			t.Fatalf("%s after extend: %s", k, d)
		}
	}
	// The keys expire: every endpoint says 404 (the record is cached, the
	// operation still finds the session gone).
	rs.client.Del(ctx, keys...)
	for _, ep := range []string{"/handshake/context/", "/handshake/diff/"} {
		if a := f.agent("GET", s, ep, ""); a.status != 404 {
			t.Errorf("%s after expiry: %d", ep, a.status)
		}
	}
	if a := f.agent("POST", s, "/handshake/action/", `{"actions":[]}`); a.status != 404 {
		t.Errorf("action after expiry: %d", a.status)
	}
	if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"a","value":1}`); a.status != 404 {
		t.Errorf("notify after expiry: %d", a.status)
	}
	// The change list is capped.
	s2 := f.create(`{"mode":"form-fill"}`)
	for i := 0; i < MaxChanges+5; i++ {
		f.do("POST", "/handshake/notify/"+s2.ID, `{"key":"k","value":`+strconv.Itoa(i)+`}`)
	}
	if n, _ := rs.client.LLen(ctx, rs.keys(s2.ID)[1]).Result(); n != MaxChanges {
		t.Errorf("change list holds %d", n)
	}
	d := f.agent("GET", s2, "/handshake/diff/", "")
	if !strings.Contains(string(d.body), `"to":`+strconv.Itoa(MaxChanges+4)+`,`) {
		t.Errorf("diff lacks the last change")
	}
	// Only the token's hash is stored.
	all, _ := rs.client.HGetAll(ctx, rs.keys(s2.ID)[0]).Result()
	for k, v := range all {
		if strings.Contains(v, s2.Token) {
			t.Errorf("field %s holds the token", k)
		}
	}
}

// storeFailures counts Observer.StoreFailed calls.
type storeFailures struct {
	nopObserver
	mu sync.Mutex
	n  map[string]int
}

func (o *storeFailures) StoreFailed(store, endpoint string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[store+" "+endpoint]++
}

func (o *storeFailures) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

// While the session store is down, each request is counted but the
// failure is logged at most once per 10 s (with how many were not
// logged): anyone can send a request per random session id, and an
// outage must not flood the log.
func TestSessionStoreOutageLogIsThrottled(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, ContextTimeoutEnabled: true, DialerRetries: 1, MaxRetries: -1})
	st := NewRedisStore(c, RedisOptions{Zone: "test"})
	t.Cleanup(func() { _ = st.Close(); _ = c.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	obs := &storeFailures{n: map[string]int{}}
	f := newFixtureOn(t, "memory", func(cfg *Config) {
		cfg.Store, cfg.CacheRecords, cfg.Logger, cfg.Observer = st, true, zap.New(core), obs
	})
	srv.Kill()
	const n = 50
	get := func(i int) {
		t.Helper()
		if a := f.do("GET", fmt.Sprintf("/handshake/context/%032x", i), "", "X-Handshake-Token", "x"); a.status != 503 {
			t.Fatalf("status %d %s", a.status, a.body)
		}
	}
	for i := range n {
		get(i)
	}
	lines := logs.FilterMessage("handshake: session store failed")
	if lines.Len() != 1 {
		t.Fatalf("store failure logged %d times for %d requests in one instant", lines.Len(), n)
	}
	if got := obs.get("sessions context"); got != n {
		t.Errorf("%d failures counted, want %d", got, n)
	}
	f.clock.add(failureLogEvery)
	get(n)
	lines = logs.FilterMessage("handshake: session store failed")
	if lines.Len() != 2 || lines.All()[1].ContextMap()["suppressed"] != int64(n-1) {
		t.Fatalf("after %s: %d lines, last %v", failureLogEvery, lines.Len(), lines.All()[lines.Len()-1].ContextMap())
	}
}

// A session record of the wrong shape under the store's keys (another
// version's, or a hand edit's: a token hash or binding longer than a
// SHA-256) is a store error, never a panic: Lookup also runs in the
// heartbeat of open sockets, outside any request, where a panic ends the
// process. A binding that is not hex fails the session too: read as no
// binding, it would open the session to every browser.
func TestRedisLookupMalformedRecord(t *testing.T) {
	st := newRedisStore(t)
	ctx := context.Background()
	for _, c := range []struct{ name, field, value string }{
		{"tok too long", "tok", strings.Repeat("ab", 33)},
		{"bind too long", "bind", strings.Repeat("ab", 33)},
		{"bind not hex", "bind", strings.Repeat("zz", 32)},
		{"bind too short", "bind", "abcd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &Record{ID: newSessionID(), TokenHash: hashToken("t"), Mode: "default", Schema: &Schema{Raw: []byte("[]")}, Meta: []byte("{}")}
			if err := st.Create(ctx, rec, nil, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := st.client.HSet(ctx, st.keys(rec.ID)[0], c.field, c.value).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := st.Lookup(ctx, rec.ID)
			if err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Fatalf("Lookup of a record whose %s is %q: %+v, %v; want a malformed-record error", c.field, c.value, got, err)
			}
		})
	}
}
