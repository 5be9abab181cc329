package caddymodule

import (
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Objects kept in the process-wide pool across reloads (the built-in
// concierge's index and concierge, the Web Bot Auth verifier, go-redis's
// process-wide logger) log for as long as they live, which is longer than
// the configuration that made them. A logger captured at construction
// would keep writing to that first configuration's log: to a file Caddy
// has closed after a reload moved the log, at a level a reload changed.
// Their loggers therefore look up the running configuration's logger for
// each entry.

// followingCore is a zapcore.Core that writes each entry through the
// logger current returns at that moment (its level, encoder and sinks).
type followingCore struct {
	current func() *zap.Logger
	fields  []zapcore.Field // from With, applied to whichever core is current
}

// followingLogger is a logger named name whose entries go through the
// logger current returns for each entry.
func followingLogger(name string, current func() *zap.Logger) *zap.Logger {
	return zap.New(followingCore{current: current}).Named(name)
}

func (c followingCore) core() zapcore.Core {
	core := c.current().Core()
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core
}

func (c followingCore) Enabled(l zapcore.Level) bool { return c.current().Core().Enabled(l) }

func (c followingCore) With(fields []zapcore.Field) zapcore.Core {
	return followingCore{current: c.current, fields: append(c.fields[:len(c.fields):len(c.fields)], fields...)}
}

// Check adds the current core to the entry, so Write is the current
// core's own (this one's Write is only reached by callers that skip
// Check).
func (c followingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	core := c.current().Core() // one load: the level and the sink of one configuration
	if !core.Enabled(e.Level) {
		return ce
	}
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core.Check(e, ce)
}

func (c followingCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.core().Write(e, fields)
}

func (c followingCore) Sync() error { return c.current().Core().Sync() }

// heldLog is the logger of a pooled object: it writes through the logger
// of the configuration that last took the object into service.
type heldLog struct{ cur atomic.Pointer[zap.Logger] }

// newHeldLog starts with first, the constructing configuration's logger;
// the logger to hand the object is held.logger().
func newHeldLog(first *zap.Logger) *heldLog {
	h := new(heldLog)
	h.cur.Store(first)
	return h
}

// logger is the object's logger, named as first was.
func (h *heldLog) logger() *zap.Logger {
	return followingLogger(h.cur.Load().Name(), func() *zap.Logger { return h.cur.Load() })
}

// set points the object's lines at a configuration now running.
func (h *heldLog) set(l *zap.Logger) { h.cur.Store(l) }

// caddyLog is a logger named name on Caddy's default log of the running
// configuration, for objects that no single site's handler owns.
func caddyLog(name string) *zap.Logger {
	return followingLogger(name, caddy.Log)
}
