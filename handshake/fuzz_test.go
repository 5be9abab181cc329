package handshake

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseActionRequest: any body is a clear error or a parsed request
// whose writes carry a checked key and a valid, compact JSON value.
func FuzzParseActionRequest(f *testing.F) {
	for _, s := range []string{
		benchAction, `{"actions":[{"type":"set","key":"a","value":{"x":[1,"\u00e9"]}}],"stream":true,"intervalMs":1e9}`,
		`{"actions":[1,null,{"key":null},{"type":"set"},{"type":"x","key":"k"}]}`, `{"actions":{}}`, `[]`, `{"a":1,"a":2}`,
		"{\"actions\":[{\"type\":\"set\",\"key\":\"\\\"q\\\\\",\"value\":\"\xff\"}]}", ` { "actions" : [ ] } `,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, form bool) {
		req, err := ParseActionRequest(raw, form)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if req.Interval < 0 || req.Interval > MaxInterval || len(req.Items) > MaxActions {
			t.Fatalf("bounds: %+v", req)
		}
		for _, it := range req.Items {
			if !json.Valid(it.Raw) {
				t.Fatalf("raw item not JSON: %q", it.Raw)
			}
			if it.Err != "" {
				continue
			}
			if !json.Valid(it.Value) || len(it.Value) > MaxValueLen || len(it.Key) > MaxKeyLen {
				t.Fatalf("bad write %+v", it)
			}
			c, _ := compact(it.Value)
			if string(c) != string(it.Value) {
				t.Fatalf("value not compact: %q", it.Value)
			}
		}
	})
}

// FuzzObject holds the scanner to encoding/json: for any valid UTF-8 JSON
// object without duplicate names, object yields exactly its members. Other
// input only must not panic: object's callers hand it bodies that body has
// checked, and encoding/json turns invalid UTF-8 in a name into U+FFFD
// where the scanner keeps the bytes (a difference no request can reach).
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[{"c":"}"}],"d\"e":"\\"}`, `{"a":"x\u0022y"}`, ` {"a" : { } } `, `{"":null}`, "{\"\xfa\":{}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want map[string]json.RawMessage
		if !utf8.Valid(raw) || json.Unmarshal(raw, &want) != nil || want == nil {
			_ = object(raw, func(string, json.RawMessage) error { return nil }) // no panic
			return
		}
		got := map[string]json.RawMessage{}
		err := object(raw, func(name string, v json.RawMessage) error {
			got[name] = v
			return nil
		})
		if err != nil {
			if _, dup := err.(*duplicateError); dup || err == errTooManyMembers {
				return
			}
			t.Fatalf("object(%q): %v", raw, err)
		}
		if len(got) != len(want) {
			t.Fatalf("object(%q): %d members, want %d", raw, len(got), len(want))
		}
		for k, v := range want {
			var a, b any
			_ = json.Unmarshal(v, &a)
			if err := json.Unmarshal(got[k], &b); err != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("object(%q)[%q] = %q, want %q", raw, k, got[k], v)
			}
		}
	})
}

// FuzzCreate: any creation body is a clear error or a session whose
// schema and context are valid JSON within the limits.
func FuzzCreate(f *testing.F) {
	f.Add([]byte(contactForm))
	f.Add([]byte(`{"mode":"pairing","data":{"a":1},"schema":[{"key":"k","options":[1,{"value":"x"},{"label":"no value"}]}]}`))
	f.Add([]byte(`{"schema":[{"key":"a","type":5}],"context":{"a":[]}}`))
	f.Add([]byte(`{"schema":[{"key":"code","maxLength":5},{"key":"b","maxLength":"5"},{"key":"c","maxLength":-1}]}`))
	f.Add([]byte(`{"schema":[{"key":"c","type":"array<string>","options":[{"value":"red"},"blue",{"value":[1, 2]},2.0]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := parseCreate(raw)
		if err != nil {
			return
		}
		st, err := initialState(req, isForm(req.mode), 0)
		if err != nil {
			return
		}
		if !json.Valid(req.schema.Raw) || !json.Valid(req.meta) || len(st.Keys) > MaxFields || !printable(req.mode) {
			t.Fatalf("accepted %q", raw)
		}
		for _, fd := range req.schema.Fields {
			fd.Check([]byte(`"x"`)) // no panic
			fd.Check([]byte(`["x",1,[{}]]`))
			if strings.HasPrefix(fd.Type, "array") && fd.options != nil {
				var opts [][]byte
				fd.eachOption(func(o []byte) bool { opts = append(opts, o); return true })
				all := append([]byte{'['}, bytes.Join(opts, []byte{','})...)
				if msg := fd.Check(append(all, ']')); msg != "" {
					t.Fatalf("a list of the field's own options refused (%s): %q", msg, raw)
				}
			}
			if fd.MaxLength > 0 && fd.MaxLength < 1000 && fd.Check([]byte(`"`+strings.Repeat("é", fd.MaxLength+1)+`"`)) == "" {
				t.Fatalf("maxLength %d let a longer string pass: %q", fd.MaxLength, raw)
			}
		}
	})
}

