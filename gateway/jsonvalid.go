package gateway

import "github.com/caddy-ahp/caddy-ahp/internal/jsonstr"

// validJSON reports whether b is one valid JSON value, exactly as
// encoding/json.Valid does (same grammar, same 10000-level nesting limit,
// no UTF-8 check), but several times faster: every concierge answer is
// checked before the gateway reads or edits it, and json.Valid's
// byte-at-a-time state machine showed in profiles under load.
// FuzzValidJSON holds it to json.Valid.
func validJSON(b []byte) bool {
	i, ok := jsonValue(b, skipWS(b, 0), 1)
	return ok && skipWS(b, i) == len(b)
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonValue checks the value at b[i] and returns the offset after it.
func jsonValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return jsonString(b, i)
	case c == '{':
		return jsonObject(b, i, depth, nil)
	case c == '[':
		if depth > maxJSONDepth {
			return i, false
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = jsonValue(b, i, depth+1); !ok {
				return i, false
			}
			if i = skipWS(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case ']':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return jsonNumber(b, i)
	case c == 't':
		return jsonLiteral(b, i, "true")
	case c == 'f':
		return jsonLiteral(b, i, "false")
	case c == 'n':
		return jsonLiteral(b, i, "null")
	}
	return i, false
}

// jsonObject checks the object at b[i] == '{' at nesting depth as
// jsonValue does and returns the offset after it. With member, it leaves
// each member's value to member, which gets the member's key as written
// (escapes and all) and the value's offset, checks the value (at depth+1)
// and returns the offset after it: one walk both validates and reads.
func jsonObject(b []byte, i, depth int, member func(key []byte, v int) (int, bool)) (int, bool) {
	if depth > maxJSONDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		keyStart := i
		var ok bool
		if i, ok = jsonString(b, i); !ok {
			return i, false
		}
		key := b[keyStart+1 : i-1]
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			return i, false
		}
		if member != nil {
			i, ok = member(key, skipWS(b, i+1))
		} else {
			i, ok = jsonValue(b, skipWS(b, i+1), depth+1)
		}
		if !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func jsonLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// jsonString checks the string starting at b[i] == '"', going straight
// to each quote, backslash or control character (jsonstr.Plain).
func jsonString(b []byte, i int) (int, bool) {
	for i++; ; i++ {
		if i = jsonstr.Plain(b, i); i >= len(b) {
			return i, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		}
		// a backslash
		if i++; i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
				return i, false
			}
			i += 4
		default:
			return i, false
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// jsonNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
