package handshake

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCatchUpCountsAgainstQueueBytes: QueueBytes caps the bytes of one
// session's frames waiting to be written (default 1 MiB). A session
// holding MaxFields agent values of MaxValueLen each replays ~4 MiB to
// every socket that connects; with ws_per_session sockets that do not
// read, that was ~32 MiB of frames waiting in one session's queue, each
// reconnect repeating it. The catch-up is built as each socket takes it:
// what waits is the values, shared with the store, and every socket still
// gets every frame, in order, once it reads.
func TestCatchUpCountsAgainstQueueBytes(t *testing.T) {
	h := NewHub()
	defer h.Close()
	value := `"` + strings.Repeat("v", MaxValueLen-2) + `"`
	st := &State{Values: map[string]Entry{}}
	for k := 0; k < MaxFields; k++ {
		key := "f" + strconv.Itoa(k)
		st.Keys = append(st.Keys, key)
		st.Values[key] = Entry{Value: []byte(value), By: ByAI}
	}
	const sockets = DefaultWSPerSession
	var built atomic.Int64
	var conns []*gateConn
	for i := 0; i < sockets; i++ {
		s, err := h.Reserve("sid", "", SocketCaps{PerSession: DefaultWSPerSession})
		if err != nil {
			t.Fatal(err)
		}
		c := newGateConn()
		conns = append(conns, c)
		if !h.AttachHeld(s, c) {
			t.Fatal("attach")
		}
		next := catchUp(st)
		count := func() []byte {
			f := next()
			if f != nil {
				built.Add(1)
			}
			return f
		}
		if !h.Release(s, count, []byte(`{"type":"connected","sessionId":"sid","mode":"form-fill"}`)) {
			t.Fatal("release")
		}
	}
	// What the room counts, plus every catch-up frame built so far as if
	// none was written yet.
	queued, _, _ := queueOf(t, h, "sid")
	waiting := queued + int(built.Load())*(MaxValueLen+40)
	t.Logf("bytes waiting in one session's queue: %d (QueueBytes %d)", waiting, h.QueueBytes)
	if waiting > h.QueueBytes {
		t.Errorf("%d bytes wait in one session's queue, over QueueBytes (%d)", waiting, h.QueueBytes)
	}
	for _, c := range conns {
		close(c.open)
	}
	// Release puts a socket's catch-up before those of sockets released
	// earlier: the last socket is served first.
	for i := len(conns) - 1; i >= 0; i-- {
		c := conns[i]
		waitFor(t, "the catch-up of socket "+strconv.Itoa(i), func() bool { return len(c.got()) == 1+MaxFields })
		got := c.got()
		if !strings.HasPrefix(got[0], `{"type":"connected"`) || got[1] != string(actionFrame("f0", []byte(value))) || got[MaxFields] != string(actionFrame("f"+strconv.Itoa(MaxFields-1), []byte(value))) {
			t.Errorf("socket %d: frames out of order", i)
		}
	}
}
