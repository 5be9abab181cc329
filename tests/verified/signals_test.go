package verified_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// signalSet is one combination of content_signals; nil is "left out".
type signalSet struct {
	aiTrain, search, attribution *bool
	aiInput                      bool // required by the schema
}

func (s signalSet) caddyfile() string {
	var b strings.Builder
	b.WriteString("content_signals {\n")
	line := func(name string, v *bool) {
		if v != nil {
			fmt.Fprintf(&b, "\t\t\t%s %v\n", name, *v)
		}
	}
	line("ai_train", s.aiTrain)
	line("ai_input", &s.aiInput)
	line("search", s.search)
	line("attribution_required", s.attribution)
	b.WriteString("\t\t}")
	return b.String()
}

// The header values, written out from the mapping documented in
// docs/verified-agents.md, independently of package manifest.
func (s signalSet) contentSignal() string {
	var parts []string
	yn := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	if s.aiTrain != nil {
		parts = append(parts, "ai-train="+yn(*s.aiTrain))
	}
	if s.search != nil {
		parts = append(parts, "search="+yn(*s.search))
	}
	parts = append(parts, "ai-input="+yn(s.aiInput))
	return strings.Join(parts, ", ")
}

func (s signalSet) contentUsage() string {
	var parts []string
	yn := func(v bool) string {
		if v {
			return "y"
		}
		return "n"
	}
	if s.aiTrain != nil {
		parts = append(parts, "train-ai="+yn(*s.aiTrain))
	}
	parts = append(parts, "ai-use="+yn(s.aiInput))
	if s.search != nil {
		parts = append(parts, "search="+yn(*s.search))
	}
	return strings.Join(parts, ", ")
}

// allSignalSets is every combination: ai_train and search left out, true
// or false; ai_input true or false; attribution_required left out or true.
func allSignalSets() []signalSet {
	t, f := true, false
	tri := []*bool{nil, &t, &f}
	var out []signalSet
	for _, train := range tri {
		for _, search := range tri {
			for _, input := range []bool{true, false} {
				for _, attr := range []*bool{nil, &t} {
					out = append(out, signalSet{aiTrain: train, search: search, aiInput: input, attribution: attr})
				}
			}
		}
	}
	return out
}

// signalsWorld is one Caddy with a site per combination, s<i>.test, in
// front of one upstream.
func signalsWorld(t *testing.T, extra string) (*edge, []signalSet) {
	t.Helper()
	up := newUpstream(t)
	sets := allSignalSets()
	var cfg strings.Builder
	for i, s := range sets {
		fmt.Fprintf(&cfg, "http://s%d.test:{{PORT}} {\n\tahp {\n\t\tname \"S%d\"\n\t\t%s\n\t\t%s\n\t}\n\treverse_proxy %s\n}\n\n",
			i, i, s.caddyfile(), extra, up.Listener.Addr())
	}
	return &edge{caddyproc.Start(t, cfg.String())}, sets
}

// Every combination of content signals reads the same in the manifest,
// the Content-Signal and Content-Usage headers of pages and of their
// Markdown answers, and the lines appended to the site's robots.txt.
func TestSignalsAgree(t *testing.T) {
	e, sets := signalsWorld(t, "robots extend\n\t\tmarkdown")
	for i, s := range sets {
		host := fmt.Sprintf("s%d.test", i)
		var m struct {
			ContentSignals map[string]bool `json:"content_signals"`
		}
		r := e.call("GET", host, "/.well-known/agent.json", "")
		if err := json.Unmarshal(r.Bytes, &m); err != nil {
			t.Fatalf("%s manifest: %v", host, err)
		}
		want := map[string]bool{"ai_input": s.aiInput}
		for name, v := range map[string]*bool{"ai_train": s.aiTrain, "search": s.search, "attribution_required": s.attribution} {
			if v != nil {
				want[name] = *v
			}
		}
		if fmt.Sprint(m.ContentSignals) != fmt.Sprint(want) {
			t.Errorf("%s: manifest content_signals %v, want %v", host, m.ContentSignals, want)
		}
		for _, method := range []string{"GET", "HEAD"} {
			r := e.call(method, host, "/", "")
			if got := r.Header.Values("Content-Signal"); len(got) != 1 || got[0] != s.contentSignal() {
				t.Errorf("%s %s %s: Content-Signal %q, want %q", method, host, s.caddyfile(), got, s.contentSignal())
			}
			if got := r.Header.Values("Content-Usage"); len(got) != 1 || got[0] != s.contentUsage() {
				t.Errorf("%s %s %s: Content-Usage %q, want %q", method, host, s.caddyfile(), got, s.contentUsage())
			}
			// The header reads back as the manifest says.
			if got := readContentSignal(r.Header.Get("Content-Signal")); fmt.Sprint(got) != fmt.Sprint(without(want, "attribution_required")) {
				t.Errorf("%s: Content-Signal reads %v, the manifest says %v", host, got, want)
			}
		}
		// The page as Markdown carries the same two headers, once each.
		md := e.call("GET", host, "/", "", "Accept", "text/markdown")
		if !strings.HasPrefix(md.Header.Get("Content-Type"), "text/markdown") {
			t.Errorf("%s: Accept text/markdown got %q", host, md.Header.Get("Content-Type"))
		}
		if got := md.Header.Values("Content-Signal"); len(got) != 1 || got[0] != s.contentSignal() {
			t.Errorf("%s %s: Markdown Content-Signal %q, want %q", host, s.caddyfile(), got, s.contentSignal())
		}
		if got := md.Header.Values("Content-Usage"); len(got) != 1 || got[0] != s.contentUsage() {
			t.Errorf("%s %s: Markdown Content-Usage %q, want %q", host, s.caddyfile(), got, s.contentUsage())
		}
		r = e.call("GET", host, "/robots.txt", "")
		wantRobots := siteRobots + "\n# Content signals from this site's AHP manifest (/.well-known/agent.json)\nUser-agent: *\n" +
			"Content-Signal: " + s.contentSignal() + "\nContent-Usage: / " + s.contentUsage() + "\n"
		if r.StatusCode != 200 || string(r.Bytes) != wantRobots {
			t.Errorf("%s robots.txt: %d %q, want %q", host, r.StatusCode, r.Bytes, wantRobots)
		}
	}
}

