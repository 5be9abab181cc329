package handshake

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// Conn is the part of a WebSocket the hub writes to (a *websocket.Conn).
type Conn interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Close(code websocket.StatusCode, reason string) error
}

// Hub holds this instance's open sockets by session and writes frames to
// them. Frames reach it from the store: directly for the memory store,
// through the instance's one Redis subscription for the Redis store, so a
// write through any instance reaches the session's sockets on all of them.
//
// Each session with frames to send gets one short-lived goroutine that
// writes them in order, pacing streamed fields; a socket needs no
// goroutine of its own besides its reader, and one slow socket delays only
// its own session's frames (each write is bounded by WriteTimeout).
type Hub struct {
	// Heartbeat is the idle time after which a socket gets
	// {"type":"heartbeat"} (default 60s).
	Heartbeat time.Duration
	// WriteTimeout bounds one frame's write to one socket (default 5s);
	// a socket that cannot take a frame in that time is closed.
	WriteTimeout time.Duration
	// OnOpen is told of sockets opening (+1) and closing (-1), for metrics.
	OnOpen func(delta int)
	// OnSession is told of a session's first socket on this instance
	// opening (+1) and its last one closing (-1): the sessions a browser
	// page is connected to here, for metrics.
	OnSession func(delta int)

	now func() time.Time

	mu      sync.Mutex
	rooms   map[string]*room
	closed  bool
	counted int // sockets attached or reserved, for the total cap (under mu)
	open    atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

type room struct {
	sockets  []*Socket
	reserved int // sockets admitted but not attached yet
	queue    []queued
	pumping  bool
}

// idle: nothing keeps the room (under mu).
func (r *room) idle() bool { return len(r.sockets) == 0 && r.reserved == 0 && !r.pumping }

type queued struct {
	frame []byte
	delay time.Duration
	to    *Socket // nil: every socket of the room
}

// Socket is one open WebSocket of a session on this instance.
type Socket struct {
	sid      string
	conn     Conn // set by Attach, under the hub's lock, before anyone else sees it
	last     atomic.Int64
	gone     atomic.Bool
	attached bool // under the hub's lock
}

// Refusals of Reserve.
var (
	// ErrSessionSockets: the session has its cap of sockets here.
	ErrSessionSockets = errors.New("too many sockets open for this session")
	// ErrTooManySockets: this instance has its cap of sockets.
	ErrTooManySockets = errors.New("too many sockets open, try again later")
	// ErrHubClosed: the store (and its hub) was closed by a reload.
	ErrHubClosed = errors.New("handshake store closed, try again")
)

// NewHub starts a hub and its heartbeat loop.
func NewHub() *Hub {
	h := &Hub{Heartbeat: 60 * time.Second, WriteTimeout: 5 * time.Second, now: time.Now,
		rooms: map[string]*room{}, stop: make(chan struct{})}
	h.wg.Add(1)
	go h.heartbeats()
	return h
}

// Open reports how many sockets are open on this instance.
func (h *Hub) Open() int64 { return h.open.Load() }

// Has reports whether session sid has a socket on this instance.
func (h *Hub) Has(sid string) bool {
	h.mu.Lock()
	_, ok := h.rooms[sid]
	h.mu.Unlock()
	return ok
}

// Reserve admits a new socket of session sid within the caps (0: none):
// at most perSession sockets of the session and total sockets in all on
// this hub, reserved ones included. It is called before the WebSocket is
// accepted, so a refused upgrade costs no connection; the reservation is
// then Attached or Cancelled.
func (h *Hub) Reserve(sid string, perSession, total int) (*Socket, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	if total > 0 && h.counted >= total {
		return nil, ErrTooManySockets
	}
	r := h.rooms[sid]
	if r != nil && perSession > 0 && len(r.sockets)+r.reserved >= perSession {
		return nil, ErrSessionSockets
	}
	if r == nil {
		r = &room{}
		h.rooms[sid] = r
	}
	r.reserved++
	h.counted++
	return &Socket{sid: sid}, nil
}

// Attach makes a reserved socket live on connection c. It returns false
// when the hub was closed meanwhile (the reservation is then released).
func (h *Hub) Attach(s *Socket, c Conn) bool {
	s.last.Store(h.now().UnixNano())
	h.mu.Lock()
	r := h.rooms[s.sid]
	if h.closed || r == nil || s.attached || s.gone.Load() {
		h.mu.Unlock()
		h.Cancel(s)
		return false
	}
	s.conn, s.attached = c, true
	r.reserved--
	r.sockets = append(r.sockets, s)
	first := len(r.sockets) == 1
	h.mu.Unlock()
	h.open.Add(1)
	if h.OnOpen != nil {
		h.OnOpen(1)
	}
	if first && h.OnSession != nil {
		h.OnSession(1)
	}
	return true
}

// Cancel releases a reservation that was never attached; it is safe to
// call more than once, and does nothing to an attached socket.
func (h *Hub) Cancel(s *Socket) {
	if s == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.attached || s.gone.Swap(true) {
		return
	}
	h.counted--
	if r := h.rooms[s.sid]; r != nil {
		r.reserved--
		if r.idle() {
			delete(h.rooms, s.sid)
		}
	}
}

// Register adds a socket of session sid, with no cap. It returns nil when
// the hub is closed.
func (h *Hub) Register(sid string, c Conn) *Socket {
	s, err := h.Reserve(sid, 0, 0)
	if err != nil || !h.Attach(s, c) {
		return nil
	}
	return s
}

// Unregister removes an attached socket; it is safe to call more than
// once.
func (h *Hub) Unregister(s *Socket) {
	if s == nil {
		return
	}
	h.mu.Lock()
	if !s.attached || s.gone.Swap(true) {
		h.mu.Unlock()
		return
	}
	h.counted--
	last := false
	if r := h.rooms[s.sid]; r != nil {
		for i, o := range r.sockets {
			if o == s {
				r.sockets = append(r.sockets[:i], r.sockets[i+1:]...)
				last = len(r.sockets) == 0
				break
			}
		}
		if r.idle() {
			delete(h.rooms, s.sid)
		}
	}
	h.mu.Unlock()
	h.open.Add(-1)
	if h.OnOpen != nil {
		h.OnOpen(-1)
	}
	if last && h.OnSession != nil {
		h.OnSession(-1)
	}
}

// Send writes one frame to one socket, in order with the session's other
// frames (the connected message, heartbeats).
func (h *Hub) Send(s *Socket, frame []byte) {
	h.enqueue(s.sid, []queued{{frame: frame, to: s}})
}

// Deliver takes an event the store published (see encodeEvent) and sends
// its frames to the session's sockets on this instance.
func (h *Hub) Deliver(event []byte) {
	sid, interval, frames, ok := decodeEvent(event)
	if !ok {
		return
	}
	h.mu.Lock()
	_, here := h.rooms[sid]
	h.mu.Unlock()
	if !here {
		return // no socket of this session on this instance
	}
	interval = paced(interval, len(frames))
	q := make([]queued, len(frames))
	for i, f := range frames {
		q[i].frame = f
		if i > 0 {
			q[i].delay = interval
		}
	}
	h.enqueue(sid, q)
}

// paced bounds the interval between n frames so the batch takes at most
// MaxStream.
func paced(interval time.Duration, n int) time.Duration {
	if gaps := time.Duration(n - 1); gaps > 0 && interval*gaps > MaxStream {
		return MaxStream / gaps
	}
	return interval
}

func (h *Hub) enqueue(sid string, q []queued) {
	h.mu.Lock()
	r := h.rooms[sid]
	if r == nil || h.closed {
		h.mu.Unlock()
		return
	}
	r.queue = append(r.queue, q...)
	start := !r.pumping
	r.pumping = true
	h.mu.Unlock()
	if start {
		h.wg.Add(1)
		go h.pump(sid, r)
	}
}

// pump writes a room's queued frames in order, then ends.
func (h *Hub) pump(sid string, r *room) {
	defer h.wg.Done()
	var targets []*Socket
	for {
		h.mu.Lock()
		if len(r.queue) == 0 || h.closed {
			r.queue = nil
			r.pumping = false
			if r.idle() && h.rooms[sid] == r {
				delete(h.rooms, sid)
			}
			h.mu.Unlock()
			return
		}
		item := r.queue[0]
		r.queue[0] = queued{}
		r.queue = r.queue[1:]
		targets = append(targets[:0], r.sockets...)
		h.mu.Unlock()

		if item.delay > 0 {
			t := time.NewTimer(item.delay)
			select {
			case <-t.C:
			case <-h.stop:
				t.Stop()
				continue
			}
		}
		for _, s := range targets {
			if item.to != nil && item.to != s {
				continue
			}
			h.write(s, item.frame)
		}
	}
}

func (h *Hub) write(s *Socket, frame []byte) {
	if s.gone.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.WriteTimeout)
	err := s.conn.Write(ctx, websocket.MessageText, frame)
	cancel()
	if err != nil {
		_ = s.conn.Close(websocket.StatusGoingAway, "write failed")
		h.Unregister(s)
		return
	}
	s.last.Store(h.now().UnixNano())
}

