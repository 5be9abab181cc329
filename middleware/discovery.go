package middleware

import (
	"net/http"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

var (
	allowManifest = []string{"GET, HEAD, OPTIONS"}
	corsMethods   = []string{"GET, HEAD, OPTIONS"}
	corsMaxAge    = []string{"86400"}
	corsHeaders   = []string{"Accept, If-None-Match"}
	manifestPath  = []string{manifest.WellKnownPath}
)

// serveManifest answers at /.well-known/agent.json (spec §3.1). The bytes
// were rendered at load; whatever the upstream has at this path never
// shows: the plugin's manifest is the site's manifest.
func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.writeManifest(w, r, h.manifestHeader)
		h.observer.ManifestServed()
	case http.MethodOptions:
		hdr := w.Header()
		hdr["Allow"] = allowManifest
		hdr["Access-Control-Allow-Origin"] = h.manifestHeader["Access-Control-Allow-Origin"]
		hdr["Access-Control-Allow-Methods"] = corsMethods
		hdr["Access-Control-Allow-Headers"] = corsHeaders
		hdr["Access-Control-Max-Age"] = corsMaxAge
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header()["Allow"] = allowManifest
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+manifest.WellKnownPath+"; use GET"))
	}
}

// negotiate answers a GET or HEAD whose Accept lists application/agent+json
// (spec §3.4): a 302 to the manifest, or the manifest itself.
func (h *Handler) negotiate(w http.ResponseWriter, r *http.Request) {
	h.observer.Negotiated()
	if h.inline {
		h.writeManifest(w, r, h.negotiated)
		return
	}
	hdr := w.Header()
	hdr["Location"] = manifestPath
	hdr["Cache-Control"] = h.manifestHeader["Cache-Control"]
	w.WriteHeader(http.StatusFound)
}

// writeManifest sends the rendered manifest with the given headers,
// answering a matching If-None-Match with 304.
func (h *Handler) writeManifest(w http.ResponseWriter, r *http.Request, headers http.Header) {
	hdr := w.Header()
	for k, v := range headers {
		hdr[k] = v
	}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, headers["Etag"][0]) {
		delete(hdr, "Content-Length")
		delete(hdr, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.manifestBody)
	}
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110
// §13.1.2): "*" or any listed tag whose opaque part equals ours.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for len(v) > 0 {
			v = v[skipOWS(v, 0):]
			if len(v) == 0 {
				break
			}
			if v[0] == ',' {
				v = v[1:]
				continue
			}
			if v[0] == '*' {
				return true
			}
			tag := v
			if len(tag) >= 2 && tag[0] == 'W' && tag[1] == '/' {
				tag = tag[2:]
			}
			if len(tag) == 0 || tag[0] != '"' {
				// malformed: skip to the next comma
				i := indexByte(v, ',')
				if i < 0 {
					break
				}
				v = v[i+1:]
				continue
			}
			end := indexByte(tag[1:], '"')
			if end < 0 {
				break
			}
			if tag[:end+2] == etag {
				return true
			}
			v = tag[end+2:]
		}
	}
	return false
}
