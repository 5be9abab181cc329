package discovery

import (
	"net/http"
	"strings"
)

// wantsManifest reports whether any Accept header of the request lists
// application/agent+json with a non-zero weight (spec §3.4). Wildcards such
// as */* or application/* do not count: browsers send them, and a browser
// asking for a page must get the page.
func wantsManifest(h http.Header) bool {
	for _, v := range h["Accept"] {
		if mentionsAgentJSON(v) && acceptListsAgentJSON(v) {
			return true
		}
	}
	return false
}

// mentionsAgentJSON is a quick filter run on every request: browsers'
// Accept headers hold a '+' or two ("xhtml+xml"), rarely "agent+json", so
// looking only around each '+' skips the full parse almost always.
func mentionsAgentJSON(s string) bool {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '+')
		if j < 0 {
			return false
		}
		p := i + j
		if p >= 5 && len(s)-p >= 5 && equalFoldASCII(s[p-5:p], "agent") && equalFoldASCII(s[p+1:p+5], "json") {
			return true
		}
		i = p + 1
	}
}

const agentJSON = "application/agent+json"

// acceptListsAgentJSON parses one Accept field value (RFC 9110 §12.5.1):
// comma-separated media ranges, each with optional parameters, where
// parameter values may be quoted strings containing commas or semicolons.
// It does not allocate.
func acceptListsAgentJSON(s string) bool {
	i := 0
	for i < len(s) {
		// media range: up to ';' or ','
		i = skipOWS(s, i)
		start := i
		for i < len(s) && s[i] != ';' && s[i] != ',' {
			i++
		}
		rng := trimOWSRight(s[start:i])
		match := equalFoldASCII(rng, agentJSON)
		q := true // weight > 0 unless a q parameter says 0
		validQ := true
		// parameters
		for i < len(s) && s[i] == ';' {
			i++
			i = skipOWS(s, i)
			nameStart := i
			for i < len(s) && s[i] != '=' && s[i] != ';' && s[i] != ',' {
				i++
			}
			name := trimOWSRight(s[nameStart:i])
			var value string
			if i < len(s) && s[i] == '=' {
				i++
				i = skipOWS(s, i)
				if i < len(s) && s[i] == '"' {
					i++
					vs := i
					for i < len(s) && s[i] != '"' {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						i++
					}
					value = s[vs:i]
					if i < len(s) {
						i++ // closing quote
					}
					for i < len(s) && s[i] != ';' && s[i] != ',' {
						i++
					}
				} else {
					vs := i
					for i < len(s) && s[i] != ';' && s[i] != ',' {
						i++
					}
					value = trimOWSRight(s[vs:i])
				}
			}
			if len(name) == 1 && (name[0] == 'q' || name[0] == 'Q') {
				nonZero, ok := parseQValue(value)
				q, validQ = nonZero, ok
			}
		}
		if match && q && validQ {
			return true
		}
		// skip to the next element
		for i < len(s) && s[i] != ',' {
			i++
		}
		if i < len(s) {
			i++
		}
	}
	return false
}

// parseQValue reports whether a qvalue (RFC 9110 §12.4.2: "0" [ "." 0*3DIGIT ]
// / "1" [ "." 0*3("0") ]) is above zero, and whether it is well formed. A
// malformed weight makes the element not count.
func parseQValue(v string) (nonZero, ok bool) {
	if v == "" || len(v) > 5 {
		return false, false
	}
	switch v[0] {
	case '1':
		if len(v) == 1 {
			return true, true
		}
		if v[1] != '.' {
			return false, false
		}
		for i := 2; i < len(v); i++ {
			if v[i] != '0' {
				return false, false
			}
		}
		return true, true
	case '0':
		if len(v) == 1 {
			return false, true
		}
		if v[1] != '.' {
			return false, false
		}
		nz := false
		for i := 2; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return false, false
			}
			if v[i] != '0' {
				nz = true
			}
		}
		return nz, true
	}
	return false, false
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func trimOWSRight(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFoldASCII compares ASCII case-insensitively (media types are
// case-insensitive, RFC 9110 §8.3.1).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
