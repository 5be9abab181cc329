package handshake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
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
//
// A session's queue is bounded (QueueDelay, QueueBytes): an agent that
// writes faster than the pacing shows, or than the page reads, gets its
// later batches delivered at once, then coalesced to each key's latest
// value, and past that the page is made to reconnect and catch up from
// the stored values. The page converges on the agent's values in every
// case, and its other frames never wait behind minutes of animation.
type Hub struct {
	// Heartbeat is the idle time after which a socket gets
	// {"type":"heartbeat"} (default 60s).
	Heartbeat time.Duration
	// WriteTimeout bounds one frame's write to one socket (default 5s);
	// a socket that cannot take a frame in that time is closed.
	WriteTimeout time.Duration
	// QueueDelay caps the pacing waiting in one session's queue (default
	// MaxStream, one batch's whole animation): a batch that would take the
	// queue past it is paced within what is left, down to no pacing at
	// all, so no frame waits much longer than one batch's animation.
	QueueDelay time.Duration
	// QueueBytes caps the bytes of one session's frames waiting to be
	// written (default 1 MiB), to every socket or to one. A catch-up
	// (Release) waits as the values it is built from, a frame being built
	// when the socket has taken the one before. An extended frame takes the place of one
	// still waiting, whatever the queue holds: only the latest expiry
	// matters to a page, so a flood of extends queues one frame. Past
	// QueueBytes, the queue is coalesced: an action frame that a later
	// one for the same key replaces is dropped. If the rest still holds
	// more than half the cap (a page reading slower than its agent
	// writes), the queue is dropped and the session's sockets are closed
	// with 1013 (try again later): the browser client reconnects and is
	// sent the agent's current values.
	QueueBytes int
	// OnOpen is told of sockets opening (+1) and closing (-1), for metrics.
	OnOpen func(delta int)
	// OnSession is told of a session's first socket on this instance
	// opening (+1) and its last one closing (-1): the sessions a browser
	// page is connected to here, for metrics.
	OnSession func(delta int)

	now func() time.Time
	// remaining is the store's Remaining (nil: no expiry timers), asked
	// when a session's timer fires.
	remaining func(context.Context, string) (time.Duration, error)
	// afterFunc is time.AfterFunc; tests run the timers on their clock.
	afterFunc func(time.Duration, func()) stopper

	mu      sync.Mutex
	rooms   map[string]*room
	closed  bool
	counted int // sockets attached or reserved, for the total cap (under mu)
	// sockets attached or reserved per client and network, for the caps
	// on them (under mu; nil until a socket is counted per client)
	clients  map[string]int
	networks map[netip.Prefix]int
	open     atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

type room struct {
	sockets  []*Socket
	reserved int // sockets admitted but not attached yet
	queue    []queued
	bytes    int           // of the queue's frames
	delay    time.Duration // the queue's pacing
	expiries int           // opExpiry items in the queue (0 or 1)
	pumping  bool
	// expiry fires at the session's expiry while it has sockets here (one
	// timer per session, whatever its sockets); generation tells a timer
	// that was stopped or moved while it fired that it is stale.
	expiry     stopper
	generation uint64
}

// stopper is a timer (*time.Timer, or a test clock's).
type stopper interface{ Stop() bool }

// stopExpiry stops the room's timer, and one that is firing (under mu).
func (r *room) stopExpiry() {
	if r.expiry != nil {
		r.expiry.Stop()
		r.expiry = nil
	}
	r.generation++
}

// idle: nothing keeps the room (under mu).
func (r *room) idle() bool { return len(r.sockets) == 0 && r.reserved == 0 && !r.pumping }

type queued struct {
	frame []byte
	delay time.Duration
	to    *Socket // nil: every socket of the room
	op    op
	next  func() []byte // opCatchUp's frames
}

type op uint8

const (
	opFrame  op = iota // write frame
	opExpiry           // write frame, an extended one: a later one replaces it while it waits
	opCheck            // check the session is still there, then heartbeat
	opReplay           // close the sockets (1013): they reconnect and catch up
	opGone             // the session is gone: tell the sockets (as the SDK does) and close them
	// opCatchUp writes the frames next yields to one socket, each built
	// as the socket takes the one before: a catch-up of megabytes of
	// values never waits in the queue whole.
	opCatchUp
)

// Socket is one open WebSocket of a session on this instance.
type Socket struct {
	sid     string
	client  string // as Reserve counted it ("": not counted per client)
	network netip.Prefix
	// hasNetwork: the socket is counted under network
	hasNetwork bool
	conn       Conn // set by Attach, under the hub's lock, before anyone else sees it
	last       atomic.Int64
	gone       atomic.Bool
	attached   bool // under the hub's lock
	// held (under the hub's lock): attached, but its first frames are not
	// known yet; the room's frames for it wait in pending until Release.
	held    bool
	pending []queued
	// alive, set before the socket is attached, tells whether its session
	// still exists (ErrNotFound when not); asked when a heartbeat is due,
	// so a socket does not outlive its session.
	alive func(context.Context) error
}

// Refusals of Reserve.
var (
	// ErrSessionSockets: the session has its cap of sockets here.
	ErrSessionSockets = errors.New("too many sockets open for this session")
	// ErrTooManySockets: this instance has its cap of sockets, or the
	// client or its network has its share of them (errClientSockets,
	// errNetworkSockets, which are this error).
	ErrTooManySockets = errors.New("too many sockets open, try again later")
	errClientSockets  = fmt.Errorf("%w (this client's share)", ErrTooManySockets)
	errNetworkSockets = fmt.Errorf("%w (this network's share)", ErrTooManySockets)
	// ErrHubClosed: the store (and its hub) was closed by a reload.
	ErrHubClosed = errors.New("handshake store closed, try again")
)

// NewHub starts a hub and its heartbeat loop.
func NewHub() *Hub {
	h := &Hub{Heartbeat: 60 * time.Second, WriteTimeout: 5 * time.Second,
		QueueDelay: MaxStream, QueueBytes: 1 << 20, now: time.Now,
		afterFunc: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) },
		rooms:     map[string]*room{}, stop: make(chan struct{})}
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

