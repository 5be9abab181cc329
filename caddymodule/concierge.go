package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// ConciergeConfig configures the built-in concierge (`concierge builtin
// { ... }`): MODE2 capability calls answered from the site's own pages.
type ConciergeConfig struct{}

// MarkdownConfig configures Markdown for agents (`markdown`).
type MarkdownConfig struct{}

func (h *Handler) parseConcierge(d *caddyfile.Dispenser) error {
	return d.Errf("ahp concierge: not available yet")
}

func (h *Handler) parseMarkdown(d *caddyfile.Dispenser) error {
	return d.Errf("ahp markdown: not available yet")
}

// provisionConcierge builds the built-in concierge, nil when off.
func (h *Handler) provisionConcierge(ctx caddy.Context, m *manifest.Manifest) (gateway.Answerer, error) {
	return nil, nil
}

// provisionMarkdown returns the Markdown step of ServeHTTP, nil when off.
func (h *Handler) provisionMarkdown(ctx caddy.Context, m *manifest.Manifest) (func(http.ResponseWriter, *http.Request, caddyhttp.Handler) (bool, error), error) {
	return nil, nil
}
