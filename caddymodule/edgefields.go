package caddymodule

import (
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// edgeFields deletes the request fields only the plugin may set, in every
// spelling a PHP or CGI site reads as theirs (httpx.DeleteEdgeFields),
// without paying for a scan of every field when Caddy has done it: Caddy
// drops each name holding '_' or '.' unless its server allowlists some
// (expected_underscore_headers, expected_dot_headers), and Go canonicalizes
// the case of the rest, so then the canonical names are all there is to
// delete. That saves ~50 ns on every request (BenchmarkPassThrough).
//
// The server is read from the first request: a handler belongs to the one
// server whose routes provisioned it.
type edgeFields struct {
	state atomic.Int32 // 0 not known yet, 1 Caddy drops the aliases, 2 it may not
}

func (e *edgeFields) delete(r *http.Request, a, b string) {
	s := e.state.Load()
	if s == 0 {
		s = 2
		if srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); srv != nil &&
			len(srv.ExpectedUnderscoreHeaders) == 0 && len(srv.ExpectedDotHeaders) == 0 {
			s = 1
		}
		e.state.Store(s)
	}
	if s == 1 {
		delete(r.Header, a)
		delete(r.Header, b)
		return
	}
	httpx.DeleteEdgeFields(r.Header, a, b)
}
