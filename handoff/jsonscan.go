package handoff

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The creation and verification bodies are read by this small scanner
// rather than encoding/json's Decoder: every creation attempt and every
// claim verification passes through it (garbage included), and the
// Decoder's token API allocated about a hundred times per body. It checks
// JSON syntax fully (FuzzParseAdmission compares it with encoding/json),
// reads member names and the few string values it needs, and skips the
// rest without allocating.

// maxDepth bounds nesting in skipped values.
const maxDepth = 256

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a string at the cursor: its raw content (between the quotes)
// and whether it holds escapes.
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// text decodes a string read by str; escapes are rare, and only they cost
// a decoding.
func text(raw []byte, escaped bool) (string, bool) {
	if !escaped {
		return string(raw), true
	}
	var v string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	if err := json.Unmarshal(quoted, &v); err != nil {
		return "", false
	}
	return v, true
}

// name is a member name, decoded only when it holds escapes.
func name(raw []byte, escaped bool) ([]byte, bool) {
	if !escaped {
		return raw, true
	}
	s, ok := text(raw, true)
	return []byte(s), ok
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	s.i = i
	return true
}

// skip reads and discards one value.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch s.peek() {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		s.i++
		if s.consume('}') {
			return true
		}
		for {
			if _, _, ok := s.str(); !ok || !s.consume(':') || !s.skip(depth+1) {
				return false
			}
			if s.consume('}') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case '[':
		s.i++
		if s.consume(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.consume(']') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		return false
	}
	return s.number()
}

// object walks the object at the cursor, calling member with each
// member's (decoded) name, positioned before its value; member must
// consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	if !s.consume('{') {
		return errNotObject
	}
	if s.consume('}') {
		return nil
	}
	for {
		raw, esc, ok := s.str()
		if !ok {
			return errSyntax
		}
		key, ok := name(raw, esc)
		if !ok || !utf8.Valid(key) || !s.consume(':') {
			return errSyntax
		}
		if err := member(key); err != nil {
			return err
		}
		if s.consume('}') {
			return nil
		}
		if !s.consume(',') {
			return errSyntax
		}
	}
}

// stringValue reads a string value; name is the member for messages.
func (s *scanner) stringValue(name string) (string, error) {
	switch s.peek() {
	case '"':
	case '{', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "", parseErr(name + " must be a string")
	default:
		return "", errSyntax
	}
	raw, esc, ok := s.str()
	if !ok {
		return "", errSyntax
	}
	v, ok := text(raw, esc)
	if !ok {
		return "", errSyntax
	}
	return v, nil
}

var (
	errSyntax    = parseErr("the body is not valid JSON")
	errNotObject = parseErr("the body must be a JSON object")
)

// walkBody checks that body is exactly one JSON object and walks it.
func walkBody(body []byte, member func(s *scanner, key []byte) error) error {
	s := &scanner{b: body}
	switch s.peek() {
	case '{':
	case 0:
		return errSyntax
	default:
		// Valid JSON that is not an object gets the clearer message.
		if json.Valid(body) {
			return errNotObject
		}
		return errSyntax
	}
	if err := s.object(func(key []byte) error { return member(s, key) }); err != nil {
		return err
	}
	if s.ws(); s.i != len(s.b) {
		return parseErr("the body must be one JSON object with nothing after it")
	}
	return nil
}

// folds reports whether key is want only under Unicode case folding.
func folds(key []byte, want string) bool {
	return string(key) != want && bytes.EqualFold(key, []byte(want))
}
