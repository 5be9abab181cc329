package handshake_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// The whole flow through Caddy, on each store: create → prompt → context
// → action (pushed to the page's socket) → diff → notify → extend.
func TestFlow(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			l := newLegacy(t)
			opts := ""
			if store == "redis" {
				opts = "store redis redis://" + redistest.Start(t).Addr() + "/0"
			}
			s := caddyproc.Start(t, site(l, opts))
			se := create(t, s, form)
			if !strings.Contains(se.Prompt, fmt.Sprintf("- baseUrl: http://127.0.0.1:%d\n", s.Port)) {
				t.Errorf("prompt: %s", se.Prompt)
			}
			p := agent(t, s, "GET", "/handshake/prompt/SID", se, "")
			if p.status != 200 || !strings.Contains(string(p.body), "- token: "+se.Token+"\n") || !strings.HasPrefix(se.Prompt, string(p.body[:strings.Index(string(p.body), "- expiresIn")])) {
				t.Errorf("GET prompt: %d %s", p.status, p.body)
			}
			ws := dial(t, s, se)
			if m := frame(t, ws); m["type"] != "connected" {
				t.Fatalf("connected: %v", m)
			}
			c := agent(t, s, "GET", "/handshake/context/SID", se, "")
			if c.status != 200 || js(t, c.json["missing"]) != `["name"]` {
				t.Fatalf("context: %d %s", c.status, c.body)
			}
			a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"Ada"},{"type":"set","key":"email","value":"x@y"},{"type":"set","key":"guests","value":"two"}],"intervalMs":0}`)
			if a.status != 200 || js(t, a.json["applied"]) != `["name"]` || js(t, a.json["rejected"]) != `["email"]` || js(t, a.json["missing"]) != `[]` {
				t.Fatalf("action: %d %s", a.status, a.body)
			}
			if m := frame(t, ws); m["type"] != "action" || m["key"] != "name" || m["value"] != "Ada" {
				t.Errorf("pushed: %v", m)
			}
			if m := frame(t, ws); m["type"] != "done" || m["applied"] != float64(1) {
				t.Errorf("done: %v", m)
			}
			d := agent(t, s, "GET", "/handshake/diff/SID", se, "")
			if ch := d.json["changes"].([]any); len(ch) != 1 || ch[0].(map[string]any)["by"] != "ai" {
				t.Errorf("diff: %s", d.body)
			}
			n := call(t, s, "POST", "/handshake/notify/"+se.ID, `{"key":"name","value":"Ada L."}`)
			if n.status != 200 {
				t.Fatalf("notify: %d %s", n.status, n.body)
			}
			a = agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"Bob"}],"stream":false}`)
			if js(t, a.json["rejected"]) != `["name"]` {
				t.Errorf("agent overwrote the user's edit: %s", a.body)
			}
			e := agent(t, s, "POST", "/handshake/session/SID/extend", se, `{"extraSeconds":120}`)
			if e.status != 200 || e.json["expiresIn"] != float64(1920) {
				t.Errorf("extend: %d %s", e.status, e.body)
			}
			frame(t, ws) // done of the refused write
			if m := frame(t, ws); m["type"] != "extended" || m["expiresIn"] != float64(1920) {
				t.Errorf("extended: %v", m)
			}
			// Errors in the SDK's order, never reaching the site.
			if r := agent(t, s, "GET", "/handshake/context/"+strings.Repeat("f", 32), se, ""); r.status != 404 || r.json["error"] != "session not found or expired" {
				t.Errorf("unknown session: %d %s", r.status, r.body)
			}
			if r := call(t, s, "GET", "/handshake/context/"+se.ID, "", "X-Handshake-Token", "nope"); r.status != 403 || r.json["error"] != "invalid token" {
				t.Errorf("wrong token: %d %s", r.status, r.body)
			}
			if r := call(t, s, "GET", "/Handshake/context/"+se.ID, "", "X-Handshake-Token", se.Token); r.status != 400 {
				t.Errorf("variant spelling: %d %s", r.status, r.body)
			}
			// The site is untouched for everything else.
			if r := call(t, s, "GET", "/about.html", ""); r.status != 200 || !strings.Contains(string(r.body), "No form here") {
				t.Errorf("site: %d %s", r.status, r.body)
			}
		})
	}
}

