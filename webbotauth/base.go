package webbotauth

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/dunglas/httpsfv"
)

// requestParts are the derived-component values of a request (RFC 9421
// §2.2), computed once per request from what arrived on the wire.
type requestParts struct {
	method    string
	scheme    string
	authority string
	target    string // the request-target as sent
	path      string
	query     string // with its leading "?"; "?" when there is none
}

// partsOf reads the derived components from r. The request-target is
// r.RequestURI, the target as received (requests built by a client, in
// tests, have none and use r.URL). A handler that rewrites the request
// changes it (Caddy's rewrite does): verify the request as it arrived.
func partsOf(r *http.Request) (requestParts, *failure) {
	p := requestParts{method: r.Method, target: r.RequestURI}
	switch {
	case r.URL != nil && r.URL.Scheme != "":
		p.scheme = strings.ToLower(r.URL.Scheme)
	case r.TLS != nil:
		p.scheme = "https"
	default:
		p.scheme = "http"
	}
	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}
	p.authority = normalizeAuthority(host, p.scheme)
	if p.target == "" && r.URL != nil {
		p.target = r.URL.RequestURI()
	}
	pathQuery := p.target
	if !strings.HasPrefix(pathQuery, "/") {
		// absolute-form (a proxy request): keep its path and query.
		u, err := url.ParseRequestURI(pathQuery)
		if err != nil || u.Opaque != "" {
			return p, unverified("request-target form not supported")
		}
		pathQuery = u.EscapedPath()
		if u.RawQuery != "" || u.ForceQuery {
			pathQuery += "?" + u.RawQuery
		}
	}
	p.path, p.query = pathQuery, "?"
	if i := strings.IndexByte(pathQuery, '?'); i >= 0 {
		p.path, p.query = pathQuery[:i], pathQuery[i:]
	}
	if p.path == "" {
		p.path = "/"
	}
	return p, nil
}

// normalizeAuthority lowercases host and drops the scheme's default
// port (RFC 9421 §2.2.3, RFC 9110 §4.2.3).
func normalizeAuthority(host, scheme string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-4]
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-3]
	}
	return host
}

// fieldCache holds what signatureBase reads from the request's fields
// for all its signatures: Signature-Agent parsed once, and every other
// dictionary field parsed at most once. A request may cover one large
// field member by member ("x";key="m0" "x";key="m1" ...) in each of its
// signatures; parsing per component made one request cost some 120
// parses of its largest header, with no key needed.
type fieldCache struct {
	saDict *httpsfv.Dictionary // Signature-Agent's; nil: parsed like any field
	dicts  map[string]*httpsfv.Dictionary
	bad    map[string]bool // fields that are not dictionaries
}

// dictionary returns the field name (lines) as a dictionary, parsed at
// most once per request.
func (c *fieldCache) dictionary(name string, lines []string) (*httpsfv.Dictionary, bool) {
	if name == "signature-agent" && c.saDict != nil {
		return c.saDict, true
	}
	if d, ok := c.dicts[name]; ok {
		return d, true
	}
	if c.bad[name] {
		return nil, false
	}
	d, err := httpsfv.UnmarshalDictionary(lines)
	if err != nil {
		if c.bad == nil {
			c.bad = make(map[string]bool)
		}
		c.bad[name] = true
		return nil, false
	}
	if c.dicts == nil {
		c.dicts = make(map[string]*httpsfv.Dictionary)
	}
	c.dicts[name] = d
	return d, true
}

// maxBaseBytes bounds a signature base: far above the few components
// agents sign, and what one signature may make the verifier hash.
const maxBaseBytes = 16 << 10

