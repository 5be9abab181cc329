package handshake

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-ahp/caddy-ahp/internal/browsertest"
)

// clientHarness is a page with a form, the served client.js, and stand-ins
// for WebSocket and fetch that the test drives frame by frame: the
// client's decisions (when to read the context, what to apply, what to do
// when the read fails) are checked in a real Chromium without timing
// races. tests/handshake runs the same client against a real Caddy.
const clientHarness = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Harness</title></head><body>
<form id="f">
  <input name="name"> <input name="email"> <input name="guests" type="number">
  <input type="checkbox" name="news"> <textarea name="notes"></textarea>
</form>
<script>
window.calls = []; window.pending = []; window.sockets = []; window.changes = [];
function resp(status, body) { return { ok: status < 300, status: status, json: function () { return Promise.resolve(body); } }; }
window.fetch = function (url, opts) {
  opts = opts || {};
  var c = { url: String(url), method: opts.method || "GET", token: (opts.headers || {})["X-Handshake-Token"] || "", body: opts.body || "" };
  calls.push(c);
  if (c.method === "POST" && /\/session$/.test(c.url)) return Promise.resolve(resp(200, {
    sessionId: "s1", token: "tok", wsUrl: "/ws/handshake/s1", contextUrl: "/handshake/context/s1",
    notifyUrl: "/handshake/notify/s1", prompt: "prompt" }));
  if (c.method !== "GET" || c.url.indexOf("/handshake/context/") !== 0) return Promise.resolve(resp(200, {}));
  return new Promise(function (resolve) { pending.push(resolve); });
};
window.answer = function (status, body) { var r = pending.shift(); if (!r) throw new Error("no context read pending"); r(resp(status, body)); };
window.reads = function () { return calls.filter(function (c) { return c.url.indexOf("/handshake/context/") === 0; }).length; };
window.WebSocket = function (url) { this.url = url; this.readyState = 1; this.sent = []; this.closed = 0; sockets.push(this); };
WebSocket.prototype.send = function (d) { this.sent.push(JSON.parse(d)); };
WebSocket.prototype.close = function (code) {
  if (this.closed) return;
  this.closed = code || 1000; this.readyState = 3;
  var self = this; setTimeout(function () { self.onclose({ code: self.closed }); }, 0);
};
window.emit = function (m) { sockets[sockets.length - 1].onmessage({ data: JSON.stringify(m) }); };
window.tick = function () { return new Promise(function (r) { setTimeout(r, 20); }); };
window.type = function (name, v) { var el = document.forms.f.elements[name]; el.value = v; el.dispatchEvent(new Event("input", { bubbles: true })); };
window.val = function (name) { var el = document.forms.f.elements[name]; return el.type === "checkbox" ? String(el.checked) : el.value; };
document.getElementById("f").addEventListener("change", function (e) { changes.push(e.target.name); });
</script>
<script src="/handshake/client.js"></script>
</body></html>`

func TestClientReadsTheContextOnDone(t *testing.T) {
	ctx := browsertest.Start(t)
	js, _ := clientScript(DefaultPrefix, "/ws/handshake")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/handshake/client.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(js)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, clientHarness)
	}))
	t.Cleanup(srv.Close)

	sc, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sc, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// run evaluates an async function body and returns what it returns.
	run := func(what, body string) string {
		t.Helper()
		v, err := chromedp.Run(sc, chromedp.Evaluate[string](`(async function () {`+body+`})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	check := func(what, body, want string) {
		t.Helper()
		if got := run(what, body); got != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}

	run("start", `await HandshakePrompt.start(document.forms.f); emit({type: "connected", sessionId: "s1", mode: "form-fill"}); return ""`)

	// A streamed batch: its action frames add up to its done; no read.
	check("streamed batch", `
		emit({type: "action", key: "email", value: "a@example.com"});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		return reads() + " " + val("email")`,
		`0 a@example.com`)

	// A non-streamed batch: the done counts 3 applied and no frames came.
	// The page reads the context with its token and applies the agent's
	// values, except the field the user typed (its report, 200 ms later,
	// carries the user's value) and the user's own; an action frame that
	// arrives during the read is newer than the read's value.
	check("non-streamed batch", `
		type("name", "Me");
		emit({type: "done", applied: 4, rejected: [], missing: []});
		await tick();
		var c = calls[calls.length - 1], asked = reads() + " " + c.url + " " + c.token;
		emit({type: "action", key: "guests", value: 5});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		changes.length = 0;
		answer(200, {sessionId: "s1", mode: "form-fill", context: {
			name: {value: "Agent", by: "ai"}, email: {value: "b@example.com", by: "ai"},
			guests: {value: 4, by: "ai"}, news: {value: true, by: "ai"}, notes: {value: "not mine", by: "user"},
			other: {value: "x", by: "ai"}}});
		await tick();
		await new Promise(function (r) { setTimeout(r, 300); });
		var sent = sockets[0].sent.map(function (m) { return m.type + ":" + m.key + "=" + m.value; }).join(",");
		return asked + " | " + reads() + " | " + ["name", "email", "guests", "news", "notes"].map(val).join(",") +
			" | changes " + changes.join(",") + " | sent " + sent`,
		`1 /handshake/context/s1 tok | 1 | Me,b@example.com,5,true, | changes email,news | sent userEdit:name=Me`)

	// An action frame for a field the user typed does not overwrite it.
	check("frame for the user's field", `
		emit({type: "action", key: "name", value: "Agent again"});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		return reads() + " " + val("name")`,
		`1 Me`)

	// Dones during a read make one more read after it, not one each; a
	// read that changes nothing fires no events.
	check("dones during a read", `
		emit({type: "done", applied: 1, rejected: [], missing: []});
		emit({type: "done", applied: 2, rejected: [], missing: []});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		var during = reads();
		changes.length = 0;
		answer(200, {context: {email: {value: "b@example.com", by: "ai"}}});
		await tick();
		var after = reads();
		answer(200, {context: {email: {value: "c@example.com", by: "ai"}}});
		await tick();
		return during + " " + after + " " + reads() + " " + val("email") + " changes " + changes.join(",")`,
		`2 3 3 c@example.com changes email`)

	// A failed read (the session's rate limit) closes the socket: it
	// reconnects and the server replays the agent's values there. After a
	// reconnection the replayed frames do not count for the next done.
	check("failed read", `
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		answer(429, {error: "rate limit exceeded"});
		await tick();
		var closed = sockets[0].closed;
		await new Promise(function (r) { setTimeout(r, 700); });
		var n = sockets.length;
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		emit({type: "action", key: "email", value: "c@example.com"});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		var r = reads();
		answer(200, {context: {guests: {value: 6, by: "ai"}}});
		await tick();
		return closed + " " + n + " " + r + " " + val("guests")`,
		`4000 2 5 6`)

	// A read refused for good (the session expired) stops the page.
	check("session gone", `
		emit({type: "done", applied: 1, rejected: [], missing: []});
		await tick();
		answer(404, {error: "session not found or expired"});
		await new Promise(function (r) { setTimeout(r, 1200); });
		return sockets[1].closed + " " + sockets.length + " " + document.querySelector(".hpp-status").textContent`,
		`4000 2 Session ended: session not found or expired. Click “Fill this form with your AI agent” for a new prompt.`)

	// The dead prompt is taken away; the button starts a new session with
	// its own prompt and socket (it used to do nothing).
	check("a new session after the end", `
		var before = document.querySelector(".hpp-prompt").textContent + "|" + document.querySelector(".hpp-copy").disabled;
		var creates = calls.filter(function (c) { return c.method === "POST" && /\/session$/.test(c.url); }).length;
		document.querySelector(".hpp-start").click();
		await tick();
		var after = calls.filter(function (c) { return c.method === "POST" && /\/session$/.test(c.url); }).length;
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return before + " " + creates + "→" + after + " " + sockets.length + " " +
			document.querySelector(".hpp-prompt").textContent + "|" + document.querySelector(".hpp-copy").disabled + " " +
			document.querySelector(".hpp-status").textContent`,
		`|true 1→2 3 prompt|false Waiting for your agent…`)

	// The new session: the user's typing stays theirs, the old agent's
	// values start empty for the new agent to correct, and the new agent's
	// write to a field the user once typed in and cleared is shown.
	check("what the new session starts with", `
		var creates = calls.filter(function (c) { return c.method === "POST" && /\/session$/.test(c.url); });
		var ctx = JSON.parse(creates[1].body).context;
		return JSON.stringify([ctx.name, ctx.email, ctx.guests])`,
		`["Me",null,null]`)
}

