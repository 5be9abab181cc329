package handoff

import (
	"net/http"
	"strconv"
	"time"
)

// DefaultExchangePage is the static page GET and HEAD of an exchange path
// get (spec §17.2): a form the human submits with a click, no script, no
// redirect, the same bytes for every code (so it reveals nothing about
// one), never reaching the backend. The form posts to the page's own URL.
const DefaultExchangePage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>Open the preview</title>
</head>
<body>
<main>
<h1>Open the preview</h1>
<p>This link opens a preview and works once. Press the button to continue.</p>
<form method="post">
<button type="submit">Open the preview</button>
</form>
</main>
</body>
</html>
`

// crossSite reports a browser's POST sent by a page of another origin
// that is not trusted (spec §21), and logs it under action. The answer is
// the uniform failure: a forged post learns nothing about the code.
func (h *Handler) crossSite(r *http.Request, action string) bool {
	if h.crossOrigin.Check(r) == nil {
		return false
	}
	h.log(r, action+".cross_origin_refused")
	return true
}

// serveExchange keeps exchange codes from being consumed by anything but
// a deliberate POST (spec §17.2): GET and HEAD get the static page (or
// 405), never the backend; POST goes to the backend with the uniform
// failure in place of any of its failures (spec §17.3).
func (h *Handler) serveExchange(w http.ResponseWriter, r *http.Request, next Next, start time.Time) error {
	hd := w.Header()
	setNoFrames(hd)
	switch r.Method {
	case http.MethodPost:
		if h.crossSite(r, "exchange") {
			return h.failure(w, r, start)
		}
		return h.serveUniform(w, r, next, start)
	case http.MethodGet, http.MethodHead:
		if h.exchangeGET == ExchangeRefuse {
			hd["Allow"] = []string{"POST"}
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Exchange codes are used with POST only.", 0)
			return nil
		}
		h.debug(r, "exchange.page")
		page := h.exchangePage
		hd["Content-Type"] = []string{"text/html; charset=utf-8"}
		hd["Content-Length"] = []string{strconv.Itoa(len(page))}
		hd["Cache-Control"] = []string{"no-store"}
		hd["Referrer-Policy"] = []string{"no-referrer"}
		hd["X-Robots-Tag"] = []string{"noindex, nofollow"}
		hd["X-Content-Type-Options"] = []string{"nosniff"}
		// No script at all; the page's own inline styles are allowed.
		hd["Content-Security-Policy"] = []string{"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(page)
		}
		return nil
	}
	hd["Allow"] = []string{"GET, HEAD, POST"}
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use POST to continue.", 0)
	return nil
}
