package caddymodule

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/handshake"
)

// store memory max_bytes <size> sets the memory store's store-wide byte
// bound; JSON max_bytes.
func TestHandshakeMaxBytesAdapt(t *testing.T) {
	const in = `example.com {
	handshake_prompt {
		store memory max_bytes 256MiB
	}
	respond "hi"
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapt: %v %v", err, warnings)
	}
	if !strings.Contains(string(out), `{"handler":"handshake_prompt","max_bytes":268435456,"store":"memory"}`) {
		t.Fatalf("adapted: %s", out)
	}
}

// max_bytes is the memory store's: with store redis it is refused with
// a message that names the directive and the fix, as are sizes out of
// range and a malformed store line.
func TestHandshakeMaxBytesCaddyfileErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`handshake_prompt { store redis max_bytes 1GiB }`, "handshake_prompt store redis: max_bytes bounds the memory store only"},
		{`handshake_prompt { store redis redis://127.0.0.1:6379 max_bytes 1GiB }`, "use `store memory max_bytes <size>`"},
		{`handshake_prompt { store redis max_bytes }`, "max_bytes bounds the memory store only"},
		{`handshake_prompt { store memory max_bytes 64KiB }`, `store memory max_bytes "64KiB": want a size from 1MiB to 1TiB, e.g. 256MiB`},
		{`handshake_prompt { store memory max_bytes 2TiB }`, `want a size from 1MiB to 1TiB`},
		{`handshake_prompt { store memory max_bytes lots }`, `store memory max_bytes "lots"`},
		{`handshake_prompt { store memory max_bytes }`, "want `store memory [max_bytes <size>]` or `store redis [<url>]`"},
		{`handshake_prompt { store memory max_size 1GiB }`, "want `store memory [max_bytes <size>]`"},
		{`handshake_prompt { store memory max_bytes 1GiB extra }`, "want `store memory [max_bytes <size>]`"},
	} {
		var hp HandshakePrompt
		in := strings.ReplaceAll(strings.ReplaceAll(c.in, "{ ", "{\n"), " }", "\n}")
		err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
	var hp HandshakePrompt
	if err := hp.UnmarshalCaddyfile(caddyfile.NewTestDispenser("handshake_prompt {\nstore memory max_bytes 1MiB\n}")); err != nil || hp.MaxBytes != 1<<20 || hp.Store != "memory" {
		t.Errorf("store memory max_bytes 1MiB: %v, %+v", err, hp)
	}
}

// A JSON configuration is held to the same: max_bytes with store redis,
// or out of range, fails caddy validate.
func TestHandshakeMaxBytesJSON(t *testing.T) {
	for _, c := range []struct {
		hp   HandshakePrompt
		want string
	}{
		{HandshakePrompt{Store: "redis", Redis: "redis://127.0.0.1:1/0", MaxBytes: 1 << 30}, "handshake_prompt store redis: max_bytes bounds the memory store only"},
		{HandshakePrompt{MaxBytes: 100}, "handshake_prompt store memory max_bytes 100: want a size from 1MiB to 1TiB"},
		{HandshakePrompt{MaxBytes: -1}, "store memory max_bytes -1"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := c.hp.Provision(ctx)
		_ = c.hp.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.hp, err, c.want)
		}
	}
	var hp HandshakePrompt
	if err := json.Unmarshal([]byte(`{"store":"memory","max_bytes":1048576}`), &hp); err != nil || hp.MaxBytes != 1<<20 {
		t.Errorf("JSON max_bytes: %v %d", err, hp.MaxBytes)
	}
}