// legacyHarness is a legacy form: an input with maxlength, a readonly
// field the page computes, and EXTRA, controls a test adds.
const legacyHarness = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Harness</title></head><body>
<form id="f">
  <input name="code" maxlength="5">
  <input name="price" value="100" readonly>
  EXTRA
  <input name="name">
</form>
<script>
window.calls = []; window.sockets = [];
function resp(status, body) { return { ok: status < 300, status: status, json: function () { return Promise.resolve(body); } }; }
window.fetch = function (url, opts) {
  opts = opts || {};
  calls.push({ url: String(url), method: opts.method || "GET", body: opts.body || "" });
  if ((opts.method || "GET") === "POST" && /\/session$/.test(String(url))) return Promise.resolve(resp(200, {
    sessionId: "s1", token: "tok", wsUrl: "/ws/handshake/s1", contextUrl: "/handshake/context/s1",
    notifyUrl: "/handshake/notify/s1", prompt: "prompt" }));
  return Promise.resolve(resp(200, {}));
};
window.WebSocket = function (url) { this.url = url; this.readyState = 1; this.sent = []; sockets.push(this); };
WebSocket.prototype.send = function (d) { this.sent.push(JSON.parse(d)); };
WebSocket.prototype.close = function () {};
window.emit = function (m) { sockets[sockets.length - 1].onmessage({ data: JSON.stringify(m) }); };
window.val = function (name) { return document.forms.f.elements[name].value; };
window.created = function () { return JSON.parse(calls.filter(function (c) { return /\/session$/.test(c.url); })[0].body); };
</script>
<script src="/handshake/client.js"></script>
</body></html>`

// legacyPage serves legacyHarness with extra in place of EXTRA and
// returns evaluators of async function bodies in it (each bounded).
func legacyPage(t *testing.T, extra string) (run func(what, body string) string, check func(what, body, want string)) {
	ctx := browsertest.Start(t)
	js, _ := clientScript(DefaultPrefix, "/ws/handshake")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/handshake/client.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(js)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, strings.Replace(legacyHarness, "EXTRA", extra, 1))
	}))
	t.Cleanup(srv.Close)
	sc, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	if err := chromedp.Do(sc, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	run = func(what, body string) string {
		t.Helper()
		v, err := chromedp.Run(sc, chromedp.Evaluate[string](`(async function () {`+body+`})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	check = func(what, body, want string) {
		t.Helper()
		if got := run(what, body); got != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	return run, check
}

