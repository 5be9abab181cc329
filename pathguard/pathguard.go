// Package pathguard decides which requests a guarded path covers, whatever
// their spelling.
//
// A guard (the converse gateway, the Agent Handoff admission, the Handshake
// Prompt API) must hold for every request that the site's own routes and
// the application behind them would treat as the guarded path. Those
// disagree about spelling: Caddy's path matcher folds case and merges
// slashes, Express ignores a trailing slash and case, Spring and Tomcat
// drop ";params", Rails reads a ".json" suffix as a format, IIS reads '\'
// as '/', and some stacks decode twice. So a request is classified three
// ways:
//
//   - Exact: the path as sent is the pattern's own spelling (literal
//     segments byte for byte, wildcard segments plain). The guard handles it.
//   - Variant: only cleaning makes it match: percent-decoding (twice),
//     '\' as '/', empty, "." and ".." segments, ";params", control
//     characters, case folding, trailing dots or spaces, or a ".ext" suffix
//     on the last segment. The guard refuses it and never forwards it: an
//     agent that follows the manifest always sends the exact spelling.
//   - None: no cleaning makes it match. The guard lets it pass.
//
// Match runs on every request of a site, so the common case (a path that
// matches nothing) costs a case-insensitive substring search and allocates
// nothing; only a path that mentions the pattern's longest literal segment,
// or holds a '%' or a non-ASCII byte (Unicode case folding turns U+0130
// into 'i' and the Kelvin sign into 'k'), is cleaned in full.
package pathguard

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Match is how a request path relates to a pattern.
type Match uint8

const (
	// None: not the pattern's path under any spelling.
	None Match = iota
	// Exact: the pattern's own spelling.
	Exact
	// Variant: the pattern's path only after cleaning; refuse it.
	Variant
)

func (m Match) String() string {
	switch m {
	case Exact:
		return "exact"
	case Variant:
		return "variant"
	}
	return "none"
}

// Pattern is one guarded path: literal segments, "*" for exactly one
// non-empty segment, and a final "/*" (as in "/exchange/*") for one or more
// further segments. (Caddy's path matcher also lets "/exchange/*" match
// "/exchange/"; a guard has nothing to guard there, so it passes.)
type Pattern struct {
	raw    string
	segs   []string // literal segments as written; "*" for a wildcard
	folded []string // the same, lowercased
	rest   bool     // a trailing "/*": any further path
	needle string   // the longest literal segment, lowercased
}

// Compile parses a pattern such as "/agent/converse",
// "/v1/sandboxes/*/claim" or "/exchange/*".
func Compile(pattern string) (*Pattern, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("path %q must start with /", pattern)
	}
	p := &Pattern{raw: pattern}
	body := pattern[1:]
	if body == "*" || strings.HasSuffix(body, "/*") {
		p.rest = true
		body = strings.TrimSuffix(strings.TrimSuffix(body, "*"), "/")
	}
	if body == "" && !p.rest {
		return nil, errors.New(`path "/" cannot be guarded: it is every page's parent`)
	}
	if body != "" {
		for _, s := range strings.Split(body, "/") {
			switch {
			case s == "":
				return nil, fmt.Errorf("path %q has an empty segment (//)", pattern)
			case s == "." || s == "..":
				return nil, fmt.Errorf("path %q has a dot segment", pattern)
			case s != "*" && strings.ContainsAny(s, "*%;\\?#"):
				return nil, fmt.Errorf("path %q: segment %q may not hold *, %%, ;, \\, ? or # (a whole segment may be *)", pattern, s)
			}
			for i := 0; i < len(s); i++ {
				if s[i] < 0x21 || s[i] == 0x7f {
					return nil, fmt.Errorf("path %q holds a control character or space", pattern)
				}
			}
			p.segs = append(p.segs, s)
			f := strings.ToLower(s)
			p.folded = append(p.folded, f)
			if s != "*" && len(f) > len(p.needle) {
				p.needle = f
			}
		}
	}
	if p.needle == "" {
		return nil, fmt.Errorf("path %q needs at least one literal segment", pattern)
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be valid.
func MustCompile(pattern string) *Pattern {
	p, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

// String is the pattern as written.
func (p *Pattern) String() string { return p.raw }

// Match classifies a request URL (its decoded Path and, when the client's
// escaping differed from the default, RawPath).
func (p *Pattern) Match(u *url.URL) Match {
	if u.RawPath == "" && p.exact(u.Path) {
		return Exact
	}
	return p.loose(u.Path)
}

// MatchPath classifies a decoded path (an http.Request's URL.Path).
func (p *Pattern) MatchPath(path string) Match {
	if p.exact(path) {
		return Exact
	}
	return p.loose(path)
}

// exact reports whether path is the pattern's own spelling.
func (p *Pattern) exact(path string) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, seg := range p.segs {
		last := i == len(p.segs)-1
		j := strings.IndexByte(rest, '/')
		var s string
		if j < 0 {
			s, rest = rest, ""
		} else {
			s, rest = rest[:j], rest[j+1:]
		}
		if seg == "*" {
			if !plainSegment(s) {
				return false
			}
		} else if s != seg {
			return false
		}
		if j < 0 {
			return last && !p.rest // the path ended
		}
		if last && !p.rest {
			return false // more path than pattern, a trailing slash included
		}
	}
	// The rest is at least one segment, and may be anything a plain path
	// holds (one trailing slash included), but nothing cleaning would
	// change, or it could climb out: "/exchange/../admin".
	if rest == "" {
		return false
	}
	for rest != "" {
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return plainSegment(rest)
		}
		if !plainSegment(rest[:j]) {
			return false
		}
		rest = rest[j+1:]
	}
	return true
}