// SocketCaps are the caps Reserve admits a socket within (0: none).
type SocketCaps struct {
	PerSession int // sockets of one session
	// PerClient and PerNetwork cap the sockets of one client (an address,
	// an IPv6 /64, as clientIP keys it) and of its network (an IPv4 /24,
	// an IPv6 /48), as the memory store caps their sessions: one network
	// cannot take every socket of the instance and lock other visitors'
	// pages out of live fill.
	PerClient, PerNetwork int
	Total                 int // sockets of the hub
}

// Reserve admits a new socket of session sid, opened by client ("": not
// counted per client), within caps, reserved sockets included. It is
// called before the WebSocket is accepted, so a refused upgrade costs no
// connection; the reservation is then Attached or Cancelled.
func (h *Hub) Reserve(sid, client string, caps SocketCaps) (*Socket, error) {
	network, hasNetwork := networkOf(client)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	r := h.rooms[sid]
	switch {
	case caps.Total > 0 && h.counted >= caps.Total:
		return nil, ErrTooManySockets
	case r != nil && caps.PerSession > 0 && len(r.sockets)+r.reserved >= caps.PerSession:
		return nil, ErrSessionSockets
	case client != "" && caps.PerClient > 0 && h.clients[client] >= caps.PerClient:
		return nil, errClientSockets
	case hasNetwork && caps.PerNetwork > 0 && h.networks[network] >= caps.PerNetwork:
		return nil, errNetworkSockets
	}
	if r == nil {
		r = &room{}
		h.rooms[sid] = r
	}
	r.reserved++
	h.counted++
	s := &Socket{sid: sid, client: client}
	if client != "" {
		if h.clients == nil {
			h.clients, h.networks = map[string]int{}, map[netip.Prefix]int{}
		}
		h.clients[client]++
		if hasNetwork {
			s.network, s.hasNetwork = network, true
			h.networks[network]++
		}
	}
	return s, nil
}

// uncount releases a socket's place under the caps (under mu).
func (h *Hub) uncount(s *Socket) {
	h.counted--
	if s.client == "" {
		return
	}
	if h.clients[s.client]--; h.clients[s.client] <= 0 {
		delete(h.clients, s.client)
	}
	if s.hasNetwork {
		if h.networks[s.network]--; h.networks[s.network] <= 0 {
			delete(h.networks, s.network)
		}
	}
}

