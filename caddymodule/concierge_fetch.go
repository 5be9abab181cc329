package caddymodule

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// How the built-in concierge reads the site.
//
// Its requests run through the whole server the site belongs to
// (caddyhttp.Server.ServeHTTP, in process, no socket), exactly as a
// visitor's request would: host matching, the site's rewrites, `root`,
// basic_auth and forward_auth (ahp runs after them, so a page behind
// credentials answers 401 and is never indexed), error routes, then ahp
// and everything after it. Fetching only through the handlers after ahp
// (`next`) would skip what runs before ahp: the site's auth, its `root`
// and its rewrites, so it would read what visitors cannot, or read the
// wrong files.
//
// The requests are anonymous: no credentials, no cookies, and a client
// address of 192.0.2.1 (TEST-NET-1, RFC 5737), which no remote_ip or
// client_ip matcher trusts, so a site that opens pages to its private
// network does not open them to the concierge. They carry the site's
// own Host (so its host matcher and a virtual-hosting upstream see what
// visitors send), Accept for HTML and text, no Accept-Encoding, and a
// User-Agent naming the concierge; they show in the access log like any
// other request. The ahp handler recognises them by a context value that
// no client can set, and passes them to the site untouched: no notice,
// no Markdown, no limits.
//
// The server is the one of the configuration that provisioned the
// handler; the index is pointed at it when that configuration has
// started (caddy's "started" event: its handler chains are compiled and
// its listeners open). A configuration that fails to start never
// touches the index, and a reload points the kept index at the new
// server before the old one stops.

// internalFetchKey marks the built-in concierge's requests in their
// context.
type internalFetchKey struct{}

// isInternalFetch reports whether r is the built-in concierge reading the
// site.
func isInternalFetch(r *http.Request) bool { return r.Context().Value(internalFetchKey{}) != nil }

