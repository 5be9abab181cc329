package discovery

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

func TestAcceptListsAgentJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/agent+json", true},
		{"Application/Agent+JSON", true},
		{"text/html, application/agent+json", true},
		{"text/html;q=0.9, application/agent+json;q=0.1", true},
		{"application/agent+json;q=1", true},
		{"application/agent+json;q=1.000", true},
		{"application/agent+json ; Q=0.5", true},
		{"application/agent+json;q=0.001", true},
		{`application/agent+json;profile="x,y;z";q=0.2`, true},
		{"  application/agent+json  ", true},
		{"", false},
		{"*/*", false},
		{"application/*", false},
		{"application/json", false},
		{"application/agent+json;q=0", false},
		{"application/agent+json;q=0.0", false},
		{"application/agent+json;q=0.000", false},
		{"application/agent+json;q=1.5", false},
		{"application/agent+json;q=2", false},
		{"application/agent+json;q=abc", false},
		{"application/agent+json;q=0.0000", false},
		{"application/agent+json;q=", false},
		{"application/agent+jsonp", false},
		{"xapplication/agent+json", false},
		{`text/html;x="application/agent+json"`, false},
		{`text/html;x="a,application/agent+json"`, false},
		{"application/agent+json;q=0, text/html", false},
		{"text/html, application/agent+json;q=0, application/agent+json;q=0.3", true},
	}
	for _, tt := range tests {
		if got := acceptListsAgentJSON(tt.accept); got != tt.want {
			t.Errorf("acceptListsAgentJSON(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
	if !wantsManifest(http.Header{"Accept": {"text/html", "application/agent+json"}}) {
		t.Error("a second Accept field must count")
	}
}

func TestAcceptParseAllocs(t *testing.T) {
	accept := "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
	if n := testing.AllocsPerRun(100, func() { acceptListsAgentJSON(accept) }); n != 0 {
		t.Errorf("%v allocations parsing Accept", n)
	}
}

// FuzzAcceptHeader: the parser never panics, and its answer agrees with a
// straightforward reference implementation.
func FuzzAcceptHeader(f *testing.F) {
	for _, s := range []string{"application/agent+json", "text/html;q=0.9, application/agent+json;q=0.1",
		`application/agent+json;profile="x,y;z";q=0.2`, "application/agent+json;q=0", "*/*", `a;b="\"",c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := acceptListsAgentJSON(s)
		if got && !mentionsAgentJSON(s) {
			t.Errorf("the quick filter drops %q, which lists application/agent+json", s)
		}
		if want := referenceAccept(s); got != want {
			t.Errorf("acceptListsAgentJSON(%q) = %v, reference says %v", s, got, want)
		}
	})
}

// referenceAccept is a slow, obviously-correct reading of the same grammar:
// elements split on ',' and parameters on ';', except inside a quoted
// string, and a quoted string only opens a parameter's value (right after
// the parameter's first '=', spaces allowed). A '"' anywhere else, say in
// the media range or after "==", is an ordinary byte of malformed input.
func referenceAccept(s string) bool {
	for _, elem := range splitAccept(s) {
		if !strings.EqualFold(strings.Trim(elem[0], " \t"), agentJSON) {
			continue
		}
		ok := true
		for _, p := range elem[1:] {
			name, value, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.Trim(name, " \t"), "q") {
				nz, valid := parseQValue(paramValue(value))
				ok = nz && valid
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// splitAccept returns each element of s as its media range followed by its
// parameters.
func splitAccept(s string) [][]string {
	var out [][]string
	var elem []string
	inQuote := false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\':
			i++
		case inQuote && c == '"':
			inQuote = false
		case !inQuote && c == '"' && len(elem) > 0 && opensValue(s[start:i]):
			inQuote = true
		case !inQuote && (c == ';' || c == ','):
			elem = append(elem, s[start:i])
			start = i + 1
			if c == ',' {
				out = append(out, elem)
				elem = nil
			}
		}
	}
	return append(out, append(elem, s[start:]))
}

// opensValue reports whether a '"' after the parameter text p starts its
// value: p is a name, one '=', then only spaces.
func opensValue(p string) bool {
	name, rest, found := strings.Cut(p, "=")
	return found && strings.Trim(rest, " \t") == "" && !strings.Contains(name, "=")
}

// paramValue is the value after a parameter's '=': a quoted string's
// content up to its closing quote (escapes left as they are, as the parser
// leaves them), or the bare value with spaces trimmed.
func paramValue(v string) string {
	v = strings.TrimLeft(v, " \t")
	if !strings.HasPrefix(v, `"`) {
		return strings.TrimRight(v, " \t")
	}
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[1:i]
		}
	}
	return v[1:]
}

