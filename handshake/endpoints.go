package handshake

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// createRequest is a parsed POST {prefix}/session body.
type createRequest struct {
	mode    string
	schema  *Schema
	context json.RawMessage // object, "{}" when absent
	data    json.RawMessage // generic modes' alternative to context
	meta    json.RawMessage // object, "{}" when absent
}

// parseCreate checks a session-creation body. The SDK answers bad JSON
// as if it were {} and crashes (500) on non-objects; we answer 400.
func parseCreate(raw []byte) (*createRequest, error) {
	raw, err := body(raw)
	if err != nil {
		return nil, err
	}
	if kindOf(raw) != kindObject {
		return nil, badRequest("request body must be a JSON object")
	}
	req := &createRequest{mode: "default", context: json.RawMessage("{}"), meta: json.RawMessage("{}")}
	var schema json.RawMessage
	err = object(raw, func(name string, v json.RawMessage) error {
		switch name {
		case "mode":
			if string(v) == "null" {
				return nil
			}
			m, ok := jsonString(v)
			if !ok || m == "" || len(m) > maxModeLen || !printable(m) {
				return badRequest("mode must be a non-empty string of at most %d printable characters", maxModeLen)
			}
			req.mode = m
		case "schema":
			schema = v
		case "context", "data", "meta":
			if string(v) == "null" {
				return nil
			}
			if kindOf(v) != kindObject {
				return badRequest("%s must be a JSON object", name)
			}
			switch name {
			case "context":
				req.context = v
			case "data":
				req.data = v
			default:
				req.meta = v
			}
		}
		return nil
	})
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, badRequest("invalid JSON body: %v", err)
	}
	// The schema and meta are kept for the session's life (by the record
	// cache too): copied out of the body, so a padded body is not kept.
	req.meta = bytes.Clone(req.meta)
	if req.schema, err = ParseSchema(bytes.Clone(schema)); err != nil {
		return nil, badRequest("%v", err)
	}
	return req, nil
}

// printable: no control characters, C0, DEL or C1, and no line or
// paragraph separator (a newline in a mode, or a NEL, U+0085, which
// Python's splitlines and Unicode-aware renderers break lines on, would
// let a page forge lines of the prompt).
func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// isForm: the SDK protects only "form-fill"; the spec's example mode is
// "fill-form": both get the form rules.
func isForm(mode string) bool { return mode == "form-fill" || mode == "fill-form" }

