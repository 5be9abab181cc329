package handshake

import (
	"strings"
	"testing"
)

// An agent takes back a value it set by sending null: the field is
// empty again (a required one is missing again), in either store, the
// change log says so, the page's socket gets the null, and a socket that
// reconnects is sent it too. A field the user gave stays theirs.
func TestActionNullClears(t *testing.T) { forStores(t, testActionNullClears) }

func testActionNullClears(t *testing.T, kind string) {
	f := newFixtureOn(t, kind)
	s := f.create(contactForm)
	// The page connects first: with Redis, a batch's frames reach this
	// instance's hub through pub/sub, so a page connecting just after a
	// batch may get its done frame after the catch-up (a loaded run saw it).
	c := f.dial(s, s.Token)
	read(t, c) // connected
	a := f.agent("POST", s, "/handshake/action/", `{"intervalMs":0,"actions":[
		{"type":"set","key":"name","value":"Alice"},{"type":"set","key":"size","value":"S"},
		{"type":"set","key":"age","value":30},{"type":"set","key":"tags","value":["a"]}]}`)
	if mustJSON(t, a.json["applied"]) != `["name","size","age","tags"]` {
		t.Fatalf("set: %s", a.body)
	}
	for range 4 {
		read(t, c) // the four values
	}
	if m := read(t, c); m["type"] != "done" {
		t.Fatalf("set's done: %v", m)
	}
	a = f.agent("POST", s, "/handshake/action/", `{"intervalMs":0,"actions":[
		{"type":"set","key":"name","value":null},{"type":"set","key":"size","value":null},
		{"type":"set","key":"age","value":null},{"type":"set","key":"tags","value":null},
		{"type":"set","key":"email","value":null},{"type":"set","key":"vip"}]}`)
	if a.status != 200 || mustJSON(t, a.json["applied"]) != `["name","size","age","tags"]` || mustJSON(t, a.json["rejected"]) != `["email"]` ||
		mustJSON(t, a.json["errors"]) != `[{"key":"vip","msg":"value is required (\"value\": null clears the field)"}]` ||
		mustJSON(t, a.json["missing"]) != `["name"]` {
		t.Fatalf("clear: %d %s", a.status, a.body)
	}
	for _, k := range []string{"name", "size", "age", "tags"} {
		if m := read(t, c); m["type"] != "action" || m["key"] != k || m["value"] != nil {
			t.Fatalf("frame for %s: %v", k, m)
		}
	}
	if m := read(t, c); m["type"] != "done" || m["applied"] != 4.0 || m["cleared"] != 4.0 || mustJSON(t, m["missing"]) != `["name"]` {
		t.Fatalf("done: %v", m)
	}
	ctx := f.agent("GET", s, "/handshake/context/", "")
	for _, want := range []string{`"name":{"value":null,"by":"ai"`, `"size":{"value":null,"by":"ai"`, `"email":{"value":"bob@example.com","by":"user"`} {
		if !strings.Contains(string(ctx.body), want) {
			t.Errorf("context lacks %s: %s", want, ctx.body)
		}
	}
	d := f.agent("GET", s, "/handshake/diff/", "")
	if !strings.Contains(string(d.body), `{"key":"age","from":30,"to":null,"by":"ai"`) {
		t.Errorf("diff: %s", d.body)
	}
	// A page that reconnects is told of the clear too, not left showing 30.
	c2 := f.dial(s, s.Token)
	read(t, c2)
	if m := read(t, c2); m["type"] != "action" || m["key"] != "name" || m["value"] != nil {
		t.Errorf("catch-up after a clear: %v", m)
	}
	for range 3 {
		read(t, c2) // the rest of the catch-up: size, age, tags
	}
	// The field can be set again after a clear; a batch sent without
	// action frames still tells the page how many of it were clears.
	a = f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[{"type":"set","key":"name","value":"Bob"},{"type":"set","key":"size","value":null}]}`)
	if mustJSON(t, a.json["applied"]) != `["name","size"]` || mustJSON(t, a.json["missing"]) != `[]` {
		t.Errorf("set after clear: %s", a.body)
	}
	if m := read(t, c2); m["type"] != "done" || m["applied"] != 2.0 || m["cleared"] != 1.0 {
		t.Errorf("a no-stream batch's done: %v", m)
	}
}

// A whole number written with a fraction or an exponent is an int field's
// integer, stored as the integer; a fraction that is not zero is still a
// type mismatch, and min and max hold for the integer.
func TestActionIntegralNumbers(t *testing.T) { forStores(t, testActionIntegralNumbers) }

func testActionIntegralNumbers(t *testing.T, kind string) {
	f := newFixtureOn(t, kind)
	s := f.create(`{"mode":"form-fill","schema":[{"key":"guests","type":"int","min":1,"max":6},{"key":"n","type":"integer"},{"key":"price","type":"float"}]}`)
	a := f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[
		{"type":"set","key":"guests","value":2.0},{"type":"set","key":"n","value":-1.5e3},{"type":"set","key":"price","value":2.0}]}`)
	if mustJSON(t, a.json["applied"]) != `["guests","n","price"]` {
		t.Fatalf("whole numbers: %s", a.body)
	}
	for _, want := range []string{`"guests":{"value":2,`, `"n":{"value":-1500,`, `"price":{"value":2.0,`} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("context lacks %s: %s", want, a.body)
		}
	}
	a = f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[
		{"type":"set","key":"guests","value":2.5},{"type":"set","key":"guests","value":7.0},{"type":"set","key":"n","value":1e400}]}`)
	if mustJSON(t, a.json["applied"]) != `[]` || mustJSON(t, a.json["errors"]) != `[{"key":"guests","msg":"type mismatch, expected int"},{"key":"guests","msg":"greater than max 6"},{"key":"n","msg":"type mismatch, expected integer"}]` {
		t.Errorf("not whole numbers: %s", a.body)
	}
}
