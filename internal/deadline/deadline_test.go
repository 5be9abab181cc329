package deadline

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWatch is a Watch whose clock the test moves and whose watcher the
// test runs (check), so nothing waits for real time.
func fakeWatch(timeout time.Duration) (*Watch, *time.Time) {
	now := time.Unix(1_800_000_000, 0)
	w := NewWatch(timeout)
	w.now = func() time.Time { return now }
	w.running = true // no goroutine: the test calls check
	return w, &now
}

func TestDeadlinePasses(t *testing.T) {
	w, now := fakeWatch(time.Minute)
	c := w.Start(context.Background())
	if d, ok := c.Deadline(); !ok || !d.Equal(now.Add(time.Minute)) {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	done := c.Done()
	*now = now.Add(time.Minute - time.Nanosecond)
	w.check(*now)
	if c.Err() != nil {
		t.Fatalf("ended before its deadline: %v", c.Err())
	}
	*now = now.Add(time.Nanosecond)
	w.check(*now)
	select {
	case <-done:
	default:
		t.Fatal("Done not closed at the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, Cause = %v; want DeadlineExceeded", c.Err(), context.Cause(c))
	}
	if w.head != nil {
		t.Error("an ended call stays in the watch")
	}
	c.Stop() // after the deadline: no change
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("Stop after the deadline changed Err to %v", c.Err())
	}
}

// The agent hangs up: the call ends with the parent's error at the next
// check, long before its deadline.
func TestParentEnds(t *testing.T) {
	w, now := fakeWatch(time.Minute)
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	c := w.Start(parent)
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("the parent's values are lost")
	}
	cancel()
	if c.Err() != nil {
		t.Fatal("ended before a check") // the price of no registration with the parent
	}
	w.check(*now)
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err() = %v, want the parent's Canceled", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed") // Done asked after the end: the shared closed channel
	}
}

type ctxKey struct{}

// A parent's earlier deadline is the call's.
func TestParentDeadlineEarlier(t *testing.T) {
	w, now := fakeWatch(time.Minute)
	parent, cancel := context.WithDeadline(context.Background(), now.Add(time.Second))
	defer cancel()
	c := w.Start(parent)
	defer c.Stop()
	if d, _ := c.Deadline(); !d.Equal(now.Add(time.Second)) {
		t.Fatalf("Deadline() = %v, want the parent's", d)
	}
}

// What the proxy's transport does: derive a cancelable context. It must
// end with the call, at its deadline, and come off it when it ends first.
func TestDerivedContexts(t *testing.T) {
	w, now := fakeWatch(time.Minute)
	// A request's context as Caddy passes it on: net/http's cancelable
	// one under values. Derived contexts must register with c, not with
	// that canceler, or c's deadline would not reach them.
	req, cancelReq := context.WithCancel(context.Background())
	defer cancelReq()
	c := w.Start(context.WithValue(req, ctxKey{}, "v"))
	child, cancelChild := context.WithCancelCause(c)
	early, cancelEarly := context.WithCancel(c)
	cancelEarly() // ends first: unregisters
	if n := registered(c); n != 1 {
		t.Fatalf("%d functions registered after one child ended, want 1", n)
	}
	*now = now.Add(time.Minute)
	w.check(*now)
	select {
	case <-child.Done():
	default:
		t.Fatal("a derived context did not end at the deadline")
	}
	if !errors.Is(context.Cause(child), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("Cause(child) = %v, Cause(c) = %v", context.Cause(child), context.Cause(c))
	}
	if req.Err() != nil {
		t.Error("the call's deadline ended the request's context")
	}
	if !errors.Is(early.Err(), context.Canceled) {
		t.Errorf("early.Err() = %v", early.Err())
	}
	cancelChild(nil)

	// Derived after the end: ended at once.
	late, cancelLate := context.WithCancel(c)
	defer cancelLate()
	if late.Err() == nil {
		t.Error("a context derived from an ended call is live")
	}
	// context.AfterFunc runs its function when the call ends.
	c2 := w.Start(context.Background())
	ran := make(chan struct{})
	context.AfterFunc(c2, func() { close(ran) })
	c2.Stop()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("context.AfterFunc's function did not run at Stop")
	}
}

