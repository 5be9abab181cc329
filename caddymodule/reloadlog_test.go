package caddymodule

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

// A pooled object's logger writes through the logger of the configuration
// that last took it into service: its sink and its level, with the name
// and fields the object gave it.
func TestHeldLogFollowsTheRunningConfiguration(t *testing.T) {
	firstCore, first := zapobserver.New(zapcore.DebugLevel)
	held := newHeldLog(zap.New(firstCore).Named("http.handlers.ahp.concierge"))
	log := held.logger().With(zap.String("site", "Example"))
	log.Debug("built", zap.Int("pages", 3))

	secondCore, second := zapobserver.New(zapcore.InfoLevel) // a reload turned debug off
	held.set(zap.New(secondCore).Named("http.handlers.ahp.concierge"))
	log.Debug("rebuilt quietly")
	log.Warn("build failed")

	if first.Len() != 1 || second.Len() != 1 {
		t.Fatalf("first log %d entries, second %d; want 1 and 1 (each entry through the logger current when it was written)", first.Len(), second.Len())
	}
	e := second.All()[0]
	if e.Message != "build failed" || e.LoggerName != "http.handlers.ahp.concierge" || e.ContextMap()["site"] != "Example" {
		t.Errorf("entry after the reload: %q by %q with %v", e.Message, e.LoggerName, e.ContextMap())
	}
	if f := first.All()[0]; f.ContextMap()["site"] != "Example" || f.ContextMap()["pages"] != int64(3) {
		t.Errorf("entry before the reload: %v", f.ContextMap())
	}
}
