package handshake

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/pathguard"
)

type route uint8

const (
	routeNone route = iota
	routeCreate
	routeContext
	routeAction
	routeNotify
	routeDiff
	routeExtend
	routePrompt
	routeClientJS
	routeWS
	routeHook // a hook path: the plugin's own, refused to clients
)

var routeNames = [...]string{"", "session", "context", "action", "notify", "diff", "extend", "prompt", "client.js", "websocket", "hook"}

func (rt route) name() string { return routeNames[rt] }

func (rt route) method() string {
	switch rt {
	case routeCreate, routeAction, routeNotify, routeExtend:
		return http.MethodPost
	}
	return http.MethodGet
}

// routes matches request paths against HPP's endpoints with package
// pathguard: a path spelled exactly as an endpoint is ours; one that only
// matches after decoding, cleaning or case folding is a variant, refused
// (never passed to the site, never served); anything else is the site's.
type routes struct {
	patterns []pattern
	prefixes []string // lower-cased, for the cheap "could this be ours" test
}

type pattern struct {
	rt   route
	p    *pathguard.Pattern
	sid  int      // index of the session id segment, -1 when none
	segs int      // segments of the path
	lits []string // the segments, "*" for the session id
}

func newRoutes(prefix, wsPrefix string, hookPaths []string) (routes, error) {
	var rs routes
	add := func(rt route, p string) error {
		pg, err := pathguard.Compile(p)
		if err != nil {
			return err
		}
		sid := -1
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, s := range segs {
			if s == "*" {
				sid = i
			}
		}
		rs.patterns = append(rs.patterns, pattern{rt: rt, p: pg, sid: sid, segs: len(segs), lits: segs})
		return nil
	}
	for _, r := range []struct {
		rt route
		p  string
	}{
		{routeCreate, prefix + "/session"},
		{routeContext, prefix + "/context/*"},
		{routeAction, prefix + "/action/*"},
		{routeNotify, prefix + "/notify/*"},
		{routeDiff, prefix + "/diff/*"},
		{routeExtend, prefix + "/session/*/extend"},
		{routePrompt, prefix + "/prompt/*"},
		{routeClientJS, prefix + "/client.js"},
		{routeWS, wsPrefix + "/*"},
	} {
		if err := add(r.rt, r.p); err != nil {
			return rs, err
		}
	}
	rs.prefixes = []string{strings.ToLower(prefix), strings.ToLower(wsPrefix)}
	for _, p := range hookPaths {
		if err := add(routeHook, p); err != nil {
			return rs, err
		}
		rs.prefixes = append(rs.prefixes, strings.ToLower(p))
	}
	return rs, nil
}

// match returns the route and session id of an exact spelling, or
// variant=true for a spelling that only normalisation makes one of ours.
func (rs *routes) match(u *url.URL) (rt route, sid string, variant bool) {
	raw := u.EscapedPath()
	// Fast path for the site's own pages: nothing that could decode, clean
	// or fold into our prefixes.
	if !rs.near(raw) {
		return routeNone, "", false
	}
	// The endpoint spelled as is: one literal comparison, then pathguard
	// confirms (Exact costs it no cleaning).
	if i := rs.literal(raw); i >= 0 {
		pt := &rs.patterns[i]
		if pt.p.Match(u) == pathguard.Exact {
			if pt.sid >= 0 {
				sid = segment(raw, pt.sid)
			}
			return pt.rt, sid, false
		}
	}
	for i := range rs.patterns {
		pt := &rs.patterns[i]
		switch pt.p.Match(u) {
		case pathguard.Exact:
			// A final "/*" is "one or more segments" to pathguard; ours
			// is exactly one: more (a trailing slash included) is refused.
			if strings.Count(raw, "/") != pt.segs {
				variant = true
				continue
			}
			if pt.sid >= 0 {
				sid = segment(raw, pt.sid)
			}
			return pt.rt, sid, false
		case pathguard.Variant:
			variant = true
		}
	}
	return routeNone, "", variant
}

// literal returns the index of the pattern whose literal segments p
// spells, or -1.
func (rs *routes) literal(p string) int {
	for i := range rs.patterns {
		pt := &rs.patterns[i]
		rest, ok := p, true
		for _, lit := range pt.lits {
			if len(rest) == 0 || rest[0] != '/' {
				ok = false
				break
			}
			rest = rest[1:]
			j := strings.IndexByte(rest, '/')
			if j < 0 {
				j = len(rest)
			}
			if lit != "*" && rest[:j] != lit {
				ok = false
				break
			}
			rest = rest[j:]
		}
		if ok && rest == "" {
			return i
		}
	}
	return -1
}

// segment returns the i-th segment of an absolute path.
func segment(p string, i int) string {
	p = strings.TrimPrefix(p, "/")
	for ; i > 0; i-- {
		j := strings.IndexByte(p, '/')
		if j < 0 {
			return ""
		}
		p = p[j+1:]
	}
	if j := strings.IndexByte(p, '/'); j >= 0 {
		p = p[:j]
	}
	return p
}

// near: could cleaning make p one of ours? A superset of pathguard's own
// test, cheap enough for every request of the site.
func (rs *routes) near(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' || c == '\\' || c == ';' || c < 0x20 || c == 0x7f {
			return true
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return true
	}
	for _, pre := range rs.prefixes {
		if len(p) >= len(pre) && strings.EqualFold(p[:len(pre)], pre) {
			return true
		}
	}
	return false
}