// The client offers the form as it is when the session starts (a field
// the page's script added after load included), never offers or writes a
// readonly field the page computes, and never sets a value longer than
// an input's maxlength (a script-set value would pass checkValidity and
// reach the legacy back end).
func TestClientRespectsLegacyFormConstraints(t *testing.T) {
	run, check := legacyPage(t, `<select name="size"><option value="">-</option><option value="S">S</option></select>`)
	run("start", `
		var c = document.createElement("input"); c.name = "company"; document.forms.f.appendChild(c);
		await HandshakePrompt.start(document.forms.f);
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return ""`)
	check("schema", `
		var body = created(), keys = body.schema.map(function (f) { return f.key; });
		var code = body.schema.filter(function (f) { return f.key === "code"; })[0];
		return keys.join(",") + " maxLength=" + code.maxLength`,
		`code,size,name,company maxLength=5`)
	check("maxlength", `
		emit({type: "action", key: "code", value: "ABCDEFGHIJKLMNOP"});
		var el = document.forms.f.elements.code, over = val("code") + " valid=" + el.checkValidity();
		emit({type: "action", key: "code", value: "ABCDE"});
		return over + " | " + val("code")`,
		` valid=true | ABCDE`)
	check("readonly field", `
		emit({type: "action", key: "price", value: "1"});
		return val("price")`,
		`100`)
	check("a field the page locked after the start", `
		document.forms.f.elements.name.readOnly = true;
		emit({type: "action", key: "name", value: "Mallory"});
		var ro = val("name");
		document.forms.f.elements.name.readOnly = false;
		document.forms.f.elements.name.disabled = true;
		emit({type: "action", key: "name", value: "Mallory"});
		return ro + "|" + val("name") + "|" + document.forms.f.elements.company.value`,
		`||`)
	check("the added field and a select are written", `
		emit({type: "action", key: "company", value: "ACME"});
		emit({type: "action", key: "size", value: "S"});
		return val("company") + " " + val("size")`,
		`ACME S`)
}

