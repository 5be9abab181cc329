package handshake

import (
	"net/http"
	"net/url"
	"path"
	"strings"
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
)

var routeNames = [...]string{"", "session", "context", "action", "notify", "diff", "extend", "prompt", "client.js", "websocket"}

func (rt route) name() string { return routeNames[rt] }

func (rt route) method() string {
	switch rt {
	case routeCreate, routeAction, routeNotify, routeExtend:
		return http.MethodPost
	}
	return http.MethodGet
}

// routes matches request paths against HPP's endpoints. A path spelled
// exactly as an endpoint is ours; one that only matches after decoding,
// cleaning or case folding is a variant, refused (never passed to the
// site, never served); anything else is the site's.
type routes struct {
	patterns []pattern
	prefixes []string // lower-cased, for the cheap "could this be ours" test
}

type pattern struct {
	rt       route
	segments []string // "*" is the session id
}

func newRoutes(prefix, wsPrefix string) (routes, error) {
	var rs routes
	add := func(rt route, p string) {
		rs.patterns = append(rs.patterns, pattern{rt: rt, segments: strings.Split(strings.TrimPrefix(p, "/"), "/")})
	}
	add(routeCreate, prefix+"/session")
	add(routeContext, prefix+"/context/*")
	add(routeAction, prefix+"/action/*")
	add(routeNotify, prefix+"/notify/*")
	add(routeDiff, prefix+"/diff/*")
	add(routeExtend, prefix+"/session/*/extend")
	add(routePrompt, prefix+"/prompt/*")
	add(routeClientJS, prefix+"/client.js")
	add(routeWS, wsPrefix+"/*")
	rs.prefixes = []string{strings.ToLower(prefix), strings.ToLower(wsPrefix)}
	return rs, nil
}

// match returns the route and session id of an exact spelling, or
// variant=true for a spelling that only normalisation makes one of ours.
func (rs *routes) match(u *url.URL) (rt route, sid string, variant bool) {
	raw := u.RawPath
	if raw == "" {
		raw = u.Path
	}
	// Fast path: nothing near our prefixes, in any case or encoding.
	if !rs.near(raw) {
		return routeNone, "", false
	}
	if rt, sid := rs.exact(raw); rt != routeNone {
		return rt, sid, false
	}
	if rs.variant(raw) {
		return routeNone, "", true
	}
	return routeNone, "", false
}

func (rs *routes) near(p string) bool {
	if strings.ContainsAny(p, "%\\;") || strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return true // could decode or clean into one of ours
	}
	lp := strings.ToLower(p)
	for _, pre := range rs.prefixes {
		if strings.HasPrefix(lp, pre) {
			return true
		}
	}
	return false
}

func (rs *routes) exact(p string) (route, string) {
	if !strings.HasPrefix(p, "/") {
		return routeNone, ""
	}
	segs := strings.Split(p[1:], "/")
	for _, pt := range rs.patterns {
		if len(segs) != len(pt.segments) {
			continue
		}
		sid, ok := "", true
		for i, s := range pt.segments {
			if s == "*" {
				if !plainSegment(segs[i]) {
					ok = false
					break
				}
				sid = segs[i]
				continue
			}
			if segs[i] != s {
				ok = false
				break
			}
		}
		if ok {
			return pt.rt, sid
		}
	}
	return routeNone, ""
}

// plainSegment: a session id segment as a client spells it, nothing a
// decoder or cleaner would change.
func plainSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x7f || c == '%' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// variant: the path, decoded, cleaned, without ;params, case-folded and
// without a trailing slash or a ".ext" on its last segment, is one of ours.
func (rs *routes) variant(p string) bool {
	dec, err := url.PathUnescape(p)
	if err != nil {
		dec = p
	}
	for i := 0; i < 2; i++ { // double encoding
		if d, err := url.PathUnescape(dec); err == nil {
			dec = d
		}
	}
	dec = strings.ReplaceAll(dec, "\\", "/")
	dec = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, dec)
	segs := strings.Split(dec, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	clean := strings.ToLower(path.Clean("/" + strings.Join(segs, "/")))
	cands := []string{clean}
	if j := strings.LastIndexByte(clean, '.'); j > strings.LastIndexByte(clean, '/') {
		cands = append(cands, clean[:j])
	}
	for _, c := range cands {
		parts := strings.Split(strings.TrimPrefix(c, "/"), "/")
		for _, pt := range rs.patterns {
			if len(parts) != len(pt.segments) {
				continue
			}
			ok := true
			for i, s := range pt.segments {
				if s == "*" {
					if parts[i] == "" {
						ok = false
						break
					}
					continue
				}
				if parts[i] != strings.ToLower(s) {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}
