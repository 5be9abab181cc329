package handshake

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

func zapString(k, v string) zap.Field  { return zap.String(k, v) }
func zapErr(err error) zap.Field       { return zap.Error(err) }
func zapInt(k string, v int) zap.Field { return zap.Int(k, v) }

// failureLogEvery is how often a failing store is logged: an outage must
// not turn every request (anyone can send one per random session id)
// into a log line. Failures are counted every time (Observer).
const failureLogEvery = 10 * time.Second

// logThrottle lets one line through per failureLogEvery and counts the
// ones it held back.
type logThrottle struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow says whether to log now and how many lines were held back since
// the last one logged.
func (t *logThrottle) allow(now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.next, t.suppressed = now.Add(failureLogEvery), 0
	return true, n
}