// A control named like an Object.prototype member (constructor, toString,
// __proto__) is a field like any other: the form still gets its button,
// starts, and the agent can fill it.
func TestClientFieldNamedLikeAPrototypeMember(t *testing.T) {
	run, check := legacyPage(t, `<input name="constructor"><input name="toString"><input name="__proto__"><input name="hasOwnProperty">`)
	check("button", `return String(document.querySelectorAll(".hpp-start").length)`, `1`)
	check("start", `try { await HandshakePrompt.start(document.forms.f); return "ok"; } catch (e) { return String(e); }`, `ok`)
	check("schema and context", `
		var body = created();
		return body.schema.map(function (f) { return f.key; }).join(",") + " " + Object.keys(body.context).join(",")`,
		`code,constructor,toString,__proto__,hasOwnProperty,name code,constructor,toString,__proto__,hasOwnProperty,name`)
	run("connect", `emit({type: "connected", sessionId: "s1", mode: "form-fill"}); return ""`)
	check("fill", `
		["constructor", "toString", "__proto__", "hasOwnProperty"].forEach(function (k) { emit({type: "action", key: k, value: "v-" + k}); });
		emit({type: "action", key: "valueOf", value: "x"});
		// (elements.constructor is the collection's own constructor: query by name)
		return ["constructor", "toString", "__proto__", "hasOwnProperty"].map(function (k) { return document.querySelector('[name="' + k + '"]').value; }).join(",")`,
		`v-constructor,v-toString,v-__proto__,v-hasOwnProperty`)
}

