package handshake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// URL hooks: veto, owner, reject lists, and the failure policy (a hook
// that errs or times out: create fails closed, action rejects the writes).
func TestURLHooks(t *testing.T) {
	var mu sync.Mutex
	answers := map[string]func(w http.ResponseWriter, body map[string]any){}
	seen := map[string][]map[string]any{}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Handshake-Hook")
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		seen[name] = append(seen[name], m)
		fn := answers[name]
		mu.Unlock()
		if fn != nil {
			fn(w, m)
		}
	}))
	defer hooks.Close()
	set := func(name string, fn func(http.ResponseWriter, map[string]any)) {
		mu.Lock()
		answers[name] = fn
		mu.Unlock()
	}
	f := newFixture(t, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{URL: hooks.URL + "/create"}, Action: &Hook{URL: hooks.URL + "/action"}, Done: &Hook{URL: hooks.URL + "/done"}, Timeout: 200 * time.Millisecond}
	})
	set("create", func(w http.ResponseWriter, _ map[string]any) {
		w.WriteHeader(403)
		_, _ = io.WriteString(w, `{"error":"not today"}`)
	})
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 403 || a.json["error"] != "not today" {
		t.Errorf("veto: %d %s", a.status, a.body)
	}
	set("create", func(w http.ResponseWriter, _ map[string]any) { w.WriteHeader(500) })
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 503 {
		t.Errorf("failing create hook: %d %s", a.status, a.body)
	}
	set("create", func(w http.ResponseWriter, _ map[string]any) { time.Sleep(time.Second) })
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 503 {
		t.Errorf("slow create hook: %d %s", a.status, a.body)
	}
	set("create", func(w http.ResponseWriter, _ map[string]any) { _, _ = io.WriteString(w, `{"owner":42}`) })
	s := f.create(contactForm)
	set("action", func(w http.ResponseWriter, m map[string]any) {
		if m["owner"] != "42" {
			w.WriteHeader(400)
			return
		}
		_, _ = io.WriteString(w, `{"reject":["age"]}`)
	})
	a := f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"name","value":"A"},{"type":"set","key":"age","value":"not an int"}]}`)
	// The hook runs before the type check, as in the SDK: age is rejected, not an error.
	if mustJSON(t, a.json["applied"]) != `["name"]` || mustJSON(t, a.json["rejected"]) != `["age"]` || mustJSON(t, a.json["errors"]) != `[]` {
		t.Errorf("action hook: %s", a.body)
	}
	set("action", func(w http.ResponseWriter, _ map[string]any) { w.WriteHeader(403) })
	a = f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"name","value":"B"}]}`)
	if mustJSON(t, a.json["rejected"]) != `["name"]` {
		t.Errorf("4xx vetoes all: %s", a.body)
	}
	set("done", func(w http.ResponseWriter, _ map[string]any) { w.WriteHeader(502) })
	set("action", func(w http.ResponseWriter, _ map[string]any) { time.Sleep(time.Second) })
	a = f.agent("POST", s, "/handshake/action/", `{"actions":[{"type":"set","key":"email","value":"C"}]}`)
	if a.status != 200 || mustJSON(t, a.json["rejected"]) != `["email"]` || !strings.Contains(string(a.body), `{"key":"email","msg":"action hook failed"}`) {
		t.Errorf("slow action hook: %d %s", a.status, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen["done"]) != 3 || seen["done"][0]["sessionId"] != s.ID {
		t.Errorf("done hook calls: %v", seen["done"])
	}
}

