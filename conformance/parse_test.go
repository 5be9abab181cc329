package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// TestPoW: the checker's use of the proof of work agrees with the vectors
// of docs/agent-handoff.md (handoff's own tests check the rest).
func TestPoW(t *testing.T) {
	const challenge = "4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f"
	if n, err := handoff.Solve(context.Background(), challenge, 8); err != nil || n != "325" {
		t.Errorf("Solve at 8 bits = %q, %v; the vector is 325", n, err)
	}
	for _, d := range []int{1, 8, 12} {
		if n := unsolvedNonce(challenge, d); handoff.Verify(challenge, n, d) {
			t.Errorf("unsolvedNonce(%d) = %s solves it", d, n)
		}
	}
	// 237 has exactly 7 leading zero bits: the smallest nonce that fails 8
	// bits is not the smallest that fails 7.
	if unsolvedNonce(challenge, 8) != "0" {
		t.Errorf("unsolvedNonce(8) = %s", unsolvedNonce(challenge, 8))
	}
}

func TestParseLinks(t *testing.T) {
	cases := []struct {
		header string
		want   []string // target|rel|type
	}{
		{`</.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"`, []string{"/.well-known/agent.json|ahp-manifest|application/agent+json"}},
		{`<https://a/x>; rel=preload, </.well-known/agent.json>;rel="ahp-manifest"`, []string{"https://a/x|preload|", "/.well-known/agent.json|ahp-manifest|"}},
		{`</a,b>; rel="next last"; title="a, \"b\"", <c>; rel=x`, []string{"/a,b|next last|", "c|x|"}},
		{`<x>; REL=Up; rel=down`, []string{"x|Up|"}},
		{`garbage, <y>; rel=z`, []string{"y|z|"}},
		{`<unterminated; rel=x`, nil},
		{``, nil},
	}
	for _, c := range cases {
		var got []string
		for _, l := range parseLinkValue(c.header) {
			got = append(got, l.Target+"|"+l.Params["rel"]+"|"+l.Params["type"])
		}
		if strings.Join(got, " ; ") != strings.Join(c.want, " ; ") {
			t.Errorf("%q: got %q, want %q", c.header, got, c.want)
		}
	}
	base, _ := url.Parse("https://example.com/page")
	manifest, _ := url.Parse("https://example.com/.well-known/agent.json")
	h := http.Header{}
	h.Add("Link", `<https://cdn.example.com/x.css>; rel=preload`)
	h.Add("Link", `<https://example.com/.well-known/agent.json>; rel="alternate ahp-manifest"`)
	if ok, why := manifestLink(h, base, manifest); !ok {
		t.Errorf("absolute same-site link with several rels refused: %s", why)
	}
	h.Set("Link", `</.well-known/agent.json>; rel="ahp-manifest"; type="text/html"`)
	if ok, _ := manifestLink(h, base, manifest); ok {
		t.Error("a wrong type accepted")
	}
	h.Set("Link", `</agent.json>; rel="ahp-manifest"`)
	if ok, why := manifestLink(h, base, manifest); ok || !strings.Contains(why, "points at") {
		t.Errorf("a wrong target accepted (%s)", why)
	}
}

func TestParseRateHeaders(t *testing.T) {
	date := time.Unix(1_800_000_000, 0)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	good := hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "12", "X-RateLimit-Reset", "1800000040", "X-RateLimit-Window", "60")
	if r := parseRateHeaders(good, date); !r.complete() || r.limit != 30 || r.remaining != 12 || r.window != 60 {
		t.Errorf("good headers: %+v", r)
	}
	if r := parseRateHeaders(http.Header{}, date); r.any() {
		t.Error("no headers seen as some")
	}
	cases := map[string]http.Header{
		"missing":   hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "12", "X-RateLimit-Reset", "1800000040"),
		"exceeds":   hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "31", "X-RateLimit-Reset", "1800000040", "X-RateLimit-Window", "60"),
		"negative":  hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "1800000040", "X-RateLimit-Window", "60"),
		"delta":     hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "40", "X-RateLimit-Window", "60"),
		"past":      hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1799999000", "X-RateLimit-Window", "60"),
		"far":       hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1800003600", "X-RateLimit-Window", "60"),
		"zero-win":  hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1800000000", "X-RateLimit-Window", "0"),
		"not-a-num": hdr("X-RateLimit-Limit", "thirty", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1800000040", "X-RateLimit-Window", "60"),
	}
	for name, h := range cases {
		if r := parseRateHeaders(h, date); r.complete() || len(r.problems) == 0 {
			t.Errorf("%s: no problem found in %v", name, h)
		}
	}
}