// Attach makes a reserved socket live on connection c. It returns false
// when the hub was closed meanwhile (the reservation is then released).
func (h *Hub) Attach(s *Socket, c Conn) bool { return h.attach(s, c, false) }

// AttachHeld attaches a reserved socket whose first frames are not known
// yet: the session's frames from now on are kept for it, and written
// after the frames given to Release. A socket that reads the session's
// state after AttachHeld and sends it with Release misses no write, and
// never gets a value older than one it was already sent.
func (h *Hub) AttachHeld(s *Socket, c Conn) bool { return h.attach(s, c, true) }

func (h *Hub) attach(s *Socket, c Conn, held bool) bool {
	s.last.Store(h.now().UnixNano())
	h.mu.Lock()
	r := h.rooms[s.sid]
	if h.closed || r == nil || s.attached || s.gone.Load() {
		h.mu.Unlock()
		h.Cancel(s)
		return false
	}
	s.conn, s.attached, s.held = c, true, held
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

// Release writes frames to a socket attached with AttachHeld, then the
// frames catchUp yields until it yields nil (nil: none), before the
// session's frames that came since, then lets the room's frames through.
// catchUp is called as the socket takes each frame, so the catch-up
// waits as the values it is built from, not as frames. It returns false
// when the socket is gone (closed meanwhile).
func (h *Hub) Release(s *Socket, catchUp func() []byte, frames ...[]byte) bool {
	h.mu.Lock()
	r := h.rooms[s.sid]
	if r == nil || h.closed || !s.attached || !s.held || s.gone.Load() {
		h.mu.Unlock()
		return false
	}
	q := make([]queued, 0, len(frames)+1+len(s.pending)+len(r.queue))
	for _, f := range frames {
		q = append(q, queued{frame: f, to: s})
	}
	if catchUp != nil {
		q = append(q, queued{to: s, op: opCatchUp, next: catchUp})
	}
	q = append(q, s.pending...)
	for _, it := range q {
		r.bytes += len(it.frame)
	}
	r.queue = append(q, r.queue...)
	s.held, s.pending = false, nil
	h.startPump(s.sid, r)
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
	h.uncount(s)
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
	s, err := h.Reserve(sid, "", SocketCaps{})
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
	h.uncount(s)
	s.held, s.pending = false, nil
	last := false
	if r := h.rooms[s.sid]; r != nil {
		for i, o := range r.sockets {
			if o == s {
				r.sockets = append(r.sockets[:i], r.sockets[i+1:]...)
				last = len(r.sockets) == 0
				if last {
					r.stopExpiry()
				}
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
	q := make([]queued, len(frames))
	for i, f := range frames {
		q[i].frame = f
	}
	h.enqueue(sid, q, interval)
}

// paced bounds the interval between n frames so the batch takes at most
// MaxStream.
func paced(interval time.Duration, n int) time.Duration {
	if gaps := time.Duration(n - 1); gaps > 0 && interval*gaps > MaxStream {
		return MaxStream / gaps
	}
	return interval
}

// enqueue queues frames for a room, interval apart, within the room's
// caps.
func (h *Hub) enqueue(sid string, q []queued, interval time.Duration) {
	h.mu.Lock()
	r := h.rooms[sid]
	if r == nil || h.closed {
		h.mu.Unlock()
		return
	}
	if gaps := time.Duration(len(q) - 1); gaps > 0 && interval > 0 {
		interval = paced(interval, len(q))
		if left := max(h.QueueDelay-r.delay, 0); interval*gaps > left {
			interval = left / gaps
		}
		for i := 1; i < len(q); i++ {
			q[i].delay = interval
		}
		r.delay += interval * gaps
	}
	for _, it := range q {
		if it.to == nil {
			if it.op == opFrame && bytes.HasPrefix(it.frame, extendedPrefix) {
				// extend moved the session's expiry, on whichever instance
				// it was asked: the timer follows it.
				if in, ok := extendedIn(it.frame); ok {
					h.armLocked(sid, r, in)
				}
				if r.replaceExpiry(it.frame) {
					r.delay -= it.delay
					continue
				}
				it.op = opExpiry
				r.expiries++
			}
		}
		r.bytes += len(it.frame)
		r.queue = append(r.queue, it)
	}
	if r.bytes > h.QueueBytes {
		r.coalesce()
		if r.bytes > h.QueueBytes/2 {
			clear(r.queue)
			r.queue = append(r.queue[:0], queued{op: opReplay})
			r.bytes, r.delay, r.expiries = 0, 0, 0
		}
	}
	h.startPump(sid, r)
}

// startPump starts the room's pump unless it runs; it is called under mu
// and unlocks it.
func (h *Hub) startPump(sid string, r *room) {
	start := !r.pumping
	r.pumping = true
	h.mu.Unlock()
	if start {
		h.wg.Add(1)
		go h.pump(sid, r)
	}
}

// coalesce drops every action frame to the whole room that a later one
// for the same key replaces: the page ends with the same values. The
// frames kept are copied, so that the published events they were cut
// from are freed (under mu).
func (r *room) coalesce() {
	seen := make(map[string]struct{})
	for i := len(r.queue) - 1; i >= 0; i-- {
		it := &r.queue[i]
		if it.to != nil || it.op != opFrame {
			continue
		}
		k, ok := actionKey(it.frame)
		if !ok {
			continue
		}
		if _, dup := seen[string(k)]; dup {
			r.bytes -= len(it.frame)
			r.delay -= it.delay
			it.frame = nil
			continue
		}
		seen[string(k)] = struct{}{}
	}
	n := 0
	for _, it := range r.queue {
		if it.op == opFrame && it.frame == nil {
			continue
		}
		if it.to == nil && it.op == opFrame {
			it.frame = bytes.Clone(it.frame)
		}
		r.queue[n] = it
		n++
	}
	clear(r.queue[n:])
	r.queue = r.queue[:n]
}

// replaceExpiry puts an extended frame in the place of the one waiting in
// the queue, if one does, and reports whether it did (under mu): the page
// gets the latest expiry no later than it would have got the older one,
// and an agent extending in a loop queues one frame, not one per call.
func (r *room) replaceExpiry(frame []byte) bool {
	if r.expiries == 0 {
		return false
	}
	for i := len(r.queue) - 1; i >= 0; i-- {
		if it := &r.queue[i]; it.op == opExpiry && it.to == nil {
			r.bytes += len(frame) - len(it.frame)
			it.frame = frame
			return true
		}
	}
	return false
}

var (
	actionPrefix   = []byte(`{"type":"action","key":"`)
	extendedPrefix = []byte(`{"type":"extended",`)
)

// actionKey returns the key of an action frame, as encoded in it.
func actionKey(f []byte) ([]byte, bool) {
	if !bytes.HasPrefix(f, actionPrefix) {
		return nil, false
	}
	for i := len(actionPrefix); i < len(f); i++ {
		switch f[i] {
		case '\\':
			i++
		case '"':
			return f[len(actionPrefix)-1 : i+1], true
		}
	}
	return nil, false
}

// pump writes a room's queued frames in order, then ends.
func (h *Hub) pump(sid string, r *room) {
	defer h.wg.Done()
	var targets []*Socket
	for {
		h.mu.Lock()
		if len(r.queue) == 0 || h.closed {
			r.queue, r.expiries = nil, 0
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
		r.bytes -= len(item.frame)
		if item.to == nil && item.op == opExpiry {
			r.expiries--
		}
		r.delay -= item.delay
		targets = targets[:0]
		for _, s := range r.sockets {
			switch {
			case item.to != nil && item.to != s:
			case s.held && item.op != opReplay:
				p := item
				p.to, p.delay = s, 0
				s.pending = append(s.pending, p)
			default:
				targets = append(targets, s)
			}
		}
		h.mu.Unlock()
		if len(targets) == 0 {
			continue
		}

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
			switch item.op {
			case opFrame, opExpiry:
				h.write(s, item.frame)
			case opCheck:
				h.check(s)
			case opCatchUp:
				for f := item.next(); f != nil && !s.gone.Load(); f = item.next() {
					h.write(s, f)
				}
			case opReplay:
				h.Unregister(s)
				_ = s.conn.Close(websocket.StatusTryAgainLater, "too far behind: reconnect to catch up")
			case opGone:
				h.gone(s)
			}
		}
	}
}

var sessionGoneFrame = []byte(`{"type":"error","msg":"session not found"}`)

// check sends a due heartbeat, unless the socket's session is gone: then
// it tells the page as the SDK does and closes the socket (1008), which
// frees its place under ws_max and ws_per_session. A store that cannot
// answer (Redis down) keeps the socket.
func (h *Hub) check(s *Socket) {
	if s.alive != nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.WriteTimeout)
		err := s.alive(ctx)
		cancel()
		if errors.Is(err, ErrNotFound) {
			h.gone(s)
			return
		}
	}
	h.write(s, heartbeatFrame)
}

// gone tells a socket its session is gone, as the SDK does, and closes it
// (1008), which frees its place under ws_max and ws_per_session.
// The close handshake waits up to 5 s for the page's answer: off the
// pump, so the session's other sockets are told without waiting for it;
// counted in wg, so Close waits for it (gone runs on a pump, which holds
// a count, so the Add never races Close's Wait).
func (h *Hub) gone(s *Socket) {
	h.write(s, sessionGoneFrame)
	h.Unregister(s)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		_ = s.conn.Close(websocket.StatusPolicyViolation, "session not found")
	}()
}

// ExpireIn (re)arms the expiry timer of session sid, which has sockets
// here, to fire after d (the session's TTL as the store just gave it).
// A session has one timer on an instance, whatever its sockets; it stops
// when the last of them goes.
func (h *Hub) ExpireIn(sid string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.rooms[sid]; r != nil {
		h.armLocked(sid, r, d)
	}
}

// armLocked (re)arms the room's expiry timer (under mu).
func (h *Hub) armLocked(sid string, r *room, d time.Duration) {
	if h.closed || h.remaining == nil || len(r.sockets) == 0 {
		return
	}
	r.stopExpiry()
	gen := r.generation
	r.expiry = h.afterFunc(max(d, 0), func() { h.expired(sid, r, gen) })
}

// expiryRetry is how soon a timer asks again when the store could not
// answer (the heartbeat's check is the other way a gone session is seen).
const expiryRetry = 15 * time.Second

// expired runs when session sid's timer fires. The store says what is
// left, not this instance's clock: the session may have been used since
// (every use renews it, on any instance), and then the timer is moved to
// its new expiry; a session that is gone has its sockets told at once,
// after the frames already queued for them.
func (h *Hub) expired(sid string, r *room, gen uint64) {
	current := func() bool { return !h.closed && h.rooms[sid] == r && r.generation == gen }
	h.mu.Lock()
	ok := current()
	h.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.WriteTimeout)
	left, err := h.remaining(ctx, sid)
	cancel()
	h.mu.Lock()
	if !current() { // stopped or moved (an extend, a new socket) meanwhile
		h.mu.Unlock()
		return
	}
	switch {
	case errors.Is(err, ErrNotFound):
		r.stopExpiry()
		h.mu.Unlock()
		h.enqueue(sid, []queued{{op: opGone}}, 0)
		return
	case err != nil:
		left = expiryRetry
	case left <= 0:
		left = time.Millisecond // Redis's last millisecond: it is gone on the next ask
	}
	h.armLocked(sid, r, left)
	h.mu.Unlock()
}