// browser_auth: creation, notify and the WebSocket need the creator's cookie.
func TestBrowserAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BrowserCookie = "sid" })
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 403 || a.json["error"] != "browser auth failed" {
		t.Fatalf("no cookie: %d %s", a.status, a.body)
	}
	s := f.create(contactForm, "Cookie", "sid=alice")
	if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"name","value":"x"}`, "Cookie", "sid=mallory"); a.status != 403 {
		t.Errorf("notify, other cookie: %d", a.status)
	}
	if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"name","value":"x"}`, "Cookie", "sid=alice"); a.status != 200 {
		t.Errorf("notify, creator's cookie: %d %s", a.status, a.body)
	}
	// The agent holds the token but not the cookie: it cannot open the
	// page's socket (and so cannot send userEdit as the user).
	if c, a := f.dialRaw(s.ID, s.Token); c != nil || a.status != http.StatusForbidden || a.json["error"] != "browser auth failed" {
		t.Errorf("socket without the cookie: %d %s", a.status, a.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws/handshake/"+s.ID+"?token="+s.Token,
		&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {"sid=alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if m := read(t, c2); m["type"] != "connected" {
		t.Errorf("socket with the cookie: %v", m)
	}
}

// A 2xx hook answer the plugin cannot read is a failed hook, never an
// approval: the action hook's writes are rejected as "action hook failed"
// and the create hook (a guard) fails closed. An empty answer approves.
func TestHookUnreadableAnswerFails(t *testing.T) {
	var mu sync.Mutex
	answer := ""
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, answer)
	}))
	defer hook.Close()
	say := func(s string) { mu.Lock(); answer = s; mu.Unlock() }
	f := newFixture(t, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{URL: hook.URL + "/create"}, Action: &Hook{URL: hook.URL + "/action"}}
	})
	say("")
	s := f.create(contactForm)
	const write = `{"actions":[{"type":"set","key":"name","value":"Mallory"}]}`
	for _, bad := range []string{`{"reject":"email"}`, `{"reject":true}`, `{"reject":["email",1]}`, `<html>OK</html>`, `["name"]`, `"ok"`} {
		say(bad)
		a := f.agent("POST", s, "/handshake/action/", write)
		if mustJSON(t, a.json["applied"]) != `[]` || !strings.Contains(string(a.body), "action hook failed") {
			t.Errorf("action hook answered %s: %s", bad, a.body)
		}
	}
	for _, good := range []string{``, " \n", `{}`, `{"reject":null}`, `{"reject":[]}`} {
		say(good)
		if a := f.agent("POST", s, "/handshake/action/", write); mustJSON(t, a.json["applied"]) != `["name"]` {
			t.Errorf("action hook answered %q: %s", good, a.body)
		}
	}
	for _, bad := range []string{`{"owner":{"id":1}}`, `{"owner":true}`, `<html>Welcome</html>`} {
		say(bad)
		if a := f.do("POST", "/handshake/session", contactForm); a.status != 503 {
			t.Errorf("create hook answered %s: %d %s", bad, a.status, a.body)
		}
	}
	for _, good := range []string{``, `{}`, `{"owner":null}`, `{"owner":"u1"}`} {
		say(good)
		if a := f.do("POST", "/handshake/session", contactForm); a.status != 200 {
			t.Errorf("create hook answered %q: %d %s", good, a.status, a.body)
		}
	}
}

// A hook URL's credentials (a ?key= query, a userinfo password) reach
// neither the log when a call fails nor a configuration error: the plugin
// never logs a secret.
func TestHookURLSecretsStayOutOfLogsAndErrors(t *testing.T) {
	const secret, password = "hooksecret-7f3a9c", "s3cret-hook-pw"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://app:" + password + "@" + ln.Addr().String()
	_ = ln.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	f := newFixture(t, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{URL: dead + "/create?key=" + secret}, Timeout: 200 * time.Millisecond}
		c.Logger = zap.New(core)
	})
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 503 {
		t.Fatalf("a dead create hook: %d %s", a.status, a.body)
	}
	if logs.FilterMessage("handshake: hook failed").Len() != 1 {
		t.Fatalf("the failure was not logged: %v", logs.All())
	}
	for _, e := range logs.All() {
		if line := e.Message + " " + fmt.Sprint(e.ContextMap()); strings.Contains(line, secret) || strings.Contains(line, password) {
			t.Errorf("the hook URL's secret reached the log: %s", line)
		}
	}
	for _, u := range []string{
		"http://app:" + password + "@app.internal/hooks/create",              // refused: http:// to a remote host
		"ftp://app:" + password + "@app.internal/hooks/create?key=" + secret, // refused: not http(s)
		"http://app:" + password + "@app.internal:bad/hooks?key=" + secret,   // refused: unparsable
	} {
		st, lim := NewMemoryStore(), limiter.NewMemory(limiter.MemoryOptions{})
		_, err := New(Config{Store: st, Limiter: lim, Hooks: Hooks{Create: &Hook{URL: u}}})
		_, _ = st.Close(), lim.Close()
		if err == nil {
			t.Fatalf("%s accepted", u)
		}
		t.Log(err)
		if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), secret) {
			t.Errorf("the configuration error shows the hook's secret: %v", err)
		}
		if !strings.Contains(err.Error(), "app.internal") {
			t.Errorf("the configuration error no longer names the host: %v", err)
		}
	}
}

