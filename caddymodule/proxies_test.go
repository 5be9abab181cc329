package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

// agent_handoff (its limits, per-network difficulty and lockouts) and
// handshake_prompt (create_rate, ws_rate) key on {client_ip} as ahp does:
// behind trusted_proxies without trusted_proxies_strict a client picks its
// own address. A JSON config has no Caddyfile adaptation to warn at, so
// each handler checks the first request whose address came from
// X-Forwarded-For, and the server warns once, whichever handler saw it
// first; another server warns for itself.
func TestNonStrictProxiesWarnedOncePerServerAtRuntime(t *testing.T) {
	core, logs := zapobserver.New(zap.WarnLevel)
	logger := zap.New(core)
	type handler interface {
		caddy.Provisioner
		caddy.CleanerUpper
		caddyhttp.MiddlewareHandler
	}
	serve := func(srv *caddyhttp.Server, hs ...handler) {
		for _, h := range hs {
			r := httptest.NewRequest(http.MethodGet, "/page", nil)
			r.RemoteAddr = "10.0.0.1:4000"
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			c := context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv)
			c = context.WithValue(c, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.9"})
			c = context.WithValue(c, caddy.ReplacerCtxKey, caddy.NewReplacer())
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
			if err := h.ServeHTTP(httptest.NewRecorder(), r.WithContext(c), next); err != nil {
				t.Fatal(err)
			}
		}
	}
	provision := func(srv *caddyhttp.Server) []handler {
		hs := []handler{
			&AgentHandoff{Provider: &HandoffProvider{Name: "P"}, logger: logger},
			&HandshakePrompt{logger: logger},
			&AgentHandoff{Provider: &HandoffProvider{Name: "Q"}, logger: logger},
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.WithValue(context.Background(), caddyhttp.ServerCtxKey, srv)})
		t.Cleanup(cancel)
		for _, h := range hs {
			if err := h.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Cleanup() })
		}
		return hs
	}
	one, two := new(caddyhttp.Server), new(caddyhttp.Server)
	onOne := provision(one)
	serve(one, onOne[1], onOne[0], onOne[2], onOne[1])
	if n := logs.FilterMessage(proxiesWarning).Len(); n != 1 {
		t.Fatalf("one server, three handlers of two directives: %d warnings, want 1: %v", n, logs.All())
	}
	serve(two, provision(two)...)
	if n := logs.FilterMessage(proxiesWarning).Len(); n != 2 {
		t.Fatalf("a second server: %d warnings in all, want 2", n)
	}
	strict := &caddyhttp.Server{TrustedProxiesStrict: 1}
	serve(strict, provision(strict)...)
	if n := logs.FilterMessage(proxiesWarning).Len(); n != 2 {
		t.Errorf("a server with trusted_proxies_strict: %d warnings in all, want still 2", n)
	}
}