// initialState builds a new session's state from the creation body.
func initialState(req *createRequest, form bool, at int64) (*State, error) {
	st := &State{}
	src := req.context
	if !form && string(src) == "{}" && req.data != nil {
		src = req.data // the generic handler's `context or data`
	}
	if form {
		st.Values = map[string]Entry{}
	} else {
		st.Data = map[string]json.RawMessage{}
	}
	var keys []string
	err := object(src, func(k string, v json.RawMessage) error {
		if len(keys) >= MaxFields {
			return badRequest("context has more than %d fields", MaxFields)
		}
		if err := checkKey(k); err != nil {
			return badRequest("context key %v", err)
		}
		if len(v) > MaxValueLen {
			return badRequest("context value of %q is larger than %d bytes", k, MaxValueLen)
		}
		keys = append(keys, k)
		if form {
			by := ByUser
			if isEmpty(v) {
				by = ByEmpty
			}
			st.Values[k] = Entry{Value: v, By: by, At: at}
		} else {
			st.Data[k] = v
		}
		return nil
	})
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, badRequest("context: %v", err)
	}
	st.Keys = orderKeys(req.schema, keys)
	return st, nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, next Next) {
	const ep = "session"
	cred := h.browserCredential(r)
	if h.cfg.BrowserCookie != "" && cred == "" {
		writeError(w, http.StatusForbidden, msgBrowserAuth)
		h.obs.Refused(ep, http.StatusForbidden)
		return
	}
	base := h.baseURL(r)
	if base == "" {
		h.refuseHost(w, ep)
		return
	}
	if h.cfg.CreateRate.Events > 0 && !h.admit(w, r, "hpp-create:"+h.cfg.Zone+":"+h.clientIP(r), h.cfg.CreateRate, ep) {
		return
	}
	raw, ok := h.readBody(w, r, ep)
	if !ok {
		return
	}
	req, err := parseCreate(raw)
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}
	form := isForm(req.mode)
	st, err := initialState(req, form, micros(h.now()))
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}
	tok := newToken()
	rec := &Record{ID: newSessionID(), TokenHash: hashToken(tok), Mode: req.mode, Form: form, Schema: req.schema, Meta: req.meta, Client: h.clientIP(r)}
	if form && len(req.schema.Fields) > 0 {
		rec.Extra = extraKeys(req.schema, st.Keys)
	}
	if cred != "" {
		rec.Binding, rec.Bound = hashToken(cred), true
	}
	if h.cfg.Hooks.Create != nil {
		owner, veto, failed := h.createHook(r, next, rec, req.schema.Raw, req.context, req.meta)
		switch {
		case failed:
			writeError(w, http.StatusServiceUnavailable, "session creation hook failed, try again")
			h.obs.Refused(ep, http.StatusServiceUnavailable)
			return
		case veto != "":
			writeError(w, http.StatusForbidden, veto)
			h.obs.Refused(ep, http.StatusForbidden)
			return
		}
		rec.Owner = owner
	}
	if err := h.cfg.Store.Create(r.Context(), rec, st, h.cfg.TTL); err != nil {
		h.storeError(w, ep, err)
		return
	}
	if h.records != nil {
		h.records.put(rec)
	}
	h.obs.SessionCreated()

	p, sid := h.cfg.Prefix, rec.ID
	b := make([]byte, 0, 1536)
	b = append(b, `{"sessionId":"`...)
	b = append(b, sid...)
	b = append(b, `","token":"`...)
	b = append(b, tok...)
	b = append(b, `","wsUrl":`...)
	b = jsonstr.AppendString(b, h.cfg.WSPrefix+"/"+sid)
	b = append(b, `,"contextUrl":`...)
	b = jsonstr.AppendString(b, p+"/context/"+sid)
	b = append(b, `,"actionUrl":`...)
	b = jsonstr.AppendString(b, p+"/action/"+sid)
	b = append(b, `,"diffUrl":`...)
	b = jsonstr.AppendString(b, p+"/diff/"+sid)
	b = append(b, `,"notifyUrl":`...)
	b = jsonstr.AppendString(b, p+"/notify/"+sid)
	b = append(b, `,"promptUrl":`...)
	b = jsonstr.AppendString(b, p+"/prompt/"+sid)
	b = append(b, `,"expiresIn":`...)
	ttl := int64(h.cfg.TTL / time.Second)
	b = strconv.AppendInt(b, ttl, 10)
	b = append(b, `,"prompt":`...)
	b = jsonstr.AppendString(b, h.promptText(rec, tok, base, ttl))
	b = append(b, '}')
	writeJSON(w, http.StatusOK, b)
}

// extraKeys are the context's keys the schema does not list, in order.
func extraKeys(s *Schema, keys []string) []string {
	var out []string
	for _, k := range keys {
		if _, ok := s.Field(k); !ok {
			out = append(out, k)
		}
	}
	return out
}

// clientIPv6Prefix groups IPv6 clients as ahp's rate_limit does by
// default: one host usually owns a whole /64 and could otherwise rotate
// addresses past create_rate, ws_rate and the memory store's per-client
// session cap.
const clientIPv6Prefix = 64

// clientIP is whom create_rate, ws_rate and the per-client session cap
// count: the client's address (Config.ClientIP, else the peer's), an IPv6
// address as its /64, the key ahp's rate_limit counts the client under.
func (h *Handler) clientIP(r *http.Request) string {
	ip := ""
	if h.cfg.ClientIP != nil {
		ip = h.cfg.ClientIP(r)
	}
	if ip == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = host
	}
	id, _ := ratelimit.ClientID(ip, clientIPv6Prefix)
	return id
}

func (h *Handler) context(w http.ResponseWriter, r *http.Request, sid string) {
	rec := h.authorize(w, r, sid, "context")
	if rec == nil {
		return
	}
	st, err := h.cfg.Store.State(r.Context(), rec)
	if err != nil {
		h.storeError(w, "context", err)
		return
	}
	writeJSON(w, http.StatusOK, appendContextAnswer(make([]byte, 0, 256+len(rec.Schema.Raw)+len(rec.Meta)+len(st.Keys)*96), rec, st))
}

