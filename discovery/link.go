package discovery

import (
	"net/http"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// LinkValue is the discovery Link header (spec §3.2).
const LinkValue = `<` + manifest.WellKnownPath + `>; rel="ahp-manifest"; type="` + manifest.MediaType + `"`

// addLinkIn gives the response the discovery link, and Vary: Accept when
// vary is set, in v: two elements of this response's own (Caddy's
// `header` handler edits values in place, so a slice shared between
// responses would carry one site's edit into every later response, and
// race), each handed out with its capacity capped so that an append
// cannot reach its neighbour. It runs before the next handler, so the
// header survives error routes and every status.
func addLinkIn(h http.Header, vary bool, v []string) {
	v[0], v[1] = LinkValue, "Accept"
	if existing := h["Link"]; len(existing) > 0 {
		h["Link"] = append(existing[:len(existing):len(existing)], LinkValue)
	} else {
		h["Link"] = v[0:1:1]
	}
	if vary {
		addVary(h, v[1:2:2])
	}
}

// addSignals states the manifest's content signals on a page (Cloudflare's
// Content-Signal and the IETF aipref Content-Usage), so manifest, headers
// and robots.txt say the same: they replace any value the upstream or
// another handler set, and the values are this response's own.
//
// Only pages carry them (issue 19: "on pages and Markdown answers"): a
// stylesheet or an image with Link, Vary and both signals has nine or more
// fields behind a proxy, past the eight a Go map holds before it grows,
// which costs pass-through about 1 µs and 800 bytes a response
// (docs/performance.md). The manifest and robots.txt state them for the
// whole site.
func addSignals(hdr http.Header, s *manifest.Signals) {
	switch {
	case s.ContentSignal != "" && s.ContentUsage != "":
		v := make([]string, 2)
		v[0], v[1] = s.ContentSignal, s.ContentUsage
		hdr[manifest.ContentSignalHeader], hdr[manifest.ContentUsageHeader] = v[0:1:1], v[1:2:2]
	case s.ContentSignal != "":
		hdr[manifest.ContentSignalHeader] = []string{s.ContentSignal}
	case s.ContentUsage != "":
		hdr[manifest.ContentUsageHeader] = []string{s.ContentUsage}
	}
}

// isPage reports whether an answer's Content-Type (its values as in the
// header map) names a page (httpx.DocumentTypes).
func isPage(contentType []string) bool {
	return len(contentType) > 0 && httpx.IsDocument(contentType[0])
}

// addVary adds Accept to Vary unless it is listed already; accept is a
// one-element slice of this response's own.
func addVary(h http.Header, accept []string) {
	existing := h["Vary"]
	for _, v := range existing {
		if containsToken(v, "Accept") {
			return
		}
	}
	if len(existing) == 0 {
		h["Vary"] = accept
		return
	}
	h["Vary"] = append(existing[:len(existing):len(existing)], accept[0])
}

// restoreVary adds Accept to Vary again when a handler below replaced the
// field; it allocates only then, and "Vary: *" already covers Accept.
func restoreVary(h http.Header) {
	vary := h["Vary"]
	if len(vary) == 1 && vary[0] == "Accept" {
		return // ours, as addLinkIn set it: the common case, no parse
	}
	for _, v := range vary {
		if containsToken(v, "Accept") || containsToken(v, "*") {
			return
		}
	}
	addVary(h, []string{"Accept"})
}

// containsToken reports whether a comma-separated header value lists token
// (case-insensitively).
func containsToken(v, token string) bool {
	for len(v) > 0 {
		var item string
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		if equalFoldASCII(trimOWSRight(item[skipOWS(item, 0):]), token) {
			return true
		}
	}
	return false
}

// dedupeLinks keeps exactly one ahp-manifest link (ours) while keeping
// every other link, after an upstream or another handler added its own.
// It costs nothing in the common case of our single value.
func dedupeLinks(h http.Header) {
	links := h["Link"]
	if len(links) == 1 && links[0] == LinkValue {
		return
	}
	ours := 0
	foreign := false
	for _, v := range links {
		if v == LinkValue {
			ours++
			continue
		}
		if strings.Contains(strings.ToLower(v), "ahp-manifest") {
			foreign = true
		}
	}
	if ours == 1 && !foreign {
		return
	}
	out := make([]string, 0, len(links)+1)
	for _, v := range links {
		if v == LinkValue {
			continue
		}
		if kept := dropManifestLinks(v); kept != "" {
			out = append(out, kept)
		}
	}
	h["Link"] = append(out, LinkValue)
}

// dropManifestLinks removes the link-values whose rel names ahp-manifest
// from one Link field value (RFC 8288: comma-separated link-values).
func dropManifestLinks(v string) string {
	parts := splitLinks(v)
	kept := parts[:0]
	for _, p := range parts {
		if !relHasManifest(p) {
			kept = append(kept, strings.TrimSpace(p))
		}
	}
	return strings.Join(kept, ", ")
}

// splitLinks splits a Link field value at commas outside <...> and quotes.
func splitLinks(v string) []string {
	var parts []string
	inURI, inQuote := false, false
	start := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '<':
			inURI = true
		case c == '>':
			inURI = false
		case c == ',' && !inURI:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// relHasManifest reports whether one link-value's rel parameter holds the
// relation type ahp-manifest (rel may list several, space-separated).
func relHasManifest(link string) bool {
	end := strings.IndexByte(link, '>')
	if end < 0 {
		return false
	}
	for _, param := range strings.Split(link[end+1:], ";") {
		name, value, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		for _, rel := range strings.Fields(value) {
			if strings.EqualFold(rel, "ahp-manifest") {
				return true
			}
		}
	}
	return false
}