// A single checkbox is a yes/no whatever its value: offered as bool (the
// browser posts its value when it is checked, next to a Rails-style
// hidden "0" twin), applied from true and false, reported as a bool, and
// its checked-by-default state is the field's default. Several boxes of
// one name stay a list of values.
func TestClientSingleCheckboxIsBool(t *testing.T) {
	run, check := legacyPage(t, `<input type="hidden" name="agree" value="0"><input type="checkbox" name="agree" value="1">
		<input type="checkbox" name="terms" value="yes" checked>
		<input type="checkbox" name="color" value="red"><input type="checkbox" name="color" value="blue">`)
	run("start", `
		await HandshakePrompt.start(document.forms.f);
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return ""`)
	check("schema and context", `
		var body = created();
		return body.schema.filter(function (f) { return ["agree", "terms", "color"].indexOf(f.key) >= 0; }).map(function (f) {
			return f.key + ":" + f.type + (f.options ? " options=" + f.options.map(function (o) { return o.value; }).join("/") : "") +
				("default" in f ? " default=" + JSON.stringify(f["default"]) : "") + " context=" + JSON.stringify(body.context[f.key]);
		}).join(", ")`,
		`agree:bool context=null, terms:bool default=true context=null, color:array<string> options=red/blue context=null`)
	posted := `var d = new FormData(document.forms.f); return ["agree", "terms", "color"].map(function (k) { return k + "=" + d.getAll(k).join("+"); }).join(" ")`
	check("the agent's true and false", `
		emit({type: "action", key: "agree", value: true});
		emit({type: "action", key: "terms", value: false});
		emit({type: "action", key: "color", value: ["blue"]});
		`+posted,
		`agree=0+1 terms= color=blue`)
	check("false unchecks", `
		emit({type: "action", key: "agree", value: false});
		`+posted,
		`agree=0 terms= color=blue`)
	check("the user's click is reported as a bool", `
		document.forms.f.querySelector('input[type=checkbox][name=agree]').click();
		await new Promise(function (r) { setTimeout(r, 300); });
		var sent = sockets[0].sent.map(function (m) { return m.type + ":" + m.key + "=" + JSON.stringify(m.value); }).join(",");
		return sent + " | " + (function () { `+posted+` })()`,
		`userEdit:agree=true | agree=0+1 terms= color=blue`)
}

// A value the browser drops (an invalid date or number reads as "") is
// not shown as filled: the page tells the user, and the field stays
// empty. The session keeps the agent's value; the page has no report for
// it in the protocol (docs/handshake-prompt.md, "What the page holds").
func TestClientValueTheBrowserDrops(t *testing.T) {
	run, check := legacyPage(t, `<input type="date" name="day"><input type="number" name="guests">`)
	run("start", `
		await HandshakePrompt.start(document.forms.f);
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return ""`)
	st := `document.querySelector(".hpp-status").textContent`
	check("invalid date", `
		emit({type: "action", key: "day", value: "2026-13-45"});
		return val("day") + "|" + `+st, `|Your agent's value for “day” is not valid in this field: left empty.`)
	check("valid date", `
		emit({type: "action", key: "day", value: "2026-02-03"});
		return val("day") + "|" + `+st, `2026-02-03|Your agent filled “day”.`)
	check("not a number", `
		emit({type: "action", key: "guests", value: "three"});
		return val("guests") + "|" + `+st, `|Your agent's value for “guests” is not valid in this field: left empty.`)
	check("an empty value is no drop", `
		emit({type: "action", key: "day", value: ""});
		return val("day") + "|" + `+st, `|Your agent filled “day”.`)
	check("no report to the session", `return String(sockets[0].sent.length)`, `0`)
	// The batch's done keeps saying which value the form did not take
	// (it used to replace the warning at once).
	check("done names the dropped value", `
		emit({type: "action", key: "day", value: "2026-13-45"});
		emit({type: "action", key: "guests", value: 2});
		emit({type: "done", applied: 2, rejected: [], missing: []});
		return `+st, `Your agent filled 2 field(s); not accepted by the form, please check: day.`)
	check("a clean batch asks for the review", `
		emit({type: "action", key: "day", value: "2026-02-03"});
		emit({type: "done", applied: 1, rejected: [], missing: []});
		return `+st, `Your agent filled 1 field(s). Review the form and send it.`)
}

