package handshake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// site is the "legacy site" behind the handler.
type site struct{}

func (site) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusTeapot)
	_, _ = io.WriteString(w, "site:"+r.URL.Path)
	return nil
}

type fixture struct {
	t     *testing.T
	h     *Handler
	store *MemoryStore // nil for Redis
	kind  string
	srv   *httptest.Server
	clock *fakeClock
}

// fakeClock is the tests' clock; sockets' goroutines read it too.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*fakeTimer
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.t) {
			due = append(due, tm.f)
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		go f() // as time.AfterFunc runs f
	}
}

// fakeTimer is a timer on the fake clock: it fires when add passes it.
type fakeTimer struct {
	c  *fakeClock
	at time.Time
	f  func()
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{c: c, at: c.t.Add(d), f: f}
	c.timers = append(c.timers, tm)
	return tm
}

func (tm *fakeTimer) Stop() bool {
	tm.c.mu.Lock()
	defer tm.c.mu.Unlock()
	for i, o := range tm.c.timers {
		if o == tm {
			tm.c.timers = append(tm.c.timers[:i], tm.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// next is when the first timer waiting on the clock fires.
func (c *fakeClock) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for _, tm := range c.timers {
		if t.IsZero() || tm.at.Before(t) {
			t = tm.at
		}
	}
	return t
}

// pending is how many timers wait on the clock.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// stores are the store kinds the handler tests run against.
var stores = []string{"memory", "redis"}

func newFixture(t *testing.T, mutate ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, "memory", mutate...)
}

func newFixtureOn(t *testing.T, kind string, mutate ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureNext(t, kind, site{}, mutate...)
}

// newFixtureNext: the handler in front of next instead of site{}.
func newFixtureNext(t *testing.T, kind string, next Next, mutate ...func(*Config)) *fixture {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	var st Store
	var mem *MemoryStore
	switch kind {
	case "memory":
		mem = NewMemoryStore()
		mem.SetClock(clock.now)
		st = mem
	case "redis":
		st = newRedisStore(t)
	}
	lim := limiter.NewMemory(limiter.MemoryOptions{Now: clock.now})
	cfg := Config{Store: st, Limiter: lim, Zone: "test", CacheRecords: kind == "redis"}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.now = clock.now
	f := &fixture{t: t, h: h, store: mem, kind: kind, clock: clock}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(func() {
		f.srv.Close()
		_ = st.Close()
		_ = lim.Close()
	})
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (f *fixture) do(method, path, body string, headers ...string) answer {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.json); err != nil {
			f.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, b)
		}
	}
	return a
}

type session struct {
	ID, Token string
	raw       map[string]any
}

const contactForm = `{"mode":"form-fill","schema":[
 {"key":"name","label":"Name","type":"string","required":true,"example":"Alice"},
 {"key":"age","type":"int"},
 {"key":"vip","type":"bool"},
 {"key":"when","type":"datetime"},
 {"key":"size","type":"enum","options":[{"value":"S"},{"value":"M"}]},
 {"key":"tags","type":"array<string>"},
 {"key":"email","type":"string","required":true}
],"context":{"name":"","email":"bob@example.com"},"meta":{"page":"/contact"}}`

func (f *fixture) create(body string, headers ...string) session {
	f.t.Helper()
	a := f.do("POST", "/handshake/session", body, headers...)
	if a.status != 200 {
		f.t.Fatalf("create: %d %s", a.status, a.body)
	}
	return session{ID: a.json["sessionId"].(string), Token: a.json["token"].(string), raw: a.json}
}

func (f *fixture) agent(method string, s session, path, body string) answer {
	f.t.Helper()
	return f.do(method, path+s.ID, body, "X-Handshake-Token", s.Token)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func compactString(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func newRedisStore(t *testing.T) *RedisStore {
	t.Helper()
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	s := NewRedisStore(c, RedisOptions{Zone: "test"})
	t.Cleanup(func() { _ = s.Close(); _ = c.Close() })
	return s
}

// forStores runs fn against each store kind.
func forStores(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, k := range stores {
		t.Run(k, func(t *testing.T) { fn(t, k) })
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
