package handshake

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestCanceledClientIsNotAStoreFailure: a store operation cut short by a
// client that hung up is not counted as a session store failure nor
// logged; a real failure still is.
func TestCanceledClientIsNotAStoreFailure(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	obs := &storeFailures{n: map[string]int{}}
	f := newFixture(t, func(cfg *Config) { cfg.Logger, cfg.Observer = zap.New(core), obs })
	for range 20 {
		f.h.storeError(httptest.NewRecorder(), "context", fmt.Errorf("redis: %w", context.Canceled))
	}
	if n, l := obs.get("memory context")+obs.get("sessions context"), logs.FilterMessage("handshake: session store failed").Len(); n != 0 || l != 0 {
		t.Errorf("20 clients that hung up: %d store failures counted, %d logged; want none", n, l)
	}
	f.h.storeError(httptest.NewRecorder(), "context", fmt.Errorf("redis: connection refused"))
	if logs.FilterMessage("handshake: session store failed").Len() != 1 {
		t.Errorf("a real store failure was not logged")
	}
}