// appendContextAnswer renders GET context's answer.
func appendContextAnswer(b []byte, rec *Record, st *State) []byte {
	b = append(b, `{"sessionId":"`...)
	b = append(b, rec.ID...)
	b = append(b, `","mode":`...)
	b = jsonstr.AppendString(b, rec.Mode)
	if rec.Form {
		b = append(b, `,"schema":`...)
		b = append(b, rec.Schema.Raw...)
		b = append(b, `,"context":`...)
		b = appendValues(b, st)
		b = append(b, `,"missing":`...)
		b = jsonstr.AppendStrings(b, missingKeys(rec.Schema.Required(), st.Values))
	} else {
		b = append(b, `,"data":`...)
		b = appendData(b, st)
	}
	b = append(b, `,"meta":`...)
	b = append(b, rec.Meta...)
	b = append(b, `,"expiresIn":`...)
	b = strconv.AppendInt(b, st.ExpiresIn, 10)
	return append(b, '}')
}

func appendValues(b []byte, st *State) []byte {
	b = append(b, '{')
	n := 0
	for _, k := range st.Keys {
		e, ok := st.Values[k]
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = jsonstr.AppendString(b, k)
		b = append(b, `:{"value":`...)
		b = append(b, e.Value...)
		b = append(b, `,"by":"`...)
		b = append(b, e.By...)
		b = append(b, `","at":"`...)
		b = appendTime(b, e.At)
		b = append(b, `"}`...)
	}
	return append(b, '}')
}

func appendData(b []byte, st *State) []byte {
	b = append(b, '{')
	n := 0
	for _, k := range st.Keys {
		v, ok := st.Data[k]
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = jsonstr.AppendString(b, k)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}')
}

