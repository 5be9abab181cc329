package handshake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeConn records frames; block makes writes hang until the context ends.
type fakeConn struct {
	mu     sync.Mutex
	frames []string
	closed websocket.StatusCode
	block  bool
}

func (c *fakeConn) Write(ctx context.Context, _ websocket.MessageType, p []byte) error {
	if c.block {
		<-ctx.Done()
		return ctx.Err()
	}
	c.mu.Lock()
	c.frames = append(c.frames, string(p))
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) Close(code websocket.StatusCode, _ string) error {
	c.mu.Lock()
	c.closed = code
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) closedWith() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *fakeConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHubHeartbeat(t *testing.T) {
	h := NewHub()
	defer h.Close()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	h.now = clock.now
	c := &fakeConn{}
	s := h.Register("s1", c)
	h.beat()
	if len(c.got()) != 0 {
		t.Fatalf("heartbeat before 60s idle: %v", c.got())
	}
	clock.add(60 * time.Second)
	h.beat()
	h.beat() // one per idle period
	waitFor(t, "heartbeat", func() bool { return len(c.got()) == 1 })
	if c.got()[0] != `{"type":"heartbeat"}` {
		t.Fatal(c.got())
	}
	h.Unregister(s)
	if h.Open() != 0 || h.Has("s1") {
		t.Fatal("socket still registered")
	}
}

func TestHubEvents(t *testing.T) {
	h := NewHub()
	defer h.Close()
	c := &fakeConn{}
	h.Register("s1", c)
	if paced(2*time.Second, 61) != MaxStream/60 || paced(300*time.Millisecond, 4) != 300*time.Millisecond || paced(time.Second, 1) != time.Second {
		t.Error("pacing not capped to MaxStream")
	}
	frames := make([][]byte, 61)
	for i := range frames {
		frames[i] = []byte(`{"n":` + string(rune('0'+i%10)) + `}`)
	}
	start := time.Now()
	h.Deliver(encodeEvent("s1", 0, frames[:2]...))
	h.Deliver(encodeEvent("other", 0, frames[0])) // no socket here: dropped
	waitFor(t, "frames", func() bool { return len(c.got()) == 2 })
	if time.Since(start) > time.Second {
		t.Fatal("interval 0 was paced")
	}
	if sid, iv, fr, ok := decodeEvent(encodeEvent("s1", 1500*time.Millisecond, frames...)); !ok || sid != "s1" || iv != 1500*time.Millisecond || len(fr) != 61 {
		t.Fatalf("event round trip: %v %v %d %v", sid, iv, len(fr), ok)
	}
	for _, bad := range []string{"", "s1", "s1\nx\n{}", "\n0\n{}"} {
		if _, _, _, ok := decodeEvent([]byte(bad)); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}

func TestHubDropsStuckSocket(t *testing.T) {
	h := NewHub()
	h.WriteTimeout = 20 * time.Millisecond
	defer h.Close()
	stuck, ok := &fakeConn{block: true}, &fakeConn{}
	h.Register("s1", stuck)
	h.Register("s1", ok)
	h.Deliver(encodeEvent("s1", 0, []byte(`{"a":1}`), []byte(`{"a":2}`)))
	waitFor(t, "the healthy socket's frames", func() bool { return len(ok.got()) == 2 })
	waitFor(t, "the stuck socket's removal", func() bool { return h.Open() == 1 })
	if stuck.closedWith() != websocket.StatusGoingAway {
		t.Errorf("stuck socket closed with %v", stuck.closedWith())
	}
}

func TestHubCloseRestartsSockets(t *testing.T) {
	h := NewHub()
	c := &fakeConn{}
	h.Register("s1", c)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if c.closedWith() != websocket.StatusServiceRestart || h.Open() != 0 {
		t.Fatalf("closed %v, open %d", c.closedWith(), h.Open())
	}
	if h.Register("s2", &fakeConn{}) != nil {
		t.Fatal("registered on a closed hub")
	}
}

var _ = errors.New

// OnSession counts sessions with a socket here, not sockets: a page open
// in two tabs is one session, counted down only when its last socket goes.
func TestHubCountsConnectedSessions(t *testing.T) {
	h := NewHub()
	defer h.Close()
	var mu sync.Mutex
	sockets, sessions := 0, 0
	h.OnOpen = func(d int) { mu.Lock(); sockets += d; mu.Unlock() }
	h.OnSession = func(d int) { mu.Lock(); sessions += d; mu.Unlock() }
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return sockets, sessions }
	a1 := h.Register("a", &fakeConn{})
	a2 := h.Register("a", &fakeConn{})
	b := h.Register("b", &fakeConn{})
	if so, se := count(); so != 3 || se != 2 {
		t.Fatalf("3 sockets of 2 sessions counted as %d sockets, %d sessions", so, se)
	}
	h.Unregister(a1)
	h.Unregister(a1) // twice: counted once
	if so, se := count(); so != 2 || se != 2 {
		t.Fatalf("after one of a's two sockets closed: %d sockets, %d sessions", so, se)
	}
	r, err := h.Reserve("c", "", SocketCaps{}) // reserved, never attached: not connected
	if err != nil {
		t.Fatal(err)
	}
	h.Cancel(r)
	h.Unregister(a2)
	h.Unregister(b)
	if so, se := count(); so != 0 || se != 0 {
		t.Fatalf("all closed: %d sockets, %d sessions", so, se)
	}
}

