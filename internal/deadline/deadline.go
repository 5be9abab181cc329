// Package deadline gives a call a context that ends at a deadline, when
// its parent ends, or when the call stops: the converse gateway's bound on
// a concierge (concierge_timeout).
//
// Why not context.WithTimeout: on the converse path it was the largest
// cost of the gateway that is not the protocol's own work
// (docs/performance.md, issue 12's twelfth pass). Per call it put a timer
// in the runtime's heap, registered the timer context in the request
// context's child map and the proxy's transport context in the timer
// context's own: about 800 bytes in six objects. Here a call costs one
// object, its Done channel and two short critical sections; one
// goroutine per Watch, running only while calls are in flight, checks
// them every tick for a passed deadline or an ended parent.
//
// A context derived from c directly registers through AfterFunc, without
// a map. Caddy's reverse_proxy wraps the request's context in values
// before its transport derives one, and context, finding no canceler it
// knows under them, waits for c's end in a goroutine of its own: one
// small goroutine per call in flight. Measured, that still costs less
// than a child map: a variant whose c held a cancel context of its own
// (so that the transport's registered in its map, no goroutine)
// allocated 1,020 bytes a call more than plain Caddy instead of 592, and
// read 0.926 of plain Caddy's throughput instead of 0.962.
//
// The price is precision: a deadline, or a parent's end (the agent hung
// up), is noticed up to one tick late (a tenth of the timeout, at most
// 100 ms). A concierge call runs for seconds; an agent that left waits for
// nothing, and the concierge's work goes on at most a tick longer.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Watch holds the calls in flight under one timeout.
type Watch struct {
	timeout time.Duration
	tick    time.Duration
	now     func() time.Time // tests set it

	mu         sync.Mutex
	head, tail *Context // start order; check walks all (a parent's deadline may be earlier)
	running    bool     // a watcher goroutine is running
	fire       []firing // reused by check
}

type firing struct {
	c   *Context
	err error
}

// MaxTick is the longest a deadline or a parent's end goes unnoticed.
const MaxTick = 100 * time.Millisecond

// NewWatch returns a Watch whose calls end timeout after they start.
func NewWatch(timeout time.Duration) *Watch {
	tick := min(timeout/10, MaxTick)
	if tick <= 0 {
		tick = time.Millisecond
	}
	return &Watch{timeout: timeout, tick: tick, now: time.Now}
}

// Start returns a child of parent that is done when the timeout has
// passed (context.DeadlineExceeded), when parent is done (its error), or
// at Stop (context.Canceled). The caller must call Stop when the call
// returns, as it would a CancelFunc.
func (w *Watch) Start(parent context.Context) *Context {
	d := w.now().Add(w.timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	c := &Context{parent: parent, w: w, deadline: d}
	w.mu.Lock()
	c.prev = w.tail
	if w.tail != nil {
		w.tail.next = c
	} else {
		w.head = c
	}
	w.tail = c
	c.listed = true
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
	return c
}

// run checks the calls every tick and returns when none is left.
func (w *Watch) run() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for range t.C {
		if !w.check(w.now()) {
			return
		}
	}
}

// check ends the calls whose deadline is at or before now or whose parent
// is done, and reports whether calls remain (if not, the watcher stops).
func (w *Watch) check(now time.Time) bool {
	w.mu.Lock()
	if w.head == nil {
		w.running = false
		w.mu.Unlock()
		return false
	}
	fire := w.fire[:0]
	for c := w.head; c != nil; {
		next := c.next
		var err error
		if !now.Before(c.deadline) {
			err = context.DeadlineExceeded
		} else {
			err = c.parent.Err()
		}
		if err != nil {
			w.unlink(c)
			fire = append(fire, firing{c, err})
		}
		c = next
	}
	w.mu.Unlock()
	for i, f := range fire {
		f.c.cancel(f.err)
		fire[i] = firing{}
	}
	w.mu.Lock()
	w.fire = fire[:0]
	w.mu.Unlock()
	return true
}

// unlink removes c from the list; w.mu is held.
func (w *Watch) unlink(c *Context) {
	if !c.listed {
		return
	}
	c.listed = false
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		w.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		w.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// Context is a call's context. It implements context.Context and the
// AfterFunc method through which a context derived from it directly
// registers to be canceled with it (under Caddy's value wrappers context
// waits in a goroutine instead: see the package doc).
type Context struct {
	parent     context.Context
	w          *Watch
	deadline   time.Time
	prev, next *Context // in w's list; w.mu
	listed     bool     // w.mu

	mu    sync.Mutex
	done  chan struct{}
	err   error
	after []func() // AfterFunc's; rare under Caddy, so not stored inline
}

// Stop ends the call: it leaves the Watch and is canceled.
func (c *Context) Stop() {
	c.w.mu.Lock()
	c.w.unlink(c)
	c.w.mu.Unlock()
	c.cancel(context.Canceled)
}

// closed is the Done channel of a context canceled before anyone asked.
var closed = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (c *Context) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	after := c.after
	c.after = nil
	c.mu.Unlock()
	// The functions are what context's own propagation registers: a
	// child's cancel, which neither blocks nor calls back into c's lock.
	for _, f := range after {
		if f != nil {
			f()
		}
	}
}

// Deadline returns the call's deadline.
func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns a channel closed when the call's context ends.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closed
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err returns nil until the context ends, then why.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value returns the parent's values. (A context derived from c still
// registers through AfterFunc: the nearest canceler among the parent's
// values does not share c's Done channel, which context checks.)
func (c *Context) Value(key any) any { return c.parent.Value(key) }

// AfterFunc arranges for f to be called when c ends (at once, in its own
// goroutine, if it has), and returns a function that unregisters it,
// reporting whether it did. f is called in the goroutine that ends c, so
// it must not block: context passes a child's cancel here (the
// afterFuncer interface that context.WithCancel and context.AfterFunc
// look for).
func (c *Context) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// Not in the caller's goroutine: context's propagateCancel calls
		// AfterFunc holding the child's lock, and f (the child's cancel)
		// takes it. c can end between propagateCancel's look at Done and
		// this call (the watcher, or Stop, in another goroutine).
		go f()
		return func() bool { return false }
	}
	i := len(c.after)
	c.after = append(c.after, f)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i >= len(c.after) || c.after[i] == nil {
			return false
		}
		c.after[i] = nil
		return true
	}
}

// String names the context for debugging, as context's own types do.
func (c *Context) String() string { return "deadline.Context" }