// serveInternalFetch answers the concierge's own requests: the site as an
// anonymous visitor sees it, without the plugin's additions. The local
// content document is the plugin's, so it is served here.
func (h *Handler) serveInternalFetch(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.discovery.HasContentFile() && r.URL.Path == h.discovery.ContentPath() {
		h.discovery.ServeContentFile(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

const (
	// crawlerRemoteAddr is the concierge's client address: TEST-NET-1,
	// in no private or loopback range.
	crawlerRemoteAddr = "192.0.2.1:1"
	fetchAccept       = "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.5"
	// fetchBodyLimit is what is kept of one response (the index reads at
	// most 1 MiB of a document); the rest is discarded as it comes.
	fetchBodyLimit = 1 << 20
)

// siteFetch runs the concierge's requests through one server.
type siteFetch struct {
	srv   *caddyhttp.Server
	host  string // the Host header
	https bool
	ua    string
}

// newSiteFetch prepares reading the site of h through srv, and returns the
// site's host names (absolute links to them are the site's own). Call it
// once the server has started: it walks the server's provisioned routes.
func newSiteFetch(srv *caddyhttp.Server, h *Handler, hostOption string) (*siteFetch, []string) {
	f := &siteFetch{srv: srv, https: len(srv.TLSConnPolicies) > 0,
		ua: "caddy-ahp-concierge/" + PluginVersion() + " (the site's built-in AHP concierge reading its own pages)"}
	var hosts []string
	for _, name := range siteHostNames(srv, h) {
		if name != "" && !strings.ContainsAny(name, "*{}") {
			hosts = append(hosts, name)
		}
	}
	switch {
	case hostOption != "":
		f.host = hostOption
		if name, _, err := net.SplitHostPort(hostOption); err == nil {
			hosts = append([]string{name}, hosts...)
		} else {
			hosts = append([]string{hostOption}, hosts...)
		}
	case len(hosts) > 0:
		f.host = hosts[0] + listenerPortSuffix(srv, f.https)
	default:
		f.host = "localhost" + listenerPortSuffix(srv, f.https)
		hosts = []string{"localhost"}
	}
	return f, hosts
}

// siteHostNames are the host matchers on the way from the server's routes
// to h (a Caddyfile site's address becomes one).
func siteHostNames(srv *caddyhttp.Server, h *Handler) []string {
	var found []string
	var walk func(routes caddyhttp.RouteList, hosts []string) bool
	walk = func(routes caddyhttp.RouteList, hosts []string) bool {
		for _, rt := range routes {
			hs := hosts
			for _, set := range rt.MatcherSets {
				for _, m := range set {
					switch hm := m.(type) {
					case caddyhttp.MatchHost:
						hs = append(hs[:len(hs):len(hs)], hm...)
					case *caddyhttp.MatchHost:
						hs = append(hs[:len(hs):len(hs)], (*hm)...)
					}
				}
			}
			for _, hd := range rt.Handlers {
				if mine, ok := hd.(*Handler); ok && mine == h {
					found = hs
					return true
				}
				if sr, ok := hd.(*caddyhttp.Subroute); ok && walk(sr.Routes, hs) {
					return true
				}
			}
		}
		return false
	}
	walk(srv.Routes, nil)
	return found
}

// listenerPortSuffix is ":port" of the server's first listener, or ""
// when it is the scheme's default port, as a browser would send Host.
func listenerPortSuffix(srv *caddyhttp.Server, https bool) string {
	if len(srv.Listen) == 0 {
		return ""
	}
	addr, err := caddy.ParseNetworkAddress(srv.Listen[0])
	if err != nil || addr.StartPort == 0 {
		return ""
	}
	if (https && addr.StartPort == 443) || (!https && addr.StartPort == 80) {
		return ""
	}
	return ":" + strconv.FormatUint(uint64(addr.StartPort), 10)
}

// fetch implements concierge.Fetch.
func (f *siteFetch) fetch(ctx context.Context, path string) (status int, header http.Header, body []byte, err error) {
	if err := checkSitePath(path); err != nil {
		return 0, nil, nil, fmt.Errorf("concierge fetch %q: %v", path, err)
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return 0, nil, nil, fmt.Errorf("concierge fetch %q: not a path of this site", path)
	}
	r := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"User-Agent": {f.ua}, "Accept": {fetchAccept}},
		Body:       http.NoBody,
		Host:       f.host,
		RemoteAddr: crawlerRemoteAddr,
		RequestURI: path,
	}
	r = r.WithContext(context.WithValue(ctx, internalFetchKey{}, true))
	if f.https {
		name := f.host
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
		r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: name}
	}
	w := &captureWriter{header: make(http.Header)}
	defer func() {
		// A handler's panic (reverse_proxy aborts a broken upstream body
		// with http.ErrAbortHandler) would otherwise end the process: no
		// net/http connection goroutine is here to recover it.
		if p := recover(); p != nil {
			status, header, body = 0, nil, nil
			err = fmt.Errorf("concierge fetch %q: %v", path, p)
		}
	}()
	f.srv.ServeHTTP(w, r)
	if !w.wrote {
		w.status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	return w.status, w.header, w.body, nil
}

// captureWriter collects one internal response, keeping at most
// fetchBodyLimit bytes of its body.
type captureWriter struct {
	header http.Header
	status int
	wrote  bool
	body   []byte
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) WriteHeader(status int) {
	if w.wrote || (status >= 100 && status < 200) { // 1xx: informational, more follows
		return
	}
	w.wrote = true
	w.status = status
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if room := fetchBodyLimit - len(w.body); room > 0 {
		w.body = append(w.body, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// What http.ResponseController asks of a writer, so that Caddy's server
// options (full duplex, idle timeouts) and flushing handlers neither fail
// nor log on the internal requests.
func (w *captureWriter) FlushError() error                { return nil }
func (w *captureWriter) Flush()                           {}
func (w *captureWriter) EnableFullDuplex() error          { return nil }
func (w *captureWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *captureWriter) SetWriteDeadline(time.Time) error { return nil }
