package handshake

// inject forms: pages with a <form> get the browser client's <script>,
// through the AHP notice's streaming injector (package htmlinject: bodies
// stream, compressed ones are decoded and re-encoded, a page that already
// has the script is left alone).

import (
	"net/http"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
)

// inject passes the request on through htmlinject's writer, which adds
// the client to the HTML responses the injector accepts.
func (h *Handler) inject(w http.ResponseWriter, r *http.Request, next Next) error {
	iw := h.injector.Wrap(w, r, injectObserver{h.obs}, h.log)
	finished := false
	defer func() {
		if !finished { // a panic below: stop a compressed page's decoding coroutine
			iw.Abort()
		}
	}()
	err := next.ServeHTTP(iw, r)
	finished = true
	iw.Finish()
	return err
}

// injectObserver reports pages read to their end: with the client, or
// without it (the page carried it already, or had no form).
type injectObserver struct{ obs Observer }

func (o injectObserver) Injected() { o.obs.Injected(true) }

func (o injectObserver) Skipped(reason string) {
	if reason == htmlinject.ReasonPresent || reason == htmlinject.ReasonNotRequired {
		o.obs.Injected(false)
	}
}
