package handshake_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// With ahp on the same site (the bundled demo's setup): pages get both the
// AHP notice and the browser client. handshake_prompt runs before the
// site's auth and before ahp (agents hold a session token, not the site's
// credentials), so its own answers and the WebSocket do not pass through
// ahp: they carry no ahp-manifest Link.
func TestWithAHP(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	ahp {
		name "Demo"
		description "A site for tests"
		content_signals {
			ai_train false
			ai_input true
		}
	}
	handshake_prompt {
		inject forms
	}
	reverse_proxy %s
}
`, strings.TrimPrefix(l.URL, "http://")))
	page := call(t, s, "GET", "/contact.html", "")
	body := string(page.body)
	if !strings.Contains(body, `class="ahp-notice"`) || !strings.Contains(body, `/handshake/client.js`) {
		t.Fatalf("page lacks the notice or the client:\n%s", body)
	}
	if strings.Count(body, "/handshake/client.js") != 1 {
		t.Errorf("client injected more than once")
	}
	if about := call(t, s, "GET", "/about.html", ""); strings.Contains(string(about.body), "client.js") {
		t.Errorf("a page without a form got the client")
	}
	se := create(t, s, form)
	r := agent(t, s, "GET", "/handshake/context/SID", se, "")
	if r.status != 200 || strings.Contains(strings.Join(r.header.Values("Link"), ","), `rel="ahp-manifest"`) {
		t.Errorf("context: %d, Link %q; want 200 without ahp's Link (handshake_prompt answers before ahp runs)", r.status, r.header.Values("Link"))
	}
	ws := dial(t, s, se)
	if m := frame(t, ws); m["type"] != "connected" {
		t.Fatalf("connected: %v", m)
	}
	agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"x"}],"intervalMs":0}`)
	if m := frame(t, ws); m["type"] != "action" {
		t.Errorf("push through ahp: %v", m)
	}
}