func TestDedupeLinks(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"ours alone", []string{LinkValue}, []string{LinkValue}},
		{"ours and another", []string{LinkValue, `</a.css>; rel=preload`}, []string{LinkValue, `</a.css>; rel=preload`}},
		{"ours twice", []string{LinkValue, LinkValue}, []string{LinkValue}},
		{"foreign manifest link", []string{LinkValue, `</x.json>; rel="ahp-manifest"`}, []string{LinkValue}},
		{"foreign manifest among others", []string{LinkValue, `</x.json>; rel="ahp-manifest", </b.js>; rel="preload"; title="a,b"`},
			[]string{`</b.js>; rel="preload"; title="a,b"`, LinkValue}},
		{"rel list", []string{`</x.json>; rel="alternate ahp-manifest"`, LinkValue}, []string{LinkValue}},
		{"unquoted rel", []string{`</x.json>; REL=AHP-Manifest`, LinkValue}, []string{LinkValue}},
		{"comma inside URI", []string{`</a,b>; rel=next`, LinkValue}, []string{`</a,b>; rel=next`, LinkValue}},
		{"ours missing (header replaced)", []string{`</a.css>; rel=preload`}, []string{`</a.css>; rel=preload`, LinkValue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Link": append([]string(nil), tt.in...)}
			dedupeLinks(h)
			if !reflect.DeepEqual(h["Link"], tt.want) {
				t.Errorf("got %q, want %q", h["Link"], tt.want)
			}
		})
	}
}

// Serve puts Link and Vary in one array of this response's own, and the
// link writer the content signals in another: an in-place edit (Caddy's
// header handler) or an append (reverse_proxy adding a Link) of one field
// reaches neither the other fields nor the next response.
func TestServeGivesEveryResponseItsOwnValues(t *testing.T) {
	h := testHandler(t, Config{Signals: true})
	serve := func(hdr http.Header) http.Header {
		w := httptest.NewRecorder()
		for k, v := range hdr {
			w.Header()[k] = v
		}
		if lw, _ := h.Serve(w, httptest.NewRequest("GET", "/page", nil), "/page"); lw != nil {
			lw.Header()["Content-Type"] = []string{"text/html"}
			lw.WriteHeader(http.StatusOK)
			lw.Release()
		}
		return w.Header()
	}
	first := serve(nil)
	want := func(hdr http.Header, what string) {
		t.Helper()
		if !reflect.DeepEqual(hdr["Link"], []string{LinkValue}) || !reflect.DeepEqual(hdr["Vary"], []string{"Accept"}) ||
			hdr.Get(manifest.ContentSignalHeader) == "" || hdr.Get(manifest.ContentUsageHeader) == "" {
			t.Errorf("%s: Link %q, Vary %q, %q, %q", what, hdr["Link"], hdr["Vary"], hdr[manifest.ContentSignalHeader], hdr[manifest.ContentUsageHeader])
		}
	}
	want(first, "a page")
	signal, usage := first.Get(manifest.ContentSignalHeader), first.Get(manifest.ContentUsageHeader)
	first.Add("Link", "</x>; rel=preload") // what reverse_proxy does
	first.Add("Vary", "Accept-Encoding")
	first.Add(manifest.ContentSignalHeader, "x")
	if first["Vary"][0] != "Accept" || first.Get(manifest.ContentUsageHeader) != usage || first["Link"][0] != LinkValue {
		t.Errorf("an append to one field changed another: %v", first)
	}
	first["Link"][0], first["Vary"][0], first[manifest.ContentSignalHeader][0], first[manifest.ContentUsageHeader][0] = "edited", "edited", "edited", "edited"
	want(serve(nil), "the response after an edited one")
	if next := serve(nil); next.Get(manifest.ContentSignalHeader) != signal || next.Get(manifest.ContentUsageHeader) != usage {
		t.Errorf("after an edit: %q %q, want %q %q", next[manifest.ContentSignalHeader], next[manifest.ContentUsageHeader], signal, usage)
	}

	upstream := []string{"</u>; rel=preload"}
	h2 := serve(http.Header{"Link": upstream[:1:1]})
	if len(h2["Link"]) != 2 || upstream[0] != "</u>; rel=preload" {
		t.Errorf("an upstream's Link: got %q, the upstream's slice %q", h2["Link"], upstream)
	}
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest("GET", "/page", nil)
	for _, c := range []struct {
		contentType string
		allocs      float64
	}{
		{"text/css", 3},  // the map entries Link and Vary, and their values
		{"text/html", 6}, // and Content-Signal, Content-Usage and theirs
	} {
		if n := testing.AllocsPerRun(100, func() {
			w.reset()
			w.h["Content-Type"] = []string{c.contentType}
			if lw, _ := h.Serve(w, r, "/page"); lw != nil {
				lw.WriteHeader(http.StatusOK)
				lw.Release()
			}
		}); n > c.allocs+1 { // +1: the Content-Type value above
			t.Errorf("Serve on %s: %.0f allocations, want at most %.0f", c.contentType, n, c.allocs+1)
		}
	}
}

