package handshake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func (f *fixture) dial(s session, tok string) *websocket.Conn {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws/handshake/" + s.ID + "?token=" + tok
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	f.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func TestWebSocket(t *testing.T) { forStores(t, testWebSocket) }

func testWebSocket(t *testing.T, kind string) {
	f := newFixtureOn(t, kind)
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	if m := read(t, c); m["type"] != "connected" || m["sessionId"] != s.ID || m["mode"] != "form-fill" {
		t.Fatalf("connected: %v", m)
	}
	a := f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"name","value":"Alice"},{"type":"set","key":"email","value":"x"},{"type":"set","key":"age","value":30}],"intervalMs":20}`)
	if a.status != 200 {
		t.Fatalf("action: %s", a.body)
	}
	start := time.Now()
	m1, m2, done := read(t, c), read(t, c), read(t, c)
	if m1["type"] != "action" || m1["key"] != "name" || m1["value"] != "Alice" || m2["key"] != "age" || m2["value"] != float64(30) {
		t.Errorf("action frames: %v %v", m1, m2)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Errorf("frames not paced (intervalMs 20): %s", time.Since(start))
	}
	if done["type"] != "done" || done["applied"] != float64(2) || mustJSON(t, done["rejected"]) != `["email"]` || mustJSON(t, done["missing"]) != `[]` {
		t.Errorf("done: %v", done)
	}
	// a user edit over the socket protects the field
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"userEdit","key":"age","value":31}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx := f.agent("GET", s, "/handshake/context/", "")
		e := ctx.json["context"].(map[string]any)["age"].(map[string]any)
		if e["by"] == "user_edit" && e["value"] == float64(31) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("userEdit not applied: %v", e)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a = f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"age","value":40}],"stream":false}`)
	if mustJSON(t, a.json["rejected"]) != `["age"]` {
		t.Errorf("agent overwrote the user's edit: %s", a.body)
	}
	if m := read(t, c); m["type"] != "done" || m["applied"] != float64(0) {
		t.Errorf("stream false: want only done, got %v", m)
	}
	// extend is pushed
	f.do("POST", "/handshake/session/"+s.ID+"/extend", `{"extraSeconds":60}`, "X-Handshake-Token", s.Token)
	if m := read(t, c); m["type"] != "extended" || m["expiresIn"] != float64(1860) {
		t.Errorf("extended: %v", m)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	f := newFixture(t)
	s := f.create(contactForm)
	for _, c := range []struct {
		sid, tok, msg string
		status        int
	}{
		{s.ID, "wrong", "invalid token", http.StatusForbidden},
		{s.ID, "", "invalid token", http.StatusForbidden},
		{strings.Repeat("a", 32), s.Token, "session not found or expired", http.StatusNotFound},
	} {
		conn, a := f.dialRaw(c.sid, c.tok)
		if conn != nil || a.status != c.status || a.json["error"] != c.msg {
			t.Errorf("%+v: %d %s", c, a.status, a.body)
		}
	}
	// Not an upgrade: the socket path answers, never the site.
	a := f.do("GET", "/ws/handshake/"+s.ID, "")
	if a.status == http.StatusTeapot || a.status == 200 {
		t.Errorf("plain GET of the socket path: %d %s", a.status, a.body)
	}
	// A plain GET tells a page why its socket failed, in the SDK's format.
	if a := f.do("GET", "/ws/handshake/"+s.ID+"?token=wrong", ""); a.status != http.StatusForbidden || a.json["error"] != "invalid token" {
		t.Errorf("plain GET, wrong token: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/ws/handshake/"+s.ID+"?token="+s.Token, ""); a.status != http.StatusUpgradeRequired {
		t.Errorf("plain GET, right token: %d %s", a.status, a.body)
	}
	// A session that expired after its record was checked: the socket
	// reports it as the SDK does, then closes.
	rec, err := f.store.Lookup(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.h.records = newRecordCache(8)
	f.h.records.put(rec)
	f.clock.add(31 * time.Minute)
	conn := f.dial(s, s.Token)
	if m := read(t, conn); m["type"] != "error" || m["msg"] != "session not found" {
		t.Errorf("expired session: %v", m)
	}
	if _, _, err := conn.Read(context.Background()); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("expired session: close %v", err)
	}
}

// Two instances sharing one Redis: the agent writes through A, the page's
// socket is on B.
func TestRedisFanOut(t *testing.T) {
	a := newFixtureOn(t, "redis")
	rs := a.h.cfg.Store.(*RedisStore)
	// B: another store (its own hub and subscription) on the same Redis.
	b := newFixture(t, func(c *Config) {
		c.Store = NewRedisStore(rs.client, RedisOptions{Zone: "test"})
		c.CacheRecords = true
		c.Limiter = limiter.NewMemory(limiter.MemoryOptions{})
	})
	t.Cleanup(func() { _ = b.h.cfg.Store.Close() })
	s := a.create(contactForm)
	c := b.dial(s, s.Token)
	if m := read(t, c); m["type"] != "connected" {
		t.Fatal(m)
	}
	r := a.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"name","value":"Via A"}],"intervalMs":0}`)
	if r.status != 200 {
		t.Fatal(string(r.body))
	}
	if m := read(t, c); m["type"] != "action" || m["value"] != "Via A" {
		t.Errorf("B's socket got %v", m)
	}
	if m := read(t, c); m["type"] != "done" {
		t.Errorf("B's socket got %v", m)
	}
	if b.h.hub().Open() != 1 || a.h.hub().Open() != 0 {
		t.Errorf("open sockets: A %d, B %d", a.h.hub().Open(), b.h.hub().Open())
	}
}

// A socket that connects after the agent wrote gets the agent's values.
func TestWebSocketCatchesUp(t *testing.T) { forStores(t, testWebSocketCatchesUp) }

func testWebSocketCatchesUp(t *testing.T, kind string) {
	f := newFixtureOn(t, kind)
	s := f.create(contactForm)
	f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"name","value":"Ada"},{"type":"set","key":"email","value":"no"}],"stream":false}`)
	c := f.dial(s, s.Token)
	if m := read(t, c); m["type"] != "connected" {
		t.Fatal(m)
	}
	if m := read(t, c); m["type"] != "action" || m["key"] != "name" || m["value"] != "Ada" {
		t.Errorf("catch-up frame: %v", m)
	}
	f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"age","value":3}],"intervalMs":0}`)
	m := read(t, c)
	if m["type"] == "done" && m["applied"] == float64(1) {
		// With Redis, the first batch's done may reach this instance after
		// the socket joined (pub/sub is asynchronous): it comes after the
		// catch-up, as a write landing while the socket connects does.
		m = read(t, c)
	}
	if m["type"] != "action" || m["key"] != "age" {
		t.Errorf("after catch-up: %v (the user's email must not be replayed)", m)
	}
}

// An agent within the default rate (60 requests a minute) that streams
// full batches to a page that does not read cannot grow the session's
// frame queue: its pacing is capped, then its frames are coalesced.
func TestWebSocketFrameQueueBounded(t *testing.T) {
	f := newFixture(t)
	s := f.create(`{"mode":"form-fill"}`)
	f.dial(s, s.Token) // never read
	hub := f.store.Hub()
	waitFor(t, "socket attached", func() bool { return hub.Open() == 1 })
	val := strings.Repeat("x", 200)
	var acts []string
	for i := 0; i < 250; i++ {
		acts = append(acts, fmt.Sprintf(`{"type":"set","key":"k%d","value":"%s"}`, i, val))
	}
	body := `{"actions":[` + strings.Join(acts, ",") + `],"stream":true,"intervalMs":2000}`
	for i := 0; i < 60; i++ { // one minute's budget
		if a := f.agent("POST", s, "/handshake/action/", body); a.status != 200 {
			t.Fatalf("action %d: %d %s", i, a.status, a.body)
		}
		if b, d, _ := queueOf(t, hub, s.ID); b > hub.QueueBytes || d > hub.QueueDelay {
			t.Fatalf("after %d requests: %d bytes and %s of pacing queued (caps %d, %s)", i+1, b, d, hub.QueueBytes, hub.QueueDelay)
		}
	}
}

// An agent extending in a loop gets 429 past the session's rate (the
// SDK does not limit extend), so its page gets at most one extended frame
// per admitted call, the last carrying the latest expiry, and its socket
// stays open; with Redis, through the instances' subscription.
func TestWebSocketExtendFloodBounded(t *testing.T) { forStores(t, testWebSocketExtendFloodBounded) }

func testWebSocketExtendFloodBounded(t *testing.T, kind string) {
	f := newFixtureOn(t, kind)
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	if m := read(t, c); m["type"] != "connected" {
		t.Fatal(m)
	}
	granted := 0
	for i := 0; i < 100; i++ {
		a := f.do("POST", "/handshake/session/"+s.ID+"/extend", `{"extraSeconds":1}`, "X-Handshake-Token", s.Token)
		switch a.status {
		case 200:
			granted++
		case 429:
		default:
			t.Fatalf("extend %d: %d %s", i, a.status, a.body)
		}
	}
	if granted != 60 {
		t.Fatalf("%d of 100 extends granted in one minute, want the rate's 60", granted)
	}
	frames := 0
	for {
		m := read(t, c) // fails on a closed socket
		if m["type"] != "extended" {
			t.Fatalf("frame %v", m)
		}
		frames++
		if m["expiresIn"] == float64(1800+granted) {
			break
		}
	}
	if frames > granted {
		t.Errorf("%d extended frames for %d extends", frames, granted)
	}
}

// A socket does not outlive its session: when its heartbeat is due and
// the session expired, it gets the SDK's error frame and is closed (1008),
// freeing its place under ws_max and ws_per_session. The check does not
// renew the session.
func TestWebSocketClosedWhenSessionExpires(t *testing.T) {
	f := newFixture(t)
	s := f.create(`{"mode":"form-fill"}`)
	c := f.dial(s, s.Token)
	read(t, c) // connected
	hub := f.store.Hub()
	waitFor(t, "attached", func() bool { return hub.Open() == 1 })
	f.clock.add(DefaultTTL - time.Minute)
	hub.beat()
	if m := read(t, c); m["type"] != "heartbeat" {
		t.Fatalf("live session, due heartbeat: %v", m)
	}
	f.clock.add(2 * time.Minute) // expired, unless the check renewed it
	hub.beat()
	if m := read(t, c); m["type"] != "error" || m["msg"] != "session not found" {
		t.Fatalf("expired session, due heartbeat: %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("close: %v", err)
	}
	waitFor(t, "the socket's place freed", func() bool { return hub.Open() == 0 })
}

// racingStore applies an agent's batch while a socket reads its catch-up
// state, and waits until the hub has taken its frames.
type racingStore struct {
	*MemoryStore
	t    *testing.T
	once sync.Once
	arm  atomic.Bool
}

func (s *racingStore) State(ctx context.Context, rec *Record) (*State, error) {
	st, err := s.MemoryStore.State(ctx, rec)
	if s.arm.Load() {
		s.once.Do(func() {
			b := &Batch{Writes: []Write{{Key: "name", Value: json.RawMessage(`"Alice"`)}}, Stream: true}
			if _, err := s.MemoryStore.Apply(ctx, rec, b); err != nil {
				s.t.Error(err)
			}
			h := s.Hub()
			waitFor(s.t, "the hub to take the frames", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				r := h.rooms[rec.ID]
				return r == nil || len(r.queue) == 0 && !r.pumping
			})
		})
	}
	return st, err
}

// An agent's write that lands while the page's socket connects reaches
// the page, after connected and the catch-up.
func TestWebSocketWriteDuringConnectReachesPage(t *testing.T) {
	rs := &racingStore{MemoryStore: NewMemoryStore(), t: t}
	f := newFixture(t, func(c *Config) { c.Store = rs })
	s := f.create(`{"mode":"form-fill","schema":[{"key":"name"},{"key":"age"}]}`)
	if a := f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"age","value":"3"}],"stream":false}`); mustJSON(t, a.json["applied"]) != `["age"]` {
		t.Fatalf("action: %d %s", a.status, a.body)
	}
	rs.arm.Store(true)
	c := f.dial(s, s.Token)
	for i, want := range []string{`connected`, `action age 3`, `action name Alice`, `done`} {
		m := read(t, c)
		got := fmt.Sprint(m["type"])
		if m["type"] == "action" {
			got += fmt.Sprint(" ", m["key"], " ", m["value"])
		}
		if got != want {
			t.Fatalf("frame %d: %v, want %s", i, m, want)
		}
	}
}

