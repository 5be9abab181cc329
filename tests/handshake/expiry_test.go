package handshake_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/caddy-ahp/caddy-ahp/internal/browsertest"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// A page hears that its session ended when it ends, not at the next
// heartbeat (60 s): with a 3 s ttl and nobody using the session, the
// page takes the prompt away and says so well within the step's 30 s,
// long before any heartbeat could have told it.
func TestBrowserSeesExpiryAtOnce(t *testing.T) {
	ctx := browsertest.Start(t)
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "inject forms\n\t\tttl 3s"))
	startInPage(t, step(t, ctx), s.URL("/contact.html"))
	const ended = "Session ended: session not found. Click “Fill this form with your AI agent” for a new prompt."
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](
		`document.querySelector(".hpp-status").textContent === `+jsString(ended)+` && document.querySelector(".hpp-prompt").textContent === ""`)); err != nil {
		t.Fatalf("the page was not told of the end: %v (status %q)", err, evalString(t, step(t, ctx), `document.querySelector(".hpp-status").textContent`))
	}
}
