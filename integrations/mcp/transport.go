package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Pools for request bodies and rendered responses: MCP messages are small
// and a busy agent sends many.
var (
	bufPool   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	bytesPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// putBytes returns the slice grown from *p to the pool.
func putBytes(p *[]byte, grown []byte) {
	if cap(grown) > 256<<10 {
		return
	}
	*p = grown[:0]
	bytesPool.Put(p)
}

// ServeHTTP answers one HTTP request to the MCP endpoint, in the revision
// the request speaks (see decideEra). Tool calls run through the gateway's
// entry point and status reads through its status path, with next (the
// site's route to its concierge) behind; the content document is read from
// its local file or through next. It writes the response itself; the
// error is nil unless the client went away.
//
// What it charges: a tools/call is charged by the gateway (the client's
// tier by capability and credentials, the agent's window and the
// session's turn, or, refused before it became a converse request, the
// client's tier through gateway.Refused); a read of an async status URI as
// the status path charges it; everything else the request holds, and any
// request refused as a whole, the static tier, once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next gateway.Next) error {
	origin, cross, ok := s.checkOrigin(r)
	if !ok {
		s.fail(w, r, &transportError{http.StatusForbidden, nil, &rpcError{code: codeInvalidRequest,
			message: "forbidden: Origin " + strconv.Quote(origin) + " may not use this MCP endpoint (only its own origin and the configured ones may)"}})
		return nil
	}
	if cross {
		setCORS(w.Header(), origin)
	}
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		if !s.static(w, r, nil) {
			return nil
		}
		if origin != "" {
			preflight(w, r)
			return nil
		}
		w.Header()["Allow"] = []string{"POST, OPTIONS"}
		w.WriteHeader(http.StatusNoContent)
		return nil
	default:
		// No server-to-client stream to GET (2026-07-28 removed it) and
		// no session to DELETE (the server is stateless): 405.
		w.Header()["Allow"] = []string{"POST, OPTIONS"}
		s.fail(w, r, &transportError{http.StatusMethodNotAllowed, nil, invalid("method " + r.Method +
			" is not allowed: this MCP endpoint takes JSON-RPC over POST (it offers no SSE stream and keeps no sessions)")})
		return nil
	}
	// The media type, parameters aside, without mime.ParseMediaType's
	// allocations on every call.
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		s.fail(w, r, &transportError{http.StatusUnsupportedMediaType, nil, invalid("Content-Type must be application/json")})
		return nil
	}

	in := getBuf()
	defer putBuf(in)
	tooLarge, err := bridge.ReadBody(in, r.Body, s.maxRequest)
	limit := s.maxRequest
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			// A body cut short (a client reset, a truncated chunked
			// body): refused and charged like any malformed request, as
			// the converse gateway and the OpenAPI door do.
			s.fail(w, r, &transportError{http.StatusBadRequest, nil, invalid("the request body could not be read")})
			return nil
		}
		// The site's smaller cap (request_body max_size) was hit: name it.
		tooLarge, limit = true, min(limit, mbe.Limit)
	}
	if tooLarge {
		httpx.CloseAfter(w.Header(), r)
		s.fail(w, r, &transportError{http.StatusRequestEntityTooLarge, nil, invalid("the body exceeds " + strconv.FormatInt(limit, 10) + " bytes")})
		return nil
	}
	msgs, batch, rerr := decodeBody(in.Bytes())
	if rerr != nil {
		s.fail(w, r, &transportError{http.StatusBadRequest, nil, rerr})
		return nil
	}
	e, terr := s.decideEra(r.Header, msgs, batch)
	if terr == nil && e.modern {
		terr = checkModern(r.Header, &msgs[0])
	}
	if terr != nil {
		s.fail(w, r, terr)
		return nil
	}

	// One static charge for everything that is not a capability call.
	for i := range msgs {
		if s.staticCharged(r, &msgs[i]) {
			if !s.static(w, r, msgs) {
				return nil
			}
			break
		}
	}

	var site siteRead
	defer site.release()
	obp := bytesPool.Get().(*[]byte)
	ob := *obp
	defer func() { putBytes(obp, ob) }()
	status := http.StatusOK
	replies, requests := 0, 0
	// spans locate each response in ob, for SSE framing.
	var spanBuf [1][2]int
	spans := spanBuf[:0]
	for i := range msgs {
		m := &msgs[i]
		var rep reply
		switch {
		case m.err != nil:
			rep.err = m.err
			if m.notRequest || e.modern || m.id == nil {
				// Streamable HTTP, every revision: a notification or a
				// response the server cannot accept MUST get an HTTP
				// error status. A request's refusal stays a JSON-RPC
				// error in a 200 before 2026-07-28, which SDK clients
				// show as such rather than as a transport failure;
				// unless its id could not be read (null, 1.5, an
				// object): no client can match an answer without one,
				// and would wait for it until its own timeout.
				rep.status = http.StatusBadRequest
			}
			if !m.notRequest {
				requests++
			}
		case m.response, m.id == nil:
			continue // a client response or a notification: nothing to answer
		case batch && m.method == "initialize":
			// MCP 2025-03-26, the one revision with batches: "the
			// initialization request MUST NOT be part of a JSON-RPC batch".
			requests++
			rep.err = batchedInitialize
		default:
			requests++
			rep = s.handle(w, r, m, e, next, &site)
		}
		if batch {
			if replies == 0 {
				ob = append(ob, '[')
			} else {
				ob = append(ob, ',')
			}
		} else if rep.status != 0 {
			status = rep.status
		}
		start := len(ob)
		if rep.err != nil {
			ob = appendError(ob, m.id, rep.err)
		} else {
			ob = appendResult(ob, m.id, rep.result)
		}
		spans = append(spans, [2]int{start, len(ob)})
		replies++
	}
	if replies == 0 {
		// Only notifications and responses: 202 without a body
		// (Streamable HTTP).
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if batch {
		ob = append(ob, ']')
		if requests == 0 {
			// Nothing but refused notifications and responses: the
			// batch as a whole was not accepted.
			status = http.StatusBadRequest
		}
	}
	s.write(w, r, status, ob, spans)
	return nil
}

