package handshake

import (
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
