package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/markdown"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// TestMarkdownLinksResolveAgainstTheURLAsked: ahp runs after `rewrite`
// and `try_files` (Caddyfile order), so the request it sees may be
// rewritten; the page's relative links resolve against the URL the agent
// asked for, never against the rewrite's target (which would break them
// and show the site's internals).
func TestMarkdownLinksResolveAgainstTheURLAsked(t *testing.T) {
	s := &markdownStep{h: &Handler{}, conv: markdown.New(markdown.Options{}),
		converted: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
	orig := httptest.NewRequest(http.MethodGet, "http://shop.example/blog/oak-care/", nil)
	r := orig.Clone(context.WithValue(orig.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
	r.URL, _ = url.Parse("/index.php?p=oak-care") // `try_files {path} /index.php?p={path}`
	r.Header.Set("Accept", "text/markdown")
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		_, err := w.Write([]byte(`<html><body><main><h1>Oak care</h1><p>See <a href="winter/">winter care</a>` +
			` and <a href="?page=2">page 2</a>. <img src="oak.jpg" alt="oak"></p></main></body></html>`))
		return err
	})
	rec := httptest.NewRecorder()
	if _, err := s.serve(rec, r, next); err != nil {
		t.Fatal(err)
	}
	md := rec.Body.String()
	for _, want := range []string{"http://shop.example/blog/oak-care/winter/", "http://shop.example/blog/oak-care/?page=2", "http://shop.example/blog/oak-care/oak.jpg"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %s (what the agent's page links to):\n%s", want, md)
		}
	}
	if strings.Contains(md, "index.php") {
		t.Errorf("Markdown shows the rewrite's target:\n%s", md)
	}
}

// TestMarkdownSkippedOnlyForMarkdownRequests: a page the Markdown step
// leaves as HTML says why to the agent that asked for Markdown; a browser
// asking for the same page as HTML gets no such field.
func TestMarkdownSkippedOnlyForMarkdownRequests(t *testing.T) {
	s := &markdownStep{h: &Handler{}, conv: markdown.New(markdown.Options{}),
		converted: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "no-transform")
		_, err := w.Write([]byte(`<html><body><main><h1>Oak care</h1><p>Oil it.</p></main></body></html>`))
		return err
	})
	for accept, want := range map[string]string{"text/markdown": "no-transform", "text/html": ""} {
		r := httptest.NewRequest(http.MethodGet, "http://shop.example/oak", nil)
		r.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		if _, err := s.serve(rec, r, next); err != nil {
			t.Fatal(err)
		}
		if got := rec.Header().Get("X-Markdown-Skipped"); got != want || rec.Header().Get("Content-Type") != "text/html" {
			t.Errorf("Accept %s: X-Markdown-Skipped %q (want %q), Content-Type %q", accept, got, want, rec.Header().Get("Content-Type"))
		}
	}
}

// TestMarkdownRefusalSaysTheHTMLIsNotLimited: a Markdown answer counts
// against the static tier, but the page as HTML is never limited; the 429
// says so, and that Markdown pages share the count with the documents
// (an agent that read the manifest gets fewer pages than the limit says).
func TestMarkdownRefusalSaysTheHTMLIsNotLimited(t *testing.T) {
	p := ratelimit.New(ratelimit.Config{Store: limiter.NewMemory(limiter.MemoryOptions{}), Static: limiter.Limit{Events: 1, Window: time.Minute}})
	s := &markdownStep{h: &Handler{limits: p}, conv: markdown.New(markdown.Options{}),
		converted: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		_, err := w.Write([]byte(`<html><body><main><h1>Oak care</h1><p>Oil it.</p></main></body></html>`))
		return err
	})
	var rec *httptest.ResponseRecorder
	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "http://shop.example/oak", nil)
		r.Header.Set("Accept", "text/markdown")
		rec = httptest.NewRecorder()
		if _, err := s.serve(rec, r, next); err != nil {
			t.Fatal(err)
		}
	}
	body := rec.Body.String()
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(body, "Markdown") || !strings.Contains(body, "without Accept: text/markdown") || !strings.Contains(body, "manifest, content and integration documents together") {
		t.Errorf("second Markdown answer: %d %s", rec.Code, body)
	}
}