// The content signals go on pages (HTML, Markdown, plain text) answered to
// a GET or HEAD, whatever their status, replacing any value the upstream
// sent; stylesheets, scripts, images, API answers and other methods carry
// only the Link (and Vary).
func TestSignalsOnPagesOnly(t *testing.T) {
	h := testHandler(t, Config{Signals: true})
	signal := h.signals.ContentSignal
	for _, c := range []struct {
		method, contentType string
		status              int
		upstream            string
		want                bool
	}{
		{"GET", "text/html; charset=utf-8", 200, "", true},
		{"HEAD", "text/html", 200, "", true},
		{"GET", "TEXT/HTML ;charset=utf-8", 404, "", true},
		{"GET", "application/xhtml+xml", 200, "", true},
		{"GET", "text/markdown; charset=utf-8", 200, "", true},
		{"GET", "text/x-markdown", 200, "", true},
		{"GET", "text/plain; charset=utf-8", 200, "", true},
		{"GET", "text/html", 200, "ai-train=yes", true},
		{"GET", "text/css; charset=utf-8", 200, "", false},
		{"GET", "application/javascript", 200, "", false},
		{"GET", "image/png", 200, "", false},
		{"GET", "application/json", 200, "", false},
		{"GET", "text/htmlx", 200, "", false},
		{"GET", "", 200, "", false},
		{"POST", "text/html", 200, "", false},
	} {
		w := httptest.NewRecorder()
		lw, answered := h.Serve(w, httptest.NewRequest(c.method, "/page", nil), "/page")
		if answered {
			t.Fatalf("%s answered by discovery", c.method)
		}
		if c.contentType != "" {
			lw.Header().Set("Content-Type", c.contentType)
		}
		if c.upstream != "" {
			lw.Header().Add(manifest.ContentSignalHeader, c.upstream)
		}
		lw.WriteHeader(c.status)
		lw.Release()
		got := w.Header()[manifest.ContentSignalHeader]
		usage := w.Header()[manifest.ContentUsageHeader]
		if c.want && (len(got) != 1 || got[0] != signal || len(usage) != 1) {
			t.Errorf("%s %q %d: Content-Signal %q, Content-Usage %q, want %q once each", c.method, c.contentType, c.status, got, usage, signal)
		}
		if !c.want && (len(got) != 0 || len(usage) != 0) {
			t.Errorf("%s %q: Content-Signal %q, Content-Usage %q, want none", c.method, c.contentType, got, usage)
		}
		if len(w.Header()["Link"]) != 1 {
			t.Errorf("%s %q: Link %q", c.method, c.contentType, w.Header()["Link"])
		}
	}

	// Without content signals in the manifest, no page carries them.
	off := testHandler(t, Config{})
	w := httptest.NewRecorder()
	lw, _ := off.Serve(w, httptest.NewRequest("GET", "/", nil), "/")
	lw.Header().Set("Content-Type", "text/html")
	lw.WriteHeader(200)
	lw.Release()
	if v := w.Header()[manifest.ContentSignalHeader]; v != nil {
		t.Errorf("signals off: Content-Signal %q", v)
	}
}

