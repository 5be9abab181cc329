package htmlinject

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type reasons []string

func (r *reasons) Injected()          { *r = append(*r, "injected") }
func (r *reasons) Skipped(why string) { *r = append(*r, why) }

// The Writer judges a request's header fields only once the answer is
// known to be a page. Whatever the order, its verdict must be the one the
// exported tests give together: the snippet goes in exactly when
// SkipRequest and SkipResponse both say "", a HEAD's header is made GET's
// exactly then, and a 304's ETag is weakened only when its 200 would
// have carried the snippet.
func TestWriterJudgesRequestFieldsOnlyForPages(t *testing.T) {
	in := mustNew(t, noticeConfig())
	requests := []struct {
		name   string
		method string
		field  []string
	}{
		{"plain GET", http.MethodGet, nil},
		{"fetch()", http.MethodGet, []string{"Sec-Fetch-Dest", "empty"}},
		{"stylesheet fetch", http.MethodGet, []string{"Sec-Fetch-Dest", "style"}},
		{"iframe", http.MethodGet, []string{"Sec-Fetch-Dest", "iframe"}},
		{"htmx", http.MethodGet, []string{"Hx-Request", "TRUE"}},
		{"no-transform", http.MethodGet, []string{"Cache-Control", "max-age=0, no-transform"}},
		{"upgrade", http.MethodGet, []string{"Upgrade", "websocket"}},
		{"connection upgrade", http.MethodGet, []string{"Connection", "keep-alive, Upgrade"}},
		{"HEAD", http.MethodHead, nil},
		{"HEAD fetch()", http.MethodHead, []string{"Sec-Fetch-Dest", "empty"}},
		{"CONNECT", http.MethodConnect, nil},
	}
	responses := []struct {
		name   string
		status int
		ct     string
	}{
		{"page", http.StatusOK, "text/html; charset=utf-8"},
		{"XHTML", http.StatusOK, "Application/XHTML+XML"},
		{"stylesheet", http.StatusOK, "text/css"},
		{"not modified page", http.StatusNotModified, "text/html"},
		{"error page", http.StatusNotFound, "text/html"},
		{"range of a page", http.StatusPartialContent, "text/html"},
		{"switching protocols", http.StatusSwitchingProtocols, "text/html"},
	}
	const page = "<!doctype html><html><body><p>hi</p></body></html>"
	for _, rq := range requests {
		for _, rs := range responses {
			t.Run(rq.name+"/"+rs.name, func(t *testing.T) {
				r := httptest.NewRequest(rq.method, "/", nil)
				if rq.field != nil {
					r.Header.Set(rq.field[0], rq.field[1])
				}
				r.Header.Set("If-None-Match", `W/"v1"`)
				get := r.Clone(r.Context())
				get.Method = http.MethodGet
				asPage := SkipRequest(get) == "" && SkipResponse(rs.status, http.Header{"Content-Type": {rs.ct}}) == ""

				rec := httptest.NewRecorder()
				var seen reasons
				iw := in.Wrap(rec, r, &seen, nil)
				h := iw.Header()
				h.Set("Content-Type", rs.ct)
				h.Set("Etag", `"v1"`)
				h.Set("Content-Length", "51")
				if rs.status == http.StatusPartialContent {
					h.Set("Content-Range", "bytes 0-50/100")
				}
				iw.WriteHeader(rs.status)
				if rq.method != http.MethodHead && rs.status != http.StatusNotModified {
					_, _ = iw.Write([]byte(page))
				}
				forPage := iw.ForPage()
				iw.Finish()

				if want := SkipRequest(r) == ""; rs.status == http.StatusOK && forPage != (want || (rq.method == http.MethodHead && SkipRequest(get) == "")) {
					t.Errorf("ForPage = %v", forPage)
				}
				injected := strings.Contains(rec.Body.String(), noticeClass)
				switch {
				case rq.method == http.MethodHead || rq.method == http.MethodConnect:
					if injected {
						t.Fatal("a body was written for a HEAD or CONNECT")
					}
				case injected != (asPage && rs.status != http.StatusNotModified):
					t.Fatalf("injected = %v, want %v (%q)", injected, asPage, rec.Body.String())
				}
				// A page that gets the snippet (or a HEAD or 304 standing
				// for one) carries a weak ETag; anything else keeps its own.
				weak := rec.Header().Get("Etag") == `W/"v1"`
				wantWeak := asPage && rq.method != http.MethodConnect
				if rs.status == http.StatusNotModified {
					// The request's If-None-Match lists the weak form: the
					// client holds a copy with the snippet, unless its
					// request is one whose 200 keeps its body.
					wantWeak = SkipRequest(get) == "" && rq.method != http.MethodConnect
				}
				if weak != wantWeak {
					t.Errorf("ETag %q, want weak %v", rec.Header().Get("Etag"), wantWeak)
				}
				// Every response is counted once, with the reason the
				// exported tests give (the response's own first: a fetch()
				// of a stylesheet is "not HTML", not a fragment).
				want := SkipResponse(rs.status, http.Header{"Content-Type": {rs.ct}, "Content-Range": h["Content-Range"]})
				if m := skipMethod(rq.method); m != "" {
					want = m
				} else if want == "" {
					want = SkipRequest(r)
				}
				if want == "" {
					want = "injected"
				}
				if len(seen) != 1 || seen[0] != want {
					t.Errorf("observer saw %q, want [%q]", seen, want)
				}
			})
		}
	}
}
