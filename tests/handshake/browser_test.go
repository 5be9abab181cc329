package handshake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/caddy-ahp/caddy-ahp/internal/browsertest"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// step bounds one group of browser actions.
func step(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// startInPage opens page, starts a session with the page's button and
// waits for the prompt and the client's "waiting" status.
func startInPage(t *testing.T, sc context.Context, page string) {
	t.Helper()
	if err := chromedp.Do(sc,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`button.hpp-start`)),
		chromedp.Click(chromedp.CSS(`button.hpp-start`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.hpp-prompt`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("pre.hpp-prompt").textContent.includes("token:")`),
		chromedp.Poll[chromedp.Void](`document.querySelector(".hpp-status").textContent.includes("Waiting for your agent")`),
	); err != nil {
		t.Fatalf("starting a session in the page: %v", err)
	}
}

// evalString evaluates a JavaScript expression of string value in the page.
func evalString(t *testing.T, sc context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(sc, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

var credential = regexp.MustCompile(`(?m)^\s*-?\s*(\w+)\s*:\s*(.+?)\s*$`)

// parsePrompt reads the prompt's "- name: value" lines as agent clients do.
func parsePrompt(p string) map[string]string {
	out := map[string]string{}
	for _, m := range credential.FindAllStringSubmatch(p, -1) {
		if _, seen := out[m[1]]; !seen {
			out[m[1]] = m[2]
		}
	}
	return out
}

// A legacy page's form, untouched by the site, becomes agent-fillable:
// Caddy injects the client, the user starts a session and types a field,
// the agent fills the rest through the API, the DOM changes (the page's own
// change listener sees it) and the user's field stays theirs.
func TestBrowserFillsTheForm(t *testing.T) {
	ctx := browsertest.Start(t)
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "inject forms"))
	page := s.URL("/contact.html")

	sc := step(t, ctx)
	startInPage(t, sc, page)
	prompt, err := chromedp.Run(sc, chromedp.Text(chromedp.CSS(`pre.hpp-prompt`)))
	if err != nil {
		t.Fatal(err)
	}
	creds := parsePrompt(prompt)
	se := sess{ID: creds["sessionId"], Token: creds["token"]}
	if creds["baseUrl"] != strings.TrimSuffix(s.URL(""), "/") || len(se.ID) != 32 {
		t.Fatalf("prompt credentials %v from:\n%s", creds, prompt)
	}
	c := agent(t, s, "GET", "/handshake/context/SID", se, "")
	if c.status != 200 || !strings.Contains(string(c.body), `"key":"piece","label":"Piece","type":"enum","options":[{"value":"desk","label":"Walnut desk"},{"value":"table","label":"Oak table"}]`) {
		t.Fatalf("schema from the form: %d %s", c.status, c.body)
	}
	if !strings.Contains(string(c.body), `"key":"guests","label":"Guests","type":"int"`) || !strings.Contains(string(c.body), `"key":"newsletter","label":"Newsletter","type":"bool"`) ||
		!strings.Contains(string(c.body), `"key":"terms","label":"Terms","type":"bool"}`) { // a single checkbox, whatever its value
		t.Errorf("input types: %s", c.body)
	}

	// The user types their name: reported over the socket, protected.
	if err := chromedp.Do(step(t, ctx), chromedp.SendKeys(chromedp.ID("name"), "Grace")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c = agent(t, s, "GET", "/handshake/context/SID", se, "")
		if strings.Contains(string(c.body), `"name":{"value":"Grace","by":"user"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's typing did not reach the session: %s", c.body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[
		{"type":"set","key":"name","value":"Agent's idea"},
		{"type":"set","key":"email","value":"grace@example.com"},
		{"type":"set","key":"guests","value":3},
		{"type":"set","key":"piece","value":"desk"},
		{"type":"set","key":"newsletter","value":true},
		{"type":"set","key":"terms","value":true},
		{"type":"set","key":"notes","value":"Line one\nLine two"}],"intervalMs":10}`)
	if a.status != 200 || js(t, a.json["rejected"]) != `["name"]` || js(t, a.json["applied"]) != `["email","guests","piece","newsletter","terms","notes"]` {
		t.Fatalf("action: %d %s", a.status, a.body)
	}
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.querySelector("textarea[name=notes]").value === "Line one\nLine two"`)); err != nil {
		t.Fatalf("waiting for the DOM: %v", err)
	}
	value := func(sel string) string {
		v, err := chromedp.Run(sc, chromedp.Evaluate[string](sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	name, email, guests := value(`document.getElementById("name").value`), value(`document.getElementById("email").value`), value(`document.getElementById("guests").value`)
	piece, events := value(`document.getElementById("piece").value`), value(`document.getElementById("events").textContent`)
	newsletter, err := chromedp.Run(sc, chromedp.Evaluate[bool](`document.querySelector("input[name=newsletter]").checked`))
	if err != nil {
		t.Fatal(err)
	}
	if name != "Grace" || email != "grace@example.com" || guests != "3" || piece != "desk" || !newsletter {
		t.Errorf("DOM after the agent: name %q email %q guests %q piece %q newsletter %v", name, email, guests, piece, newsletter)
	}
	// What the form posts: the checked box's value after its hidden twin.
	if terms := value(`new FormData(document.getElementById("book")).getAll("terms").join("+")`); terms != "0+1" {
		t.Errorf("terms the form posts: %q, want 0+1", terms)
	}
	if !strings.Contains(events, "guests-changed:3;") {
		t.Errorf("the page's own change listener did not see the agent's value: %q", events)
	}
	// The agent's values are the agent's: the page did not echo them back as user edits.
	time.Sleep(400 * time.Millisecond)
	c = agent(t, s, "GET", "/handshake/context/SID", se, "")
	if !strings.Contains(string(c.body), `"email":{"value":"grace@example.com","by":"ai"`) {
		t.Errorf("agent's value re-reported as the user's: %s", c.body)
	}
}

// A page whose socket is refused learns why and stops: a reload that
// moves the site to another store (zone) closes the socket (1012), the
// reconnection is refused before the upgrade (the session is not in the
// new store), and the client reads the refusal from a plain GET of the
// same URL instead of retrying for ever.
func TestBrowserStopsWhenTheSocketIsRefused(t *testing.T) {
	ctx := browsertest.Start(t)
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "inject forms"))
	sc := step(t, ctx)
	startInPage(t, sc, s.URL("/contact.html"))
	s.Reload(site(l, "inject forms\n\t\tzone elsewhere"))
	if err := chromedp.Do(step(t, ctx),
		chromedp.Poll[chromedp.Void](`document.querySelector(".hpp-status").textContent === "Session ended: session not found or expired. Click “Fill this form with your AI agent” for a new prompt." && document.querySelector(".hpp-prompt").textContent === ""`),
	); err != nil {
		status, _ := chromedp.Run(step(t, ctx), chromedp.Text(chromedp.CSS(`.hpp-status`)))
		t.Fatalf("the page did not stop after a refused reconnection: %v (status %q)", err, status)
	}
	// The button starts a new session, in the new store, with its prompt.
	if err := chromedp.Do(step(t, ctx),
		chromedp.Click(chromedp.CSS(`button.hpp-start`)),
		chromedp.Poll[chromedp.Void](`document.querySelector(".hpp-status").textContent === "Waiting for your agent…" && document.querySelector(".hpp-prompt").textContent.indexOf("- sessionId: ") >= 0`),
	); err != nil {
		status, _ := chromedp.Run(step(t, ctx), chromedp.Text(chromedp.CSS(`.hpp-status`)))
		t.Fatalf("no new session after the end: %v (status %q)", err, status)
	}
}

// An agent that posts with "stream": false (the SDK CLI's --no-stream)
// sends the page's socket only the batch's done frame. The page reads the
// session's context on that done and fills the form over the same socket,
// without reconnecting; the field the user typed stays theirs, in the DOM
// and in the session, including one typed while the agent's write was on
// its way (the edit not yet reported when the server applied the agent's
// value), and a second non-streamed batch replaces the agent's own value.
func TestBrowserFillsTheFormWithoutStreaming(t *testing.T) {
	ctx := browsertest.Start(t)
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "inject forms"))
	sc := step(t, ctx)
	startInPage(t, sc, s.URL("/contact.html"))
	// Keep the page's socket and log every frame it receives.
	if err := chromedp.Do(sc, chromedp.Evaluate[chromedp.Void](`(function () {
		var ws = document.getElementById("book").__hpp.ws;
		window.firstSocket = ws; window.frames = [];
		ws.addEventListener("message", function (e) { window.frames.push(JSON.parse(e.data).type); });
	})()`)); err != nil {
		t.Fatal(err)
	}
	prompt, err := chromedp.Run(sc, chromedp.Text(chromedp.CSS(`pre.hpp-prompt`)))
	if err != nil {
		t.Fatal(err)
	}
	creds := parsePrompt(prompt)
	ag := newSDKAgent(t, creds["sessionId"], creds["token"], creds["baseUrl"])

	// The user types their name; the session has it as theirs.
	if err := chromedp.Do(step(t, ctx), chromedp.SendKeys(chromedp.ID("name"), "Grace")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := ag.getContext()
		if err != nil {
			t.Fatal(err)
		}
		if n := c["context"].(map[string]any)["name"].(map[string]any); n["value"] == "Grace" && n["by"] == "user" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's typing did not reach the session: %v", c["context"])
		}
	}
	// The user starts the notes and the agent writes at once: its write
	// may reach the session before the user's edit (reported 200 ms after
	// the last key).
	if err := chromedp.Do(step(t, ctx), chromedp.SendKeys(chromedp.CSS(`textarea[name=notes]`), "Mine")); err != nil {
		t.Fatal(err)
	}
	res, err := ag.action(pyDict{
		{"name", "Agent's idea"},
		{"email", "grace@example.com"},
		{"guests", 3},
		{"piece", "desk"},
		{"newsletter", true},
		{"notes", "The agent's notes"},
	}, false, 0)
	if err != nil || js(t, res["rejected"]) != `["name"]` && js(t, res["rejected"]) != `["name","notes"]` {
		t.Fatalf("action --no-stream: %v %v", res, err)
	}
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.querySelector("input[name=newsletter]").checked === true`)); err != nil {
		t.Fatalf("the form did not fill after a non-streamed action: %v", err)
	}
	value := func(expr string) string { return evalString(t, sc, expr) }
	for id, want := range map[string]string{"name": "Grace", "email": "grace@example.com", "guests": "3", "piece": "desk"} {
		if got := value(`document.getElementById("` + id + `").value`); got != want {
			t.Errorf("%s in the DOM: %q, want %q", id, got, want)
		}
	}
	if got := value(`document.querySelector("textarea[name=notes]").value`); got != "Mine" {
		t.Errorf("notes in the DOM: %q, want the user's %q", got, "Mine")
	}
	if ev := value(`document.getElementById("events").textContent`); ev != "guests-changed:3;" {
		t.Errorf("the page's own change listener: %q, want one change", ev)
	}
	// The same socket, which carried no action frame: the values came from
	// the context read.
	if v := value(`String(document.getElementById("book").__hpp.ws === window.firstSocket && window.firstSocket.readyState === 1) + " " + window.frames.join(",")`); v != "true done" {
		t.Errorf("socket same and open, frames: %q, want %q", v, "true done")
	}

	// The agent changes its mind, again without streaming.
	if res, err := ag.action(pyDict{{"email", "ada@example.com"}}, false, 0); err != nil || js(t, res["applied"]) != `["email"]` {
		t.Fatalf("second action: %v %v", res, err)
	}
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](`document.getElementById("email").value === "ada@example.com"`)); err != nil {
		t.Fatalf("a second non-streamed action did not reach the DOM: %v", err)
	}

	// In the session: the user's fields are theirs, the agent's values
	// were not echoed back as the user's.
	time.Sleep(400 * time.Millisecond) // longer than the client's 200 ms report delay
	c, err := ag.getContext()
	if err != nil {
		t.Fatal(err)
	}
	cx := c["context"].(map[string]any)
	for key, want := range map[string]string{
		"name":   `"Grace" user`,
		"notes":  `"Mine" user`, // user, or user_edit when the agent's write came first
		"email":  `"ada@example.com" ai`,
		"guests": `3 ai`,
	} {
		e, _ := cx[key].(map[string]any)
		if got := js(t, e["value"]) + " " + strings.TrimSuffix(fmt.Sprint(e["by"]), "_edit"); got != want {
			t.Errorf("%s in the session: %v, want %s", key, e, want)
		}
	}
	if v := value(`window.frames.join(",")`); v != "done,done" {
		t.Errorf("frames on the page's socket: %q", v)
	}
}

