package handshake

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// doHost sends a request with the given Host header, as written (Go's
// client would clean it).
func (f *fixture) doHost(host, method, path, body string, headers ...string) answer {
	f.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.json); err != nil {
			f.t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	return a
}

// hostileHosts pass Go's own Host check (which already refuses userinfo),
// yet would make the prompt's baseUrl something else than a host: an
// escaped '@' or '/', sub-delimiters.
var hostileHosts = []string{"shop.example%40evil.example", "evil.example%2F.shop.example", "shop.example!x", "a,b", "shop.example;x=1", "shop.example&x", "evil.example$"}

// The prompt is never built from a Host that is not a plain host[:port]:
// creation and GET prompt are refused (400, naming base_url) before any
// budget is spent; with base_url the Host does not matter.
func TestPromptHostValidation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CreateRate = limiter.Limit{Events: 1, Window: time.Minute} })
	for _, host := range hostileHosts {
		a := f.doHost(host, "POST", "/handshake/session", contactForm)
		if a.status != http.StatusBadRequest || !strings.Contains(a.json["error"].(string), "base_url") {
			t.Errorf("create with Host %q: %d %s, want 400 naming base_url", host, a.status, a.body)
		}
	}
	if n := f.store.Len(); n != 0 {
		t.Fatalf("%d sessions created from hostile hosts", n)
	}
	// None of the refusals spent the client's one creation.
	s := f.create(contactForm)
	for _, host := range hostileHosts {
		a := f.doHost(host, "GET", "/handshake/prompt/"+s.ID, "", "X-Handshake-Token", s.Token)
		if a.status != http.StatusBadRequest || strings.Contains(string(a.body), s.Token) {
			t.Errorf("prompt with Host %q: %d %s, want 400", host, a.status, a.body)
		}
	}
	for _, host := range []string{"shop.example", "shop.example:8443", "127.0.0.1:80", "[::1]:8080", "my_host.internal"} {
		a := f.doHost(host, "GET", "/handshake/prompt/"+s.ID, "", "X-Handshake-Token", s.Token)
		if a.status != 200 || !strings.Contains(string(a.body), "- baseUrl: http://"+host+"\n") {
			t.Errorf("prompt with Host %q: %d %s", host, a.status, a.body)
		}
	}

	g := newFixture(t, func(c *Config) { c.BaseURL = "https://shop.example" })
	a := g.doHost("shop.example%40evil.example", "POST", "/handshake/session", contactForm)
	if a.status != 200 || !strings.Contains(a.json["prompt"].(string), "- baseUrl: https://shop.example\n") {
		t.Errorf("with base_url: %d %s", a.status, a.body)
	}
}

