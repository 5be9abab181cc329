package handoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-ahp/caddy-ahp/internal/browsertest"
)

// A human claims a sandbox in a real browser: the backend's claim page
// (no script of its own) loads the plugin's solver from its origin, which
// fetches a claim challenge, solves it with WebCrypto in a Web Worker and
// posts code and proof of work. A wrong code first gets the uniform
// failure, then the right one claims.
func TestBrowserClaim(t *testing.T) {
	ctx := browsertest.Start(t)
	e := startEdge(t, "")
	s := e.create()
	e.publish(s)
	cs := e.startClaim(s)
	page := "http://" + e.api() + "/claim" // *.localhost: a secure context, so WebCrypto works

	run := func(code string) string {
		t.Helper()
		sc, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		err := chromedp.Do(sc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(`input[name=code]`),
			chromedp.SendKeys(`input[name=code]`, code),
			chromedp.Click(`button[type=submit]`),
			chromedp.Poll[chromedp.Void](`(function(){var t=document.querySelector("output").textContent;return t==="Claimed."||t.indexOf("did not work")>=0})()`),
		)
		if err != nil {
			t.Fatalf("claiming in the browser: %v", err)
		}
		out, err := chromedp.Run(sc, chromedp.Text(`output`))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := run("RAPTOR-WRONG-CODE-0000-0000"); !strings.Contains(out, "did not work") {
		t.Fatalf("a wrong code in the browser: %q", out)
	}
	verifies := e.be.count("POST /v1/claims/verify")
	if out := run(cs.Claim.Code); out != "Claimed." {
		t.Fatalf("the right code in the browser: %q", out)
	}
	if e.be.count("POST /v1/claims/verify") != verifies+1 {
		t.Fatal("the claim did not reach the backend")
	}
	if r := e.apiCall("GET", "/v1/sandboxes/"+s.ID, "", "Authorization", "Bearer "+s.AgentToken.Token); r.StatusCode != 404 {
		t.Fatalf("the agent's token after the human's claim: %d", r.StatusCode)
	}
}