// extendedIn reads an extended frame's expiresIn.
func extendedIn(f []byte) (time.Duration, bool) {
	const field = `"expiresIn":`
	i := bytes.Index(f, []byte(field))
	if i < 0 {
		return 0, false
	}
	rest := f[i+len(field):]
	j := bytes.IndexByte(rest, '}')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil || n < 0 || n > int64(maxExpiresIn/time.Second) {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// maxExpiresIn bounds an extended frame's expiry for the timer (a session
// lasts at most max_ttl; a frame published by anything else is not
// trusted to overflow a Duration).
const maxExpiresIn = 1000 * 24 * time.Hour

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

// beat queues a heartbeat for every socket idle for Heartbeat or longer,
// after a check that its session still exists.
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
		h.enqueue(s.sid, []queued{{to: s, op: opCheck}}, 0)
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
		r.stopExpiry()
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

// doneFrame ends a batch's frames. cleared, how many of the applied
// writes were null (this implementation's addition to the SDK's frame),
// lets the page tell clears from fills when no action frames came (a
// batch sent with "stream": false, or one that crossed a reconnection).
func doneFrame(applied, cleared int, rejected, missing []string) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"type":"done","applied":`...)
	b = strconv.AppendInt(b, int64(applied), 10)
	b = append(b, `,"cleared":`...)
	b = strconv.AppendInt(b, int64(cleared), 10)
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
