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
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

const hexDigits = "0123456789abcdef"

// object walks the members of a JSON object, calling fn with each member's
// name and raw value, in order. Duplicate names are refused: the SDK's
// json.loads keeps the last one, a browser's JSON.parse too, but an
// ambiguous body is better refused than guessed.
func object(raw []byte, fn func(name string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	seen := make(map[string]struct{}, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string)
		if _, dup := seen[name]; dup {
			return &duplicateError{name}
		}
		seen[name] = struct{}{}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := fn(name, v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if dec.More() {
		return errTrailing
	}
	if _, err := dec.Token(); err == nil {
		return errTrailing
	}
	return nil
}

// array walks the elements of a JSON array.
func array(raw []byte, fn func(i int, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return errNotArray
	}
	for i := 0; dec.More(); i++ {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := fn(i, v); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

var (
	errNotObject = errors.New("not a JSON object")
	errNotArray  = errors.New("not a JSON array")
	errTrailing  = errors.New("data after the JSON value")
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
