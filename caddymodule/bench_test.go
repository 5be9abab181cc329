package caddymodule

import (
	"context"
	"net/http"
	"os/exec"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// benchBlock renders bench/site.sh's ahp block with its limits no load
// reaches: the configuration bench/compare.sh measures, from the one
// place it is written.
func benchBlock() (string, error) {
	out, err := exec.Command("bash", "-c", `. ../bench/site.sh && ahp_block "rate_limit {
	$huge
}"`).Output()
	return string(out), err
}

// benchWriter is a ResponseWriter that allocates nothing per request.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }

var cssBody = []byte("body{font-family:serif}\n")

// stylesheet stands for the upstream behind the site: a proxied
// stylesheet, its header fields set as reverse_proxy copies them.
var stylesheet = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h["Content-Type"] = []string{"text/css; charset=utf-8"}
	h["Content-Length"] = []string{"24"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(cssBody)
	return err
})

func benchRequest() *http.Request {
	r, _ := caddyRequest(http.MethodGet, "/style.css")
	r.Header.Set("Accept", "text/css,*/*;q=0.1")
	r.Header.Set("User-Agent", "Mozilla/5.0")
	// The server a request arrives through, with Caddy's defaults: it
	// drops every field named with '_' or '.' (edgefields.go).
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, &caddyhttp.Server{}))
}

// BenchmarkPassThroughBaseline is the site's answer without the plugin.
func BenchmarkPassThroughBaseline(b *testing.B) {
	w, r := &benchWriter{h: http.Header{}}, benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		_ = stylesheet.ServeHTTP(w, r)
	}
}

// BenchmarkPassThrough is the same answer through the whole handler as
// bench/compare.sh configures it: what the plugin adds to a stylesheet
// (discovery's Link and Vary, the front doors' and the gateway's path
// checks, the notice's writer), without the network and the proxy.
func BenchmarkPassThrough(b *testing.B) {
	h := benchHandler(b)
	w, r := &benchWriter{h: http.Header{}}, benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		_ = h.ServeHTTP(w, r, stylesheet)
	}
}

// benchHandler is provisioned once for every run of the benchmark, so
// that its load-time log line is printed once.
func benchHandler(b *testing.B) *Handler {
	b.Helper()
	benchOnce.Do(func() {
		var block string
		if block, benchErr = benchBlock(); benchErr != nil {
			return
		}
		var h Handler
		if benchErr = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(block)); benchErr != nil {
			return
		}
		ctx, _ := caddy.NewContext(caddy.Context{Context: context.Background()})
		if benchErr = h.Provision(ctx); benchErr == nil {
			benchH = &h
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchH
}

var (
	benchOnce sync.Once
	benchH    *Handler
	benchErr  error
)
