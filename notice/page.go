package notice

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
)

// Next is the rest of the site's handler chain. caddyhttp.Handler
// satisfies it.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Pages puts the notice into the HTML pages of a site as they pass
// through (compressed or not). ErrorPage, when set, answers an error from
// next with the site's own error page through the notice's writer, so
// error pages get the notice too; it reports whether it did.
type Pages struct {
	Injector  *Injector
	ErrorPage func(w http.ResponseWriter, r *http.Request, err error) bool
	Observer  htmlinject.Observer
	Logger    *zap.Logger
}

// ServeHTTP passes r to next through the notice's writer.
// A panic below (reverse_proxy's http.ErrAbortHandler when the upstream
// body breaks off or the client goes away) aborts the body, so that a
// compressed page's decoding coroutine does not outlive the request, and
// goes on up.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	iw := p.Injector.in.Wrap(w, r, p.Observer, p.Logger)
	finished := false
	defer func() {
		if !finished {
			iw.Abort()
		}
	}()
	err := next.ServeHTTP(iw, r)
	if err != nil && !iw.Wrote() && p.ErrorPage != nil && iw.ForPage() && p.ErrorPage(iw, r, err) {
		err = nil
	}
	finished = true
	iw.Finish()
	return err
}
