package handshake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Schema is a form's field list as the browser sent it at session
// creation. Raw is echoed to agents unchanged (labels, examples and any
// other member included); Fields is what the type checks need.
type Schema struct {
	Raw    json.RawMessage
	Fields []Field
	index  map[string]int
}

// Field is one schema entry.
type Field struct {
	Key      string
	Type     string // as sent; "" means the SDK's default, string
	Required bool
	// options are the compact JSON values of an enum's options, each
	// ended by '\n' (which compact JSON never holds): one slice rather
	// than a slice header (24 bytes) per option, so a creation body of
	// 30,000 one-byte options costs the session its bytes, not 750 KB.
	options []byte
	// sorted holds the offsets in options of each distinct option, in
	// the order optionKey sorts them, when the field has more than
	// linearOptions: a value is then found by binary search. A linear
	// scan per array item let one action of 8,000 items against a
	// schema's 30,000 options (a 60 KB creation, no credentials) cost
	// seconds of CPU.
	sorted []uint32
	// MaxLength bounds a string value in UTF-16 code units, as a browser
	// counts an input's maxlength (the browser client sends it); 0: none.
	MaxLength int
	// Min and Max bound a number field's value (the browser client sends
	// an input's min and max, past which the page will not submit), when
	// HasMin and HasMax say so.
	Min, Max       float64
	HasMin, HasMax bool
}

// Limits on what one session may hold, so that a session (created without
// credentials by default) cannot grow without bound.
const (
	MaxFields    = 256       // schema fields, and distinct keys a session holds
	MaxKeyLen    = 256       // bytes of a key
	MaxValueLen  = 16 << 10  // bytes of one value's compact JSON
	MaxChanges   = 200       // change entries kept (the SDK's number)
	DiffDefault  = 50        // changes a diff without since returns
	maxModeLen   = 64        // bytes of a mode name
	maxSchemaLen = 256 << 10 // bytes of a schema's compact JSON
)