// hookSite answers hook calls and records every request it sees.
type hookSite struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (s *hookSite) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	s.seen = append(s.seen, r.Clone(context.Background()))
	s.mu.Unlock()
	if r.URL.Path == "/hooks/create" || r.URL.Path == "/hooks/done" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"owner":"u1"}`)
		return nil
	}
	w.WriteHeader(http.StatusTeapot)
	return nil
}

func (s *hookSite) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.seen...)
}

// Path hooks are the plugin's: a client's request to a hook path, in any
// spelling, never reaches the site, and no client's X-Handshake-Hook does
// either, so the site can trust the header.
func TestHookPathsRefusedToClients(t *testing.T) {
	hs := &hookSite{}
	f := newFixtureNext(t, "memory", hs, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{Path: "/hooks/create"}, Done: &Hook{Path: "/hooks/done"}}
	})
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/hooks/create", http.StatusForbidden},
		{"/hooks/done", http.StatusForbidden},
		{"/Hooks/create", http.StatusBadRequest},
		{"/hooks/create/", http.StatusBadRequest},
		{"/hooks//create", http.StatusBadRequest},
		{"/hooks/%63reate", http.StatusBadRequest},
		{"/hooks/create;x", http.StatusBadRequest},
		{"/hooks/create.json", http.StatusBadRequest},
		{"/hooks/./done", http.StatusBadRequest},
	} {
		a := f.do("POST", c.path, `{"sessionId":"x"}`, "X-Handshake-Hook", "create")
		if a.status != c.status {
			t.Errorf("client POST %s: %d %s, want %d", c.path, a.status, a.body, c.status)
		}
	}
	if n := len(hs.requests()); n != 0 {
		t.Fatalf("%d client requests to hook paths reached the site", n)
	}
	// Other paths pass, without a client's hook header in any spelling.
	if a := f.do("POST", "/hooks/created", "{}", "X-Handshake-Hook", "create", "X_Handshake_Hook", "create"); a.status != http.StatusTeapot {
		t.Fatalf("other path: %d", a.status)
	}
	for _, r := range hs.requests() {
		for k := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Handshake-Hook") {
				t.Errorf("the site saw a client's %s", k)
			}
		}
	}
	// The plugin's own hook call still reaches the site, marked.
	s := f.create(contactForm)
	var hook *http.Request
	for _, r := range hs.requests() {
		if r.URL.Path == "/hooks/create" {
			hook = r
		}
	}
	if hook == nil || hook.Header.Get("X-Handshake-Hook") != "create" {
		t.Fatalf("the create hook did not reach the site: %v", hs.requests())
	}
	if a := f.agent("GET", s, "/handshake/context/", ""); a.status != 200 {
		t.Fatal(a.status)
	}
}

func TestHookConfig(t *testing.T) {
	for _, c := range []struct {
		hooks Hooks
		want  string // "" = accepted
	}{
		{Hooks{Create: &Hook{URL: "http://auth.internal/create"}}, "use https://"},
		{Hooks{Create: &Hook{URL: "http://10.0.0.5:8080/create"}}, "use https://"},
		{Hooks{Create: &Hook{URL: "http://127.0.0.1.evil.example/create"}}, "use https://"},
		{Hooks{Create: &Hook{URL: "https://auth.internal/create"}}, ""},
		{Hooks{Create: &Hook{URL: "http://127.0.0.1:9000/create"}}, ""},
		{Hooks{Create: &Hook{URL: "http://[::1]:9000/create"}}, ""},
		{Hooks{Create: &Hook{URL: "http://localhost:9000/create"}}, ""},
		{Hooks{Action: &Hook{URL: "http://hooks.internal/action"}}, ""}, // no cookies
		{Hooks{Create: &Hook{Path: "/hooks/*"}}, "plain path"},
		{Hooks{Create: &Hook{Path: "/hooks/create?x=1"}}, "plain path"},
		{Hooks{Create: &Hook{Path: "/handshake/hook"}}, "under prefix"},
		{Hooks{Create: &Hook{Path: "/hooks/create"}}, ""},
	} {
		_, err := New(Config{Store: NewMemoryStore(), Limiter: limiter.NewMemory(limiter.MemoryOptions{}), Hooks: c.hooks})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.hooks, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.hooks, err, c.want)
		}
	}
}

// dialRaw upgrades and returns the HTTP answer of a refused upgrade.
func (f *fixture) dialRaw(sid, tok string, headers ...string) (*websocket.Conn, answer) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hd := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		hd.Add(headers[i], headers[i+1])
	}
	u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws/handshake/" + sid + "?token=" + tok
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hd})
	if err == nil {
		f.t.Cleanup(func() { _ = c.CloseNow() })
		return c, answer{status: http.StatusSwitchingProtocols}
	}
	if resp == nil {
		f.t.Fatalf("dial: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &a.json)
	return nil, a
}

// A socket is accepted only after the token, the browser binding and the
// caps were checked: every refusal is an HTTP answer in the SDK's error
// format, and none starts a socket.
func TestWebSocketChecksBeforeAccept(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BrowserCookie = "sid" })
	s := f.create(contactForm, "Cookie", "sid=alice")
	for _, c := range []struct {
		sid, tok, cookie string
		status           int
		msg              string
	}{
		{s.ID, "wrong", "sid=alice", 403, "invalid token"},
		{s.ID, "", "sid=alice", 403, "invalid token"},
		{strings.Repeat("a", 32), s.Token, "sid=alice", 404, "session not found or expired"},
		{"nothex", s.Token, "sid=alice", 404, "session not found or expired"},
		{s.ID, s.Token, "sid=mallory", 403, "browser auth failed"},
	} {
		conn, a := f.dialRaw(c.sid, c.tok, "Cookie", c.cookie)
		if conn != nil || a.status != c.status || a.json["error"] != c.msg {
			t.Errorf("%+v: %d %s", c, a.status, a.body)
		}
	}
	if n := f.h.hub().Open(); n != 0 {
		t.Errorf("%d sockets open after refusals", n)
	}
	if conn, a := f.dialRaw(s.ID, s.Token, "Cookie", "sid=alice"); conn == nil {
		t.Fatalf("the right token and cookie: %d %s", a.status, a.body)
	}
}

// Upgrades are rate limited per client before anything else.
func TestWebSocketUpgradeRate(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.WSRate = limiter.Limit{Events: 2, Window: time.Minute} })
	s := f.create(contactForm)
	f.dialRaw(s.ID, "wrong")
	if conn, _ := f.dialRaw(s.ID, s.Token); conn == nil {
		t.Fatal("second upgrade refused")
	}
	conn, a := f.dialRaw(s.ID, s.Token)
	if conn != nil || a.status != http.StatusTooManyRequests || a.json["error"] != "rate limit exceeded" || a.header.Get("Retry-After") == "" {
		t.Fatalf("third upgrade in the minute: %d %v %s", a.status, a.header, a.body)
	}
	f.clock.add(2 * time.Minute)
	if conn, a := f.dialRaw(s.ID, s.Token); conn == nil {
		t.Fatalf("after the window: %d %s", a.status, a.body)
	}
}

// Sockets are capped per session (default 8) and per instance.
func TestWebSocketCaps(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.WSMax = 10
		c.ClientIP = func(r *http.Request) string { return "192.0.2." + r.Header.Get("X-N") }
	})
	s := f.create(contactForm)
	var conns []*websocket.Conn
	for i := 0; i < DefaultWSPerSession; i++ {
		c, a := f.dialRaw(s.ID, s.Token)
		if c == nil {
			t.Fatalf("socket %d: %d %s", i+1, a.status, a.body)
		}
		conns = append(conns, c)
	}
	if c, a := f.dialRaw(s.ID, s.Token); c != nil || a.status != http.StatusTooManyRequests || a.json["error"] != "too many sockets open for this session" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("socket %d of one session: %d %s", DefaultWSPerSession+1, a.status, a.body)
	}
	// A socket that closes frees its place.
	_ = conns[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed socket to leave", func() bool { return f.h.hub().Open() == int64(DefaultWSPerSession-1) })
	if c, a := f.dialRaw(s.ID, s.Token); c == nil {
		t.Fatalf("after a close: %d %s", a.status, a.body)
	}
	// The instance's cap counts every session's and client's sockets.
	s2 := f.create(contactForm)
	for i := 9; i <= 10; i++ {
		if c, a := f.dialRaw(s2.ID, s2.Token, "X-N", "2"); c == nil {
			t.Fatalf("socket %d: %d %s", i, a.status, a.body)
		}
	}
	if c, a := f.dialRaw(s2.ID, s2.Token, "X-N", "3"); c != nil || a.status != http.StatusServiceUnavailable || a.json["error"] != "too many sockets open, try again later" {
		t.Fatalf("socket 11 with ws_max 10: %d %s", a.status, a.body)
	}
}

// The hub's reservations are exact under concurrency.
func TestHubReserveCaps(t *testing.T) {
	h := NewHub()
	defer h.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []*Socket
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := h.Reserve("s1", "", SocketCaps{PerSession: 8}); err == nil {
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 8 {
		t.Fatalf("reserved %d sockets of one session, cap 8", len(got))
	}
	if _, err := h.Reserve("s2", "", SocketCaps{PerSession: 8, Total: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s2", "", SocketCaps{PerSession: 8, Total: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s3", "", SocketCaps{PerSession: 8, Total: 10}); err != ErrTooManySockets {
		t.Fatalf("11th socket with a total cap of 10: %v", err)
	}
	h.Cancel(got[0])
	h.Cancel(got[0]) // twice is harmless
	c := &fakeConn{}
	if !h.Attach(got[1], c) || h.Open() != 1 {
		t.Fatalf("attach: open %d", h.Open())
	}
	if _, err := h.Reserve("s3", "", SocketCaps{PerSession: 8, Total: 10}); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
	h.Unregister(got[1])
	for _, s := range got[2:] {
		h.Cancel(s)
	}
	if h.Has("s1") {
		t.Error("a room with no sockets and no reservations is kept")
	}
}

// manyMembers is a JSON object of n distinct short names, then extra.
func manyMembers(n int, extra string) []byte {
	b := []byte{'{'}
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(i), 16)
		b = append(b, `":0`...)
	}
	return append(append(b, extra...), '}')
}

