package caddymodule

import (
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

const proxiesWarning = "trusted_proxies is set without trusted_proxies_strict: the client address ({client_ip}) is the leftmost " +
	"X-Forwarded-For entry, which clients can forge to escape their rate limits; add `trusted_proxies_strict` to the " +
	"server's options (see the README on proxies and CDNs)"

// warnNonStrictProxies warns at startup, when the Caddyfile is adapted,
// if a global `servers` block trusts proxies without
// trusted_proxies_strict (once per adaptation, however many sites use
// ahp, agent_handoff or handshake_prompt: all three key limits on
// {client_ip}); directive names the logger. httpcaddyfile keeps those
// options in an unexported type, so its two exported fields are read by
// name; should they ever be renamed, this finds nothing and the
// first-request check below still warns. A JSON config has no
// adaptation: it gets only that check.
func warnNonStrictProxies(h httpcaddyfile.Helper, directive string) {
	if h.State == nil || h.State["ahp.proxies_checked"] != nil {
		return
	}
	h.State["ahp.proxies_checked"] = true
	servers := reflect.ValueOf(h.Option("servers"))
	if servers.Kind() != reflect.Slice {
		return
	}
	for i := 0; i < servers.Len(); i++ {
		so := reflect.Indirect(servers.Index(i))
		if so.Kind() == reflect.Interface {
			so = reflect.Indirect(so.Elem())
		}
		if so.Kind() != reflect.Struct {
			continue
		}
		raw, strict := so.FieldByName("TrustedProxiesRaw"), so.FieldByName("TrustedProxiesStrict")
		if raw.Kind() != reflect.Slice || raw.Len() == 0 || strict.Kind() != reflect.Int || strict.Int() > 0 {
			continue
		}
		var fields []zap.Field
		if la := so.FieldByName("ListenerAddress"); la.Kind() == reflect.String && la.String() != "" {
			fields = append(fields, zap.String("servers", la.String()))
		}
		caddy.Log().Named("http.handlers."+directive).Warn(proxiesWarning, fields...)
		return
	}
}

// proxyCheck warns, once per server, when the server trusts proxies
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
	logger.Warn(proxiesWarning, zap.String("peer", peer))
}

// serverProxyChecks holds one proxyCheck per server, shared by its ahp,
// agent_handoff and handshake_prompt handlers: a server of a hundred
// sites says it once, not a hundred times.
var serverProxyChecks = struct {
	sync.Mutex
	m map[*caddyhttp.Server]*sharedProxyCheck
}{m: map[*caddyhttp.Server]*sharedProxyCheck{}}

type sharedProxyCheck struct {
	check proxyCheck
	refs  int
}

// proxyCheckFor is the check of ctx's server, and what releases it at
// Cleanup (it may be called before Provision got this far, and twice).
// Outside a server's routes (a command's throwaway context) the check is
// the handler's own.
func proxyCheckFor(ctx caddy.Context) (*proxyCheck, func()) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return new(proxyCheck), func() {}
	}
	serverProxyChecks.Lock()
	defer serverProxyChecks.Unlock()
	sc := serverProxyChecks.m[srv]
	if sc == nil {
		sc = new(sharedProxyCheck)
		serverProxyChecks.m[srv] = sc
	}
	sc.refs++
	var once sync.Once
	return &sc.check, func() {
		once.Do(func() {
			serverProxyChecks.Lock()
			defer serverProxyChecks.Unlock()
			if sc.refs--; sc.refs == 0 {
				delete(serverProxyChecks.m, srv)
			}
		})
	}
}