// countingLimiter counts the user-edit decisions.
type countingLimiter struct {
	limiter.Store
	userEdits atomic.Int64
}

func (l *countingLimiter) Do(ctx context.Context, b *limiter.Batch) error {
	if len(b.Windows) > 0 && strings.HasPrefix(b.Windows[0].Key, "hpp-user:") {
		l.userEdits.Add(1)
	}
	return l.Store.Do(ctx, b)
}

// The user-edit limit is asked before a frame is parsed: a frame past the
// limit costs no parse. A frame that cannot be a userEdit is dropped
// uncounted.
func TestWebSocketUserEditLimitedBeforeParse(t *testing.T) {
	var lim *countingLimiter
	f := newFixture(t, func(c *Config) { lim = &countingLimiter{Store: c.Limiter}; c.Limiter = lim })
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	read(t, c) // connected
	for _, frame := range []string{
		`{"type":"userEdit","key":`,        // malformed
		`["userEdit"]`,                     // not an object
		`{"type":"ping","note":"not one"}`, // not a userEdit at all: uncounted
		`{"type":"userEdit","key":"age","value":31}`,
	} {
		if err := c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := f.store.Lookup(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edit applied", func() bool {
		st, err := f.store.State(context.Background(), rec)
		return err == nil && st.Values["age"].By == ByUser
	})
	if n := lim.userEdits.Load(); n != 3 {
		t.Errorf("%d user-edit decisions for 3 frames that may be userEdits", n)
	}
}

