package handoff

import (
	"net/http"
	"strings"
)

// servePreview enforces the preview origin's rules (spec §16, §21):
// anti-framing, noindex and no-referrer headers on every answer; read-only
// (state-changing methods are refused at the edge, whatever the backend
// would do), except the POST that consumes an exchange code; and every
// cookie the backend sets made HttpOnly, Secure, SameSite=Strict and
// host-only, so it is scoped to the preview origin alone.
func (h *Handler) servePreview(w http.ResponseWriter, r *http.Request, next Next) error {
	hd := w.Header()
	setNoFrames(hd)
	hd["X-Robots-Tag"] = []string{"noindex, nofollow"}
	hd["Referrer-Policy"] = []string{"no-referrer"}
	cw := &cookieWriter{ResponseWriter: w}
	kind, matched, uniform, variant := h.match(r)
	if matched {
		start := h.now()
		switch {
		case variant:
			h.log(r, "path.variant_refused", zapRoute(kind))
			return h.failure(cw, r, start)
		case kind == routeSolver:
			return serveSolver(w, r)
		case kind == routeExchange:
			return h.serveExchange(cw, r, next, start)
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		h.log(r, "preview.write_refused")
		hd["Allow"] = []string{"GET, HEAD, OPTIONS"}
		writeError(w, http.StatusMethodNotAllowed, "read_only", "The preview is read-only.", 0)
		return nil
	}
	if matched && uniform {
		return h.serveUniform(cw, r, next, h.now())
	}
	return next.ServeHTTP(cw, r)
}

// cookieWriter hardens the backend's Set-Cookie headers as they go out,
// and keeps the edge's anti-framing and referrer headers.
type cookieWriter struct {
	http.ResponseWriter
	wrote bool
}

func (cw *cookieWriter) WriteHeader(code int) {
	if !cw.wrote && code >= 200 {
		cw.wrote = true
		hd := cw.Header()
		hardenCookies(hd)
		// reverse_proxy adds the backend's values beside the edge's:
		// browsers ignore conflicting X-Frame-Options values and apply
		// the last Referrer-Policy. Fresh slices: values may be shared.
		hd["X-Frame-Options"] = []string{"DENY"}
		hd["Referrer-Policy"] = []string{"no-referrer"}
	}
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *cookieWriter) Write(b []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriter.Write(b)
}

func (cw *cookieWriter) Flush() { _ = http.NewResponseController(cw.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the real writer.
func (cw *cookieWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// hardenCookies rewrites every Set-Cookie: HttpOnly, Secure,
// SameSite=Strict, no Domain (host-only); one that does not parse is
// dropped.
func hardenCookies(hd http.Header) {
	in := hd["Set-Cookie"]
	if len(in) == 0 {
		return
	}
	out := make([]string, 0, len(in))
	for _, line := range in {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue
		}
		c.HttpOnly, c.Secure, c.SameSite, c.Domain = true, true, http.SameSiteStrictMode, ""
		if c.Path == "" {
			c.Path = "/"
		}
		if s := c.String(); s != "" && !strings.ContainsAny(s, "\r\n") {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		delete(hd, "Set-Cookie")
		return
	}
	hd["Set-Cookie"] = out
}
