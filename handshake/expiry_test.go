package handshake

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A session with a socket has one timer at its expiry: when it fires and
// the store says the session is gone, the page is told at once (no
// heartbeat), and the socket closes. extend moves the timer; a use of the
// session (which renews it) is followed when the timer asks the store;
// the timer stops when the last socket goes. All on the fake clock.
func TestExpiryTimer(t *testing.T) {
	f := newFixture(t)
	hub := f.store.Hub()
	hub.afterFunc = f.clock.afterFunc
	var asks atomic.Int32
	hub.remaining = func(ctx context.Context, sid string) (time.Duration, error) {
		d, err := f.store.Remaining(ctx, sid)
		asks.Add(1)
		return d, err
	}
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	read(t, c) // connected
	c2 := f.dial(s, s.Token)
	read(t, c2)
	waitFor(t, "the timer", func() bool { return f.clock.pending() == 1 })

	// extend moves the timer: nothing fires at the old expiry.
	e := f.do("POST", "/handshake/session/"+s.ID+"/extend", `{"extraSeconds":600}`, "X-Handshake-Token", s.Token)
	if e.status != 200 {
		t.Fatalf("extend: %d %s", e.status, e.body)
	}
	if m := read(t, c); m["type"] != "extended" {
		t.Fatalf("extended: %v", m)
	}
	read(t, c2)
	if want := f.clock.now().Add(DefaultTTL + 600*time.Second); !f.clock.next().Equal(want) || f.clock.pending() != 1 {
		t.Fatalf("after extend the timer fires at %v (%d timers), want %v", f.clock.next(), f.clock.pending(), want)
	}
	f.clock.add(DefaultTTL + time.Second)
	if asks.Load() != 0 || f.clock.pending() != 1 {
		t.Fatalf("the timer fired at the expiry before extend: %d asks, %d timers", asks.Load(), f.clock.pending())
	}
	// A use renews the session: the timer asks the store and moves on.
	f.agent("GET", s, "/handshake/context/", "")
	f.clock.add(600 * time.Second)
	waitFor(t, "the store asked", func() bool { return asks.Load() == 1 })
	waitFor(t, "the timer moved", func() bool { return f.clock.pending() == 1 })
	// Now the session ends: both sockets are told at once.
	f.clock.add(DefaultTTL + 600*time.Second)
	waitFor(t, "the store asked again", func() bool { return asks.Load() == 2 })
	for _, conn := range []*websocket.Conn{c, c2} {
		if m := read(t, conn); m["type"] != "error" || m["msg"] != "session not found" {
			t.Fatalf("the end: %v", m)
		}
	}
	waitFor(t, "the sockets closed", func() bool { return hub.Open() == 0 })
	if f.clock.pending() != 0 {
		t.Errorf("%d timers left after the sockets closed", f.clock.pending())
	}
}

// The timer stops when the last socket of its session goes.
func TestExpiryTimerStopsWithTheLastSocket(t *testing.T) {
	f := newFixture(t)
	hub := f.store.Hub()
	hub.afterFunc = f.clock.afterFunc
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	read(t, c)
	waitFor(t, "the timer", func() bool { return f.clock.pending() == 1 })
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the timer stopped", func() bool { return f.clock.pending() == 0 })
}

// With Redis the store's TTL decides, not this instance's clock: a timer
// that fires while Redis still holds the session (renewed through another
// instance) moves on; once Redis no longer has it, the page is told.
func TestExpiryTimerRedis(t *testing.T) {
	f := newFixtureOn(t, "redis")
	rs := f.h.cfg.Store.(*RedisStore)
	hub := rs.Hub()
	hub.afterFunc = f.clock.afterFunc
	s := f.create(contactForm)
	c := f.dial(s, s.Token)
	read(t, c)
	waitFor(t, "the timer", func() bool { return f.clock.pending() == 1 })
	f.clock.add(DefaultTTL) // this clock says it expired; Redis does not
	waitFor(t, "the timer moved on", func() bool { return f.clock.pending() == 1 })
	if left, err := rs.Remaining(context.Background(), s.ID); err != nil || left < DefaultTTL-time.Minute {
		t.Fatalf("Redis's TTL: %v %v", left, err)
	}
	if err := rs.client.Del(context.Background(), rs.keys(s.ID)...).Err(); err != nil {
		t.Fatal(err)
	}
	f.clock.add(DefaultTTL)
	if m := read(t, c); m["type"] != "error" || m["msg"] != "session not found" {
		t.Fatalf("the end: %v", m)
	}
}
