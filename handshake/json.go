package handshake

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Values travel as compact JSON bytes from the request to the store and
// back to the answers: they are validated and compacted once, never decoded
// into Go values, so what the agent sent is what the page and the context
// get, byte for byte after compaction.

// kind is the JSON type of a value, in the terms of the SDK's (Python)
// type checks: a number without '.', 'e' or 'E' is an int.
type kind uint8

const (
	kindInvalid kind = iota
	kindNull
	kindBool
	kindInt
	kindFloat
	kindString
	kindArray
	kindObject
)

func kindOf(v []byte) kind {
	if len(v) == 0 {
		return kindInvalid
	}
	switch v[0] {
	case 'n':
		return kindNull
	case 't', 'f':
		return kindBool
	case '"':
		return kindString
	case '[':
		return kindArray
	case '{':
		return kindObject
	}
	if bytes.ContainsAny(v, ".eE") {
		return kindFloat
	}
	return kindInt
}

// isEmpty is the SDK's `value in (None, ”, [], {})` on compact JSON.
func isEmpty(v []byte) bool {
	switch string(v) {
	case "", "null", `""`, "[]", "{}":
		return true
	}
	return false
}

// truthy is Python truthiness of a JSON value (the SDK's `f.get('required')`).
func truthy(v []byte) bool {
	switch string(v) {
	case "", "null", "false", `""`, "[]", "{}":
		return false
	}
	if k := kindOf(v); k == kindInt || k == kindFloat {
		f, err := strconv.ParseFloat(string(v), 64)
		return err != nil || f != 0
	}
	return true
}

// compact validates raw JSON and returns it compacted into a new slice.
func compact(raw []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonString decodes a JSON string value.
func jsonString(v []byte) (string, bool) {
	if kindOf(v) != kindString {
		return "", false
	}
	if len(v) >= 2 && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true // bodies are checked UTF-8 JSON
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

const hexDigits = "0123456789abcdef"

// object walks the members of a JSON object, calling fn with each member's
// name and raw value, in order. raw must be valid UTF-8 JSON (request
// bodies are checked and compacted first by body): this is a scanner over
// valid JSON, not a validator, and allocates only for names. Duplicate names are
// refused: the SDK's json.loads keeps the last one, a browser's JSON.parse
// too, but an ambiguous body is better refused than guessed. The first
// linearNames names are compared on the stack (the common case, no
// allocation); past them a set keeps the check linear in the member count,
// which maxMembers bounds.
func object(raw []byte, fn func(name string, value json.RawMessage) error) error {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errNotObject
	}
	var names [linearNames]string
	seen := names[:0]
	var set map[string]struct{}
	members := 0
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return trailing(raw, i+1)
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return errSyntax
		}
		end := skipString(raw, i)
		name, err := decodeName(raw[i:end])
		if err != nil {
			return err
		}
		if members++; members > maxMembers {
			return errTooManyMembers
		}
		if set == nil {
			for _, n := range seen {
				if n == name {
					return &duplicateError{name}
				}
			}
			if len(seen) < linearNames {
				seen = append(seen, name)
			} else {
				set = make(map[string]struct{}, 4*linearNames)
				for _, n := range seen {
					set[n] = struct{}{}
				}
				set[name] = struct{}{}
			}
		} else {
			if _, dup := set[name]; dup {
				return &duplicateError{name}
			}
			set[name] = struct{}{}
		}
		i = skipWS(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return errSyntax
		}
		i = skipWS(raw, i+1)
		vend := skipValue(raw, i)
		if vend <= i {
			return errSyntax
		}
		if err := fn(name, raw[i:vend:vend]); err != nil {
			return err
		}
		i = skipWS(raw, vend)
		if i >= len(raw) {
			return errSyntax
		}
		if raw[i] == '}' {
			return trailing(raw, i+1)
		}
		if raw[i] != ',' {
			return errSyntax
		}
		i = skipWS(raw, i+1)
	}
	return errSyntax
}

// array walks the elements of a JSON array (valid JSON, as object).
func array(raw []byte, fn func(i int, value json.RawMessage) error) error {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return errNotArray
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return trailing(raw, i+1)
	}
	for n := 0; i < len(raw); n++ {
		end := skipValue(raw, i)
		if end <= i {
			return errSyntax
		}
		if err := fn(n, raw[i:end:end]); err != nil {
			return err
		}
		i = skipWS(raw, end)
		if i >= len(raw) {
			return errSyntax
		}
		if raw[i] == ']' {
			return trailing(raw, i+1)
		}
		if raw[i] != ',' {
			return errSyntax
		}
		i = skipWS(raw, i+1)
	}
	return errSyntax
}