// refusals records Observer.Refused calls.
type refusals struct {
	nopObserver
	mu sync.Mutex
	n  map[string]int
}

func (o *refusals) Refused(endpoint string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[endpoint+" "+strconv.Itoa(status)]++
}

// An upgrade refused by the WebSocket library is counted with the status
// it answered: a foreign Origin's 403, a plain GET's 426.
func TestRefusedUpgradeCountedWithItsStatus(t *testing.T) {
	obs := &refusals{n: map[string]int{}}
	f := newFixture(t, func(c *Config) { c.Observer = obs })
	s := f.create(contactForm)
	if conn, a := f.dialRaw(s.ID, s.Token, "Origin", "https://evil.example"); conn != nil || a.status != http.StatusForbidden {
		t.Fatalf("foreign origin: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/ws/handshake/"+s.ID+"?token="+s.Token, ""); a.status != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d %s", a.status, a.body)
	}
	if conn, _ := f.dialRaw(s.ID, s.Token); conn == nil {
		t.Fatal("a same-origin upgrade failed through the status writer")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.n["websocket 403"] != 1 || obs.n["websocket 426"] != 1 || len(obs.n) != 2 {
		t.Errorf("refusals counted: %v", obs.n)
	}
}

// A plain GET of the socket URL over HTTP/2 or HTTP/3 (a page's fetch on
// an HTTPS site, where the client asks why its socket failed) gets the 426
// without Upgrade and Connection: connection-specific fields make the
// whole response malformed there (RFC 9113 §8.2.2, RFC 9114 §4.2), and
// browsers and curl reset the stream instead of reading the answer.
func TestPlainGETOverHTTP2NoUpgradeFields(t *testing.T) {
	f := newFixture(t)
	s := f.create(contactForm)
	for _, major := range []int{1, 2, 3} {
		r := httptest.NewRequest(http.MethodGet, "/ws/handshake/"+s.ID+"?token="+s.Token, nil)
		r.ProtoMajor, r.ProtoMinor = major, 0
		if major == 1 {
			r.ProtoMinor = 1
		}
		w := httptest.NewRecorder()
		if err := f.h.ServeHTTP(w, r, site{}); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusUpgradeRequired {
			t.Fatalf("HTTP/%d: %d %s", major, w.Code, w.Body)
		}
		up, conn := w.Header().Get("Upgrade"), w.Header().Get("Connection")
		if major >= 2 && (up != "" || conn != "") {
			t.Errorf("HTTP/%d: 426 with Upgrade %q, Connection %q", major, up, conn)
		}
		if major == 1 && up != "websocket" {
			t.Errorf("HTTP/1.1: 426 without Upgrade: websocket (RFC 9110 §15.5.22)")
		}
	}
}