// The pooled memory store takes the configured bound (the default
// without one), and a reload's new bound applies to the store it keeps,
// sessions and all; the change is logged.
func TestHandshakeMaxBytesProvisioned(t *testing.T) {
	provision := func(hp *HandshakePrompt) *handshake.MemoryStore {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := hp.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hp.Cleanup() })
		return hp.handler.Config().Store.(*handshake.MemoryStore)
	}
	a := provision(&HandshakePrompt{Zone: "max-bytes"})
	if a.MaxBytes() != handshake.DefaultMaxBytes {
		t.Errorf("default max_bytes %d, want %d", a.MaxBytes(), handshake.DefaultMaxBytes)
	}
	core, logs := zapobserver.New(zapcore.InfoLevel)
	b := provision(&HandshakePrompt{Zone: "max-bytes", MaxBytes: 32 << 20, logger: zap.New(core)})
	if b != a {
		t.Fatal("the reload's handler got a new store: its sessions were dropped")
	}
	if a.MaxBytes() != 32<<20 {
		t.Errorf("max_bytes after the reload: %d, want %d", a.MaxBytes(), 32<<20)
	}
	if logs.FilterMessageSnippet("max_bytes changed").Len() != 1 {
		t.Errorf("the change of a live store's bound was not logged: %v", logs.All())
	}
	other := provision(&HandshakePrompt{Zone: "max-bytes-other", MaxBytes: 2 << 20})
	if other == a || other.MaxBytes() != 2<<20 || a.MaxBytes() != 32<<20 {
		t.Errorf("zones' stores share a bound: %d and %d", other.MaxBytes(), a.MaxBytes())
	}
}

// /metrics reports each zone's memory store bytes against its max_bytes
// while a configuration holds the store, and stops when none does.
func TestHandshakeMemoryStoreBytesMetric(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	hp := HandshakePrompt{Zone: "bytes-metric", MaxBytes: 2 << 20}
	if err := hp.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	ms := hp.handler.Config().Store.(*handshake.MemoryStore)
	rec := &handshake.Record{ID: "s1", Mode: "form", Meta: json.RawMessage(`{"title":"Contact"}`)}
	if err := ms.Create(context.Background(), rec, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) (float64, bool) {
		mfs, err := ctx.GetMetricsRegistry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "site" && l.GetValue() == "bytes-metric" {
						return m.GetGauge().GetValue(), true
					}
				}
			}
		}
		return 0, false
	}
	if v, ok := gauge("caddy_ahp_handshake_memory_store_bytes"); !ok || v != float64(ms.Bytes()) || v <= 0 {
		t.Errorf("memory_store_bytes %v (reported: %v), want the store's %d", v, ok, ms.Bytes())
	}
	if v, ok := gauge("caddy_ahp_handshake_memory_store_max_bytes"); !ok || v != 2<<20 {
		t.Errorf("memory_store_max_bytes %v (reported: %v), want %d", v, ok, 2<<20)
	}
	_ = hp.Cleanup() // the last handler: the pool destroys the store
	if _, ok := gauge("caddy_ahp_handshake_memory_store_bytes"); ok {
		t.Error("a store no configuration holds is still reported")
	}
}

// A reload that fails (here: the new handler's own Provision fails after
// it took the pooled store) leaves the running configuration's store as
// it was: the failed handler's cleanup withdraws its max_bytes (found in
// review: the rejected bound stayed on the running sites' store).
func TestHandshakeMaxBytesFailedReload(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	running := &HandshakePrompt{Zone: "max-bytes-reload", MaxBytes: 32 << 20}
	if err := running.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer running.Cleanup()
	store := running.handler.Config().Store.(*handshake.MemoryStore)

	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	failing := &HandshakePrompt{Zone: "max-bytes-reload", MaxBytes: 1 << 20, BrowserAuth: &HandshakeBrowserAuth{}}
	if err := failing.Provision(ctx2); err == nil {
		t.Fatal("the new configuration was meant to fail")
	}
	_ = failing.Cleanup()

	if got := store.MaxBytes(); got != 32<<20 {
		t.Fatalf("the running configuration's store bound is %d after a failed reload, want %d (its own)", got, 32<<20)
	}
}

// Two sites of one configuration share a zone's store; one sets
// `store memory max_bytes 512MiB`, the other leaves it out, which states
// no bound (found in review: it reset the store to the default 128 MiB).
func TestHandshakeMaxBytesSharedZone(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	explicit := &HandshakePrompt{Zone: "max-bytes-shared", MaxBytes: 512 << 20}
	if err := explicit.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer explicit.Cleanup()
	other := &HandshakePrompt{Zone: "max-bytes-shared"}
	if err := other.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer other.Cleanup()
	store := explicit.handler.Config().Store.(*handshake.MemoryStore)
	if got := store.MaxBytes(); got != 512<<20 {
		t.Fatalf("the zone's store is bounded at %d; the only max_bytes configured is %d", got, 512<<20)
	}
}