func TestScanNotice(t *testing.T) {
	const n = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none"><p>x</p></section>`
	cases := []struct {
		name                  string
		page                  string
		count, outside        int
		hidden, inTemplateOne bool
	}{
		{"plain", "<html><body><p>a</p>" + n + "</body></html>", 1, 0, true, false},
		{"no body tag", "<p>a</p>" + n, 1, 0, true, false},
		{"in head", "<html><head>" + n + "</head><body></body></html>", 1, 1, true, false},
		{"after body", "<html><body></body></html>" + n, 1, 1, true, false},
		{"twice", "<body>" + n + n + "</body>", 2, 0, true, false},
		{"visible", `<body><section class="ahp-notice">x</section></body>`, 1, 0, false, false},
		{"hidden parent", `<body><div hidden><section class="x ahp-notice">x</section></div></body>`, 1, 0, true, false},
		{"hidden class", `<body><aside aria-label="ai agent notice" class="sr-only">x</aside></body>`, 1, 0, true, false},
		{"in a comment", "<body><!-- " + n + " --></body>", 0, 0, false, false},
		{"in a script", "<body><script>var s = '" + n + "';</script></body>", 0, 0, false, false},
		{"in a template", "<body><template>" + n + "</template></body>", 0, 0, false, true},
		{"fake body in a script", "<html><head><script>'<body>'</script></head><body>" + n + "</body></html>", 1, 0, true, false},
		{"visibility", `<body><div style="position:absolute; VISIBILITY: hidden !important"><div class="ahp-notice">x</div></div></body>`, 1, 0, true, false},
		// Off-screen by any large negative offset, not only -9999px.
		{"off-screen", `<body><section class="ahp-notice" style="position:absolute;left:-10000px">x</section></body>`, 1, 0, true, false},
		{"off-screen em", `<body><section class="ahp-notice" style="position:absolute;top:-200em">x</section></body>`, 1, 0, true, false},
		{"nudged", `<body><section class="ahp-notice" style="position:relative;left:-12px">x</section></body>`, 1, 0, false, false},
	}
	for _, c := range cases {
		s := scanNotice([]byte(c.page))
		if s.Count != c.count || s.OutsideBody != c.outside || (c.count > 0 && s.Hidden != c.hidden) || (s.InTemplate > 0) != c.inTemplateOne {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
}

// TestNoticeText: the first notice's text, spaces collapsed, without the
// page's text around it.
func TestNoticeText(t *testing.T) {
	for page, want := range map[string]string{
		`<body><p>before</p><section class="ahp-notice" style="display:none"></section><p>after</p></body>`:                          "",
		`<body><section class="ahp-notice" hidden><p>AI agents:</p>  <code>GET /.well-known/agent.json</code></section>after</body>`: "AI agents: GET /.well-known/agent.json",
		`<body><div aria-label="AI Agent Notice" hidden>one <b>two</b> <br>three</div><div>four</div></body>`:                        "one two three",
		`<body><section class="ahp-notice" hidden>first</section><section class="ahp-notice" hidden>second</section></body>`:         "first",
		`<body><section class="ahp-notice" hidden><script>var x = "/.well-known/agent.json"</script></section></body>`:               `var x = "/.well-known/agent.json"`,
	} {
		if got := scanNotice([]byte(page)).Text; got != want {
			t.Errorf("%s: text %q, want %q", page, got, want)
		}
	}
}

// TestClientPoliteness: the User-Agent, same-site redirects only, GET
// only, the budget and the pacing.
func TestClientPoliteness(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the checker followed a redirect to another site: %s", r.URL)
	}))
	defer other.Close()
	var uas []string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uas = append(uas, r.UserAgent())
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/there", http.StatusMovedPermanently)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer site.Close()
	u, _ := url.Parse(site.URL)
	opts := Options{URL: site.URL, Budget: 12, Rate: 50, Version: "9.9"}
	if _, _, err := opts.complete(); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(u, opts)
	at := func(p string) *url.URL { return u.ResolveReference(&url.URL{Path: p}) }
	ctx := context.Background()

	if ex := c.do(ctx, request{Method: http.MethodGet, URL: at("/away"), Follow: true}); ex.Status != http.StatusFound || len(ex.Hops) != 1 {
		t.Errorf("off-site redirect: %d after %d hops", ex.Status, len(ex.Hops))
	}
	if ex := c.do(ctx, request{Method: http.MethodGet, URL: at("/here"), Follow: true}); ex.Status != http.StatusTeapot || len(ex.Hops) != 2 {
		t.Errorf("same-site redirect: %d after %d hops", ex.Status, len(ex.Hops))
	}
	if ex := c.do(ctx, request{Method: http.MethodPost, URL: at("/here"), Follow: true}); ex.Status != http.StatusMovedPermanently {
		t.Errorf("a POST's redirect was followed: %d", ex.Status)
	}
	if ex := c.do(ctx, request{Method: http.MethodGet, URL: at("/loop"), Follow: true}); len(ex.Hops) != maxRedirects+1 {
		t.Errorf("a redirect loop took %d hops", len(ex.Hops))
	}
	if ex := c.do(ctx, request{Method: http.MethodGet, URL: mustURL(other.URL)}); ex.Err == nil {
		t.Error("a request to another host was sent")
	}
	start := time.Now()
	for c.remaining() > 0 {
		c.do(ctx, request{Method: http.MethodGet, URL: at("/")})
	}
	if ex := c.do(ctx, request{Method: http.MethodGet, URL: at("/")}); ex.Err != errBudget {
		t.Errorf("past the budget: %v", ex.Err)
	}
	if len(uas) != 12 {
		t.Errorf("%d requests reached the site with a budget of 12", len(uas))
	}
	// The last few requests were paced at 50/s: at least 20ms apart.
	if n := 12 - 10; time.Since(start) < time.Duration(n-1)*20*time.Millisecond {
		t.Errorf("requests not paced: %s", time.Since(start))
	}
	for _, ua := range uas {
		if ua != "caddy-ahp-check/9.9 (+https://github.com/caddy-ahp/caddy-ahp)" {
			t.Errorf("User-Agent %q", ua)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestFindRPCResponse(t *testing.T) {
	sse := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n: comment\ndata: {\"jsonrpc\":\"2.0\",\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n"
	if m, err := findRPCResponse("text/event-stream", []byte(sse), 7); err != nil || m["id"] != float64(7) {
		t.Errorf("SSE: %v %v", m, err)
	}
	if _, err := findRPCResponse("application/json", []byte(`[{"jsonrpc":"2.0","id":1,"result":{}}]`), 1); err != nil {
		t.Errorf("batch: %v", err)
	}
	if _, err := findRPCResponse("application/json", []byte(`{"jsonrpc":"2.0","id":2,"result":{}}`), 1); err == nil {
		t.Error("a response with another id accepted")
	}
	if _, err := findRPCResponse("text/html", []byte(`{}`), 1); err == nil {
		t.Error("text/html accepted")
	}
}

func TestSiteManifestRules(t *testing.T) {
	m, err := parseSiteManifest([]byte(`{"ahp":"0.1","modes":["MODE1","MODE2","MODE3"],"content_signals":{"ai_input":true},
		"capabilities":[{"name":"a","mode":"MODE3","description":"x"},{"name":"a","mode":"MODE2","description":"y","action_type":"async"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(m.rules(), "\n")
	for _, want := range []string{"must declare action_type", "must declare input_schema", "must declare output_schema", "duplicate capability name", "must require authentication", "async.supported"} {
		if !strings.Contains(got, want) {
			t.Errorf("rules lack %q:\n%s", want, got)
		}
	}
	if m.conversePath() != "/agent/converse" {
		t.Errorf("default converse path %q", m.conversePath())
	}
	for _, bad := range []string{`[]`, `"x"`, `{"a":1} {}`, `{`} {
		if _, err := parseSiteManifest([]byte(bad)); err == nil {
			t.Errorf("%s parsed as a manifest", bad)
		}
	}
	a2a, _ := parseSiteManifest([]byte(`{"name":"agent","skills":[],"capabilities":{"streaming":true}}`))
	if !a2a.looksLikeA2A() {
		t.Error("an A2A card not recognised")
	}
}

func TestAnswerDifference(t *testing.T) {
	ex := func(status int, ct, body string) *exchange {
		return &exchange{Status: status, Header: http.Header{"Content-Type": {ct}}, Body: []byte(body)}
	}
	a := ex(403, "application/json", `{"error":"refused","request_id":"1"}`)
	if d := answerDifference(a, ex(403, "application/json; charset=utf-8", `{"request_id":"2","error":"refused"}`)); d != "" {
		t.Errorf("same shape told apart: %s", d)
	}
	for _, b := range []*exchange{
		ex(404, "application/json", `{"error":"refused","request_id":"1"}`),
		ex(403, "text/plain", `{"error":"refused","request_id":"1"}`),
		ex(403, "application/json", `{"error":"used","request_id":"1"}`),
		ex(403, "application/json", `{"error":"refused"}`),
	} {
		if answerDifference(a, b) == "" {
			t.Errorf("%d %s %s not told apart", b.Status, b.Header.Get("Content-Type"), b.Body)
		}
	}
}

// TestClientTimeoutAndCap: a site that never answers costs one --timeout
// and is reported as such; an endless answer is read only up to maxBody.
func TestClientTimeoutAndCap(t *testing.T) {
	release := make(chan struct{})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/huge":
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for i := 0; i < 2*maxBody/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}))
	defer site.Close()
	defer close(release)
	u, _ := url.Parse(site.URL)
	opts := Options{URL: site.URL, Timeout: 300 * time.Millisecond, Version: "9.9"}
	if _, _, err := opts.complete(); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(u, opts)
	ctx := context.Background()
	start := time.Now()
	ex := c.do(ctx, request{Method: http.MethodGet, URL: u.ResolveReference(&url.URL{Path: "/hang"})})
	if ex.Err == nil || !strings.Contains(ex.failed(), "no answer within 300ms (raise --timeout") {
		t.Errorf("a hanging site: %v, %q", ex.Err, ex.failed())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 300ms timeout took %s", d)
	}
	// The cap, with a timeout a loaded machine cannot outlast: 4 MiB under
	// -race within 300 ms is the machine's speed, not what is tested here.
	ex = c.do(ctx, request{Method: http.MethodGet, URL: u.ResolveReference(&url.URL{Path: "/huge"}), Timeout: 30 * time.Second})
	if ex.Err != nil || len(ex.Body) != maxBody || !ex.Truncated {
		t.Errorf("an endless answer: %v, %d bytes read (truncated %v), want %d, truncated", ex.Err, len(ex.Body), ex.Truncated, maxBody)
	}
}

// TestAnswersNotHeld: the answers kept for the rate limit and error
// schema checks do not hold their bodies: 12 MODE2 capabilities answering
// 4 MiB each must not make the run hold 50 MiB.
func TestAnswersNotHeld(t *testing.T) {
	var caps []string
	for i := 0; i < 12; i++ {
		caps = append(caps, `{"name":"c`+strconv.Itoa(i)+`","description":"d","mode":"MODE2"}`)
	}
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE2"],"content_signals":{"ai_input":true},"capabilities":[` + strings.Join(caps, ",") + `]}`
	big := bytes.Repeat([]byte("x"), maxBody)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
		case "/agent/converse":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-RateLimit-Limit", "100")
			status := http.StatusOK
			if bytes.Contains(body, []byte(unknownCapability)) || !bytes.Contains(body, []byte(`"query"`)) {
				status = http.StatusBadRequest // the probes' error answers, 4 MiB too
			}
			w.WriteHeader(status)
			w.Write(big)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	opts := Options{URL: srv.URL, Rate: 1000, Timeout: 10 * time.Second}
	site, _, err := opts.complete()
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := newSelection(nil, nil)
	c, _ := newClient(site, opts)
	r := &runner{opts: opts, sel: sel, site: site, c: c}
	r.manifestURL = site.ResolveReference(&url.URL{Path: "/.well-known/agent.json"})
	ctx := context.Background()
	r.discovery(ctx)
	r.converse(ctx)
	held := 0
	for _, a := range r.ahpAnswers {
		held += len(a.ex.Body)
	}
	for _, e := range r.errorAnswers {
		held += len(e.ex.Body)
	}
	for _, ex := range []*exchange{r.probe, r.manifestEx, r.home, r.notFound} {
		if ex != nil {
			held += len(ex.Body)
		}
	}
	if len(r.ahpAnswers) < 12 || len(r.errorAnswers) == 0 {
		t.Fatalf("%d answers, %d error answers: the test does not exercise them", len(r.ahpAnswers), len(r.errorAnswers))
	}
	if held > 2*maxBody {
		t.Errorf("the run holds %d MiB of answer bodies after %d answers", held>>20, len(r.ahpAnswers))
	}
}