// gateConn's writes wait for open (or the write timeout), like a socket
// whose page is not reading.
type gateConn struct {
	fakeConn
	open chan struct{}
}

func newGateConn() *gateConn { return &gateConn{open: make(chan struct{})} }

func (c *gateConn) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	select {
	case <-c.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.fakeConn.Write(ctx, typ, p)
}

// queueOf sums what a room's queue holds, checking the room's own counts.
func queueOf(t *testing.T, h *Hub, sid string) (bytes int, delay time.Duration, q []queued) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[sid]
	if r == nil {
		return 0, 0, nil
	}
	for _, it := range r.queue {
		bytes += len(it.frame) // to one socket or all: the cap counts both
		delay += it.delay
	}
	if bytes != r.bytes || delay != r.delay {
		t.Errorf("room counts %d bytes, %s; its queue holds %d bytes, %s", r.bytes, r.delay, bytes, delay)
	}
	return bytes, delay, append([]queued(nil), r.queue...)
}

func batch(sid string, interval time.Duration, n int, value string) []byte {
	frames := make([][]byte, 0, n+1)
	for i := 0; i < n; i++ {
		frames = append(frames, actionFrame("k"+strconv.Itoa(i), []byte(`"`+value+`"`)))
	}
	frames = append(frames, doneFrame(n, 0, nil, nil))
	return encodeEvent(sid, interval, frames...)
}

// Batches that arrive faster than their animation shows are paced within
// what is left of QueueDelay, then not at all: nothing waits behind more
// than one batch's animation.
func TestHubQueuePacingCapped(t *testing.T) {
	h := NewHub()
	defer h.Close()
	c := newGateConn()
	defer close(c.open)
	h.Register("s1", c)
	for i := 0; i < 60; i++ {
		h.Deliver(batch("s1", time.Second, 11, "v"+strconv.Itoa(i))) // 10 s of animation each
	}
	_, delay, q := queueOf(t, h, "s1")
	if delay > h.QueueDelay || delay < h.QueueDelay-time.Second {
		t.Errorf("%s of pacing queued after 60 batches of 10 s (cap %s; the first batch keeps its own)", delay, h.QueueDelay)
	}
	for _, it := range q[len(q)-12:] {
		if it.delay != 0 {
			t.Fatalf("a batch past the cap is paced: %s", it.delay)
		}
	}
}