// A value the field holds but the form will not send (past max, not an
// email) is named to the visitor; a number field's min and max go to the
// schema, where the server holds the agent to them.
func TestClientValueTheFormWillNotSend(t *testing.T) {
	run, check := legacyPage(t, `<input type="number" name="guests" min="1" max="6"><input type="email" name="mail"><input type="number" name="n" step="0.5" min="0">`)
	run("start", `
		await HandshakePrompt.start(document.forms.f);
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return ""`)
	st := `document.querySelector(".hpp-status").textContent`
	check("schema", `
		var s = created().schema.filter(function (f) { return f.key === "guests" || f.key === "n"; });
		return JSON.stringify(s.map(function (f) { return [f.key, f.type, f.min, f.max, f.desc]; }))`,
		`[["guests","int",1,6,"a whole number from 1 to 6"],["n","float",0,null,"a number, at least 0"]]`)
	got := run("over max", `
		emit({type: "action", key: "guests", value: 10});
		return val("guests") + "|" + `+st)
	if !strings.HasPrefix(got, "10|Your agent filled “guests”, but the form will not send it: ") {
		t.Errorf("over max: %s", got)
	}
	got = run("not an email", `
		emit({type: "action", key: "mail", value: "not an email"});
		emit({type: "done", applied: 2, rejected: [], missing: []});
		return `+st)
	if got != "Your agent filled 2 field(s); not accepted by the form, please check: guests, mail." {
		t.Errorf("done: %s", got)
	}
}

// An action frame with null clears its field, whatever the control (a
// radio group, a <select>, a checkbox group, a box, a text input), as the
// page's own change listeners see it; the status line says "cleared", and
// the batch's done counts the clears apart from the fills.
func TestClientClearsAField(t *testing.T) {
	run, check := legacyPage(t, `<input type="radio" name="r" value="null"><input type="radio" name="r" value="a">
		<select name="s"><option value="x">x</option><option value="y">y</option></select>
		<input type="checkbox" name="g" value="1"><input type="checkbox" name="g" value="2"><input type="checkbox" name="b">`)
	run("start", `
		await HandshakePrompt.start(document.forms.f);
		emit({type: "connected", sessionId: "s1", mode: "form-fill"});
		return ""`)
	st := `document.querySelector(".hpp-status").textContent`
	state := `var f = document.forms.f.elements;
		return [f.name.value, f.r[0].checked, f.r[1].checked, f.s.selectedIndex, f.g[0].checked, f.g[1].checked, f.b.checked].join(",")`
	check("filled", `
		emit({type: "action", key: "name", value: "Ada"}); emit({type: "action", key: "r", value: "a"});
		emit({type: "action", key: "s", value: "y"}); emit({type: "action", key: "g", value: ["1", "2"]});
		emit({type: "action", key: "b", value: true});
		emit({type: "done", applied: 5, rejected: [], missing: []});
		`+state, `Ada,false,true,1,true,true,true`)
	check("cleared", `
		emit({type: "action", key: "name", value: null});
		var one = `+st+`;
		emit({type: "action", key: "r", value: null}); emit({type: "action", key: "s", value: null});
		emit({type: "action", key: "g", value: null}); emit({type: "action", key: "b", value: null});
		emit({type: "done", applied: 5, rejected: [], missing: []});
		var f = document.forms.f.elements;
		return one + "|" + [f.name.value, f.r[0].checked, f.r[1].checked, f.s.selectedIndex, f.g[0].checked, f.g[1].checked, f.b.checked].join(",") + "|" + `+st,
		`Your agent cleared “name”.|,false,false,-1,false,false,false|Your agent cleared 5 field(s). Review the form and send it.`)
	check("a batch of both", `
		emit({type: "action", key: "name", value: "Grace"}); emit({type: "action", key: "s", value: null});
		emit({type: "done", applied: 2, rejected: [], missing: ["s"]});
		return `+st, `Your agent filled 1 field(s) and cleared 1; still missing: s.`)
	check("a batch without frames, counted by the server", `
		emit({type: "done", applied: 3, cleared: 2, rejected: [], missing: []});
		return `+st, `Your agent filled 1 field(s) and cleared 2. Review the form and send it.`)
	check("the agent's clears are not reported as the user's", `
		return String(sockets[sockets.length - 1].sent.length) + "," + calls.filter(function (c) { return /notify/.test(c.url); }).length`, `0,0`)
}
