package pathguard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// requestURL parses a request target the way net/http does.
func requestURL(t testing.TB, target string) *url.URL {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("%q: %v", target, err)
	}
	return u
}

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, target string
		want            Match
	}{
		// The table for the converse endpoint.
		{"/agent/converse", "/agent/converse", Exact},
		{"/agent/converse", "/agent/converse/", Variant},
		{"/agent/converse", "/AGENT/CONVERSE", Variant},
		{"/agent/converse", "/Agent/converse", Variant},
		{"/agent/converse", "/agent//converse", Variant},
		{"/agent/converse", "//agent/converse", Variant},
		{"/agent/converse", "/agent/./converse", Variant},
		{"/agent/converse", "/agent/x/../converse", Variant},
		{"/agent/converse", "/agent/converse%2F", Variant},
		{"/agent/converse", "/agent%2Fconverse", Variant},
		{"/agent/converse", "/agent/converse;x", Variant},
		{"/agent/converse", "/agent;jsessionid=1/converse", Variant},
		{"/agent/converse", "/agent/converse%00", Variant},
		{"/agent/converse", "/agent/converse%0a", Variant},
		{"/agent/converse", "/agent/%63onverse", Variant},
		{"/agent/converse", "/agent/%2563onverse", Variant}, // decoded twice
		{"/agent/converse", "/agent\\converse", Variant},
		{"/agent/converse", "/agent%5cconverse", Variant},
		{"/agent/converse", "/agent/converse.", Variant},
		{"/agent/converse", "/agent/converse%20", Variant},
		{"/agent/converse", "/agent/converse.json", Variant},
		{"/agent/converse", "/agent/converse?x=1", Exact},
		// Unicode case folding: İ (U+0130) lowers to 'i', the Kelvin sign
		// (U+212A) to 'k', as in Caddy's own path matcher.
		{"/agent/concierge", "/agent/conc%C4%B0erge", Variant},
		{"/v1/claims/verify", "/v1/cla%C4%B0ms/verify", Variant},
		{"/handshake/session", "/handsha%E2%84%AAe/session", Variant},
		{"/agent/ask", "/agent/as%E2%84%AA", Variant},
		// Other paths pass.
		{"/agent/converse", "/agent/conversex", None},
		{"/agent/converse", "/agent/converse/extra", None},
		{"/agent/converse", "/agent", None},
		{"/agent/converse", "/converse", None},
		{"/agent/converse", "/other/agent/converse", None},
		{"/agent/converse", "/about.html", None},
		{"/agent/converse", "/", None},
		// The async status path.
		{"/agent/converse/status/*", "/agent/converse/status/abc", Exact},
		{"/agent/converse/status/*", "/agent/converse/status/abc/", Exact},
		{"/agent/converse/status/*", "/agent/converse/status/", None},
		{"/agent/converse/status/*", "/AGENT/converse/status/", None},
		{"/agent/converse/status/*", "/agent/converse/status/ABC", Exact},
		{"/agent/converse/status/*", "/agent/converse/STATUS/abc", Variant},
		{"/agent/converse/status/*", "/agent/converse//status/abc", Variant},
		{"/agent/converse/status/*", "/agent/converse/status//abc", Variant},
		{"/agent/converse/status/*", "/agent/converse/status/abc;x", Variant},
		{"/agent/converse/status/*", "/agent/converse/status/a%2Fb", Variant},
		{"/agent/converse/status/*", "/agent/converse/status/../status/abc", Variant},
		{"/agent/converse/status/*", "/agent/converse/status/../../admin", None},
		{"/agent/converse/status/*", "/agent/converse/status", None},
		{"/agent/converse/status/*", "/agent/converse/statusx/abc", None},
		// Wildcard segments.
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/sb_123/claim", Exact},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/SB_123/claim", Exact},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/sb_123/claim/", Variant},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/sb_123/CLAIM", Variant},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/sb%5F123/claim", Variant},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes//claim", None},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/./claim", None},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/a/b/claim", None},
		{"/v1/sandboxes/*/claim", "/v1/sandboxes/claim", None},
		{"/exchange/*", "/exchange/code123", Exact},
		{"/exchange/*", "/exchange/a/b", Exact},
		{"/exchange/*", "/Exchange/code123", Variant},
		{"/exchange/*", "/exchange/code123;x", Variant},
		{"/exchange/*", "/exchange", None},
	}
	for _, c := range cases {
		p := MustCompile(c.pattern)
		if got := p.Match(requestURL(t, c.target)); got != c.want {
			t.Errorf("%s vs %q: got %s, want %s", c.pattern, c.target, got, c.want)
		}
	}
}

