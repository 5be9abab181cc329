package handshake_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Through a real Caddy, in a real Chromium: an agent's 2.0 fills a number
// input as 2, and its null takes back what it wrote: the inputs are empty
// again, the status line counts the clears apart from the fills, and the
// session lists the required field as missing again.
func TestBrowserAgentClearsAField(t *testing.T) {
	p := contactSession(t)
	ctx, s, se := p.ctx, p.s, p.se

	a := agent(t, s, "POST", "/handshake/action/SID", se, `{"intervalMs":0,"actions":[
		{"type":"set","key":"email","value":"ada@example.com"},{"type":"set","key":"guests","value":2.0}]}`)
	if a.status != 200 || js(t, a.json["applied"]) != `["email","guests"]` {
		t.Fatalf("fill: %d %s", a.status, a.body)
	}
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](
		`document.getElementById("email").value === "ada@example.com" && document.getElementById("guests").value === "2"`)); err != nil {
		t.Fatalf("the page did not fill: %v", err)
	}
	a = agent(t, s, "POST", "/handshake/action/SID", se, `{"intervalMs":0,"actions":[
		{"type":"set","key":"email","value":null},{"type":"set","key":"guests","value":null},{"type":"set","key":"notes","value":"Window seat"}]}`)
	if a.status != 200 || js(t, a.json["applied"]) != `["email","guests","notes"]` || js(t, a.json["missing"]) != `["name","email"]` {
		t.Fatalf("clear: %d %s", a.status, a.body)
	}
	const want = "Your agent filled 1 field(s) and cleared 2; still missing: name, email."
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](
		`document.querySelector(".hpp-status").textContent === `+jsString(want))); err != nil {
		t.Fatalf("status %q, want %q: %v", evalString(t, step(t, ctx), `document.querySelector(".hpp-status").textContent`), want, err)
	}
	if got := evalString(t, step(t, ctx), `[document.getElementById("email").value, document.getElementById("guests").value, document.querySelector("textarea[name=notes]").value].join("|")`); got != "||Window seat" {
		t.Errorf("the page after the clear: %q", got)
	}
}
