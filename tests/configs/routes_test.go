package configs

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	// converseRE finds an ahp block's `converse <path>`.
	converseRE = regexp.MustCompile(`(?m)^\s*converse\s+(/\S*)`)
	// wildcardRE finds path patterns ending in '*' (matchers of handle,
	// route, handle_path, path, reverse_proxy …).
	wildcardRE = regexp.MustCompile(`(?:^|[\s(])(/[^\s{}"'` + "`" + `]*\*)`)
	// commentRE is a Caddyfile comment: '#' at a line's start or after a space.
	commentRE = regexp.MustCompile(`(?m)(^|\s)#.*$`)
	// caddyfileBlockRE is a Caddyfile in Markdown.
	caddyfileBlockRE = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")
)

// TestConciergeRoutesAreExact: no Caddyfile the repository ships or
// documents (files, ConfigMap keys, ```caddyfile blocks in Markdown) routes
// a wildcard over the converse path to anything: the gateway refuses every
// other spelling of the converse and status paths, but a route such as
// `handle /agent/*` would also hand the concierge every other path under
// /agent/, unchecked (issue 11). The one wildcard allowed is the status
// path's, `{converse}/status/*`.
func TestConciergeRoutesAreExact(t *testing.T) {
	type source struct{ name, text string }
	var sources []source
	for _, f := range caddyfiles(t) {
		sources = append(sources, source{f.name, string(f.text)})
	}
	for _, f := range repoFiles(t) {
		if strings.HasSuffix(f, ".md") {
			for i, m := range caddyfileBlockRE.FindAllStringSubmatch(string(readFile(t, f)), -1) {
				sources = append(sources, source{f + " block " + strconv.Itoa(i+1), m[1]})
			}
		}
	}
	checked := 0
	for _, s := range sources {
		text := commentRE.ReplaceAllString(s.text, "$1")
		m := converseRE.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		checked++
		converse := strings.ToLower(strings.TrimSuffix(m[1], "/"))
		for _, w := range wildcardRE.FindAllStringSubmatch(text, -1) {
			pattern := strings.ToLower(w[1])
			prefix := strings.TrimSuffix(pattern, "*")
			if pattern == converse+"/status/*" || !strings.HasPrefix(converse+"/", prefix) {
				continue
			}
			t.Errorf("%s: %s covers the converse path %s; route only `%s %s/status/*` to the concierge", s.name, w[1], m[1], m[1], m[1])
		}
	}
	// Caddyfile.example and the compose example at least.
	if checked < 2 {
		t.Fatalf("only %d Caddyfiles with a converse path found: the search is broken", checked)
	}
}