// The local content document is a page too: llms.txt carries the
// signals, a JSON one does not, and none does when no signal is stated.
func TestContentFileSignals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		file    string
		signals bool // the handler states them
		want    bool
	}{{"llms.txt", true, true}, {"llms.md", true, true}, {"content.json", true, false}, {"plain.txt", false, false}} {
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, []byte("# Shop\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h := testHandler(t, Config{Signals: c.signals, ContentFile: path})
		w := httptest.NewRecorder()
		if _, answered := h.Serve(w, httptest.NewRequest("GET", "/llms.txt", nil), "/llms.txt"); !answered {
			t.Fatalf("%s: not answered", c.file)
		}
		got := w.Header().Get(manifest.ContentSignalHeader) != "" && w.Header().Get(manifest.ContentUsageHeader) != ""
		if w.Code != 200 || w.Body.String() != "# Shop\n" || got != c.want {
			t.Errorf("%s: %d %q, signals %v (want %v): %v", c.file, w.Code, w.Body.String(), got, c.want, w.Header())
		}
	}
}

// TestContentFileCheckedAtLoad: a content file that is missing, or is a
// directory, fails the load with a message naming `content`, the path and
// the file (and, for a relative path, where it resolved from), instead of
// a 503 on every fetch; a file that goes away later is still answered 503,
// as it is opened per request.
func TestContentFileCheckedAtLoad(t *testing.T) {
	yes := true
	m, doc, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Endpoints:      &manifest.Endpoints{Content: "/llms.txt"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	missing := filepath.Join(dir, "no-such.txt")
	for _, c := range []struct {
		file string
		want []string
	}{
		{missing, []string{"ahp content /llms.txt " + missing + ": ", "no such file or directory"}},
		{dir, []string{"ahp content /llms.txt " + dir + ": ", "is a directory"}},
		{"./no-such-dir/llms.txt", []string{"ahp content /llms.txt ./no-such-dir/llms.txt: ", "no such file or directory",
			"resolves from the directory Caddy runs in, here " + wd, "absolute path"}},
	} {
		_, err := New(Config{Manifest: m, Document: doc, ContentFile: c.file})
		if err == nil {
			t.Errorf("content %s: loaded; want an error", c.file)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("content %s: %q does not say %q", c.file, err, w)
			}
		}
		if filepath.IsAbs(c.file) && strings.Contains(err.Error(), "resolves from") {
			t.Errorf("content %s: %q: the working directory hint is for relative paths", c.file, err)
		}
	}

	file := filepath.Join(dir, "llms.txt")
	if err := os.WriteFile(file, []byte("# Shop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Manifest: m, Document: doc, ContentFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.Serve(w, httptest.NewRequest("GET", "/llms.txt", nil), "/llms.txt")
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("content file removed after load: %d, want 503", w.Code)
	}
}

func TestETagMatches(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		inm  string
		want bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`*`, true},
		{`"x", "abc"`, true},
		{`"x",W/"abc"`, true},
		{`"x"`, false},
		{`abc`, false},
		{`"ab"`, false},
		{`"abc`, false},
		{``, false},
		{`, ,`, false},
	}
	for _, tt := range tests {
		if got := etagMatches([]string{tt.inm}, etag); got != tt.want {
			t.Errorf("etagMatches(%q) = %v, want %v", tt.inm, got, tt.want)
		}
	}
}

func TestContainsToken(t *testing.T) {
	if !containsToken("Accept-Encoding, accept", "Accept") || containsToken("Accept-Encoding", "Accept") {
		t.Error("containsToken")
	}
	h := http.Header{}
	addVary(h, []string{"Accept"})
	h.Add("Vary", "Accept-Encoding")
	addVary(h, []string{"Accept"})
	if !reflect.DeepEqual(h["Vary"], []string{"Accept", "Accept-Encoding"}) {
		t.Errorf("Vary = %q", h["Vary"])
	}
	h = http.Header{"Vary": {"Accept-Encoding"}}
	addVary(h, []string{"Accept"})
	if !reflect.DeepEqual(h["Vary"], []string{"Accept-Encoding", "Accept"}) {
		t.Errorf("Vary = %q", h["Vary"])
	}
}

func testHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	yes := true
	m, doc, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Endpoints:      &manifest.Endpoints{Content: "/llms.txt"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manifest, cfg.Document = m, doc
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServe(t *testing.T) {
	h := testHandler(t, Config{})
	cases := []struct {
		method, path, original, accept string
		answered                       bool
		status                         int
	}{
		{"GET", "/.well-known/agent.json", "", "", true, 200},
		{"HEAD", "/.well-known/agent.json", "", "", true, 200},
		{"POST", "/.well-known/agent.json", "", "", true, 405},
		{"GET", "/index.html", "/.well-known/agent.json", "", true, 200}, // rewritten by try_files
		{"GET", "/page", "", "application/agent+json", true, 302},
		{"POST", "/page", "", "application/agent+json", false, 0}, // never redirect a POST
		{"GET", "/page", "", "text/html, */*", false, 0},
		{"GET", "/llms.txt", "", "", false, 0}, // the site serves it (no local file)
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		w := httptest.NewRecorder()
		orig := c.original
		if orig == "" {
			orig = c.path
		}
		lw, answered := h.Serve(w, r, orig)
		if answered != c.answered || (answered && w.Code != c.status) {
			t.Errorf("%s %s (original %s, Accept %q): answered %v status %d; want %v %d", c.method, c.path, orig, c.accept, answered, w.Code, c.answered, c.status)
		}
		if lw != nil {
			lw.Release()
		}
		if w.Header().Get("Link") != LinkValue {
			t.Errorf("%s %s: Link %q", c.method, c.path, w.Header().Get("Link"))
		}
	}
}

func TestLinkWriterKeepsInterfacesAndDedupes(t *testing.T) {
	h := testHandler(t, Config{})
	w := httptest.NewRecorder()
	lw, answered := h.Serve(w, httptest.NewRequest("GET", "/x", nil), "/x")
	if answered {
		t.Fatal("answered a page")
	}
	var rw http.ResponseWriter = lw
	_, flusher := rw.(http.Flusher)
	_, readerFrom := rw.(io.ReaderFrom)
	rw.Header().Add("Link", LinkValue) // an upstream that speaks AHP too
	rw.Header().Set("Content-Type", "text/plain")
	if err := http.NewResponseController(rw).Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(rw, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	lw.Release()
	if !flusher || !readerFrom || !w.Flushed || w.Body.String() != "hello" {
		t.Errorf("flusher %v readerFrom %v flushed %v body %q", flusher, readerFrom, w.Flushed, w.Body.String())
	}
	if got := w.Header()["Link"]; len(got) != 1 {
		t.Errorf("Link = %q, want exactly one", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	yes := true
	m, doc, _ := manifest.Build(manifest.Source{Inline: &manifest.Manifest{ContentSignals: &manifest.ContentSignals{AIInput: &yes}}})
	if _, err := New(Config{Manifest: m, Document: doc, Mode: "sideways"}); err == nil {
		t.Error("bad discovery accepted")
	}
	if _, err := New(Config{Manifest: m, Document: doc, ContentFile: "x.txt"}); err == nil {
		t.Error("content file without a content path accepted")
	}
}

// TestVaryAcceptSurvivesTheSitesOwnVary: a page's answer depends on Accept
// (agent+json gets the manifest), so it keeps Vary: Accept even when the
// site's handler sets its own Vary (Caddy's `header Vary Cookie`, an app
// calling Header().Set); the site's value stays, and is not edited in
// place.
func TestVaryAcceptSurvivesTheSitesOwnVary(t *testing.T) {
	h := testHandler(t, Config{})
	siteVary := []string{"Cookie"}
	for _, method := range []string{"GET", "HEAD"} {
		w := httptest.NewRecorder()
		lw, answered := h.Serve(w, httptest.NewRequest(method, "/page", nil), "/page")
		if answered {
			t.Fatal("answered a page")
		}
		lw.Header()["Vary"] = siteVary
		lw.Header().Set("Content-Type", "text/html")
		lw.Header().Set("Cache-Control", "public, max-age=600")
		lw.WriteHeader(200)
		lw.Release()
		if got := strings.Join(w.Header()["Vary"], ", "); got != "Cookie, Accept" {
			t.Errorf("%s: Vary = %q on a cacheable page whose Accept: application/agent+json variant is the manifest", method, got)
		}
	}
	if siteVary[0] != "Cookie" || cap(siteVary) != 1 {
		t.Errorf("the site's own Vary slice was edited: %q", siteVary)
	}
	w := httptest.NewRecorder()
	lw, _ := h.Serve(w, httptest.NewRequest("GET", "/page", nil), "/page")
	lw.Header().Set("Vary", "*")
	lw.WriteHeader(200)
	lw.Release()
	if got := w.Header()["Vary"]; len(got) != 1 || got[0] != "*" {
		t.Errorf("Vary: * became %q", got)
	}
}
