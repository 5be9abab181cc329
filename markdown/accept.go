package markdown

import (
	"net/http"
	"strings"
)

// Wants reports whether r asks for Markdown: a GET or HEAD whose Accept
// header names text/markdown with a weight above zero and above the
// weight text/html gets (from text/html itself, or else text/*, or else
// */*, RFC 9110 §12.5.1). On equal weights Markdown wins unless text/html
// is named before it: an agent that lists text/markdown first, or next
// to a wildcard, prefers it. Wildcards alone never ask for Markdown, so a
// browser's `*/*` gets its page.
func Wants(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	values := r.Header["Accept"]
	// The quick filter every request pays: no "markdown" anywhere.
	found := false
	for _, v := range values {
		if containsFoldASCII(v, "markdown") {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	var md, htmlQ, textAny, any weight
	pos := 0
	for _, v := range values {
		for rest := v; rest != ""; {
			var elem string
			elem, rest = cutElement(rest)
			mt, q, ok := parseElement(elem)
			pos++
			if !ok {
				continue
			}
			var w *weight
			switch {
			case equalFold(mt, "text/markdown"):
				w = &md
			case equalFold(mt, "text/html"):
				w = &htmlQ
			case equalFold(mt, "text/*"):
				w = &textAny
			case mt == "*/*":
				w = &any
			default:
				continue
			}
			if !w.set || q > w.q { // a range named twice counts at its best
				*w = weight{set: true, q: q, pos: pos}
			}
		}
	}
	if !md.set || md.q == 0 {
		return false
	}
	html := htmlQ
	if !html.set {
		html = textAny
		if !html.set {
			html = any
		}
	}
	if !html.set {
		return true
	}
	if md.q != html.q {
		return md.q > html.q
	}
	// Equal weights: only an explicit text/html named first keeps HTML.
	return !htmlQ.set || md.pos < htmlQ.pos
}

// weight is one media range's q-value (in thousandths) and its position.
type weight struct {
	set bool
	q   int
	pos int
}

// cutElement splits off the first comma-separated element of an Accept
// value; commas inside quoted parameter values do not split.
func cutElement(s string) (elem, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// parseElement reads "type/subtype;param=v;q=0.5". ok is false for an
// empty element or a malformed q-value (such an element does not count).
func parseElement(e string) (mediaType string, q int, ok bool) {
	mediaType, params, _ := strings.Cut(e, ";")
	mediaType = strings.TrimSpace(mediaType)
	if mediaType == "" {
		return "", 0, false
	}
	q = 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, _ := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		if name != "q" && name != "Q" {
			continue
		}
		q, ok = parseQ(strings.TrimSpace(val))
		if !ok {
			return "", 0, false
		}
		// Parameters after the weight are accept-ext (RFC 9110): ignored.
		break
	}
	return mediaType, q, true
}

// parseQ reads a qvalue (RFC 9110 §12.4.2) in thousandths.
func parseQ(v string) (int, bool) {
	if v == "" || len(v) > 5 {
		return 0, false
	}
	switch v[0] {
	case '0', '1':
	default:
		return 0, false
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n, true
	}
	if v[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n += int(c-'0') * scale
		scale /= 10
	}
	if n > 1000 {
		return 0, false
	}
	return n, true
}

func equalFold(a, b string) bool { return len(a) == len(b) && strings.EqualFold(a, b) }

// containsFoldASCII reports whether s contains the lower-case ASCII word
// w in any case.
func containsFoldASCII(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