// The per-session limit through Caddy: 429 with Retry-After after 3.
func TestRateLimit(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "rate 3/minute"))
	se := create(t, s, form)
	for i := 0; i < 3; i++ {
		if r := agent(t, s, "GET", "/handshake/context/SID", se, ""); r.status != 200 {
			t.Fatalf("%d: %d", i, r.status)
		}
	}
	r := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"x"}]}`)
	if r.status != 429 || r.json["error"] != "rate limit exceeded" || r.header.Get("Retry-After") == "" {
		t.Fatalf("429: %d %v %s", r.status, r.header, r.body)
	}
	// The refused write changed nothing.
	if c := call(t, s, "POST", "/handshake/notify/"+se.ID, `{"key":"probe","value":1}`); c.status != 200 {
		t.Fatal(c.status)
	}
}

// Two Caddy instances sharing Redis: the page's socket is on B, the agent
// writes through A; sessions created on either are used on the other.
func TestFanOutAcrossInstances(t *testing.T) {
	l := newLegacy(t)
	rs := redistest.Start(t)
	cfg := site(l, "store redis redis://"+rs.Addr()+"/0")
	a, b := caddyproc.Start(t, cfg), caddyproc.Start(t, cfg)
	se := create(t, b, form)
	ws := dial(t, b, se)
	frame(t, ws)
	r := agent(t, a, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"Via A"},{"type":"set","key":"guests","value":3}],"intervalMs":50}`)
	if r.status != 200 || js(t, r.json["applied"]) != `["name","guests"]` {
		t.Fatalf("action on A: %d %s", r.status, r.body)
	}
	start := time.Now()
	m1, m2, done := frame(t, ws), frame(t, ws), frame(t, ws)
	if m1["value"] != "Via A" || m2["value"] != float64(3) || done["type"] != "done" {
		t.Errorf("B's socket: %v %v %v", m1, m2, done)
	}
	if time.Since(start) < 80*time.Millisecond {
		t.Errorf("not paced by intervalMs across instances: %s", time.Since(start))
	}
	// The user's edit on B protects the field against the agent on A.
	if n := call(t, b, "POST", "/handshake/notify/"+se.ID, `{"key":"guests","value":4}`); n.status != 200 {
		t.Fatal(n.status)
	}
	r = agent(t, a, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"guests","value":9}]}`)
	if js(t, r.json["rejected"]) != `["guests"]` {
		t.Errorf("A overwrote B's user edit: %s", r.body)
	}
	// A session created on A is read on B.
	se2 := create(t, a, form)
	if c := agent(t, b, "GET", "/handshake/context/SID", se2, ""); c.status != 200 {
		t.Errorf("A's session on B: %d", c.status)
	}
}

// Sessions and open sockets survive `caddy reload`, on both stores.
func TestReload(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			l := newLegacy(t)
			opts := ""
			if store == "redis" {
				opts = "store redis redis://" + redistest.Start(t).Addr() + "/0"
			}
			s := caddyproc.Start(t, site(l, opts))
			se := create(t, s, form)
			ws := dial(t, s, se)
			frame(t, ws)
			s.Reload(site(l, opts+"\n\t\tttl 40m"))
			if c := agent(t, s, "GET", "/handshake/context/SID", se, ""); c.status != 200 {
				t.Fatalf("session lost in reload: %d %s", c.status, c.body)
			}
			r := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"after reload"}],"intervalMs":0}`)
			if r.status != 200 {
				t.Fatal(string(r.body))
			}
			if m := frame(t, ws); m["type"] != "action" || m["value"] != "after reload" {
				t.Errorf("socket opened before the reload got %v", m)
			}
			// New sessions get the new TTL.
			r = call(t, s, "POST", "/handshake/session", form)
			if r.json["expiresIn"] != float64(2400) {
				t.Errorf("new config not in effect: %s", r.body)
			}
		})
	}
}

