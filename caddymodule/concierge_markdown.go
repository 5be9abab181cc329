package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// provisionMarkdown returns the Markdown step of ServeHTTP, nil when off.
// The step is also where the built-in concierge's own requests leave the
// plugin for the site (concierge_fetch.go), so it exists whenever the
// concierge is on.
func (h *Handler) provisionMarkdown(ctx caddy.Context, m *manifest.Manifest) (func(http.ResponseWriter, *http.Request, caddyhttp.Handler) (bool, error), error) {
	// provisionConcierge only runs for manifests with a converse
	// endpoint; a `concierge builtin` without one must not pass silently.
	if h.Concierge != nil && m.ConversePath() == "" {
		return nil, h.checkConcierge(m)
	}
	s := &markdownStep{h: h, internal: h.Concierge != nil}
	if h.Markdown != nil {
		if err := h.Markdown.check(); err != nil {
			return nil, err
		}
		mx, err := registerConciergeMetrics(ctx.GetMetricsRegistry())
		if err != nil {
			return nil, fmt.Errorf("ahp markdown: metrics: %v", err)
		}
		s.converted = mx.markdown.WithLabelValues(m.Name)
		s.conv = markdown.New(markdown.Options{
			MaxBytes:      int(h.Markdown.MaxSize),
			ContentSignal: manifest.RenderSignals(m.ContentSignals).ContentSignal,
			Logger:        h.logger.Named("markdown"),
		})
	}
	if s.conv == nil && !s.internal {
		return nil, nil
	}
	return s.serve, nil
}

type markdownStep struct {
	h         *Handler
	conv      *markdown.Converter
	internal  bool
	converted prometheus.Counter
}

// serve answers a page request that asked for Markdown, and advertises
// the Markdown variant on HTML pages that did not.
func (s *markdownStep) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (bool, error) {
	if s.internal && isInternalFetch(r) {
		return true, s.h.serveInternalFetch(w, r, next)
	}
	if s.conv == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false, nil
	}
	if markdown.Wants(r) {
		// A conversion costs CPU (about 0.3 ms per KB of markup): it
		// counts against the static tier, like the plugin's documents.
		if !s.h.limits.ChargeMarkdown(w, r) {
			return true, nil
		}
		mw := s.conv.Begin(w, r, originalURL(r)) // ahp runs after rewrite and try_files
		err := next.ServeHTTP(mw, r)
		if ferr := mw.Finish(); err == nil {
			err = ferr
		}
		if _, ok := w.Header()["X-Markdown-Tokens"]; ok {
			s.converted.Inc()
		}
		return true, err
	}
	aw := markdown.Alternate(w, originalURL(r))
	defer aw.Release()
	if s.h.pages != nil {
		return true, s.h.pages.ServeHTTP(aw, r, next)
	}
	return true, next.ServeHTTP(aw, r)
}