// staticCharged reports whether a message is charged the static tier:
// everything but a tools/call request (the gateway charges it) and a read
// of an async status URI (the status path charges it).
func (s *Server) staticCharged(r *http.Request, m *message) bool {
	if m.err != nil || m.response || m.id == nil || s.gw == nil {
		return true
	}
	switch m.method {
	case "tools/call":
		return false
	case "resources/read":
		// Params readResource cannot read are refused there uncharged:
		// they are charged static here, read as it reads them.
		var p readParams
		if json.Unmarshal(m.params, &p) == nil && p.URI != nil {
			if _, _, kind := s.resolve(r, *p.URI); kind == readStatus {
				return false
			}
		}
	}
	return true
}

// static charges the static tier; when it refuses, it answers the request
// (HTTP 429 or 503, a JSON-RPC error whose code is that status and whose
// data is the AHP error body) and returns false.
func (s *Server) static(w http.ResponseWriter, r *http.Request, msgs []message) bool {
	refusal := bridge.ChargeStatic(s.limits, w.Header(), r)
	if refusal == nil {
		return true
	}
	var id json.RawMessage
	if len(msgs) == 1 {
		id = msgs[0].id
	}
	s.writeHTTPError(w, r, refusal.Status, id, ahpRPCError(refusal.Status, refusal.Body))
	return false
}

// ahpRPCError carries an AHP error body refusing a whole request: the code
// is the HTTP status (outside JSON-RPC's reserved range), the message
// "code: message", the data the body.
func ahpRPCError(status int, body []byte) *rpcError {
	var b struct{ Code, Message string }
	_ = json.Unmarshal(body, &b)
	return &rpcError{code: status, message: b.Code + ": " + b.Message, data: bytes.TrimSpace(body)}
}

