package handshake

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Stream pacing bounds (the SDK sleeps intervalMs between fields without
// any bound, holding the request): an interval is capped at MaxInterval,
// and a batch's whole animation at MaxStream.
const (
	DefaultInterval = 300 * time.Millisecond
	MaxInterval     = 2 * time.Second
	MaxStream       = 10 * time.Second
	MaxActions      = 256
)

// ActionRequest is a parsed POST {prefix}/action/<sid> body.
type ActionRequest struct {
	Items    []ActionItem
	Stream   bool
	Interval time.Duration
}

// ActionItem is one element of "actions". Raw is the element as sent
// (compact), echoed in errors; Err, when set, is the SDK's error message
// for an item rejected before any check of the session. KeyErr marks an
// Err about an item whose key was read (its value too large): it is
// reported under the key, as the schema's checks are, without echoing the
// value.
type ActionItem struct {
	Raw    json.RawMessage
	Type   string // "" when absent
	Key    string
	Value  json.RawMessage // compact; "null" when absent
	Err    string
	KeyErr bool
}

// requestError is a 400 with the SDK's {"error": msg} body.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, a ...any) error { return &requestError{fmt.Sprintf(format, a...)} }

// body checks a request body: valid UTF-8 (WebSocket text frames must be),
// valid JSON, and returns it compacted so that every value cut from it is
// compact too.
func body(raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, badRequest("request body must be UTF-8 JSON")
	}
	c, err := compact(raw)
	if err != nil {
		return nil, badRequest("invalid JSON body")
	}
	return c, nil
}

const msgValueRequired = `value is required ("value": null clears the field)`

const msgActionsRequired = `actions is required, e.g. {"actions":[{"type":"set","key":"name","value":"Ada"}]}`

// ParseActionRequest parses an action body. form selects the form-fill
// rules for "type" (required to be "set"); generic modes default it to set.
func ParseActionRequest(raw []byte, form bool) (*ActionRequest, error) {
	raw, err := body(raw)
	if err != nil {
		return nil, err
	}
	if kindOf(raw) != kindObject {
		return nil, badRequest("request body must be a JSON object")
	}
	req := &ActionRequest{Stream: true, Interval: DefaultInterval}
	var actions json.RawMessage
	err = object(raw, func(name string, v json.RawMessage) error {
		switch name {
		case "actions":
			actions = v
		case "stream":
			// The SDK reads body.get('stream', True) by truthiness: null,
			// 0 and 1 are what agents send besides booleans. A string or
			// a container is refused rather than guessed ("false" would
			// be truthy).
			switch kindOf(v) {
			case kindBool, kindNull, kindInt, kindFloat:
				req.Stream = truthy(v)
			default:
				return badRequest("stream must be true or false")
			}
		case "intervalMs":
			if string(v) == "null" {
				return nil
			}
			k := kindOf(v)
			if k != kindInt && k != kindFloat {
				return badRequest("intervalMs must be a number")
			}
			ms, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return badRequest("intervalMs must be a number")
			}
			ms = max(0, min(ms, float64(MaxInterval/time.Millisecond)))
			req.Interval = time.Duration(ms * float64(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		if re, ok := err.(*requestError); ok {
			return nil, re
		}
		return nil, badRequest("invalid JSON body: %v", err)
	}
	// The SDK answers a body without actions ok and does nothing: an agent
	// that guessed {"email": "…"} was told it worked. An explicit [] is
	// still an empty batch.
	if len(actions) == 0 || string(actions) == "null" {
		return nil, badRequest(msgActionsRequired)
	}
	if kindOf(actions) != kindArray {
		return nil, badRequest("actions must be an array")
	}
	err = array(actions, func(i int, v json.RawMessage) error {
		if i >= MaxActions {
			return badRequest("too many actions (at most %d per request)", MaxActions)
		}
		req.Items = append(req.Items, parseItem(v, form))
		return nil
	})
	if err != nil {
		if re, ok := err.(*requestError); ok {
			return nil, re
		}
		return nil, badRequest("invalid JSON body: %v", err)
	}
	return req, nil
}

func parseItem(v json.RawMessage, form bool) ActionItem {
	it := ActionItem{Raw: v, Value: json.RawMessage("null")}
	if kindOf(v) != kindObject {
		it.Err = "action must be an object"
		return it
	}
	var typ, key json.RawMessage
	hasValue := false
	err := object(v, func(name string, m json.RawMessage) error {
		switch name {
		case "type":
			typ = m
		case "key":
			key = m
		case "value":
			it.Value, hasValue = m, true
		}
		return nil
	})
	if err != nil {
		it.Err = "invalid action: " + err.Error()
		return it
	}
	// The SDK's order: type, then key.
	switch {
	case form && typ == nil:
		it.Err = "unsupported action type"
		return it
	case typ == nil:
		it.Type = "set"
	default:
		t, ok := jsonString(typ)
		if !ok || t != "set" {
			if form {
				it.Err = "unsupported action type"
			} else {
				it.Err = "unsupported action type: " + pyStr(typ)
			}
			return it
		}
		it.Type = t
	}
	if key == nil || string(key) == "null" {
		it.Err = "missing key"
		return it
	}
	k, ok := jsonString(key)
	if !ok {
		it.Err = "key must be a string"
		return it
	}
	if err := checkKey(k); err != nil {
		it.Err = "key " + err.Error()
		return it
	}
	it.Key = k
	// null clears a form's field: a set without a value is more likely an
	// agent's slip than a wish to empty the field (the SDK wrote None).
	if form && !hasValue {
		it.Err, it.KeyErr = msgValueRequired, true
		return it
	}
	if len(it.Value) > MaxValueLen {
		it.Err, it.KeyErr = fmt.Sprintf("value is larger than %d bytes", MaxValueLen), true
	}
	return it
}

// pyStr is Python's str() of a decoded JSON value.
func pyStr(v []byte) string {
	if s, ok := jsonString(v); ok {
		return s
	}
	return pyRepr(v)
}