func (h *Handler) action(w http.ResponseWriter, r *http.Request, sid string, next Next) {
	const ep = "action"
	rec := h.authorize(w, r, sid, ep)
	if rec == nil {
		return
	}
	raw, ok := h.readBody(w, r, ep)
	if !ok {
		return
	}
	req, err := ParseActionRequest(raw, rec.Form)
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}

	var errs [][]byte
	itemError := func(it *ActionItem) {
		e := append([]byte(`{"action":`), it.Raw...)
		e = append(e, `,"msg":`...)
		e = jsonstr.AppendString(e, it.Err)
		errs = append(errs, append(e, '}'))
	}
	// Past errBudget bytes of messages, each is cut short: an enum's
	// options or the form's keys repeated for 256 items would otherwise
	// answer a 9 KB request with megabytes.
	spent := 0
	keyError := func(key, msg string) {
		if spent += len(msg); spent > errBudget {
			msg = cut(msg, 64)
		}
		e := append([]byte(`{"key":`), jsonstr.AppendString(nil, key)...)
		e = append(e, `,"msg":`...)
		e = jsonstr.AppendString(e, msg)
		errs = append(errs, append(e, '}'))
	}

	// Candidates: items that passed the type and key checks, in order.
	writes := make([]Write, 0, len(req.Items))
	for i := range req.Items {
		it := &req.Items[i]
		if it.KeyErr {
			keyError(it.Key, it.Err)
			continue
		}
		if it.Err != "" {
			itemError(it)
			continue
		}
		writes = append(writes, Write{Key: it.Key, Value: it.Value})
	}
	// A form's schema lists its fields: a key outside it (and outside the
	// keys its creation context held) is refused, before the action hook
	// sees it. The SDK applies it unchecked, so an agent that misspelt a
	// name was told "applied" for a field the page does not have.
	if rec.Form && len(rec.Schema.Fields) > 0 {
		listed := false
		kept := writes[:0]
		for _, wr := range writes {
			if _, ok := rec.Schema.Field(wr.Key); !ok && !slices.Contains(rec.Extra, wr.Key) {
				// The form's keys once per answer: repeated per item, a
				// small request would get a large answer.
				msg := "unknown key"
				if !listed {
					msg, listed = "unknown key; this form's keys are "+rec.Schema.KeyList(rec.Extra), true
				}
				keyError(wr.Key, msg)
				continue
			}
			kept = append(kept, wr)
		}
		writes = kept
	}
	// The SDK's order: the hook, then the type check, then protection.
	if h.cfg.Hooks.Action != nil && len(writes) > 0 {
		veto, all, failed := h.actionHook(r, next, rec, writes)
		for i := range writes {
			switch {
			case failed:
				keyError(writes[i].Key, "action hook failed")
				writes[i].Outcome = Rejected
			case all || veto[writes[i].Key]:
				writes[i].Outcome = Rejected
			}
		}
	}
	if rec.Form {
		kept := writes[:0]
		for _, wr := range writes {
			if wr.Outcome == Pending {
				if f, ok := rec.Schema.Field(wr.Key); ok {
					wr.Value = f.Normalize(wr.Value)
					if msg := f.Check(wr.Value); msg != "" {
						keyError(wr.Key, msg)
						continue
					}
				}
			}
			kept = append(kept, wr)
		}
		writes = kept
	}

	batch := &Batch{Writes: writes, Stream: req.Stream, Interval: req.Interval}
	if rec.Form {
		batch.Required = rec.Schema.Required()
	}
	st, err := h.cfg.Store.Apply(r.Context(), rec, batch)
	if err != nil {
		h.storeError(w, ep, err)
		return
	}
	applied := make([]string, 0, len(writes))
	rejected := make([]string, 0)
	for _, wr := range batch.Writes {
		switch wr.Outcome {
		case Applied:
			applied = append(applied, wr.Key)
		case Rejected:
			rejected = append(rejected, wr.Key)
		case TooMany:
			keyError(wr.Key, "too many fields in the session")
		case TooLarge:
			keyError(wr.Key, msgSessionFull)
		}
	}
	h.obs.Actions(len(applied), len(rejected), len(errs))

	b := make([]byte, 0, 256+len(st.Keys)*96)
	b = append(b, `{"ok":true,"applied":`...)
	b = jsonstr.AppendStrings(b, applied)
	b = append(b, `,"rejected":`...)
	b = jsonstr.AppendStrings(b, rejected)
	b = append(b, `,"errors":[`...)
	b = append(b, bytes.Join(errs, []byte{','})...)
	b = append(b, ']')
	if rec.Form {
		b = append(b, `,"missing":`...)
		b = jsonstr.AppendStrings(b, missingKeys(batch.Required, st.Values))
		b = append(b, `,"context":`...)
		b = appendValues(b, st)
	}
	b = append(b, '}')
	if h.cfg.Hooks.Done != nil {
		h.doneHook(r, next, rec, applied, rejected, errs)
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *Handler) notify(w http.ResponseWriter, r *http.Request, sid string) {
	const ep = "notify"
	rec, err := h.lookup(r.Context(), sid)
	if err != nil {
		h.storeError(w, ep, err)
		return
	}
	if !rec.BindingOK(h.browserCredential(r)) {
		writeError(w, http.StatusForbidden, msgBrowserAuth)
		h.obs.Refused(ep, http.StatusForbidden)
		return
	}
	if !h.admit(w, r, "hpp-user:"+h.cfg.Zone+":"+sid, h.cfg.UserRate, ep) {
		return
	}
	raw, ok := h.readBody(w, r, ep)
	if !ok {
		return
	}
	key, value, err := parseEdit(raw)
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}
	if err := h.cfg.Store.Notify(r.Context(), rec, key, value); err != nil {
		h.storeError(w, ep, err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"ok":true}`))
}

// parseEdit reads {"key", "value"} (notify) or a WebSocket userEdit.
func parseEdit(raw []byte) (string, json.RawMessage, error) {
	raw, err := body(raw)
	if err != nil {
		return "", nil, err
	}
	if kindOf(raw) != kindObject {
		return "", nil, badRequest("request body must be a JSON object")
	}
	var key json.RawMessage
	value := json.RawMessage("null")
	if err := object(raw, func(name string, v json.RawMessage) error {
		switch name {
		case "key":
			key = v
		case "value":
			value = v
		}
		return nil
	}); err != nil {
		return "", nil, badRequest("invalid JSON body: %v", err)
	}
	if key == nil || string(key) == "null" {
		return "", nil, badRequest("key is required")
	}
	k, ok := jsonString(key)
	if !ok {
		return "", nil, badRequest("key must be a string")
	}
	if err := checkKey(k); err != nil {
		return "", nil, badRequest("key %v", err)
	}
	if len(value) > MaxValueLen {
		return "", nil, badRequest("value is larger than %d bytes", MaxValueLen)
	}
	return k, value, nil
}

func (h *Handler) diff(w http.ResponseWriter, r *http.Request, sid string) {
	const ep = "diff"
	rec := h.authorize(w, r, sid, ep)
	if rec == nil {
		return
	}
	since := r.URL.Query().Get("since")
	var cut int64
	if since != "" {
		var ok bool
		if cut, ok = parseSince(since); !ok {
			h.badRequest(w, ep, badRequest("since must be an ISO 8601 timestamp, e.g. 2026-01-02T15:04:05.000000+00:00"))
			return
		}
	}
	changes, _, err := h.cfg.Store.Changes(r.Context(), rec)
	if err != nil {
		h.storeError(w, ep, err)
		return
	}
	if since == "" && len(changes) > DiffDefault {
		changes = changes[len(changes)-DiffDefault:]
	}
	b := make([]byte, 0, 256+len(changes)*96)
	b = append(b, `{"sessionId":"`...)
	b = append(b, rec.ID...)
	b = append(b, `","since":`...)
	b = jsonstr.AppendString(b, since)
	b = append(b, `,"changes":[`...)
	n := 0
	for _, c := range changes {
		if since != "" && c.At <= cut {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"key":`...)
		b = jsonstr.AppendString(b, c.Key)
		b = append(b, `,"from":`...)
		b = append(b, c.From...)
		b = append(b, `,"to":`...)
		b = append(b, c.To...)
		b = append(b, `,"by":"`...)
		b = append(b, c.By...)
		b = append(b, `","at":"`...)
		b = appendTime(b, c.At)
		b = append(b, `"}`...)
	}
	b = append(b, "]}"...)
	writeJSON(w, http.StatusOK, b)
}

const msgExtraSeconds = "extraSeconds must be between 1 and 86400"

func (h *Handler) extend(w http.ResponseWriter, r *http.Request, sid string) {
	const ep = "extend"
	// Counted with the agent's other requests (the SDK does not limit
	// extend): each extend pushes a frame to the page and, with Redis,
	// through every instance's subscription.
	rec := h.authorize(w, r, sid, ep)
	if rec == nil {
		return
	}
	raw, ok := h.readBody(w, r, ep)
	if !ok {
		return
	}
	raw, err := body(raw)
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}
	if kindOf(raw) != kindObject {
		h.badRequest(w, ep, badRequest("request body must be a JSON object"))
		return
	}
	extra := int64(1800)
	err = object(raw, func(name string, v json.RawMessage) error {
		if name != "extraSeconds" || string(v) == "null" {
			return nil
		}
		k := kindOf(v)
		if k != kindInt && k != kindFloat {
			return badRequest(msgExtraSeconds)
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return badRequest(msgExtraSeconds)
		}
		f = math.Trunc(f) // Python's int()
		if f < -1e12 || f > 1e12 {
			return badRequest(msgExtraSeconds)
		}
		extra = int64(f)
		return nil
	})
	if err != nil {
		h.badRequest(w, ep, err)
		return
	}
	if extra <= 0 || extra > 86400 {
		h.badRequest(w, ep, badRequest(msgExtraSeconds))
		return
	}
	in, granted, err := h.cfg.Store.Extend(r.Context(), rec, time.Duration(extra)*time.Second, h.cfg.MaxTTL)
	if err != nil {
		h.storeError(w, ep, err)
		return
	}
	if !granted {
		// The SDK's message, with what an agent can still ask for: it
		// would otherwise guess a smaller extraSeconds, one refusal each.
		maxTTL := int64(h.cfg.MaxTTL / time.Second)
		msg := "extension denied by server policy: a session lasts at most " + strconv.FormatInt(maxTTL, 10) + " seconds after its last use"
		if left := maxTTL - in; left > 0 {
			msg += "; this one can be extended by at most " + strconv.FormatInt(left, 10) + " more"
		} else {
			msg += "; this one is at that already"
		}
		writeError(w, http.StatusForbidden, msg)
		h.obs.Refused(ep, http.StatusForbidden)
		return
	}
	b := append([]byte(`{"ok":true,"extended":`), strconv.AppendInt(nil, extra, 10)...)
	b = append(b, `,"expiresIn":`...)
	b = strconv.AppendInt(b, in, 10)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (h *Handler) prompt(w http.ResponseWriter, r *http.Request, sid string) {
	base := h.baseURL(r)
	if base == "" {
		h.refuseHost(w, "prompt")
		return
	}
	rec := h.authorize(w, r, sid, "prompt")
	if rec == nil {
		return
	}
	st, err := h.cfg.Store.State(r.Context(), rec)
	if err != nil {
		h.storeError(w, "prompt", err)
		return
	}
	text := h.promptText(rec, token(r), base, st.ExpiresIn)
	hd := w.Header()
	hd["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hd["Cache-Control"] = []string{"no-store"}
	hd["Content-Length"] = []string{strconv.Itoa(len(text))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(text))
	}
}

// errBudget is how many bytes of error messages an action answer carries
// in full.
const errBudget = 16 << 10