// Duplicate names are found however many members come before them, the
// member count is bounded (so a 64 KiB body of short names costs a bounded,
// linear scan), and the common small object pays nothing for the check.
func TestObjectManyMembers(t *testing.T) {
	walk := func(raw []byte) (int, error) {
		n := 0
		err := object(raw, func(string, json.RawMessage) error { n++; return nil })
		return n, err
	}
	if n, err := walk(manyMembers(1000, "")); err != nil || n != 1000 {
		t.Fatalf("1000 distinct members: %d, %v", n, err)
	}
	for _, dup := range []string{"3", "f", "10", "1f4", "3e7"} { // among the first names, at the switch to a set, late
		_, err := walk(manyMembers(1000, `,"`+dup+`":1`))
		if de, ok := err.(*duplicateError); !ok || de.name != dup {
			t.Errorf("duplicate %q after 1000 members: %v", dup, err)
		}
	}
	if n, err := walk(manyMembers(maxMembers, "")); err != nil || n != maxMembers {
		t.Fatalf("%d members: %d, %v", maxMembers, n, err)
	}
	if _, err := walk(manyMembers(maxMembers+1, "")); err != errTooManyMembers {
		t.Fatalf("%d members: %v, want %v", maxMembers+1, err, errTooManyMembers)
	}
	// A creation body filled with short names is refused as such.
	raw := manyMembers(DefaultBodyLimit/8, "")
	for len(raw) > DefaultBodyLimit {
		raw = manyMembers(strings.Count(string(raw), ",")*9/10, "")
	}
	if _, err := parseCreate(raw); err == nil || !strings.Contains(err.Error(), errTooManyMembers.Error()) {
		t.Fatalf("%d-byte body of short names: %v", len(raw), err)
	}
	// Up to linearNames members, only the names allocate.
	small := manyMembers(linearNames, "")
	if a := testing.AllocsPerRun(100, func() { _, _ = walk(small) }); a > linearNames {
		t.Errorf("object of %d members: %.0f allocations, want at most one per name", linearNames, a)
	}
}

