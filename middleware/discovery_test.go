package middleware

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
// quoted strings only occur in parameter values (after "=").
func referenceAccept(s string) bool {
	for _, elem := range splitOutsideQuotes(s, ',') {
		params := splitOutsideQuotes(elem, ';')
		if !strings.EqualFold(strings.Trim(params[0], " \t"), agentJSON) {
			continue
		}
		ok := true
		for _, p := range params[1:] {
			name, value, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.Trim(name, " \t"), "q") {
				value = strings.Trim(value, " \t")
				if strings.HasPrefix(value, `"`) {
					value = strings.TrimSuffix(strings.TrimPrefix(value, `"`), `"`)
				}
				nz, valid := parseQValue(value)
				ok = nz && valid
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case inQuote && s[i] == '\\':
			i++
		case inQuote && s[i] == '"':
			inQuote = false
		case !inQuote && s[i] == '"' && strings.HasSuffix(strings.TrimRight(s[:i], " \t"), "="):
			inQuote = true
		case !inQuote && s[i] == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start <= len(s) {
		out = append(out, s[start:])
	}
	return out
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

func TestAddLinkNeverWritesIntoSharedSlices(t *testing.T) {
	h := http.Header{}
	addLink(h)
	h.Add("Link", "</x>; rel=preload") // what reverse_proxy does
	if len(linkHeader) != 1 || linkHeader[0] != LinkValue {
		t.Fatalf("shared slice modified: %q", linkHeader)
	}
	other := http.Header{}
	addLink(other)
	if !reflect.DeepEqual(other["Link"], []string{LinkValue}) {
		t.Errorf("second response got %q", other["Link"])
	}
	upstream := []string{"</u>; rel=preload"}
	h2 := http.Header{"Link": upstream[:1:1]}
	addLink(h2)
	if len(h2["Link"]) != 2 || upstream[0] != "</u>; rel=preload" {
		t.Errorf("got %q", h2["Link"])
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
	addVary(h, "Accept")
	h.Add("Vary", "Accept-Encoding")
	addVary(h, "Accept")
	if !reflect.DeepEqual(h["Vary"], []string{"Accept", "Accept-Encoding"}) || !reflect.DeepEqual(varyAccept, []string{"Accept"}) {
		t.Errorf("Vary = %q, shared %q", h["Vary"], varyAccept)
	}
}

func testHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	yes := true
	m, doc, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
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

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func TestErrorFromNextKeepsLink(t *testing.T) {
	h := testHandler(t, Config{})
	w := httptest.NewRecorder()
	boom := errors.New("boom")
	err := h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil), nextFunc(func(http.ResponseWriter, *http.Request) error { return boom }))
	if err != boom {
		t.Fatalf("error %v not passed on", err)
	}
	if got := w.Header().Get("Link"); got != LinkValue {
		t.Errorf("Link = %q", got)
	}
}

func TestWrapperKeepsInterfaces(t *testing.T) {
	h := testHandler(t, Config{})
	w := httptest.NewRecorder()
	var sawFlusher, sawReaderFrom bool
	err := h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil), nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, sawFlusher = w.(http.Flusher)
		_, sawReaderFrom = w.(io.ReaderFrom)
		w.Header().Set("Content-Type", "text/plain")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		_, err := io.Copy(w, strings.NewReader("hello"))
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !sawFlusher || !sawReaderFrom || !w.Flushed || w.Body.String() != "hello" {
		t.Errorf("flusher %v readerFrom %v flushed %v body %q", sawFlusher, sawReaderFrom, w.Flushed, w.Body.String())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	yes := true
	m, doc, _ := manifest.Build(manifest.Source{Inline: &manifest.Manifest{ContentSignals: &manifest.ContentSignals{AIInput: &yes}}})
	if _, err := New(Config{Manifest: m, Document: doc, Discovery: "sideways"}); err == nil {
		t.Error("bad discovery accepted")
	}
	if _, err := New(Config{Manifest: m, Document: doc, ContentFile: "x.txt"}); err == nil {
		t.Error("content file without a content path accepted")
	}
}
