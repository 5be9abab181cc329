package concierge_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

// readmeCurl is one `curl` of the README's quick start that posts to the
// converse endpoint: its -H headers and its -d body, as written.
type readmeCurl struct {
	headers []string // name, value, ...
	body    string
}

// readmeConverseCurls reads the README's quick start (the block after
// "With the example running:") and returns every curl that posts to
// /agent/converse, so the test runs exactly what a new user runs.
func readmeConverseCurls(t *testing.T) []readmeCurl {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(caddyproc.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i := strings.Index(readme, "With the example running:\n\n```sh\n")
	if i < 0 {
		t.Fatal("README.md: no \"With the example running:\" block (update this test with the README)")
	}
	block := readme[i+len("With the example running:\n\n```sh\n"):]
	block = block[:strings.Index(block, "```")]
	// Join continued lines, then drop comments.
	block = strings.ReplaceAll(block, "\\\n", " ")
	hdr := regexp.MustCompile(`-H '([^:']+):\s*([^']*)'`)
	data := regexp.MustCompile(`-d '([^']*)'`)
	var out []readmeCurl
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "curl ") || !strings.Contains(line, "/agent/converse") {
			continue
		}
		d := data.FindStringSubmatch(line)
		if d == nil {
			t.Fatalf("README.md: a converse curl without -d: %s", line)
		}
		c := readmeCurl{body: d[1]}
		for _, h := range hdr.FindAllStringSubmatch(line, -1) {
			if h[1] != "Content-Type" { // do() sets it for bodies
				c.headers = append(c.headers, h[1], h[2])
			}
		}
		out = append(out, c)
	}
	return out
}

