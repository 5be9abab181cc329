package handshake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// maxFrame bounds a frame from the browser (a userEdit).
const maxFrame = 32 << 10

// serveWS upgrades {ws_prefix}/<sid>?token=... and runs the socket.
// Everything that can refuse it is checked before the upgrade is
// accepted, so a refused upgrade costs no connection, goroutine or
// buffers: the client's upgrade rate (429), the session (404), the token
// (403), the browser binding (403), then the caps on sockets per session
// (429), per client, per network and per instance (503). Refusals are
// HTTP answers in the SDK's error format, {"error": "..."}; a request
// that is no upgrade at all gets the same checks, then coder/websocket's
// 426, so a page whose socket failed can fetch the URL to learn why.
//
// The socket is served by a goroutine of its own and ServeHTTP returns:
// the handler chain's stack is not kept for the life of the socket (a few
// KiB of memory per open socket less). The connection is hijacked, so
// neither the server nor a config reload waits for or closes it; it ends
// when the browser leaves, when a write fails, or when the store it is
// registered with closes (1012: the browser client reconnects).
func (h *Handler) serveWS(w http.ResponseWriter, r *http.Request, sid string) {
	const ep = "websocket"
	if r.Method != http.MethodGet {
		w.Header()["Allow"] = []string{http.MethodGet}
		writeError(w, http.StatusMethodNotAllowed, "method not allowed; use GET with a WebSocket upgrade")
		h.obs.Refused(ep, http.StatusMethodNotAllowed)
		return
	}
	if h.cfg.WSRate.Events > 0 && !h.admit(w, r, "hpp-ws:"+h.cfg.Zone+":"+h.clientIP(r), h.cfg.WSRate, ep) {
		return
	}
	rec, err := h.lookup(r.Context(), sid)
	if err != nil {
		h.storeError(w, ep, err)
		return
	}
	if !rec.TokenOK(token(r)) {
		writeError(w, http.StatusForbidden, msgInvalidToken)
		h.obs.Refused(ep, http.StatusForbidden)
		return
	}
	if !rec.BindingOK(h.browserCredential(r)) {
		writeError(w, http.StatusForbidden, msgBrowserAuth)
		h.obs.Refused(ep, http.StatusForbidden)
		return
	}
	hub := h.hub()
	s, err := hub.Reserve(sid, h.clientIP(r), h.sockets)
	if err != nil {
		status, msg := http.StatusServiceUnavailable, err.Error()
		switch {
		case errors.Is(err, ErrSessionSockets):
			// Every 429 says when to retry: a socket of the session
			// may close at any moment.
			status = http.StatusTooManyRequests
			w.Header()["Retry-After"] = []string{"1"}
		case errors.Is(err, ErrTooManySockets):
			// A client's or network's share answers as the instance's cap.
			msg = ErrTooManySockets.Error()
		}
		writeError(w, status, msg)
		h.obs.Refused(ep, status)
		return
	}
	sw := &statusWriter{ResponseWriter: w, h2: r.ProtoMajor >= 2}
	c, err := websocket.Accept(sw, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.OriginPatterns})
	if err != nil {
		hub.Cancel(s)
		// Accept answered (426 for no upgrade, 403 for a foreign origin ...):
		// count what it answered.
		status := sw.status
		if status == 0 {
			status = http.StatusBadRequest
		}
		h.obs.Refused(ep, status)
		return
	}
	c.SetReadLimit(maxFrame)
	go h.runSocket(c, s, rec)
}