// plainSegment: non-empty, not a dot segment, nothing any stack reads
// differently.
func plainSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x7f || c == ';' || c == '\\' || c == '%' {
			return false
		}
	}
	return true
}

// loose reports Variant when the cleaned path matches, None otherwise.
func (p *Pattern) loose(path string) Match {
	if !containsFold(path, p.needle) && !needsFullClean(path) {
		return None
	}
	segs := clean(path)
	if p.matchClean(segs) {
		return Variant
	}
	return None
}

func (p *Pattern) matchClean(segs []string) bool {
	n := len(p.folded)
	if len(segs) < n || (!p.rest && len(segs) != n) || (p.rest && len(segs) == n) {
		return false
	}
	for i, want := range p.folded {
		s := segs[i]
		if want == "*" {
			continue // segs holds no empty segments
		}
		if s == want {
			continue
		}
		// "converse.json", "converse." (a format suffix or a trailing dot)
		if i == len(segs)-1 && strings.HasPrefix(s, want) && s[len(want)] == '.' {
			continue
		}
		return false
	}
	return true
}

// clean is every reading of path that some stack makes, folded into one:
// decoded (twice), cut at a control character, '\' as '/', ";params" dropped,
// empty and "." segments removed, ".." applied, trailing dots and spaces
// trimmed, lowercased.
func clean(path string) []string {
	for i := 0; i < 2 && strings.IndexByte(path, '%') >= 0; i++ {
		if d, err := url.PathUnescape(path); err == nil {
			path = d
		} else {
			break
		}
	}
	// C stacks end the string at a NUL; treat every control character so.
	for i := 0; i < len(path); i++ {
		if path[i] < 0x20 || path[i] == 0x7f {
			path = path[:i]
			break
		}
	}
	path = strings.ToLower(strings.ReplaceAll(path, "\\", "/"))
	var out []string
	for _, s := range strings.Split(path, "/") {
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		switch s {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		// Windows stacks drop trailing dots and spaces.
		if s = strings.TrimRight(s, ". "); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// needsFullClean reports whether cleaning could make the needle appear in
// a path that does not hold it: percent-decoding, and any non-ASCII byte,
// since Unicode case folding (strings.ToLower, as Caddy's own path matcher
// uses) turns U+0130 into 'i' and U+212A (the Kelvin sign) into 'k'.
func needsFullClean(path string) bool {
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '%' || c >= 0x80 {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lowercase ASCII needle,
// ignoring ASCII case, without allocating.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	first := needle[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+n <= len(s); i++ {
		c := s[i]
		if c != first && c != upper {
			continue
		}
		j := 1
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// Screen is the common case of several patterns' Match at once: a path
// that mentions none of their needles and needs no full cleaning matches
// none of them, Exact included (an exact spelling holds every literal
// segment). A guard with several patterns (the gateway's converse, status
// and status-root paths share one needle) asks it first, so a stylesheet
// costs one scan of its path per needle instead of two per pattern.
type Screen struct {
	needles []string
}

// NewScreen is the screen of patterns.
func NewScreen(patterns ...*Pattern) *Screen {
	s := &Screen{}
	for _, p := range patterns {
		if !slices.Contains(s.needles, p.needle) {
			s.needles = append(s.needles, p.needle)
		}
	}
	return s
}

// MayMatch reports whether any of the screen's patterns could match path
// (false: Match returns None for every one of them).
func (s *Screen) MayMatch(path string) bool {
	for _, n := range s.needles {
		if containsFold(path, n) {
			return true
		}
	}
	return needsFullClean(path)
}
