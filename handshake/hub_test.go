package handshake

import (
	"context"
	"errors"
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
	if stuck.closed != websocket.StatusGoingAway {
		t.Errorf("stuck socket closed with %v", stuck.closed)
	}
}

func TestHubCloseRestartsSockets(t *testing.T) {
	h := NewHub()
	c := &fakeConn{}
	h.Register("s1", c)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if c.closed != websocket.StatusServiceRestart || h.Open() != 0 {
		t.Fatalf("closed %v, open %d", c.closed, h.Open())
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
	r, err := h.Reserve("c", 0, 0) // reserved, never attached: not connected
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