// create_rate and ws_rate count an IPv6 client by its /64 (as ahp's
// rate_limit does), and an IPv4-mapped address as the IPv4 one: rotating
// addresses inside one network buys no extra sessions or upgrades.
func TestClientRatesGroupIPv6By64(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.CreateRate = limiter.Limit{Events: 2, Window: time.Minute}
		c.WSRate = limiter.Limit{Events: 1, Window: time.Minute}
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") } // Caddy's {client_ip}
	})
	create := func(ip string) answer { return f.do("POST", "/handshake/session", `{}`, "X-Test-Client", ip) }
	for _, ip := range []string{"2001:db8:1:2::a", "2001:db8:1:2:ffff::b"} {
		if a := create(ip); a.status != 200 {
			t.Fatalf("create from %s: %d %s", ip, a.status, a.body)
		}
	}
	if a := create("2001:db8:1:2::c"); a.status != http.StatusTooManyRequests {
		t.Fatalf("third create from one /64 in the minute: %d %s", a.status, a.body)
	}
	if a := create("2001:db8:1:3::a"); a.status != 200 {
		t.Fatalf("create from the next /64: %d %s", a.status, a.body)
	}
	for _, ip := range []string{"192.0.2.7", "::ffff:192.0.2.7"} {
		if a := create(ip); a.status != 200 {
			t.Fatalf("create from %s: %d %s", ip, a.status, a.body)
		}
	}
	if a := create("192.0.2.7"); a.status != http.StatusTooManyRequests {
		t.Fatalf("an IPv4 address and its mapped form are two clients: %d %s", a.status, a.body)
	}
	s := f.create(`{}`)
	if conn, a := f.dialRaw(s.ID, s.Token, "X-Test-Client", "2001:db8:9:9::1"); conn == nil {
		t.Fatalf("first upgrade: %d %s", a.status, a.body)
	}
	if conn, a := f.dialRaw(s.ID, s.Token, "X-Test-Client", "2001:db8:9:9::2"); conn != nil || a.status != http.StatusTooManyRequests {
		t.Fatalf("second upgrade from the /64 in the minute: %d %s", a.status, a.body)
	}
}

// One client (an IPv6 /64) holds at most MaxPerClient live sessions of
// the memory store, so it cannot fill MaxSessions and lock others out;
// its expired sessions no longer count.
func TestMemoryStoreCapsSessionsPerClient(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	f.store.MaxPerClient = 3
	create := func(ip string) answer { return f.do("POST", "/handshake/session", `{}`, "X-Test-Client", ip) }
	for i := 0; i < 3; i++ {
		if a := create("2001:db8:1:2::" + strconv.Itoa(i+1)); a.status != 200 {
			t.Fatalf("create %d: %d %s", i, a.status, a.body)
		}
	}
	if a := create("2001:db8:1:2::99"); a.status != http.StatusServiceUnavailable {
		t.Fatalf("a fourth live session of one /64: %d %s", a.status, a.body)
	}
	if a := create("198.51.100.7"); a.status != 200 {
		t.Fatalf("another client: %d %s", a.status, a.body)
	}
	f.clock.add(DefaultTTL + time.Second)
	if a := create("2001:db8:1:2::99"); a.status != 200 {
		t.Fatalf("after its sessions expired: %d %s", a.status, a.body)
	}
	f.store.Sweep()
	if n := f.store.Len(); n != 1 {
		t.Fatalf("%d sessions after the sweep, want 1", n)
	}
	f.store.mu.RLock()
	held := len(f.store.clients)
	f.store.mu.RUnlock()
	if held != 1 {
		t.Fatalf("the store counts %d clients after the sweep, want 1", held)
	}
}