// An agent and the user race on one field, through two instances: every
// outcome leaves the user's value, marked as the user's.
func TestRaceAgentAndUser(t *testing.T) {
	l := newLegacy(t)
	rs := redistest.Start(t)
	cfg := site(l, "store redis redis://"+rs.Addr()+"/0\n\t\trate 1000/minute")
	a, b := caddyproc.Start(t, cfg), caddyproc.Start(t, cfg)
	for round := 0; round < 20; round++ {
		se := create(t, a, form)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			agent(t, a, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"agent"}],"stream":false}`)
		}()
		go func() {
			defer wg.Done()
			call(t, b, "POST", "/handshake/notify/"+se.ID, `{"key":"name","value":"user"}`)
		}()
		wg.Wait()
		c := agent(t, b, "GET", "/handshake/context/SID", se, "")
		e := c.json["context"].(map[string]any)["name"].(map[string]any)
		if e["value"] != "user" || (e["by"] != "user" && e["by"] != "user_edit") {
			t.Fatalf("round %d: %v", round, e)
		}
	}
}

// Hooks through the site's own handlers: create may veto or bind an owner,
// action may reject keys, done is told; browser_auth binds the cookie.
func TestHooksAndBrowserAuth(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, `hooks {
			create /hpp/hooks/create
			action /hpp/hooks/action
			done   /hpp/hooks/done
		}
		browser_auth cookie session`))
	// no login cookie: refused before anything else
	if r := call(t, s, "POST", "/handshake/session", form); r.status != 403 || r.json["error"] != "browser auth failed" {
		t.Errorf("no cookie: %d %s", r.status, r.body)
	}
	l.setAnswer("create", func([]byte) (int, string) { return 403, `{"error":"log in first"}` })
	if r := call(t, s, "POST", "/handshake/session", form, "Cookie", "session=abc"); r.status != 403 || r.json["error"] != "log in first" {
		t.Errorf("veto: %d %s", r.status, r.body)
	}
	l.setAnswer("create", func([]byte) (int, string) { return 200, `{"owner":"user-42"}` })
	se := create(t, s, form, "Cookie", "session=abc")
	if c := l.calls("create"); len(c) != 2 || c[1].cookie != "session=abc" || c[1].body["sessionId"] != se.ID {
		t.Errorf("create hook calls: %+v", c)
	}
	l.setAnswer("action", func([]byte) (int, string) { return 200, `{"reject":["guests"]}` })
	r := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"Ada"},{"type":"set","key":"guests","value":2}]}`)
	if js(t, r.json["applied"]) != `["name"]` || js(t, r.json["rejected"]) != `["guests"]` {
		t.Errorf("action hook: %s", r.body)
	}
	if c := l.calls("action"); len(c) != 1 || c[0].body["owner"] != "user-42" {
		t.Errorf("action hook calls: %+v", c)
	}
	if c := l.calls("done"); len(c) != 1 || js(t, c[0].body["applied"]) != `["name"]` {
		t.Errorf("done hook calls: %+v", c)
	}
	// a failing action hook: every write rejected with an error
	l.setAnswer("action", func([]byte) (int, string) { return 500, `oops` })
	r = agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"guests","value":2}]}`)
	if js(t, r.json["rejected"]) != `["guests"]` || !strings.Contains(string(r.body), `"msg":"action hook failed"`) {
		t.Errorf("failing hook: %s", r.body)
	}
	// notify needs the creator's cookie
	if n := call(t, s, "POST", "/handshake/notify/"+se.ID, `{"key":"name","value":"x"}`, "Cookie", "session=other"); n.status != 403 || n.json["error"] != "browser auth failed" {
		t.Errorf("notify, other cookie: %d %s", n.status, n.body)
	}
	if n := call(t, s, "POST", "/handshake/notify/"+se.ID, `{"key":"name","value":"x"}`, "Cookie", "session=abc"); n.status != 200 {
		t.Errorf("notify, creator's cookie: %d %s", n.status, n.body)
	}
}

// Tokens never reach a log: the plugin's own logs, and the access log
// with the documented filter.
func TestNoTokenInLogs(t *testing.T) {
	l := newLegacy(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "access.log")
	s := caddyproc.Start(t, fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	log {
		output file %s
		format filter {
			request>uri query {
				replace token REDACTED
			}
			request>headers>X-Handshake-Token delete
		}
	}
	handshake_prompt
	reverse_proxy %s
}
`, logFile, strings.TrimPrefix(l.URL, "http://")))
	se := create(t, s, form)
	ws := dial(t, s, se)
	frame(t, ws)
	agent(t, s, "GET", "/handshake/context/SID", se, "")
	call(t, s, "GET", "/handshake/prompt/"+se.ID+"?token="+se.Token, "")
	call(t, s, "GET", "/handshake/context/"+se.ID+"?token=wrong-token-value", "")
	_ = ws.CloseNow()
	time.Sleep(200 * time.Millisecond)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "REDACTED") || !strings.Contains(string(b), "/ws/handshake/") {
		t.Errorf("access log lacks the requests:\n%s", b)
	}
	for name, text := range map[string]string{"access log": string(b), "caddy's log": s.Logs.String()} {
		if strings.Contains(text, se.Token) || strings.Contains(text, "wrong-token-value") {
			t.Errorf("%s holds a token:\n%s", name, text)
		}
	}
}