// Refuse answers a request refused before this door saw it (the verified
// agents step's refusal of an invalid signature) as the door answers its
// own refusals of a whole request: e's status, and a JSON-RPC error whose
// code is that status, whose message is e's code and message and whose
// data is e's AHP body (id null: the request was not read). Not charged:
// the refusal's own step decides that.
func (s *Server) Refuse(w http.ResponseWriter, r *http.Request, e *ahperror.Error) {
	s.writeHTTPError(w, r, e.Status, nil, &rpcError{code: e.Status, message: e.Code + ": " + e.Message, data: bytes.TrimSpace(e.AppendJSON(nil))})
}

// fail refuses a whole request after charging it to the static tier (or
// answers the 429 the charge produced).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *transportError) {
	refusal := bridge.ChargeStatic(s.limits, w.Header(), r)
	if refusal != nil {
		s.writeHTTPError(w, r, refusal.Status, e.id, ahpRPCError(refusal.Status, refusal.Body))
		return
	}
	s.writeHTTPError(w, r, e.status, e.id, e.err)
}

// write sends JSON-RPC output. An answer in a 200 is application/json, or
// one SSE event per response (spans locate them in body) for a client
// that accepts only text/event-stream: Streamable HTTP lets the server
// answer a request either way. Any other status is a refusal of the HTTP
// request, always application/json: clients read an error status's body
// as JSON, if at all (2026-07-28 § Backward Compatibility has them look in
// a 400 or 404 for a modern JSON-RPC error before falling back to
// initialize), never as an event stream.
func (s *Server) write(w http.ResponseWriter, r *http.Request, status int, body []byte, spans [][2]int) {
	h := w.Header()
	v := make([]string, 5)
	v[0], v[1] = "no-store", "nosniff"
	h["Cache-Control"], h["X-Content-Type-Options"] = v[0:1:1], v[1:2:2]
	if status != http.StatusOK || !sseOnly(r.Header["Accept"]) {
		v[2], v[3] = "application/json", strconv.Itoa(len(body))
		h["Content-Type"], h["Content-Length"] = v[2:3:3], v[3:4:4]
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	// 2026-07-28 § Receiving Messages: a server SHOULD send
	// X-Accel-Buffering: no with an SSE stream, so that proxies pass
	// events on as they come.
	v[2], v[4] = "text/event-stream", "no"
	h["Content-Type"], h["X-Accel-Buffering"] = v[2:3:3], v[4:5:5]
	w.WriteHeader(status)
	for _, sp := range spans {
		// encoding/json output has no raw newlines: one data line.
		_, _ = io.WriteString(w, "event: message\ndata: ")
		_, _ = w.Write(body[sp[0]:sp[1]])
		_, _ = io.WriteString(w, "\n\n")
	}
}

// sseOnly reports an Accept that admits text/event-stream (by name or as
// text/*) and no media range covering application/json; a range with q=0
// is not acceptable (RFC 9110 § 12.4.2). It reads the header in place:
// every answer asks it.
func sseOnly(accept []string) bool {
	sse, js := false, false
	for _, v := range accept {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			mt, params, _ := strings.Cut(part, ";")
			if mt = strings.TrimSpace(mt); zeroQ(params) {
				continue
			}
			switch {
			case strings.EqualFold(mt, "text/event-stream"), strings.EqualFold(mt, "text/*"):
				sse = true
			case strings.EqualFold(mt, "application/json"), strings.EqualFold(mt, "application/*"), mt == "*/*":
				js = true
			}
		}
	}
	return sse && !js
}

// zeroQ reports media range parameters whose weight is zero: q=0, or 0.
// with zeros after the point.
func zeroQ(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, q, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q = strings.TrimSpace(q)
		if q == "" || q[0] != '0' {
			return false
		}
		return q == "0" || q[1] == '.' && strings.TrimRight(q[2:], "0") == ""
	}
	return false
}

// writeHTTPError answers a request refused as a whole: an HTTP error status
// with a JSON-RPC error as the body, which SDK clients surface.
func (s *Server) writeHTTPError(w http.ResponseWriter, r *http.Request, status int, id json.RawMessage, e *rpcError) {
	s.write(w, r, status, appendError(nil, id, e), nil)
}
