package caddymodule

import (
	"net"
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// proxyCheck warns, once per handler, when the server trusts proxies
// without trusted_proxies_strict: {client_ip} then takes the leftmost
// X-Forwarded-For entry, which the client writes itself, so a client can
// spoof its address and escape its rate limit. The server's trusted
// ranges are not visible to a handler, so the check waits for the first
// request whose client IP came from a header rather than the peer.
type proxyCheck struct{ done atomic.Bool }

func (p *proxyCheck) check(r *http.Request, logger *zap.Logger) {
	if p.done.Load() || len(r.Header["X-Forwarded-For"]) == 0 {
		return
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if srv == nil || ip == "" || err != nil || ip == peer {
		return // the peer is not a trusted proxy: nothing to say yet
	}
	if p.done.Swap(true) || srv.TrustedProxiesStrict > 0 {
		return
	}
	logger.Warn("trusted_proxies is set without trusted_proxies_strict: the client address ({client_ip}) is the leftmost "+
		"X-Forwarded-For entry, which clients can forge to escape their rate limits; add `trusted_proxies_strict` to the "+
		"server's options (see the README on proxies and CDNs)",
		zap.String("peer", peer))
}