var heartbeatFrame = []byte(`{"type":"heartbeat"}`)

func (h *Hub) heartbeats() {
	defer h.wg.Done()
	every := h.Heartbeat / 4
	if every <= 0 {
		every = 15 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.beat()
		}
	}
}

// beat queues a heartbeat for every socket idle for Heartbeat or longer.
func (h *Hub) beat() {
	cutoff := h.now().Add(-h.Heartbeat).UnixNano()
	var idle []*Socket
	h.mu.Lock()
	for _, r := range h.rooms {
		for _, s := range r.sockets {
			if s.last.Load() <= cutoff {
				idle = append(idle, s)
			}
		}
	}
	h.mu.Unlock()
	for _, s := range idle {
		s.last.Store(h.now().UnixNano()) // one heartbeat per idle period, even while queued
		h.Send(s, heartbeatFrame)
	}
}

// Close closes every socket with 1012 (service restart: the browser client
// reconnects) and stops the hub's goroutines.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var all []*Socket
	for _, r := range h.rooms {
		all = append(all, r.sockets...)
	}
	h.mu.Unlock()
	close(h.stop)
	for _, s := range all {
		_ = s.conn.Close(websocket.StatusServiceRestart, "handshake store reconfigured")
		h.Unregister(s)
	}
	h.wg.Wait()
	return nil
}