func trailing(raw []byte, i int) error {
	if skipWS(raw, i) != len(raw) {
		return errTrailing
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"').
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	return j
}

// decodeName decodes a member name; names without escapes cost one copy.
func decodeName(q []byte) (string, error) {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return "", errSyntax
	}
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

const (
	// linearNames is how many member names object compares one by one
	// before it keeps them in a set.
	linearNames = 16
	// maxMembers bounds an object's members: sixteen times MaxFields, far
	// beyond any schema, context or message, and what bounds the set's
	// memory whatever the body limit.
	maxMembers = 16 * MaxFields
)

var (
	errTooManyMembers = errors.New("object has more than " + strconv.Itoa(maxMembers) + " members")
	errNotObject      = errors.New("not a JSON object")
	errNotArray       = errors.New("not a JSON array")
	errTrailing       = errors.New("data after the JSON value")
	errSyntax         = errors.New("malformed JSON")
)

type duplicateError struct{ name string }

func (e *duplicateError) Error() string { return "duplicate member " + strconv.Quote(e.name) }

// pyRepr renders a compact JSON value the way Python's repr shows the
// decoded value, for the SDK's error messages ("value not in allowed
// options ['a', 'b']").
func pyRepr(v []byte) string {
	switch kindOf(v) {
	case kindNull:
		return "None"
	case kindBool:
		if string(v) == "true" {
			return "True"
		}
		return "False"
	case kindString:
		s, _ := jsonString(v)
		q := byte('\'')
		if bytes.IndexByte([]byte(s), '\'') >= 0 && bytes.IndexByte([]byte(s), '"') < 0 {
			q = '"'
		}
		out := []byte{q}
		for _, r := range s {
			switch {
			case r == '\\' || r == rune(q):
				out = append(out, '\\', byte(r))
			case r == '\n':
				out = append(out, '\\', 'n')
			case r == '\t':
				out = append(out, '\\', 't')
			case r == '\r':
				out = append(out, '\\', 'r')
			case r < 0x20 || r == 0x7f:
				out = append(out, []byte(`\x`+string(hexDigits[r>>4])+string(hexDigits[r&0xf]))...)
			default:
				out = utf8.AppendRune(out, r)
			}
		}
		return string(append(out, q))
	case kindArray:
		var parts []string
		_ = array(v, func(_ int, e json.RawMessage) error {
			parts = append(parts, pyRepr(e))
			return nil
		})
		out := "["
		for i, p := range parts {
			if i > 0 {
				out += ", "
			}
			out += p
		}
		return out + "]"
	case kindObject:
		out := "{"
		first := true
		_ = object(v, func(name string, e json.RawMessage) error {
			if !first {
				out += ", "
			}
			first = false
			nb, _ := json.Marshal(name)
			out += pyRepr(nb) + ": " + pyRepr(e)
			return nil
		})
		return out + "}"
	}
	return string(v)
}

// maxIntegralDigits bounds the integer integral writes out: a float64
// holds integers up to about 1.8e308, and nothing past that is a number a
// page's field can hold, while "1e9999999" would be megabytes of zeros.
const maxIntegralDigits = 309

// integral returns the plain integer literal of the JSON number v when its
// value is a whole number written with a fraction or an exponent ("2.0",
// "-3.50e1", "1e3": "2", "-35", "1000"), and false for any other input (a
// fraction that is not zero, more than maxIntegralDigits digits, not a
// JSON number). JSON has one number type: an agent (or its language's
// serializer) writing 2.0 means 2. Exact, by digits: a float would round
// 12345678901234567890.0.
func integral(v []byte) ([]byte, bool) {
	i, neg := 0, false
	if i < len(v) && v[i] == '-' {
		neg, i = true, i+1
	}
	start := i
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	intPart := v[start:i]
	if len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
		return nil, false
	}
	var frac []byte
	if i < len(v) && v[i] == '.' {
		i++
		fs := i
		for i < len(v) && isDigit(v[i]) {
			i++
		}
		if frac = v[fs:i]; len(frac) == 0 {
			return nil, false
		}
	}
	exp, expNeg := 0, false
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			expNeg, i = v[i] == '-', i+1
		}
		es := i
		for i < len(v) && isDigit(v[i]) {
			if exp < 1<<20 { // past any bound below: only its sign matters then
				exp = exp*10 + int(v[i]-'0')
			}
			i++
		}
		if i == es {
			return nil, false
		}
	}
	if i != len(v) {
		return nil, false
	}
	if expNeg {
		exp = -exp
	}
	// The significant digits, and where the point falls among them.
	digits := make([]byte, 0, len(intPart)+len(frac))
	digits = append(append(digits, intPart...), frac...)
	point := len(intPart) + exp
	for len(digits) > 0 && digits[0] == '0' {
		digits, point = digits[1:], point-1
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		return []byte("0"), true // 0.0, -0e5: zero, unsigned as JSON's 0
	}
	if point < len(digits) || point > maxIntegralDigits {
		return nil, false
	}
	out := make([]byte, 0, point+1)
	if neg {
		out = append(out, '-')
	}
	out = append(out, digits...)
	for n := len(digits); n < point; n++ {
		out = append(out, '0')
	}
	return out, true
}