// context.WithCancel(c) holds the child's lock while it calls
// c.AfterFunc (propagateCancel). If c ends between propagateCancel's look
// at Done and that call, AfterFunc finds c ended: it must not call the
// child's cancel in the caller's goroutine, which would take the lock the
// caller holds. This is that interleaving, made certain.
func TestAfterFuncAfterEndDoesNotRunInCaller(t *testing.T) {
	w, _ := fakeWatch(time.Minute)
	c := w.Start(context.Background())
	c.Stop()
	var mu sync.Mutex // the child's lock, as propagateCancel holds it
	ran := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		mu.Lock()
		c.AfterFunc(func() {
			mu.Lock()
			mu.Unlock()
			close(ran)
		})
		mu.Unlock()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc on an ended context called f in the caller's goroutine: deadlock")
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc on an ended context never called f")
	}
}

// The same race through context's own code: the call ends (Stop, or the
// watcher) while another goroutine derives a context from it.
func TestDeriveWhileEnding(t *testing.T) {
	w := NewWatch(time.Minute)
	for i := range 5000 {
		c := w.Start(context.Background())
		derived := make(chan context.Context, 1)
		var ready atomic.Bool
		go func() {
			ready.Store(true)
			ctx, cancel := context.WithCancel(c)
			defer cancel()
			derived <- ctx
		}()
		for !ready.Load() {
		}
		for range i % 64 { // move Stop across the deriving goroutine's steps
			spin.Add(1)
		}
		c.Stop()
		select {
		case ctx := <-derived:
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("iteration %d: a context derived from an ended call is live", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("iteration %d: context.WithCancel(c) deadlocked as c ended", i)
		}
	}
}

var spin atomic.Int64

func registered(c *Context) (n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.after {
		if f != nil {
			n++
		}
	}
	return n
}

// Stop ends the call at once with Canceled and takes it off the watch.
func TestStop(t *testing.T) {
	w, _ := fakeWatch(time.Minute)
	a, b, c := w.Start(context.Background()), w.Start(context.Background()), w.Start(context.Background())
	b.Stop()
	if !errors.Is(b.Err(), context.Canceled) {
		t.Fatalf("Err() = %v", b.Err())
	}
	if w.head != a || a.next != c || c.prev != a || w.tail != c {
		t.Fatal("the list is broken after a middle call stopped")
	}
	a.Stop()
	c.Stop()
	if w.head != nil || w.tail != nil {
		t.Fatal("stopped calls stay in the watch")
	}
	if w.check(time.Now()) || w.running {
		t.Error("the watcher goes on with no call in flight")
	}
}

// The real watcher: a call through a real HTTP transport to a server that
// never answers ends at about its deadline, and the watcher goroutine
// stops when nothing is in flight.
func TestHungServerRealTime(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w := NewWatch(300 * time.Millisecond)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			start := time.Now()
			c := w.Start(context.Background())
			defer c.Stop()
			req, _ := http.NewRequestWithContext(c, http.MethodGet, srv.URL, nil)
			resp, err := srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
				t.Error("a hung server answered")
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
				t.Errorf("ended after %s, want about 300ms", d)
			}
		})
	}
	wg.Wait()
	// The watcher notices the empty list at its next tick and returns.
	for end := time.Now().Add(10 * time.Second); ; {
		w.mu.Lock()
		running := w.running
		w.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the watcher still runs with nothing in flight")
		}
		time.Sleep(5 * time.Millisecond) // polling a state, not waiting out a window
	}
}

func BenchmarkStartStop(b *testing.B) {
	w := NewWatch(time.Minute)
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		c := w.Start(parent)
		child, cancelChild := context.WithCancelCause(c) // the transport's
		cancelChild(nil)
		_ = child
		c.Stop()
	}
}

// BenchmarkWithTimeout is what Start and Stop replace.
func BenchmarkWithTimeout(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		c, stop := context.WithTimeout(parent, time.Minute)
		child, cancelChild := context.WithCancelCause(c)
		cancelChild(nil)
		_ = child
		stop()
	}
}
