package handshake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// maxFrame bounds a frame from the browser (a userEdit).
const maxFrame = 32 << 10

// serveWS upgrades {ws_prefix}/<sid>?token=... and runs the socket. As
// the SDK does, it accepts first and reports a bad session or token as
// {"type":"error"} before closing, so browser clients see why.
//
// The socket is served by a goroutine of its own and ServeHTTP returns:
// the handler chain's stack is not kept for the life of the socket (a few
// KiB of memory per open socket less). The connection is hijacked, so
// neither the server nor a config reload waits for or closes it; it ends
// when the browser leaves, when a write fails, or when the store it is
// registered with closes (1012: the browser client reconnects).
func (h *Handler) serveWS(w http.ResponseWriter, r *http.Request, sid string) {
	if r.Method != http.MethodGet {
		w.Header()["Allow"] = []string{http.MethodGet}
		writeError(w, http.StatusMethodNotAllowed, "method not allowed; use GET with a WebSocket upgrade")
		return
	}
	tok, cred := token(r), h.browserCredential(r)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.OriginPatterns})
	if err != nil {
		h.obs.Refused("websocket", http.StatusBadRequest)
		return // Accept answered (426, 403 for a foreign origin ...)
	}
	c.SetReadLimit(maxFrame)
	go h.runSocket(c, sid, tok, cred)
}

func (h *Handler) runSocket(c *websocket.Conn, sid, tok, cred string) {
	ctx := context.Background()
	fail := func(msg string) {
		wctx, cancel := context.WithTimeout(ctx, h.hub().WriteTimeout)
		_ = c.Write(wctx, websocket.MessageText, append(jsonstr.AppendString([]byte(`{"type":"error","msg":`), msg), '}'))
		cancel()
		_ = c.Close(websocket.StatusPolicyViolation, msg)
	}
	rec, err := h.lookup(ctx, sid)
	var st *State
	if err == nil {
		if !rec.TokenOK(tok) {
			fail(msgInvalidToken)
			return
		}
		if !rec.BindingOK(cred) {
			fail(msgBrowserAuth)
			return
		}
		st, err = h.cfg.Store.State(ctx, rec) // expired since cached? renews the TTL
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			fail("session not found")
		} else {
			h.log.Error("handshake: session store failed", zapString("endpoint", "websocket"), zapErr(err))
			fail("session store unavailable")
		}
		return
	}
	hub := h.hub()
	s := hub.Register(sid, c)
	if s == nil {
		_ = c.Close(websocket.StatusServiceRestart, "handshake store closed")
		return
	}
	defer func() {
		hub.Unregister(s)
		_ = c.CloseNow()
	}()
	b := append([]byte(`{"type":"connected","sessionId":"`), sid...)
	b = append(b, `","mode":`...)
	b = jsonstr.AppendString(b, rec.Mode)
	hub.Send(s, append(b, '}'))
	// A page whose socket dropped (a network blip, a restart, Redis
	// pub/sub missing frames) catches up: the agent's current values come
	// again as the frames it would have had.
	for _, k := range st.Keys {
		if e, ok := st.Values[k]; ok && e.By == ByAI {
			hub.Send(s, actionFrame(k, e.Value))
		}
	}

	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		h.userEdit(ctx, c, rec, msg)
	}
}

// userEdit applies {"type":"userEdit","key","value"}; other messages and
// malformed ones are ignored, as the SDK does.
func (h *Handler) userEdit(ctx context.Context, c *websocket.Conn, rec *Record, msg []byte) {
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
	b := limiter.Batch{Windows: []limiter.WindowCheck{{Key: "hpp-user:" + h.cfg.Zone + ":" + rec.ID, Limit: h.cfg.UserRate}}}
	if err := h.cfg.Limiter.Do(ctx, &b); err != nil || !b.Allowed() {
		return
	}
	if err := h.cfg.Store.Notify(ctx, rec, key, value); errors.Is(err, ErrNotFound) {
		wctx, cancel := context.WithTimeout(ctx, h.hub().WriteTimeout)
		_ = c.Write(wctx, websocket.MessageText, []byte(`{"type":"error","msg":"session not found"}`))
		cancel()
		_ = c.Close(websocket.StatusPolicyViolation, "session not found")
	}
}

func (h *Handler) hub() *Hub { return h.cfg.Store.Hub() }