// ParseSchema checks a schema as the SDK would use it, refusing what would
// crash it (a non-list, fields without a key) with a message naming the
// problem. null or absent means no fields.
func ParseSchema(raw json.RawMessage) (*Schema, error) {
	s := &Schema{Raw: json.RawMessage("[]")}
	if len(raw) == 0 || string(raw) == "null" {
		return s, nil
	}
	if kindOf(raw) != kindArray {
		return nil, fmt.Errorf("schema must be an array of fields")
	}
	if len(raw) > maxSchemaLen {
		return nil, fmt.Errorf("schema is too large (at most %d bytes)", maxSchemaLen)
	}
	s.Raw = raw
	s.index = map[string]int{}
	err := array(raw, func(i int, v json.RawMessage) error {
		if i >= MaxFields {
			return fmt.Errorf("schema has more than %d fields", MaxFields)
		}
		if kindOf(v) != kindObject {
			return fmt.Errorf("schema[%d] must be an object with a key", i)
		}
		var f Field
		hasKey := false
		err := object(v, func(name string, m json.RawMessage) error {
			switch name {
			case "key":
				k, ok := jsonString(m)
				if !ok {
					return fmt.Errorf("schema[%d].key must be a string", i)
				}
				if err := checkKey(k); err != nil {
					return fmt.Errorf("schema[%d].key %v", i, err)
				}
				f.Key, hasKey = k, true
			case "type":
				if kindOf(m) == kindNull {
					return nil
				}
				t, ok := jsonString(m)
				if !ok {
					return fmt.Errorf("schema[%d].type must be a string", i)
				}
				f.Type = t
			case "required":
				f.Required = truthy(m)
			case "maxLength":
				// A positive integer bounds the field; anything else is
				// ignored, as the SDK ignores the member.
				if kindOf(m) == kindInt {
					if n, err := strconv.Atoi(string(m)); err == nil && n > 0 {
						f.MaxLength = n
					}
				}
			case "min", "max":
				// A number bounds the field; anything else is ignored, as
				// maxLength's.
				if k := kindOf(m); k == kindInt || k == kindFloat {
					if n, err := strconv.ParseFloat(string(m), 64); err == nil {
						if name == "min" {
							f.Min, f.HasMin = n, true
						} else {
							f.Max, f.HasMax = n, true
						}
					}
				}
			case "options":
				if kindOf(m) == kindNull {
					return nil
				}
				if kindOf(m) != kindArray {
					return fmt.Errorf("schema[%d].options must be an array", i)
				}
				return array(m, func(j int, o json.RawMessage) error {
					// {"value": v, "label": ...} as the SDK reads it, or a bare value.
					val := json.RawMessage("null")
					if kindOf(o) == kindObject {
						if err := object(o, func(n string, ov json.RawMessage) error {
							if n == "value" {
								val = ov
							}
							return nil
						}); err != nil {
							return fmt.Errorf("schema[%d].options[%d]: %v", i, j, err)
						}
					} else {
						val = o
					}
					if bytes.IndexByte(val, '\n') >= 0 { // raw that was not compact
						var b bytes.Buffer
						if err := json.Compact(&b, val); err != nil {
							return fmt.Errorf("schema[%d].options[%d]: %v", i, j, err)
						}
						val = b.Bytes()
					}
					f.options = append(append(f.options, val...), '\n')
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !hasKey {
			return fmt.Errorf("schema[%d].key is required", i)
		}
		f.index()
		if _, dup := s.index[f.Key]; !dup {
			s.index[f.Key] = len(s.Fields)
		}
		s.Fields = append(s.Fields, f)
		return nil
	})
	if err != nil {
		if _, ok := err.(*duplicateError); ok {
			return nil, fmt.Errorf("schema: %v", err)
		}
		if strings.HasPrefix(err.Error(), "schema") {
			return nil, err
		}
		return nil, fmt.Errorf("schema: %v", err)
	}
	return s, nil
}

// Field returns the first schema entry for key (the SDK's `next(...)`).
func (s *Schema) Field(key string) (*Field, bool) {
	if s == nil || s.index == nil {
		return nil, false
	}
	i, ok := s.index[key]
	if !ok {
		return nil, false
	}
	return &s.Fields[i], true
}

// maxListLen bounds a list in an error message (the schema's keys, an
// enum's options): the schema is the unauthenticated creator's, and
// errors repeat per action, so an answer must not grow with it.
const maxListLen = 1 << 10

// capList cuts a message's list to maxListLen bytes.
func capList(s string) string { return cut(s, maxListLen) }

// cut is s cut to at most n bytes on a rune boundary, marked with " …"
// when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + " …"
}

// KeyList names the schema's keys for a message, in schema order, then
// extra, at most maxListLen bytes of them.
func (s *Schema) KeyList(extra []string) string {
	var b []byte
	add := func(k string) bool {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, k...)
		return len(b) <= maxListLen
	}
	for _, f := range s.Fields {
		if !add(f.Key) {
			return capList(string(b))
		}
	}
	for _, k := range extra {
		if !add(k) {
			break
		}
	}
	return capList(string(b))
}

// Required lists the keys of required fields, in schema order.
func (s *Schema) Required() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, f := range s.Fields {
		if f.Required {
			out = append(out, f.Key)
		}
	}
	return out
}

func checkKey(k string) error {
	if len(k) > MaxKeyLen {
		return fmt.Errorf("is longer than %d bytes", MaxKeyLen)
	}
	return nil
}

// Normalize is the value the field stores for the agent's v: a whole
// number written with a fraction or an exponent ("2.0", "1e3") is the
// integer it is for an int field, so the page and the context get 2, not
// 2.0; any other value is v. (The SDK's Python sees 2.0 as a float and
// refuses it; JSON has one number type, and an agent means 2.)
func (f *Field) Normalize(v []byte) []byte {
	if (f.Type == "int" || f.Type == "integer") && kindOf(v) == kindFloat {
		if n, ok := integral(v); ok {
			return n
		}
	}
	return v
}

// Check is the SDK's default validator plus its enum check: "" when v
// (compact JSON) fits the field, else the SDK's message. null fits every
// field: it clears the field (the SDK's type check refused it, so an
// agent could not take back a value it had set).
func (f *Field) Check(v []byte) string {
	if string(v) == "null" {
		return ""
	}
	t := f.Type
	if t == "" {
		t = "string"
	}
	if !typeOK(v, t) {
		if t == "datetime" {
			return "type mismatch, expected datetime (YYYY-MM-DDTHH:MM:SS)"
		}
		return "type mismatch, expected " + t
	}
	if f.HasMin || f.HasMax {
		if k := kindOf(v); k == kindInt || k == kindFloat {
			n, _ := strconv.ParseFloat(string(v), 64)
			switch {
			case f.HasMin && n < f.Min:
				return "less than min " + strconv.FormatFloat(f.Min, 'g', -1, 64)
			case f.HasMax && n > f.Max:
				return "greater than max " + strconv.FormatFloat(f.Max, 'g', -1, 64)
			}
		}
	}
	if f.MaxLength > 0 && kindOf(v) == kindString && len(v)-2 > f.MaxLength {
		// (a JSON string's bytes between its quotes are never fewer than
		// its UTF-16 code units: only a longer one needs decoding)
		if s, ok := jsonString(v); ok && utf16Len(s) > f.MaxLength {
			return "longer than maxLength " + strconv.Itoa(f.MaxLength)
		}
	}
	if len(f.options) == 0 {
		return ""
	}
	switch {
	case t == "enum":
		if f.allowed(v) {
			return ""
		}
	case strings.HasPrefix(t, "array"):
		// Each item among the options (the SDK checks only for a list):
		// the bundled client lists them for a checkbox group and a
		// <select multiple>, whose page cannot hold any other value, so
		// the agent learns here rather than believing it applied.
		ok := true
		_ = array(v, func(_ int, it json.RawMessage) error {
			if ok = f.allowed(it); !ok {
				return errStop
			}
			return nil
		})
		if ok {
			return ""
		}
	default:
		return ""
	}
	var reprs []string
	f.eachOption(func(o []byte) bool {
		reprs = append(reprs, pyRepr(o))
		return true
	})
	return "value not in allowed options [" + capList(strings.Join(reprs, ", ")) + "]"
}

// eachOption calls fn with each option's compact JSON value, in order,
// until fn returns false.
func (f *Field) eachOption(fn func(o []byte) bool) {
	for rest := f.options; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if !fn(rest[:i]) {
			return
		}
		rest = rest[i+1:]
	}
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// allowed: v is one of the field's options.
func (f *Field) allowed(v []byte) bool {
	if f.sorted != nil {
		k := keyOf(v)
		i := sort.Search(len(f.sorted), func(i int) bool { return keyOf(f.optionAt(f.sorted[i])).compare(k) >= 0 })
		return i < len(f.sorted) && keyOf(f.optionAt(f.sorted[i])).compare(k) == 0
	}
	found := false
	f.eachOption(func(o []byte) bool {
		found = jsonEqual(o, v)
		return !found
	})
	return found
}

// linearOptions is how many options a field is searched through one by
// one; past it, by binary search (Field.sorted).
const linearOptions = 16

// index sorts a field's options for allowed, when it has many. Each
// option's key is made once (decoding a string with escapes allocates),
// then dropped.
func (f *Field) index() {
	n := bytes.Count(f.options, []byte{'\n'})
	if n <= linearOptions {
		return
	}
	type keyed struct {
		off uint32
		k   optionKey
	}
	all := make([]keyed, 0, n)
	for i := 0; i < len(f.options); {
		all = append(all, keyed{uint32(i), keyOf(f.optionAt(uint32(i)))})
		i += bytes.IndexByte(f.options[i:], '\n') + 1
	}
	slices.SortFunc(all, func(a, b keyed) int { return a.k.compare(b.k) })
	// One offset per distinct value: repeated options cost no index.
	all = slices.CompactFunc(all, func(a, b keyed) bool { return a.k.compare(b.k) == 0 })
	f.sorted = make([]uint32, len(all))
	for i, o := range all {
		f.sorted[i] = o.off
	}
}

// optionAt is the option starting at offset i of options.
func (f *Field) optionAt(i uint32) []byte {
	o := f.options[i:]
	return o[:bytes.IndexByte(o, '\n')]
}

// optionKey is a compact JSON value as jsonEqual compares it: a number by
// its value, a string by what it says, anything else by its bytes.
type optionKey struct {
	class uint8 // 0 number, 1 string, 2 other
	n     float64
	b     []byte
}

func keyOf(v []byte) optionKey {
	switch kindOf(v) {
	case kindInt, kindFloat:
		if n, err := strconv.ParseFloat(string(v), 64); err == nil {
			return optionKey{class: 0, n: n}
		}
	case kindString:
		if bytes.IndexByte(v, '\\') < 0 {
			return optionKey{class: 1, b: v[1 : len(v)-1]}
		}
		if s, ok := jsonString(v); ok {
			return optionKey{class: 1, b: []byte(s)}
		}
	}
	return optionKey{class: 2, b: v}
}

func (k optionKey) compare(o optionKey) int {
	if k.class != o.class {
		return cmp.Compare(k.class, o.class)
	}
	if k.class == 0 {
		return cmp.Compare(k.n, o.n)
	}
	return bytes.Compare(k.b, o.b)
}

// utf16Len is the length of s in UTF-16 code units (JavaScript's length).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

func typeOK(v []byte, t string) bool {
	k := kindOf(v)
	switch t {
	case "string", "str":
		return k == kindString
	case "int", "integer":
		return k == kindInt
	case "float", "number":
		return k == kindInt || k == kindFloat
	case "bool", "boolean":
		return k == kindBool
	case "datetime":
		s, ok := jsonString(v)
		return ok && isDateTimePrefix(s)
	}
	if strings.HasPrefix(t, "array") {
		return k == kindArray
	}
	return true // unknown types pass, as in the SDK
}

// isDateTimePrefix: s starts with YYYY-MM-DD[ T]HH:MM:SS (ASCII digits).
func isDateTimePrefix(s string) bool {
	const pattern = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(pattern) {
		return false
	}
	for i := 0; i < len(pattern); i++ {
		c := s[i]
		switch pattern[i] {
		case 'd':
			if c < '0' || c > '9' {
				return false
			}
		case 'T':
			if c != 'T' && c != ' ' {
				return false
			}
		default:
			if c != pattern[i] {
				return false
			}
		}
	}
	return true
}

// jsonEqual compares two compact JSON values; numbers compare by value
// (Python's 1 == 1.0), strings by what they say whatever their escapes
// (Python's json.dumps sends "Caf\u00e9" by default, the page's
// JSON.stringify "Café", and the SDK compares decoded values), booleans
// never equal numbers (Python's True == 1 is a quirk not worth keeping).
func jsonEqual(a, b []byte) bool { return keyOf(a).compare(keyOf(b)) == 0 }
