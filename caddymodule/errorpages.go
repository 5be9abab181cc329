package caddymodule

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// errorPages runs the server's handle_errors routes for an error returned
// below the ahp handler, through the ahp handler's response writer, so
// that error pages get the in-page notice too (spec §3.3: 404 and error
// pages SHOULD carry it). Caddy would otherwise run those routes on the
// writer it holds above every handler, out of the plugin's reach.
//
// It does what caddyhttp.Server.ServeHTTP does with an error when the
// server has error routes: restore the original request (caddy#3717), add
// the error to the request context, run the routes, and log the original
// error at debug level (the level Caddy uses when its error routes handled
// the error). Sites without handle_errors are left to Caddy.
type errorPages struct {
	logger *zap.Logger
	chains sync.Map // *caddyhttp.Server -> caddyhttp.Handler
}

// serve reports whether it answered the request.
func (e *errorPages) serve(w http.ResponseWriter, r *http.Request, err error) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil || srv.Errors == nil || len(srv.Errors.Routes) == 0 {
		return false
	}
	chain, ok := e.chains.Load(srv)
	if !ok {
		chain, _ = e.chains.LoadOrStore(srv, srv.Errors.Routes.Compile(writeErrorStatus))
	}
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		r = r.Clone(r.Context())
		r.Method = orig.Method
		r.RemoteAddr = orig.RemoteAddr
		r.RequestURI = orig.RequestURI
		u := *orig.URL
		r.URL = &u
	}
	r = srv.Errors.WithError(r, err)
	if err2 := chain.(caddyhttp.Handler).ServeHTTP(w, r); err2 != nil {
		e.logger.Error("error handling handler error", zap.String("error", err2.Error()), zap.NamedError("first_error", err))
		writeErrorStatus(w, r)
		return true
	}
	e.logger.Debug("handled error with handle_errors routes", zap.Error(err), zap.Int("status", statusOf(err)))
	return true
}

// writeErrorStatus ends an error chain no route answered, as Caddy does.
var writeErrorStatus caddyhttp.HandlerFunc = func(w http.ResponseWriter, r *http.Request) error {
	herr, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	w.WriteHeader(statusOf(herr))
	return nil
}

func statusOf(err error) int {
	if s := errorStatus(err); s != 0 {
		return s
	}
	return http.StatusInternalServerError
}