// FuzzRoutes: a spelling that decodes, cleans or case-folds to one of the
// endpoints is never passed to the site.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"/handshake/context/abc", "/Handshake/session", "/handshake//action/x", "/handshake/%2e/session",
		"/ws/handshake/a;b", "/handshake/session/x/extend/", "/handshake/client.js", "/index.html", "/handshake%2fsession",
		"/hooks/create", "/HOOKS/create/", "/hooks/create.php", "/hooks/created"} {
		f.Add(s)
	}
	rs, err := newRoutes(DefaultPrefix, DefaultWSPrefix, []string{"/hooks/create"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil || !strings.HasPrefix(p, "/") {
			return
		}
		rt, sid, variant := rs.match(u)
		if rt != routeNone && (variant || (sid == "") != (rt == routeCreate || rt == routeClientJS || rt == routeHook)) {
			t.Fatalf("%q: route %v sid %q variant %v", p, rt, sid, variant)
		}
		dec, err := url.PathUnescape(u.EscapedPath())
		if err != nil {
			return
		}
		clean := strings.ToLower(path.Clean(dec))
		cu := &url.URL{Path: clean}
		if x, _, _ := rs.match(cu); x != routeNone && rt == routeNone && !variant {
			t.Fatalf("%q cleans to %q (%s) but passes to the site", p, clean, x.name())
		}
	})
}

// FuzzEdit: user edits (notify bodies and WebSocket frames).
func FuzzEdit(f *testing.F) {
	f.Add([]byte(`{"key":"a","value":{"b":[1]}}`))
	f.Add([]byte(`{"type":"userEdit","key":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, v, err := parseEdit(raw)
		if err == nil && (!json.Valid(v) || len(k) > MaxKeyLen) {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// FuzzSince: diff's since parameter.
func FuzzSince(f *testing.F) {
	f.Add("2026-01-02T15:04:05.123456+00:00")
	f.Add("2026-01-02 15:04")
	f.Fuzz(func(t *testing.T, s string) { parseSince(s) })
}

// FuzzIntegral: integral agrees with exact rational arithmetic on every
// JSON number (and refuses anything else): it answers a whole number's
// plain literal, and false for a fraction or a value past its bound.
func FuzzIntegral(f *testing.F) {
	for _, s := range []string{"2.0", "2.5", "-0.0", "1e3", "1E+2", "12345678901234567890.000", "-3.50e1", "0.5e1",
		"1e-1", "100e-2", "1e309", "1e308", "00.0", "1.", ".5", "-", "1e", "1e99999999999", "0e99999999999", "2.0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := integral([]byte(s))
		if !json.Valid([]byte(s)) || kindOf([]byte(s)) < kindInt || kindOf([]byte(s)) > kindFloat || strings.TrimSpace(s) != s {
			if ok {
				t.Fatalf("integral(%q) = %s for no JSON number", s, got)
			}
			return
		}
		// big.Rat's exponent work is unbounded: keep the oracle to sane ones.
		if e := strings.IndexAny(s, "eE"); e >= 0 && len(strings.TrimLeft(s[e+1:], "+-0")) > 4 {
			return
		}
		r, okR := new(big.Rat).SetString(s)
		if !okR {
			t.Fatalf("big.Rat cannot read %q", s)
		}
		want := r.IsInt() && len(strings.TrimPrefix(r.Num().String(), "-")) <= maxIntegralDigits
		if ok != want {
			t.Fatalf("integral(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && string(got) != r.Num().String() {
			t.Fatalf("integral(%q) = %s, want %s", s, got, r.Num().String())
		}
	})
}