// statusError is an error carrying an HTTP status, as caddyhttp.Error.
type statusError struct{ code int }

func (e statusError) Error() string { return "not authenticated" }

// authSite mimics caddyauth in front of the site: a request without
// Authorization gets an error carrying 401 rather than an answer, except
// on the path the operator excluded from authentication.
type authSite struct{ exempt string }

func (a authSite) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != a.exempt && r.Header.Get("Authorization") == "" {
		return statusError{http.StatusUnauthorized}
	}
	_, _ = io.WriteString(w, `{}`)
	return nil
}

// Path hooks on a site behind basic_auth: only the create hook carries
// the browser's credentials, so the action hook's call is refused with a
// handler error carrying 401. That is the site's answer, a veto (logged
// once with the fix), not a failing hook; a hook path excluded from
// authentication (clients cannot reach it anyway) approves.
func TestPathHooksBehindAuthentication(t *testing.T) {
	status := func(err error) int {
		var se statusError
		if errors.As(err, &se) {
			return se.code
		}
		return 0
	}
	const write = `{"actions":[{"type":"set","key":"name","value":"Ada"}]}`
	core, logs := observer.New(zapcore.DebugLevel)
	f := newFixtureNext(t, "memory", authSite{}, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{Path: "/hooks/create"}, Action: &Hook{Path: "/hooks/action"}}
		c.HandlerErrorStatus, c.Logger = status, zap.New(core)
	})
	if a := f.do("POST", "/handshake/session", contactForm); a.status != 403 || a.json["error"] != "session creation denied" {
		t.Errorf("creation without the browser's credentials: %d %s", a.status, a.body)
	}
	s := f.create(contactForm, "Authorization", "Basic dXNlcjpwYXNz")
	for range 2 {
		a := f.agent("POST", s, "/handshake/action/", write)
		if mustJSON(t, a.json["applied"]) != `[]` || mustJSON(t, a.json["rejected"]) != `["name"]` || mustJSON(t, a.json["errors"]) != `[]` {
			t.Errorf("action hook refused by authentication: %s", a.body)
		}
	}
	if n := logs.FilterMessageSnippet("exclude hook paths from authentication").Len(); n != 1 {
		t.Errorf("the fix was logged %d times, want once", n)
	}

	exempt := newFixtureNext(t, "memory", authSite{exempt: "/hooks/action"}, func(c *Config) {
		c.Hooks = Hooks{Create: &Hook{Path: "/hooks/create"}, Action: &Hook{Path: "/hooks/action"}}
		c.HandlerErrorStatus = status
	})
	s = exempt.create(contactForm, "Authorization", "Basic dXNlcjpwYXNz")
	if a := exempt.agent("POST", s, "/handshake/action/", write); mustJSON(t, a.json["applied"]) != `["name"]` {
		t.Errorf("action hook path excluded from authentication: %s", a.body)
	}

	// An error without a status is a failing hook, as before.
	plain := newFixtureNext(t, "memory", authSite{}, func(c *Config) {
		c.Hooks = Hooks{Action: &Hook{Path: "/hooks/action"}}
		c.HandlerErrorStatus = func(error) int { return 0 }
	})
	s = plain.create(contactForm)
	if a := plain.agent("POST", s, "/handshake/action/", write); !strings.Contains(string(a.body), "action hook failed") {
		t.Errorf("a handler error without a status: %s", a.body)
	}
}