// A reload keeps the tab's session: the page reads it back, fills the
// form from it (the visitor's typed value stays theirs), shows the same
// prompt and takes the agent's next values over a new socket. A session
// that has ended is forgotten: the reloaded page offers a new one and
// makes none by itself.
func TestBrowserResumesAfterReload(t *testing.T) {
	p := contactSession(t)
	ctx, l, s, sc, se, prompt := p.ctx, p.l, p.s, p.sc, p.se, p.prompt
	if err := chromedp.Do(sc, chromedp.SendKeys(chromedp.ID("name"), "Grace")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(agent(t, s, "GET", "/handshake/context/SID", se, "").body), `"name":{"value":"Grace","by":"user"`) {
		if time.Now().After(deadline) {
			t.Fatal("the user's typing did not reach the session")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"email","value":"grace@example.com"}]}`); a.status != 200 {
		t.Fatalf("action: %d %s", a.status, a.body)
	}
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.getElementById("email").value === "grace@example.com"`)); err != nil {
		t.Fatal(err)
	}

	sc = step(t, ctx)
	if err := chromedp.Do(sc,
		chromedp.Reload(),
		// (the status says "Waiting for your agent…" only until the
		// server's replay of the agent's values, so the socket is checked)
		chromedp.Poll[chromedp.Void](`document.querySelector("pre.hpp-prompt") && document.querySelector("pre.hpp-prompt").textContent === `+jsString(prompt)+
			` && `+socketOpen),
	); err != nil {
		t.Fatalf("the reloaded page did not resume its session: %v", err)
	}
	if got := evalString(t, sc, `[document.getElementById("name").value, document.getElementById("email").value, String(document.getElementById("book").__hpp.mine.name === true), String(HandshakePrompt.sessions.length)].join("|")`); got != "Grace|grace@example.com|true|1" {
		t.Errorf("after the reload (name|email|name is the user's|sessions): %q", got)
	}
	if a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"guests","value":4}]}`); a.status != 200 {
		t.Fatalf("action after the reload: %d %s", a.status, a.body)
	}
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.getElementById("guests").value === "4"`)); err != nil {
		t.Fatalf("the agent's value after the reload did not reach the page: %v", err)
	}

	// The session ends (a reload of Caddy into another store): the page
	// stops, and a reload then shows the button only.
	s.Reload(site(l, "inject forms\n\t\tzone elsewhere"))
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.querySelector(".hpp-status").textContent.indexOf("Session ended") === 0`)); err != nil {
		t.Fatalf("the page did not stop: %v", err)
	}
	// (with nothing kept, the page reads no session: nothing to wait for)
	if err := chromedp.Do(sc, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`button.hpp-start`))); err != nil {
		t.Fatal(err)
	}
	if got := evalString(t, sc, `String(document.querySelector("pre.hpp-prompt") === null) + "|" + HandshakePrompt.sessions.length + "|" + Object.keys(sessionStorage).filter(function (k) { return k.indexOf("hpp:") === 0; }).length`); got != "true|0|0" {
		t.Errorf("after the session ended and a reload (no prompt|sessions|kept entries): %q", got)
	}
}

// agentFilledEmail starts a session in the contact page of a new site
// and has the agent set its email, shown in the page.
func agentFilledEmail(t *testing.T, email string) (context.Context, *caddyproc.Server, context.Context, sess) {
	t.Helper()
	p := contactSession(t)
	ctx, s, sc, se := p.ctx, p.s, p.sc, p.se
	if a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"email","value":"`+email+`"}]}`); a.status != 200 {
		t.Fatalf("action: %d %s", a.status, a.body)
	}
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.getElementById("email").value === "`+email+`"`)); err != nil {
		t.Fatal(err)
	}
	return ctx, s, sc, se
}

// pageSession is a legacy contact page behind a real Caddy, open in a
// real Chromium, whose visitor started a session: the prompt it shows and
// the session's credentials, as an agent reads them from it.
type pageSession struct {
	ctx, sc context.Context // the browser, and the step's context
	l       *legacy
	s       *caddyproc.Server
	prompt  string
	se      sess
}

func contactSession(t *testing.T) pageSession {
	t.Helper()
	p := pageSession{ctx: browsertest.Start(t), l: newLegacy(t)}
	p.s = caddyproc.Start(t, site(p.l, "inject forms"))
	p.sc = step(t, p.ctx)
	startInPage(t, p.sc, p.s.URL("/contact.html"))
	p.prompt = evalString(t, p.sc, `document.querySelector("pre.hpp-prompt").textContent`)
	creds := parsePrompt(p.prompt)
	p.se = sess{ID: creds["sessionId"], Token: creds["token"]}
	return p
}

// socketOpen is true in the page once the form's session socket is open.
const socketOpen = `(function () { var st = document.getElementById("book").__hpp; return !!(st && st.ws && st.ws.readyState === 1); })()`

// After a reload, an agent's batch sent with "stream": false reaches the
// page: the server replays the agent's earlier values on the resumed
// socket, and those frames must not count as the next batch's (its done
// then looked fully streamed, and the page never read the session).
func TestBrowserResumedPageTakesANonStreamedBatch(t *testing.T) {
	ctx, s, sc, se := agentFilledEmail(t, "grace@example.com")
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Reload(), chromedp.Poll[chromedp.Void](`HandshakePrompt.sessions.length === 1 && `+socketOpen)); err != nil {
		t.Fatal(err)
	}
	if a := agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"guests","value":4}],"stream":false}`); a.status != 200 {
		t.Fatalf("action: %d %s", a.status, a.body)
	}
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](`document.getElementById("guests").value === "4"`)); err != nil {
		sc = step(t, ctx)
		t.Errorf("a non-streamed batch after the reload did not reach the page: guests %q, status %q", evalString(t, sc, `document.getElementById("guests").value`),
			evalString(t, sc, `document.querySelector(".hpp-status").textContent`))
	}
}

