package concierge_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// startExample runs Caddyfile.example as the README does, from the
// repository's root, with its fixed ports swapped for free ones (each swap
// must match the example, so what runs here is the example).
func startExample(t *testing.T) (*caddyproc.Server, func(method, path, body string, headers ...string) caddyproc.Response) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(caddyproc.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	legacy, stand := caddyproc.FreePort(t), caddyproc.FreePort(t)
	for _, sw := range [][2]string{
		{"admin localhost:2019", "admin localhost:{{ADMIN}}\n\tpersist_config off\n\tgrace_period 1s"},
		{"http://localhost:8080 {", "http://localhost:{{PORT}} {"},
		{"http://localhost:8081 {", fmt.Sprintf("http://localhost:%d {", legacy)},
		{"reverse_proxy localhost:8081", fmt.Sprintf("reverse_proxy localhost:%d", legacy)},
		{"http://localhost:8082 {", fmt.Sprintf("http://localhost:%d {", stand)},
		{"reverse_proxy localhost:8082", fmt.Sprintf("reverse_proxy localhost:%d", stand)},
	} {
		if n := strings.Count(cfg, sw[0]); n != 1 {
			t.Fatalf("Caddyfile.example: %q occurs %d times, want once (update this test with the example)", sw[0], n)
		}
		cfg = strings.Replace(cfg, sw[0], sw[1], 1)
	}
	s := caddyproc.StartFull(t, cfg)
	host := fmt.Sprintf("localhost:%d", s.Port)
	do := func(method, path, body string, headers ...string) caddyproc.Response {
		t.Helper()
		hs := append([]string{"Host", host}, headers...)
		if body != "" {
			hs = append(hs, "Content-Type", "application/json")
			return s.Do(method, path, strings.NewReader(body), hs...)
		}
		return s.Do(method, path, nil, hs...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := do(http.MethodPost, "/agent/converse", `{"capability":"site_info","query":"hello"}`)
		if r.StatusCode == http.StatusOK {
			break
		}
		if r.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the example's concierge is not ready: %d %s\n%s", r.StatusCode, r.Bytes, s.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, do
}

// TestExampleREADME: every MODE2 curl of the README, on the example as it
// ships, answers the question asked from the right demo page, and the
// answers are valid AHP; MODE3 still reaches the stand-in service; any page
// comes as Markdown.
func TestExampleREADME(t *testing.T) {
	_, do := startExample(t)
	ask := func(body string, headers ...string) answer {
		t.Helper()
		r := do(http.MethodPost, "/agent/converse", body, headers...)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", body, r.StatusCode, r.Bytes)
		}
		checkSchema(t, r.Bytes)
		return decode(t, r.Bytes)
	}
	cases := []struct {
		body, source, quote string
	}{
		{`{"capability":"content_search","query":"How do I care for oak?"}`, "/blog/caring-for-oak.html", "between 35 and 55 percent relative humidity"},
		{`{"capability":"site_info","query":"When is the showroom open?"}`, "/", "Open Tue–Sat, 10–6"},
		{`{"capability":"content_search","query":"Do you deliver to Washington?"}`, "/delivery.html", "Our own van delivers"},
		{`{"capability":"content_search","query":"How do I get a repair?"}`, "/repairs.html", "Send a photo of the damage"},
	}
	for _, c := range cases {
		a := ask(c.body)
		if src := a.sources(); len(src) == 0 || src[0] != [2]string{c.source, "direct"} {
			t.Errorf("%s: sources %v, want %s first, direct", c.body, src, c.source)
		}
		if ans := a.obj("response").str("answer"); !strings.Contains(ans, c.quote) || !strings.Contains(ans, "("+c.source+")") {
			t.Errorf("%s: answer %q does not quote %s", c.body, ans, c.source)
		}
		if a.obj("meta").str("capability_used") == "" || a.tokens() <= 0 {
			t.Errorf("%s: meta %v", c.body, a.obj("meta"))
		}
	}

	// The honest miss.
	miss := ask(`{"capability":"content_search","query":"Do you sell bamboo chairs?"}`)
	if len(miss.sources()) != 0 || !strings.HasPrefix(miss.obj("response").str("answer"), "I found nothing") {
		t.Errorf("bamboo chairs: %v", miss)
	}

	// A feed.
	feed := ask(`{"capability":"content_search","query":"oak","context":{"accept_types":["application/feed"]}}`)
	items := feed.obj("response").obj("payload").list("items")
	if feed.obj("response").str("content_type") != "application/feed" || len(items) < 2 {
		t.Fatalf("feed: %v", feed)
	}
	if first, _ := items[0].(map[string]any); first["url"] != "/blog/caring-for-oak.html" {
		t.Errorf("feed's first item %v", items[0])
	}

	// A clarification, answered in the same session.
	cl := ask(`{"capability":"content_search","query":"hard wax oil"}`)
	if cl.str("status") != "clarification_needed" || len(cl.obj("clarification").list("options")) < 2 {
		t.Fatalf("hard wax oil: %v", cl)
	}
	sid := cl.str("session_id")
	chosen := ask(fmt.Sprintf(`{"capability":"content_search","query":"hard wax oil","session_id":%q,"clarification":"Caring for an oak table through the winter"}`, sid))
	if chosen.str("session_id") != sid || len(chosen.sources()) == 0 || chosen.sources()[0][0] != "/blog/caring-for-oak.html" {
		t.Errorf("clarified: %v", chosen)
	}

	// MODE3 goes to the site's own service (the stand-in), with the
	// gateway's checks first.
	if r := do(http.MethodPost, "/agent/converse", `{"capability":"book_demo","query":"Book a demo"}`); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("book_demo without credentials: %d %s", r.StatusCode, r.Bytes)
	}
	r := do(http.MethodPost, "/agent/converse", `{"capability":"book_demo","query":"Book a demo of the Willamette desk"}`, "Authorization", "Bearer demo-key-0123456789")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Bytes), "HP-DEMO-1042") {
		t.Errorf("book_demo: %d %s", r.StatusCode, r.Bytes)
	}
	checkSchema(t, r.Bytes)

	// Markdown of a page, from the compressed legacy site.
	md := do(http.MethodGet, "/blog/caring-for-oak.html", "", "Accept", "text/markdown")
	if md.StatusCode != 200 || md.Header.Get("Content-Type") != "text/markdown; charset=utf-8" ||
		!strings.HasPrefix(string(md.Bytes), "# Caring for an oak table through the winter\n") {
		t.Errorf("markdown: %d %q %q", md.StatusCode, md.Header.Get("Content-Type"), md.Bytes)
	}
	html := do(http.MethodGet, "/blog/caring-for-oak.html", "", "Accept", "text/html", "Accept-Encoding", "identity")
	if !strings.Contains(strings.Join(html.Header.Values("Link"), ", "), `</blog/caring-for-oak.html>; rel="alternate"; type="text/markdown"`) {
		t.Errorf("the HTML page does not advertise its Markdown: %q", html.Header.Values("Link"))
	}
}