// Events are what a store publishes for the hubs: the session id, the
// pacing interval in milliseconds, then one JSON frame per line. JSON
// frames hold no raw newline, so the format needs no escaping, and the
// Redis script can build it by concatenation.
func encodeEvent(sid string, interval time.Duration, frames ...[]byte) []byte {
	n := len(sid) + 24
	for _, f := range frames {
		n += len(f) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, sid...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, interval.Milliseconds(), 10)
	for _, f := range frames {
		b = append(b, '\n')
		b = append(b, f...)
	}
	return b
}

func decodeEvent(b []byte) (sid string, interval time.Duration, frames [][]byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 {
		return "", 0, nil, false
	}
	sid = string(b[:i])
	b = b[i+1:]
	j := bytes.IndexByte(b, '\n')
	if j < 0 {
		return "", 0, nil, false
	}
	ms, err := strconv.ParseInt(string(b[:j]), 10, 64)
	if err != nil || ms < 0 {
		return "", 0, nil, false
	}
	frames = bytes.Split(b[j+1:], []byte{'\n'})
	return sid, time.Duration(ms) * time.Millisecond, frames, true
}

// Frames, as the SDK sends them.
func actionFrame(key string, value []byte) []byte {
	b := make([]byte, 0, 40+len(key)+len(value))
	b = append(b, `{"type":"action","key":`...)
	b = jsonstr.AppendString(b, key)
	b = append(b, `,"value":`...)
	b = append(b, value...)
	return append(b, '}')
}

func doneFrame(applied int, rejected, missing []string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"type":"done","applied":`...)
	b = strconv.AppendInt(b, int64(applied), 10)
	b = append(b, `,"rejected":`...)
	b = jsonstr.AppendStrings(b, rejected)
	b = append(b, `,"missing":`...)
	b = jsonstr.AppendStrings(b, missing)
	return append(b, '}')
}

func extendedFrame(expiresIn int64) []byte {
	b := append([]byte(`{"type":"extended","expiresIn":`), strconv.AppendInt(nil, expiresIn, 10)...)
	return append(b, '}')
}