// The signals go on pages only (issue 19: "on pages and Markdown
// answers"): a stylesheet or a converse answer carries the discovery Link
// alone; a page whose upstream states other signals carries the
// manifest's, once; and an operator's `header -Content-Signal` (which
// Caddy defers to the response, after the plugin) still removes them.
func TestSignalsOnPagesOnly(t *testing.T) {
	up := newUpstream(t)
	site := func(host, extra string) string {
		return fmt.Sprintf("http://%s:{{PORT}} {\n%s\tahp {\n\t\tname \"Shop\"\n\t\tcontent_signals {\n\t\t\tai_train false\n\t\t\tai_input true\n\t\t}\n\t}\n\treverse_proxy %s\n}\n",
			host, extra, up.Listener.Addr())
	}
	e := &edge{caddyproc.Start(t, site("shop.test", "")+site("quiet.test", "\theader /quiet/* {\n\t\t-Content-Signal\n\t\t-Content-Usage\n\t}\n"))}
	const signal, usage = "ai-train=no, ai-input=yes", "train-ai=n, ai-use=y"
	for _, c := range []struct {
		method, host, path, body string
		signals                  bool
	}{
		{"GET", "shop.test", "/", "", true},
		{"HEAD", "shop.test", "/", "", true},
		{"GET", "shop.test", "/robots.txt", "", true},
		{"GET", "shop.test", "/own-signals", "", true},
		{"GET", "shop.test", "/style.css", "", false},
		{"HEAD", "shop.test", "/style.css", "", false},
		{"POST", "shop.test", "/agent/converse", converseBody(""), false},
		{"GET", "quiet.test", "/", "", true},
		{"GET", "quiet.test", "/quiet/page", "", false},
	} {
		r := e.call(c.method, c.host, c.path, c.body)
		what := c.method + " " + c.host + c.path
		if r.StatusCode != 200 {
			t.Errorf("%s: %d", what, r.StatusCode)
			continue
		}
		if got := r.Header.Values("Link"); len(got) == 0 || !strings.Contains(got[len(got)-1], "ahp-manifest") {
			t.Errorf("%s: Link %q", what, got)
		}
		gotSignal, gotUsage := r.Header.Values("Content-Signal"), r.Header.Values("Content-Usage")
		if c.signals && (fmt.Sprint(gotSignal) != fmt.Sprint([]string{signal}) || fmt.Sprint(gotUsage) != fmt.Sprint([]string{usage})) {
			t.Errorf("%s: Content-Signal %q, Content-Usage %q, want %q and %q once", what, gotSignal, gotUsage, signal, usage)
		}
		if !c.signals && (len(gotSignal) != 0 || len(gotUsage) != 0) {
			t.Errorf("%s (%s): Content-Signal %q, Content-Usage %q, want none", what, r.Header.Get("Content-Type"), gotSignal, gotUsage)
		}
	}
}

// readContentSignal parses a Content-Signal value back into AHP terms.
func readContentSignal(v string) map[string]bool {
	out := map[string]bool{}
	names := map[string]string{"ai-train": "ai_train", "search": "search", "ai-input": "ai_input"}
	for _, member := range strings.Split(v, ", ") {
		k, val, _ := strings.Cut(member, "=")
		out[names[k]] = val == "yes"
	}
	return out
}

func without(m map[string]bool, key string) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}