// What the visitor types while a reloaded page reads its session back is
// theirs: the session's value for the field (the agent's) is not written
// over it, and the typing is reported once the session is read.
func TestBrowserTypingDuringResumeStaysTheVisitors(t *testing.T) {
	ctx, s, sc, se := agentFilledEmail(t, "agent@example.com")
	// A slow network: the reloaded page's read of the session is held
	// until the test has typed (window.releaseRead).
	if err := chromedp.Do(sc, chromedp.Action[chromedp.Void](func(c context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(c, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(function () {
			var f = window.fetch, held = [];
			window.releaseRead = function () { held.forEach(function (go) { go(); }); held = null; };
			window.fetch = function (u) {
				var a = arguments;
				if (held && String(u).indexOf("/context/") >= 0) return new Promise(function (r) { held.push(function () { r(f.apply(window, a)); }); });
				return f.apply(window, a);
			};
		})()`})
		return chromedp.Void{}, err
	})); err != nil {
		t.Fatal(err)
	}
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`button.hpp-start`)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("email").value = ""`),
		chromedp.SendKeys(chromedp.ID("email"), "mine@example.com"),
		chromedp.Evaluate[chromedp.Void](`window.releaseRead()`),
		chromedp.Poll[chromedp.Void](`HandshakePrompt.sessions.length === 1 && `+socketOpen)); err != nil {
		t.Fatal(err)
	}
	if got := evalString(t, sc, `document.getElementById("email").value + "|" + String(document.getElementById("book").__hpp.mine.email === true)`); got != "mine@example.com|true" {
		t.Errorf("typed during the resume (value|the visitor's): %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(agent(t, s, "GET", "/handshake/context/SID", se, "").body), `"email":{"value":"mine@example.com","by":"user`) {
		if time.Now().After(deadline) {
			t.Fatalf("the visitor's typing during the resume never reached the session: %s", agent(t, s, "GET", "/handshake/context/SID", se, "").body)
		}
		time.Sleep(250 * time.Millisecond) // (the session's 60 reads a minute)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
