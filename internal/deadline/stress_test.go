package deadline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Many calls at once with the real watcher: some stop, some pass their
// deadline, some lose their parent; contexts are derived from each (as
// the transport does, and through values, as Caddy's reverse_proxy
// wraps them) and canceled. Every call must end with the right error,
// every derived context with it, and the watch must end empty and idle.
func TestStress(t *testing.T) {
	const timeout = 20 * time.Millisecond
	w := NewWatch(timeout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 400 {
				parent, cancelParent := context.WithCancel(context.Background())
				c := w.Start(parent)
				child, cancelChild := context.WithCancelCause(c)
				viaValue, cancelViaValue := context.WithCancel(context.WithValue(c, ctxKey{}, i))
				done := make(chan struct{})
				stopAF := context.AfterFunc(c, func() { close(done) })
				switch (g + i) % 4 {
				case 0: // returns at once
					cancelChild(nil)
					c.Stop()
					// Canceled, or DeadlineExceeded on a machine slow
					// enough that 20 ms passed since Start.
					if err := c.Err(); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Stop: Err() = %v", err)
					}
				case 1: // the deadline passes
					<-c.Done()
					if !errors.Is(c.Err(), context.DeadlineExceeded) {
						t.Errorf("deadline: Err() = %v", c.Err())
					}
					c.Stop()
				case 2: // the agent hangs up
					cancelParent()
					<-c.Done()
					// Canceled, or DeadlineExceeded if the deadline
					// also passed before the watcher looked.
					if err := c.Err(); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("parent: Err() = %v", err)
					}
					c.Stop()
				case 3: // AfterFunc stopped, derived ended first
					if stopAF() {
						close(done)
					}
					cancelViaValue()
					go c.Stop() // from another goroutine, racing the watcher
					<-c.Done()
				}
				<-child.Done()
				<-viaValue.Done()
				<-done
				if c.Err() == nil || child.Err() == nil {
					t.Error("ended without an error")
				}
				cancelChild(nil)
				cancelViaValue()
				cancelParent()
			}
		})
	}
	wg.Wait()
	for end := time.Now().Add(10 * time.Second); ; {
		w.mu.Lock()
		running, head, tail := w.running, w.head, w.tail
		w.mu.Unlock()
		if head != nil || tail != nil {
			t.Fatal("calls left in the watch")
		}
		if !running {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the watcher still runs with nothing in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