// signatureBase builds the signature base of RFC 9421 §2.5 for in over
// r. fc holds the request's parsed fields, shared by its signatures. A
// component the request lacks makes the signature invalid (§2.5: the
// base cannot be built); a component or parameter this verifier does not
// implement, or a covered field or base beyond this package's bounds,
// makes it unverifiable.
func signatureBase(r *http.Request, p *requestParts, in *sigInput, fc *fieldCache) ([]byte, *failure) {
	b := make([]byte, 0, 256+len(in.params))
	seen := make([]string, 0, len(in.components))
	for _, it := range in.components {
		name := it.Value.(string)
		id, err := httpsfv.Marshal(it)
		if err != nil {
			return nil, invalid("a covered component identifier cannot be serialized")
		}
		for _, s := range seen {
			if s == id {
				return nil, invalid("component " + id + " is covered twice")
			}
		}
		seen = append(seen, id)
		var value string
		var f *failure
		if strings.HasPrefix(name, "@") {
			value, f = derivedValue(name, it.Params, p)
		} else {
			value, f = fieldValue(r.Header, name, it.Params, fc)
		}
		if f != nil {
			return nil, f
		}
		if len(b)+len(id)+len(value)+3 > maxBaseBytes {
			return nil, unverified("the signature base is larger than 16 KiB")
		}
		b = append(b, id...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, '\n')
	}
	b = append(b, `"@signature-params": `...)
	b = append(b, in.params...)
	return b, nil
}
func derivedValue(name string, params *httpsfv.Params, p *requestParts) (string, *failure) {
	if params != nil && len(params.Names()) > 0 {
		// req, name (@query-param) and any other parameter.
		return "", unverified("component " + name + " with parameters is not supported")
	}
	switch name {
	case "@method":
		return p.method, nil
	case "@authority":
		return p.authority, nil
	case "@scheme":
		return p.scheme, nil
	case "@target-uri":
		if p.query == "?" && !strings.Contains(p.target, "?") {
			return p.scheme + "://" + p.authority + p.path, nil
		}
		return p.scheme + "://" + p.authority + p.path + p.query, nil
	case "@request-target":
		return p.target, nil
	case "@path":
		return p.path, nil
	case "@query":
		return p.query, nil
	}
	return "", unverified("component " + name + " is not supported")
}

// fieldValue is the value of an HTTP field component (RFC 9421 §2.1):
// its field lines, each trimmed, joined with ", "; or with key=, the
// serialized dictionary member. A field larger than maxFieldBytes is
// not read: the signature is unverifiable, not wrong.
func fieldValue(h http.Header, name string, params *httpsfv.Params, fc *fieldCache) (string, *failure) {
	if name != strings.ToLower(name) {
		return "", invalid("component " + name + " is not lower case")
	}
	var key string
	for _, pn := range params.Names() {
		v, _ := params.Get(pn)
		if pn != "key" {
			// sf, bs, req, tr: not implemented.
			return "", unverified("component " + name + ";" + pn + " is not supported")
		}
		s, ok := v.(string)
		if !ok {
			return "", invalid("component " + name + ": key is not a string")
		}
		key = s
	}
	lines, small := fieldValues(h, textproto.CanonicalMIMEHeaderKey(name))
	if len(lines) == 0 {
		return "", invalid("covered field " + name + " is absent")
	}
	if !small {
		return "", unverified("covered field " + name + " is larger than 8 KiB")
	}
	if _, ok := params.Get("key"); !ok {
		if len(lines) == 1 {
			return strings.TrimSpace(lines[0]), nil
		}
		var sb strings.Builder
		for i, l := range lines {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(strings.TrimSpace(l))
		}
		return sb.String(), nil
	}
	d, ok := fc.dictionary(name, lines)
	if !ok {
		return "", invalid("covered field " + name + " is not a dictionary")
	}
	m, ok := d.Get(key)
	if !ok {
		return "", invalid("covered field " + name + " has no member " + key)
	}
	var s string
	var err error
	switch m := m.(type) {
	case httpsfv.Item:
		s, err = httpsfv.Marshal(m)
	case httpsfv.InnerList:
		s, err = httpsfv.Marshal(m)
	}
	if err != nil {
		return "", invalid("covered field " + name + " member " + key + " cannot be serialized")
	}
	return s, nil
}