// TestMatchRequests goes through net/http's own parsing of request lines,
// the way a server sees them.
func TestMatchRequests(t *testing.T) {
	p := MustCompile("/agent/converse")
	for _, target := range []string{"/agent/converse%2F", "/agent/converse%00", "/AGENT/CONVERSE", "/agent//converse"} {
		r, err := http.ReadRequest(bufioReader("POST " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		if got := p.Match(r.URL); got != Variant {
			t.Errorf("%q: got %s, want variant", target, got)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, bad := range []string{"", "agent", "/", "/*", "/a//b", "/a/./b", "/a/../b", "/a;b", "/a%2Fb", "/a b", "/a*b", "/*/*"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("Compile(%q): want an error", bad)
		}
	}
}

func TestMatchAllocatesNothingOnOrdinaryPaths(t *testing.T) {
	p := MustCompile("/agent/converse")
	u := requestURL(t, "/blog/2024/some-long-article-title.html")
	exact := requestURL(t, "/agent/converse")
	if n := testing.AllocsPerRun(100, func() { p.Match(u); p.Match(exact) }); n != 0 {
		t.Errorf("Match allocates %.0f times per call", n)
	}
}

func BenchmarkMatchOrdinary(b *testing.B) {
	p := MustCompile("/agent/converse")
	u, _ := url.ParseRequestURI("/blog/2024/some-long-article-title.html")
	for b.Loop() {
		p.Match(u)
	}
}

func BenchmarkMatchExact(b *testing.B) {
	p := MustCompile("/agent/converse")
	u, _ := url.ParseRequestURI("/agent/converse")
	for b.Loop() {
		p.Match(u)
	}
}

// FuzzMatch holds Match to its definition over any request target: a path
// whose cleaned form differs from the pattern can never be Exact, and
// Exact paths are their own cleaned form.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/agent/converse", "/agent/converse/", "/AGENT/converse", "/agent//converse", "/agent/converse%2F", "/agent/converse;x", "/agent/%2563onverse", "/agent/converse/status/x"} {
		f.Add(s)
	}
	patterns := []*Pattern{MustCompile("/agent/converse"), MustCompile("/agent/converse/status/*"), MustCompile("/v1/sandboxes/*/claim")}
	screen := NewScreen(patterns...)
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		for _, p := range patterns {
			m := p.Match(u)
			if m != None && !screen.MayMatch(u.Path) {
				t.Fatalf("%s vs %q: %s, but the screen let it pass as no pattern's", p, target, m)
			}
			cleaned := p.matchClean(clean(u.Path))
			if m == Exact && !cleaned {
				t.Fatalf("%s vs %q: exact, but the cleaned path does not match", p, target)
			}
			if m == None && cleaned {
				t.Fatalf("%s vs %q: none, but the cleaned path matches", p, target)
			}
			if m == Exact && (strings.Contains(u.Path, "//") || strings.ContainsAny(u.Path, ";\\\x00") || u.RawPath != "") {
				t.Fatalf("%s vs %q: exact, but the path is not plain", p, target)
			}
		}
	})
}

// The screen shares a needle between patterns that have the same one, and
// passes a path to full matching when any needle is in it, in any case, or
// when cleaning could make one appear.
func TestScreen(t *testing.T) {
	s := NewScreen(MustCompile("/agent/converse"), MustCompile("/agent/converse/status/*"), MustCompile("/v1/sandboxes/*/claim"))
	if len(s.needles) != 2 {
		t.Fatalf("needles %q, want converse and sandboxes once each", s.needles)
	}
	for path, want := range map[string]bool{
		"/style.css":            false,
		"/agent/":               false,
		"/blog/conversation":    false,
		"/agent/converse":       true,
		"/x/CONVERSE.json":      true,
		"/v1/Sandboxes/a/claim": true,
		"/agent/%63onverse":     true, // decoding spells it
		"/agent/conver\u017fe":  true, // ſ folds to s
		"/caf\u00e9":            true, // any non-ASCII byte: cleaned in full
	} {
		if got := s.MayMatch(path); got != want {
			t.Errorf("MayMatch(%q) = %v, want %v", path, got, want)
		}
	}
}
