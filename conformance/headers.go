package conformance

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// link is one link-value of an RFC 8288 Link header.
type link struct {
	Target string
	Params map[string]string // lowercased names; values unquoted
}

// rels lists the link's relation types (rel may hold several, space
// separated; they compare case-insensitively).
func (l link) rels() []string { return strings.Fields(strings.ToLower(l.Params["rel"])) }

func (l link) hasRel(rel string) bool {
	for _, r := range l.rels() {
		if r == rel {
			return true
		}
	}
	return false
}

// parseLinks parses every Link header value. Malformed link-values are
// skipped; what parses is kept.
func parseLinks(values []string) []link {
	var out []link
	for _, v := range values {
		out = append(out, parseLinkValue(v)...)
	}
	return out
}

func parseLinkValue(s string) []link {
	var out []link
	i := 0
	for i < len(s) {
		// <target>
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] != '<' {
			i = skipToComma(s, i)
			continue
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			break
		}
		l := link{Target: strings.TrimSpace(s[i+1 : i+end]), Params: map[string]string{}}
		i += end + 1
		// ; name[=value] ...
		for {
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i >= len(s) || s[i] != ';' {
				break
			}
			i++
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			start := i
			for i < len(s) && s[i] != '=' && s[i] != ';' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
				i++
			}
			name := strings.ToLower(s[start:i])
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			val := ""
			if i < len(s) && s[i] == '=' {
				i++
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				if i < len(s) && s[i] == '"' {
					var b strings.Builder
					i++
					for i < len(s) && s[i] != '"' {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						b.WriteByte(s[i])
						i++
					}
					i++ // closing quote (or past the end)
					val = b.String()
				} else {
					start := i
					for i < len(s) && s[i] != ';' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
						i++
					}
					val = s[start:i]
				}
			}
			if name != "" {
				if _, dup := l.Params[name]; !dup { // RFC 8288 §3: the first occurrence counts
					l.Params[name] = val
				}
			}
		}
		out = append(out, l)
		if i < len(s) && s[i] != ',' {
			i = skipToComma(s, i)
		}
	}
	return out
}

// skipToComma moves past the next comma outside quotes and <>.
func skipToComma(s string, i int) int {
	quoted, angled := false, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '<':
			angled = true
		case c == '>':
			angled = false
		case c == ',' && !angled:
			return i + 1
		}
	}
	return i
}

// manifestLink looks for the ahp-manifest link in h and judges it: ok when
// it points at the site's manifest (with type application/agent+json if a
// type is given); why says what was wrong otherwise.
func manifestLink(h http.Header, base, manifestURL *url.URL) (ok bool, why string) {
	values := h.Values("Link")
	if len(values) == 0 {
		return false, "no Link header"
	}
	var found []link
	for _, l := range parseLinks(values) {
		if l.hasRel("ahp-manifest") {
			found = append(found, l)
		}
	}
	if len(found) == 0 {
		return false, `no Link with rel="ahp-manifest" (Link: ` + clip(strings.Join(values, ", "), 160) + ")"
	}
	for _, l := range found {
		t, err := base.Parse(l.Target)
		if err != nil || !sameHost(t, manifestURL) || t.Path != manifestURL.Path {
			why = "the ahp-manifest link points at <" + l.Target + ">, not " + manifestURL.Path
			continue
		}
		if ty, has := l.Params["type"]; has && !strings.EqualFold(ty, "application/agent+json") {
			why = `the ahp-manifest link has type="` + ty + `", not application/agent+json`
			continue
		}
		return true, ""
	}
	return false, why
}

// hasToken reports whether a comma-separated header (Vary, Allow) lists
// token, case-insensitively.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// rateHeaders are the X-RateLimit-* headers of §11.1, parsed.
type rateHeaders struct {
	present                         []string // which of the four are there
	limit, remaining, reset, window int64
	problems                        []string
}

var rateHeaderNames = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window"}

// any reports whether any of the four headers is present.
func (r rateHeaders) any() bool { return len(r.present) > 0 }

// complete reports all four present and well-formed.
func (r rateHeaders) complete() bool { return len(r.present) == 4 && len(r.problems) == 0 }

// parseRateHeaders reads and judges the four headers against the answer's
// date: all present, non-negative integers, remaining ≤ limit, window > 0,
// reset a Unix time no earlier than the answer and no later than one window
// after it (two seconds of slack for clocks and rounding).
func parseRateHeaders(h http.Header, date time.Time) rateHeaders {
	var r rateHeaders
	var vals [4]int64
	var valid [4]bool
	for i, name := range rateHeaderNames {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		r.present = append(r.present, name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			r.problems = append(r.problems, name+" is "+strconv.Quote(clip(v, 40))+", not a non-negative integer")
			continue
		}
		vals[i], valid[i] = n, true
	}
	if !r.any() {
		return r
	}
	for i, name := range rateHeaderNames {
		if h.Get(name) == "" {
			r.problems = append(r.problems, name+" missing")
			valid[i] = false
		}
	}
	r.limit, r.remaining, r.reset, r.window = vals[0], vals[1], vals[2], vals[3]
	if valid[0] && valid[1] && r.remaining > r.limit {
		r.problems = append(r.problems, "X-RateLimit-Remaining "+strconv.FormatInt(r.remaining, 10)+" exceeds X-RateLimit-Limit "+strconv.FormatInt(r.limit, 10))
	}
	if valid[3] && r.window == 0 {
		r.problems = append(r.problems, "X-RateLimit-Window is 0; it is the window's length in seconds")
	}
	if valid[2] {
		now := date.Unix()
		switch {
		case r.reset < 1_000_000_000:
			r.problems = append(r.problems, "X-RateLimit-Reset "+strconv.FormatInt(r.reset, 10)+" looks like seconds until the reset; §11.1 asks for the Unix time of the reset")
		case r.reset < now-2:
			r.problems = append(r.problems, "X-RateLimit-Reset is "+strconv.FormatInt(now-r.reset, 10)+"s in the past")
		case valid[3] && r.reset > now+r.window+2:
			r.problems = append(r.problems, "X-RateLimit-Reset is "+strconv.FormatInt(r.reset-now, 10)+"s ahead, more than the window of "+strconv.FormatInt(r.window, 10)+"s")
		}
	}
	return r
}

// clip shortens s for a report line (to n bytes, at a character
// boundary).
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