// TestExampleREADME: every converse curl of the README's quick start, run
// as written against the example as it ships, gets what the README says
// below it: each MODE2 question is answered from the right demo page (the
// one cited first, as the direct source), the feed, the clarification and
// its resend by number, the honest miss; the MODE3 curl reaches the
// stand-in service; the error curl gets the spec's body. A MODE2 curl
// added to the README without an expectation here fails the test. Any
// page comes as Markdown.
func TestExampleREADME(t *testing.T) {
	_, do := startExample(t)
	type reply struct {
		status int
		raw    []byte
		a      answer
	}
	run := func(c readmeCurl) reply {
		t.Helper()
		r := do(http.MethodPost, "/agent/converse", c.body, c.headers...)
		checkSchema(t, r.Bytes)
		return reply{r.StatusCode, r.Bytes, decode(t, r.Bytes)}
	}
	// What the README says under each curl.
	direct := func(source, quote string) func(*testing.T, reply) {
		return func(t *testing.T, r reply) {
			if r.status != http.StatusOK || r.a.str("status") != "success" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if src := r.a.sources(); len(src) == 0 || src[0] != [2]string{source, "direct"} {
				t.Errorf("sources %v, want %s first, direct", src, source)
			}
			if ans := r.a.obj("response").str("answer"); !strings.Contains(ans, quote) || !strings.Contains(ans, "("+source+")") {
				t.Errorf("answer %q does not quote %q from %s", ans, quote, source)
			}
			if r.a.obj("meta").str("capability_used") == "" || r.a.tokens() <= 0 {
				t.Errorf("meta %v", r.a.obj("meta"))
			}
		}
	}
	var clarified bool
	expect := map[string]func(*testing.T, reply){
		`{"capability":"content_search","query":"How do I care for oak?"}`: direct("/blog/caring-for-oak.html",
			"From “Caring for an oak table through the winter” (/blog/caring-for-oak.html):\nKeep the room between 35 and 55 percent relative humidity."),
		`{"capability":"site_info","query":"When is the showroom open?"}`: direct("/", "Open Tue–Sat, 10–6."),
		`{"capability":"content_search","query":"Do you deliver to Washington?"}`: direct("/delivery.html",
			"Our own van delivers and sets up furniture within Oregon and Washington, free of charge."),
		`{"capability":"content_search","query":"oak","context":{"accept_types":["application/feed"]}}`: func(t *testing.T, r reply) {
			resp := r.a.obj("response")
			items := resp.obj("payload").list("items")
			total, _ := resp.obj("payload")["total"].(float64)
			if r.status != http.StatusOK || resp.str("content_type") != "application/feed" || len(items) < 2 || total != 6 {
				t.Fatalf("want a feed of total 6, %d: %s", r.status, r.raw)
			}
			if first, _ := items[0].(map[string]any); first["url"] != "/blog/caring-for-oak.html" {
				t.Errorf("the feed's first item %v, want Caring for oak", items[0])
			}
		},
		`{"capability":"content_search","query":"hard wax oil"}`: func(t *testing.T, r reply) {
			opts := r.a.obj("clarification").list("options")
			if r.a.str("status") != "clarification_needed" || fmt.Sprint(opts) != "[About the workshop Caring for an oak table through the winter]" {
				t.Fatalf("want clarification_needed with the two options: %s", r.raw)
			}
			// "resend with its "session_id" and "clarification":"2"".
			sid := r.a.str("session_id")
			chosen := run(readmeCurl{body: fmt.Sprintf(`{"capability":"content_search","query":"hard wax oil","session_id":%q,"clarification":"2"}`, sid)})
			if chosen.a.str("status") != "success" || chosen.a.str("session_id") != sid ||
				len(chosen.a.sources()) == 0 || chosen.a.sources()[0] != [2]string{"/blog/caring-for-oak.html", "direct"} {
				t.Errorf("clarification 2: %s", chosen.raw)
			}
			clarified = true
		},
		`{"capability":"content_search","query":"Do you sell bamboo chairs?"}`: func(t *testing.T, r reply) {
			if r.status != http.StatusOK || len(r.a.sources()) != 0 ||
				!strings.HasPrefix(r.a.obj("response").str("answer"), "I found nothing about “Do you sell bamboo chairs?” on Harbor & Pine Furniture Co.") {
				t.Errorf("want the honest miss: %s", r.raw)
			}
		},
		`{"capability":"book_demo","query":"Book a demo of the Willamette desk"}`: func(t *testing.T, r reply) {
			if r.status != http.StatusOK || !strings.Contains(r.a.obj("response").str("answer"), "confirmation HP-DEMO-1042") {
				t.Errorf("MODE3 through the stand-in: %d %s", r.status, r.raw)
			}
		},
		`{"capability":"nope","query":"x"}`: func(t *testing.T, r reply) {
			if r.status != http.StatusBadRequest || r.a.str("code") != "unknown_capability" {
				t.Errorf("the spec's error body: %d %s", r.status, r.raw)
			}
		},
	}
	curls := readmeConverseCurls(t)
	seen := map[string]bool{}
	for _, c := range curls {
		check, ok := expect[c.body]
		if !ok {
			t.Errorf("README.md has a converse curl this test does not know: -d '%s'; add what the README promises for it", c.body)
			continue
		}
		seen[c.body] = true
		t.Run(c.body, func(t *testing.T) { check(t, run(c)) })
	}
	for body := range expect {
		if !seen[body] {
			t.Errorf("README.md no longer has the curl -d '%s'; update this test", body)
		}
	}
	if !clarified {
		t.Error("the clarification's resend was not run")
	}

	// A question the README does not ask, from another page.
	r := run(readmeCurl{body: `{"capability":"content_search","query":"How do I get a repair?"}`})
	direct("/repairs.html", "Send a photo of the damage")(t, r)

	// MODE3 goes to the site's own service (the stand-in), with the
	// gateway's checks first.
	if r := do(http.MethodPost, "/agent/converse", `{"capability":"book_demo","query":"Book a demo"}`); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("book_demo without credentials: %d %s", r.StatusCode, r.Bytes)
	}

	// Markdown of a page, from the compressed legacy site, as the README's
	// curl asks for it; and every page of the demo site's sitemap comes as
	// clean Markdown (a heading first, no markup, no notice).
	md := do(http.MethodGet, "/blog/caring-for-oak.html", "", "Accept", "text/markdown")
	if md.StatusCode != 200 || md.Header.Get("Content-Type") != "text/markdown; charset=utf-8" ||
		!strings.HasPrefix(string(md.Bytes), "# Caring for an oak table through the winter\n") {
		t.Errorf("markdown: %d %q %q", md.StatusCode, md.Header.Get("Content-Type"), md.Bytes)
	}
	sitemap, err := os.ReadFile(filepath.Join(caddyproc.RepoRoot(), "examples", "site", "sitemap.xml"))
	if err != nil {
		t.Fatal(err)
	}
	locs := regexp.MustCompile(`<loc>http://localhost:8080(/[^<]*)</loc>`).FindAllStringSubmatch(string(sitemap), -1)
	if len(locs) < 10 {
		t.Fatalf("the demo sitemap lists %d pages", len(locs))
	}
	for _, l := range locs {
		page := do(http.MethodGet, l[1], "", "Accept", "text/markdown")
		body := string(page.Bytes)
		if page.StatusCode != 200 || page.Header.Get("Content-Type") != "text/markdown; charset=utf-8" ||
			!strings.HasPrefix(body, "# ") || strings.Contains(body, "<") || strings.Contains(body, "agent.json") {
			t.Errorf("%s as Markdown: %d %q\n%s", l[1], page.StatusCode, page.Header.Get("Content-Type"), body)
		}
	}
	html := do(http.MethodGet, "/blog/caring-for-oak.html", "", "Accept", "text/html", "Accept-Encoding", "identity")
	if !strings.Contains(strings.Join(html.Header.Values("Link"), ", "), `</blog/caring-for-oak.html>; rel="alternate"; type="text/markdown"`) {
		t.Errorf("the HTML page does not advertise its Markdown: %q", html.Header.Values("Link"))
	}
}
