package handshake_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-ahp/caddy-ahp/internal/browsertest"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// lbConfig is the load balancer of examples/handshake/Caddyfile.two
// (round robin over the instances) and, on its own port, the bundled demo
// site as that example serves it (gzip-compressed files, untouched).
func lbConfig(demoPort int, upstreams string) string {
	return fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	reverse_proxy %s {
		lb_policy round_robin
	}
}

http://127.0.0.1:%d {
	encode gzip
	handle /book-demo.html {
		root * {{REPO}}/examples/handshake
		file_server
	}
	handle {
		root * {{REPO}}/examples/site
		file_server
	}
}
`, upstreams, demoPort)
}

// instanceConfig is one instance of examples/handshake/Caddyfile.two: the
// same block on every instance.
func instanceConfig(redisAddr, baseURL string, demoPort int) string {
	return fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	handshake_prompt {
		store redis redis://%s/0
		zone harbor-and-pine
		inject forms
		base_url %s
	}
	reverse_proxy 127.0.0.1:%d
}
`, redisAddr, baseURL, demoPort)
}

// The "done when", with two Caddy instances behind a load
// balancer: the bundled demo page (examples/handshake/book-demo.html,
// gzip-compressed by the legacy site) is opened through the balancer, the
// user starts a session and types their name, the prompt is pasted into
// the SDK's agent client, which writes through the prompt's base URL (the
// balancer, so either instance), and the form fills in the DOM while the
// typed field stays the user's. The page's socket lives on one instance;
// a write sent to the other one reaches it too (Redis pub/sub).
func TestBrowserThroughLoadBalancer(t *testing.T) {
	ctx := browsertest.Start(t)
	rs := redistest.Start(t)
	demo := caddyproc.FreePort(t)
	lb := caddyproc.Start(t, lbConfig(demo, fmt.Sprintf("127.0.0.1:%d", caddyproc.FreePort(t))))
	base := fmt.Sprintf("http://127.0.0.1:%d", lb.Port)
	a := caddyproc.Start(t, instanceConfig(rs.Addr(), base, demo))
	b := caddyproc.Start(t, instanceConfig(rs.Addr(), base, demo))
	lb.Reload(lbConfig(demo, fmt.Sprintf("127.0.0.1:%d 127.0.0.1:%d", a.Port, b.Port)))

	// The balancer alternates: the page reaches both instances, and each
	// injects the client into the gzip-compressed page.
	for i := 0; i < 2; i++ {
		r := lb.Get("/book-demo.html", "Accept-Encoding", "gzip")
		if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("the demo page through the balancer: %d %v", r.StatusCode, r.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.Bytes))
		if err != nil {
			t.Fatal(err)
		}
		page, err := io.ReadAll(zr)
		if err != nil || !strings.Contains(string(page), `data-hpp-client="1"`) || !strings.Contains(string(page), "Book a showroom demo") {
			t.Fatalf("the demo page through the balancer: %v %.300s", err, page)
		}
	}
	injected := `caddy_ahp_handshake_pages_injected_total{result="inserted",site="harbor-and-pine"} 1`
	if !strings.Contains(metrics(t, a), injected) || !strings.Contains(metrics(t, b), injected) {
		t.Fatal("the balancer did not send one page to each instance")
	}

	sc := step(t, ctx)
	startInPage(t, sc, base+"/book-demo.html")
	prompt, err := chromedp.Run(sc, chromedp.Text(chromedp.CSS(`pre.hpp-prompt`)))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := sdkParsePrompt(prompt)
	if err != nil {
		t.Fatalf("parse_prompt: %v\n%s", err, prompt)
	}
	if creds["baseUrl"] != base {
		t.Fatalf("the prompt's baseUrl %q, want the balancer's %q", creds["baseUrl"], base)
	}
	agent := newSDKAgent(t, creds["sessionId"], creds["token"], creds["baseUrl"])

	// Which instance holds the page's socket.
	open := `caddy_ahp_handshake_sockets_open{site="harbor-and-pine"} 1`
	var holder, other *caddyproc.Server
	for deadline := time.Now().Add(10 * time.Second); holder == nil; time.Sleep(50 * time.Millisecond) {
		switch ma, mb := strings.Contains(metrics(t, a), open), strings.Contains(metrics(t, b), open); {
		case ma && !mb:
			holder, other = a, b
		case mb && !ma:
			holder, other = b, a
		case time.Now().After(deadline):
			t.Fatalf("the page's socket is open on A %v, on B %v; want exactly one", ma, mb)
		}
	}

	// The user types their name; it reaches the session whichever
	// instance took the edit, and becomes theirs.
	if err := chromedp.Do(step(t, ctx), chromedp.SendKeys(chromedp.ID("name"), "Grace Hopper")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := agent.getContext()
		if err != nil {
			t.Fatalf("get_context: %v", err)
		}
		if n := c["context"].(map[string]any)["name"].(map[string]any); n["value"] == "Grace Hopper" && n["by"] == "user" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's typing did not reach the session: %v", c["context"])
		}
	}

	// The agent fills the form through the balancer.
	res, err := agent.action(pyDict{
		{"name", "Someone Else"},
		{"email", "grace@example.com"},
		{"phone", "+1 555 0100"},
		{"piece", "walnut-desk"},
		{"visit", "2026-03-14T10:30:00"},
		{"guests", 3},
		{"newsletter", true},
	}, true, 20)
	if err != nil {
		t.Fatalf("action: %v", err)
	}
	if js(t, res["rejected"]) != `["name"]` || js(t, res["applied"]) != `["email","phone","piece","visit","guests","newsletter"]` || js(t, res["missing"]) != `[]` {
		t.Fatalf("action: %v", res)
	}
	sc = step(t, ctx)
	if err := chromedp.Do(sc, chromedp.Poll[chromedp.Void](`document.querySelector("input[name=newsletter]").checked === true`)); err != nil {
		t.Fatalf("waiting for the DOM: %v", err)
	}
	value := func(expr string) string { return evalString(t, sc, expr) }
	for id, want := range map[string]string{"name": "Grace Hopper", "email": "grace@example.com", "phone": "+1 555 0100", "piece": "walnut-desk", "guests": "3"} {
		if got := value(`document.getElementById("` + id + `").value`); got != want {
			t.Errorf("%s in the DOM: %q, want %q", id, got, want)
		}
	}
	if got := value(`document.getElementById("visit").value`); !strings.HasPrefix(got, "2026-03-14T10:30") {
		t.Errorf("visit in the DOM: %q", got)
	}

	// A write through the instance that does not hold the socket fills the
	// page too.
	direct := newSDKAgent(t, creds["sessionId"], creds["token"], fmt.Sprintf("http://127.0.0.1:%d", other.Port))
	if res, err := direct.action(pyDict{{"notes", "Via the other instance"}}, true, 0); err != nil || js(t, res["applied"]) != `["notes"]` {
		t.Fatalf("action on the instance without the socket: %v %v", res, err)
	}
	if err := chromedp.Do(step(t, ctx), chromedp.Poll[chromedp.Void](`document.getElementById("notes").value === "Via the other instance"`)); err != nil {
		t.Fatalf("a write on the other instance did not reach the page on %d: %v", holder.Port, err)
	}
	// The typed field is still the user's, in the session and in the DOM.
	c, err := agent.getContext()
	if err != nil {
		t.Fatal(err)
	}
	if n := c["context"].(map[string]any)["name"].(map[string]any); n["value"] != "Grace Hopper" || n["by"] != "user" {
		t.Errorf("the user's field after the agent: %v", n)
	}
}