// One network (an IPv6 /48, an IPv4 /24) holds at most MaxPerNetwork live
// sessions, so rotating through the /64s of a /56, each under
// MaxPerClient, cannot fill the store and lock everyone else out; the
// network's expired sessions no longer count.
func TestMemoryStoreCapsSessionsPerNetwork(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	f.store.MaxSessions, f.store.MaxPerClient, f.store.MaxPerNetwork = 40, 3, 6
	create := func(ip string) answer { return f.do("POST", "/handshake/session", `{}`, "X-Test-Client", ip) }
	for _, net := range []string{"2001:db8:aa00:%x::1", "203.0.113.%d"} {
		made := 0
		for sub := 1; sub <= 64; sub++ {
			for i := 0; i < 3; i++ {
				if create(fmt.Sprintf(net, sub)).status == 200 {
					made++
				}
			}
		}
		if made != 6 {
			t.Errorf("one network (%s) made %d sessions, want MaxPerNetwork 6", net, made)
		}
	}
	for _, other := range []string{"2001:db8:ab00::1", "198.51.100.7"} {
		if a := create(other); a.status != 200 {
			t.Errorf("another network's creation: %d %s", a.status, a.body)
		}
	}
	f.clock.add(DefaultTTL + time.Second)
	if a := create("2001:db8:aa00:ff::1"); a.status != 200 {
		t.Fatalf("after the network's sessions expired: %d %s", a.status, a.body)
	}
	f.store.mu.RLock()
	nets := len(f.store.networks)
	f.store.mu.RUnlock()
	if nets != 1 {
		t.Errorf("the store counts %d networks after the expiry, want 1", nets)
	}
}

// A full memory store refuses creations without sweeping all its
// sessions each time: until the earliest expiry nothing can be freed.
// When a session expires, the next creation takes its place.
func TestMemoryStoreFullRefusalCostsNoSweep(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := NewMemoryStore()
	defer s.Close()
	s.SetClock(clock.now)
	s.MaxSessions = 50
	n := 0
	create := func(ttl time.Duration) error {
		n++ // clients and networks of their own: only MaxSessions binds
		rec := &Record{ID: newSessionID(), Mode: "default", Client: fmt.Sprintf("10.%d.%d.1", n/256, n%256)}
		return s.Create(context.Background(), rec, nil, ttl)
	}
	for i := 0; i < 50; i++ {
		ttl := DefaultTTL
		if i == 7 {
			ttl = time.Minute // the earliest expiry
		}
		if err := create(ttl); err != nil {
			t.Fatal(err)
		}
	}
	sweeps := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sweeps }
	before := sweeps()
	for i := 0; i < 100; i++ {
		if err := create(DefaultTTL); !errors.Is(err, ErrFull) {
			t.Fatalf("creation into a full store: %v", err)
		}
	}
	if n := sweeps() - before; n > 1 {
		t.Errorf("100 refused creations swept the store %d times", n)
	}
	clock.add(time.Minute)
	if err := create(DefaultTTL); err != nil {
		t.Errorf("after the earliest session expired: %v", err)
	}
	if err := create(DefaultTTL); !errors.Is(err, ErrFull) {
		t.Errorf("the store is full again: %v", err)
	}
}

// An agent that puts an "at" into diff's URL as it is (the '+' of
// "+00:00" unescaped, which query decoding reads as a space) gets the
// changes after it, not a 400.
func TestDiffSinceWithUnescapedPlus(t *testing.T) {
	f := newFixture(t)
	s := f.create(`{"mode":"form-fill"}`)
	f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"a","value":1}],"stream":false}`)
	f.clock.add(time.Second)
	f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"b","value":2}],"stream":false}`)
	since := time.Date(2026, 5, 1, 12, 0, 0, 500000000, time.UTC).Format("2006-01-02T15:04:05.000000+00:00")
	a := f.do("GET", "/handshake/diff/"+s.ID+"?since="+since, "", "X-Handshake-Token", s.Token)
	ch, _ := a.json["changes"].([]any)
	if a.status != 200 || len(ch) != 1 || ch[0].(map[string]any)["key"] != "b" {
		t.Fatalf("since=%s unescaped: %d %s", since, a.status, a.body)
	}
}
