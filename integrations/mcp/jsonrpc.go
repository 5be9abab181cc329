package mcp

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// JSON-RPC 2.0 error codes and the MCP ones.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
	// codeResourceNotFound is resource not found up to 2025-11-25;
	// 2026-07-28 answers codeInvalidParams instead.
	codeResourceNotFound = -32002
	// 2026-07-28 (MCP's reserved range).
	codeHeaderMismatch     = -32020
	codeUnsupportedVersion = -32022
)

// maxBatch bounds the messages of one batch: each tools/call in it runs the
// whole pipeline, and one HTTP request should not hold a worker for long.
const maxBatch = 32

// rpcError is a JSON-RPC error object.
type rpcError struct {
	code    int
	message string
	data    json.RawMessage // a JSON value or nil
}

// message is one decoded JSON-RPC message.
type message struct {
	// id is the raw request id (a JSON string or number), nil for a
	// notification.
	id     json.RawMessage
	method string
	params json.RawMessage
	// response marks a JSON-RPC response sent by the client; the server
	// sends no requests, so these are acknowledged and dropped.
	response bool
	// err is set when the message is not a valid request; id is then
	// the request's id if it could be read, else nil (null).
	err *rpcError
	// notRequest marks an invalid message that reads as a notification
	// (a method, no id) or a response (a result or an error, no method):
	// Streamable HTTP answers those with an HTTP error status and a
	// JSON-RPC error without an id.
	notRequest bool
	// meta caches readMeta(params): a 2026-07-28 request's _meta is
	// needed to pick the era and again to check it against the headers.
	meta     requestMeta
	metaRead bool
	metaOK   bool
}

// decodeBody parses an HTTP request body: one JSON-RPC message or a batch
// (a JSON array of them). A parse error or a body that is neither object
// nor array is returned as err; invalid members of a batch are messages
// with err set, answered in place as JSON-RPC 2.0 requires.
func decodeBody(body []byte) (msgs []message, batch bool, err *rpcError) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return nil, false, &rpcError{code: codeParseError, message: "parse error: the body is not valid JSON"}
	}
	switch body[0] {
	case '{':
		return []message{decodeMessage(body)}, false, nil
	case '[':
		var raws []json.RawMessage
		if json.Unmarshal(body, &raws) != nil || len(raws) == 0 {
			return nil, true, &rpcError{code: codeInvalidRequest, message: "invalid request: an empty batch"}
		}
		if len(raws) > maxBatch {
			return nil, true, &rpcError{code: codeInvalidRequest, message: "invalid request: a batch holds at most " + strconv.Itoa(maxBatch) + " messages"}
		}
		msgs = make([]message, len(raws))
		for i, raw := range raws {
			msgs[i] = decodeMessage(raw)
		}
		return msgs, true, nil
	}
	return nil, false, &rpcError{code: codeInvalidRequest, message: "invalid request: a JSON-RPC message must be an object"}
}

// decodeMessage validates one message of valid JSON. Member names are
// matched exactly (a map, not encoding/json's case-insensitive struct
// matching); unknown members are ignored. An invalid message shaped as a
// notification (a method, no id) or a response (a result or an error, no
// method) is marked notRequest, without an id.
func decodeMessage(raw json.RawMessage) message {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return message{err: invalid("a JSON-RPC message must be an object")}
	}
	m := checkMessage(obj)
	if m.err != nil {
		_, hasID := obj["id"]
		_, hasMethod := obj["method"]
		_, result := obj["result"]
		_, rpcErr := obj["error"]
		if (hasMethod && !hasID) || (!hasMethod && (result || rpcErr)) {
			m.notRequest, m.id = true, nil
		}
	}
	return m
}

// checkMessage reads a message's members; err is set when it is not a
// valid request, notification or response.
func checkMessage(obj map[string]json.RawMessage) message {
	var m message
	method, hasMethod := obj["method"]
	if id, ok := obj["id"]; ok {
		if !validID(id) {
			// MCP: "the ID MUST NOT be null", and a string or an
			// integer. The answer has no id: this one cannot be echoed.
			m.err = invalid(`"id" must be a string or an integer (plain digits, at most 2^53-1 in magnitude)`)
			return m
		}
		m.id = id
	}
	if v, ok := obj["jsonrpc"]; !ok || string(v) != `"2.0"` {
		m.err = invalid(`"jsonrpc" must be "2.0"`)
		return m
	}
	if !hasMethod {
		_, result := obj["result"]
		_, rpcErr := obj["error"]
		if (result || rpcErr) && m.id != nil {
			return message{response: true}
		}
		m.err = invalid(`"method" is missing`)
		return m
	}
	if json.Unmarshal(method, &m.method) != nil || m.method == "" {
		m.err = invalid(`"method" must be a non-empty string`)
		return m
	}
	if p, ok := obj["params"]; ok {
		switch p[0] {
		case '{', '[':
			m.params = p
		case 'n': // null: as if absent
		default:
			m.err = invalid(`"params" must be an object`)
		}
	}
	return m
}

// batchedInitialize answers an initialize sent inside a batch.
var batchedInitialize = invalid("initialize must be sent alone, not in a JSON-RPC batch (MCP 2025-03-26)")

func invalid(what string) *rpcError {
	return &rpcError{code: codeInvalidRequest, message: "invalid request: " + what}
}

// maxID is the largest id magnitude accepted: 2^53-1, the integers every
// client round-trips exactly (JavaScript numbers; the Go SDK decodes ids
// through float64).
const maxID = 1<<53 - 1

// validID reports a request id MCP admits: a string or an integer (basic
// § Requests: "a string or integer ID"; JSON-RPC: numbers SHOULD NOT have
// fractional parts). The id is echoed as it came, so an integer must be
// written plainly (no fraction, no exponent: not 1.0 or 1e3) and lie
// within ±maxID: beyond it, clients decode the echo to another number
// than the one they sent, and cannot match the answer. -0 is an integer
// in JSON's grammar and every client decodes it as 0. id is a JSON value
// from a valid document.
func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	if id[0] == '"' {
		return true
	}
	digits := id
	if digits[0] == '-' {
		digits = digits[1:]
	}
	// maxID has 16 digits: a longer run is out of range, and 16 digits
	// cannot overflow n.
	if len(digits) == 0 || len(digits) > 16 {
		return false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	return n <= maxID
}

// appendResult appends a JSON-RPC result response.
func appendResult(dst []byte, id, result []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// appendError appends a JSON-RPC error response. A nil id (one that
// could not be read) is left out, as MCP's transports say: their schemas
// admit no null id, and the TypeScript SDK rejects one.
func appendError(dst []byte, id []byte, e *rpcError) []byte {
	dst = append(dst, `{"jsonrpc":"2.0",`...)
	if id != nil {
		dst = append(dst, `"id":`...)
		dst = append(dst, id...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.code), 10)
	dst = append(dst, `,"message":`...)
	dst = jsonstr.AppendString(dst, e.message)
	if e.data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.data...)
	}
	return append(dst, "}}"...)
}