// Past QueueBytes the queue keeps each key's latest action frame and
// every done: the page ends with the agent's latest values.
func TestHubQueueCoalescesToLatest(t *testing.T) {
	h := NewHub()
	defer h.Close()
	// Five batches of two ~340-byte frames and a ~70-byte done: the
	// queue passes the cap at the fourth and coalesces to two frames and
	// the dones, under half the cap (past which the page is made to
	// reconnect instead).
	h.QueueBytes = 2400
	c := newGateConn()
	h.Register("s1", c)
	pad := strings.Repeat("x", 300)
	const batches = 5
	for i := 1; i <= batches; i++ {
		h.Deliver(batch("s1", 0, 2, "v"+strconv.Itoa(i)+pad))
		if b, _, _ := queueOf(t, h, "s1"); b > h.QueueBytes {
			t.Fatalf("batch %d: %d bytes queued, cap %d", i, b, h.QueueBytes)
		}
	}
	close(c.open)
	dones := func() (n int) {
		for _, f := range c.got() {
			if strings.HasPrefix(f, `{"type":"done"`) {
				n++
			}
		}
		return n
	}
	waitFor(t, "every done", func() bool { return dones() == batches })
	last := map[string]string{}
	actions := 0
	for _, f := range c.got() {
		var m map[string]any
		if err := json.Unmarshal([]byte(f), &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "action" {
			actions++
			last[m["key"].(string)] = m["value"].(string)
		}
	}
	want := "v" + strconv.Itoa(batches) + pad
	if last["k0"] != want || last["k1"] != want {
		t.Errorf("the page ends with %.3s, %.3s; want the latest %.3s", last["k0"], last["k1"], want)
	}
	if actions >= 2*batches {
		t.Errorf("%d action frames written: nothing coalesced", actions)
	}
	if c.closedWith() != 0 || h.Open() != 1 {
		t.Errorf("socket closed (%v) although the coalesced queue fit", c.closedWith())
	}
}

// A page that reads slower than its agent writes, with frames that do not
// coalesce, is closed with 1013 so that it reconnects and catches up; the
// queue is dropped.
func TestHubQueueFarBehindReconnects(t *testing.T) {
	h := NewHub()
	defer h.Close()
	h.QueueBytes = 1000
	c := newGateConn()
	h.Register("s1", c)
	rejected := []string{strings.Repeat("r", 200)}
	for i := 0; i < 10; i++ {
		h.Deliver(encodeEvent("s1", 0, doneFrame(0, 0, rejected, nil)))
		if b, _, _ := queueOf(t, h, "s1"); b > h.QueueBytes {
			t.Fatalf("%d bytes queued, cap %d", b, h.QueueBytes)
		}
	}
	close(c.open)
	waitFor(t, "the socket to be closed", func() bool { return h.Open() == 0 })
	if c.closedWith() != websocket.StatusTryAgainLater {
		t.Errorf("closed with %v, want 1013", c.closedWith())
	}
}

// A held socket (reading its catch-up) gets the frames given to Release
// first, then the session's frames that came meanwhile, in order; the
// room's other sockets are not held up.
func TestHubHeldSocketGetsCatchUpFirst(t *testing.T) {
	h := NewHub()
	defer h.Close()
	other := &fakeConn{}
	h.Register("s1", other)
	s, err := h.Reserve("s1", "", SocketCaps{})
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeConn{}
	if !h.AttachHeld(s, c) {
		t.Fatal("not attached")
	}
	h.Deliver(encodeEvent("s1", 0, actionFrame("k", []byte(`"new"`)), doneFrame(1, 0, nil, nil)))
	waitFor(t, "the other socket's frames", func() bool { return len(other.got()) == 2 })
	if got := c.got(); len(got) != 0 {
		t.Fatalf("held socket written to: %v", got)
	}
	old := &State{Keys: []string{"u", "k"}, Values: map[string]Entry{"u": {Value: []byte(`"mine"`), By: ByUser}, "k": {Value: []byte(`"old"`), By: ByAI}}}
	if !h.Release(s, catchUp(old), []byte(`{"type":"connected"}`)) {
		t.Fatal("release refused")
	}
	waitFor(t, "the held socket's frames", func() bool { return len(c.got()) == 4 })
	want := []string{`{"type":"connected"}`, `{"type":"action","key":"k","value":"old"}`, `{"type":"action","key":"k","value":"new"}`, `{"type":"done","applied":1,"cleared":0,"rejected":[],"missing":[]}`}
	if got := c.got(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.Unregister(s)
	if h.Release(s, nil) {
		t.Error("released a closed socket")
	}
}

// A due heartbeat first checks the session: gone, the socket gets the
// SDK's error frame and is closed (1008), freeing its place; a store that
// cannot answer keeps it.
func TestHubHeartbeatClosesSocketOfGoneSession(t *testing.T) {
	h := NewHub()
	defer h.Close()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	h.now = clock.now
	var mu sync.Mutex
	answer := errors.New("store down")
	s, _ := h.Reserve("s1", "", SocketCaps{})
	s.alive = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return answer }
	c := &fakeConn{}
	h.Attach(s, c)
	clock.add(time.Minute)
	h.beat()
	waitFor(t, "a heartbeat", func() bool { return len(c.got()) == 1 })
	mu.Lock()
	answer = fmt.Errorf("lookup: %w", ErrNotFound)
	mu.Unlock()
	clock.add(time.Minute)
	h.beat()
	waitFor(t, "the socket to close", func() bool { return h.Open() == 0 })
	// The close handshake runs off the pump (gone), so it may come after.
	waitFor(t, "the close with 1008", func() bool { return c.closedWith() == websocket.StatusPolicyViolation })
	if got := c.got(); len(got) != 2 || got[1] != `{"type":"error","msg":"session not found"}` {
		t.Errorf("frames %v", got)
	}
}

// An agent extending in a loop while the page does not read queues one
// extended frame, not one per call: no 1013, and the page learns the
// latest expiry. Frames around it keep their order.
func TestHubExtendedFloodQueuesOne(t *testing.T) {
	h := NewHub()
	defer h.Close()
	h.QueueBytes = 1000
	c := newGateConn()
	h.Register("s1", c)
	h.Deliver(encodeEvent("s1", 0, actionFrame("k", []byte(`"a"`)), doneFrame(1, 0, nil, nil)))
	const extends = 5000 // 35 bytes each: 175 times QueueBytes
	for i := 1; i <= extends; i++ {
		h.Deliver(encodeEvent("s1", 0, extendedFrame(int64(1800+i))))
		if i == 10 {
			h.Deliver(encodeEvent("s1", 0, doneFrame(0, 0, []string{"k"}, nil)))
		}
		if b, _, _ := queueOf(t, h, "s1"); b > h.QueueBytes {
			t.Fatalf("extend %d: %d bytes queued, cap %d", i, b, h.QueueBytes)
		}
	}
	close(c.open)
	last := extendedFrame(1800 + extends)
	waitFor(t, "the last done", func() bool {
		got := c.got()
		return len(got) > 0 && strings.Contains(got[len(got)-1], `"rejected":["k"]`)
	})
	got := c.got()
	// One extended frame, updated in its place: the done after it does
	// not wait for the flood, nor does the page miss the latest expiry.
	want := []string{`{"type":"action","key":"k","value":"a"}`, `{"type":"done","applied":1,"cleared":0,"rejected":[],"missing":[]}`,
		string(last), `{"type":"done","applied":0,"cleared":0,"rejected":["k"],"missing":[]}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.closedWith() != 0 || h.Open() != 1 {
		t.Errorf("socket closed (%v) by a flood of extends", c.closedWith())
	}
	if _, _, q := queueOf(t, h, "s1"); len(q) != 0 {
		t.Errorf("%d items left queued", len(q))
	}
}