func (h *Handler) runSocket(c *websocket.Conn, s *Socket, rec *Record) {
	ctx := context.Background()
	hub := h.hub()
	store, sid := h.cfg.Store, rec.ID
	// Asked when a heartbeat is due: Lookup does not renew the TTL, so an
	// open page does not keep its session alive, and a socket whose
	// session expired is closed rather than held against the caps.
	s.alive = func(ctx context.Context) error {
		_, err := store.Lookup(ctx, sid)
		return err
	}
	// Attached (held) before the state is read: a write landing meanwhile
	// is kept for this socket and sent after the catch-up, not lost.
	if !hub.AttachHeld(s, c) {
		_ = c.Close(websocket.StatusServiceRestart, "handshake store closed")
		return
	}
	defer func() {
		hub.Unregister(s)
		_ = c.CloseNow()
	}()
	st, err := store.State(ctx, rec) // expired since cached? renews the TTL
	if err != nil {
		hub.Unregister(s) // held: the hub writes nothing to it meanwhile
		msg := "session not found"
		if !errors.Is(err, ErrNotFound) {
			h.storeFailed("websocket", err)
			msg = "session store unavailable"
		}
		wctx, cancel := context.WithTimeout(ctx, hub.WriteTimeout)
		_ = c.Write(wctx, websocket.MessageText, append(jsonstr.AppendString([]byte(`{"type":"error","msg":`), msg), '}'))
		cancel()
		_ = c.Close(websocket.StatusPolicyViolation, msg)
		return
	}
	b := append([]byte(`{"type":"connected","sessionId":"`), sid...)
	b = append(b, `","mode":`...)
	b = jsonstr.AppendString(b, rec.Mode)
	connected := append(b, '}')
	// A page whose socket dropped (a network blip, a restart, Redis
	// pub/sub missing frames) catches up: the agent's current values come
	// again as the frames it would have had, after connected and before
	// any frame of a later write. Each frame is built when the socket has
	// taken the one before, so sockets that do not read hold the state's
	// values (shared with the store), not megabytes of frames.
	if !hub.Release(s, catchUp(st), connected) {
		return
	}
	// The page hears of the session's end when it comes, not at the next
	// heartbeat: the read above renewed it, so it ends ExpiresIn from now
	// unless used again (the timer then asks the store and follows).
	hub.ExpireIn(sid, time.Duration(st.ExpiresIn)*time.Second)

	var win []limiter.WindowCheck // the user-edit check, made on the first edit
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		h.userEdit(ctx, c, rec, &win, msg)
	}
}

// catchUp yields an action frame for each of the agent's values in st,
// in answer order, then nil.
func catchUp(st *State) func() []byte {
	i := 0
	return func() []byte {
		for i < len(st.Keys) {
			k := st.Keys[i]
			i++
			if e, ok := st.Values[k]; ok && e.By == ByAI {
				return actionFrame(k, e.Value)
			}
		}
		return nil
	}
}

var userEditType = []byte(`"userEdit"`)

// userEdit applies {"type":"userEdit","key","value"}; other messages and
// malformed ones are ignored, as the SDK does. The user-edit limit is
// asked before the frame is parsed, so a page (or anyone with the token)
// sending frames past it costs a limiter decision each, not a parse of up
// to 32 KiB; only a frame that cannot be a userEdit (one without the
// string "userEdit", a byte scan) is dropped uncounted. win is the
// socket's own window check, made on its first edit (an idle socket holds
// none) and reused.
func (h *Handler) userEdit(ctx context.Context, c *websocket.Conn, rec *Record, win *[]limiter.WindowCheck, msg []byte) {
	if !bytes.Contains(msg, userEditType) {
		return
	}
	if *win == nil {
		*win = []limiter.WindowCheck{{Key: "hpp-user:" + h.cfg.Zone + ":" + rec.ID}}
	}
	w := *win
	w[0] = limiter.WindowCheck{Key: w[0].Key, Limit: h.cfg.UserRate}
	b := limiter.Batch{Windows: w}
	if err := h.cfg.Limiter.Do(ctx, &b); err != nil || !b.Allowed() {
		return
	}
	msg, err := body(msg)
	if err != nil || kindOf(msg) != kindObject {
		return
	}
	isEdit := false
	_ = object(msg, func(name string, v json.RawMessage) error {
		if name == "type" && string(v) == `"userEdit"` {
			isEdit = true
		}
		return nil
	})
	if !isEdit {
		return
	}
	key, value, err := parseEdit(msg)
	if err != nil {
		return
	}
	switch err := h.cfg.Store.Notify(ctx, rec, key, value); {
	case errors.Is(err, ErrNotFound):
		wctx, cancel := context.WithTimeout(ctx, h.hub().WriteTimeout)
		_ = c.Write(wctx, websocket.MessageText, []byte(`{"type":"error","msg":"session not found"}`))
		cancel()
		_ = c.Close(websocket.StatusPolicyViolation, "session not found")
	case err != nil && !errors.Is(err, ErrTooManyFields) && !errors.Is(err, ErrSessionFull) && ctx.Err() == nil:
		h.storeFailed("websocket", err)
	}
}

func (h *Handler) hub() *Hub { return h.cfg.Store.Hub() }

// statusWriter notes the status Accept answers; Unwrap lets it find the
// connection to hijack.
type statusWriter struct {
	http.ResponseWriter
	status int
	h2     bool // HTTP/2 or HTTP/3
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	if w.h2 {
		// Accept's refusals name the upgrade (426: Upgrade, Connection),
		// which HTTP/2 and HTTP/3 forbid in a response: the client would
		// reset the stream instead of reading why (RFC 9113 §8.2.2).
		h := w.ResponseWriter.Header()
		delete(h, "Upgrade")
		delete(h, "Connection")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
