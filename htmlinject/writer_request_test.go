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

// The Writer's verdict, for every kind of request and answer, is the one
// the exported tests give together: the snippet goes in exactly when
// SkipRequest and SkipResponse both say "", a HEAD's header is made GET's
// exactly then, and a 304's ETag is weakened only when its 200 would
// have carried the snippet.
func TestWriterVerdictIsSkipRequestAndSkipResponse(t *testing.T) {
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

				// ForPage: the request is a page's (a HEAD standing for
				// one included), whatever the answer.
				if want := rq.method != http.MethodConnect && SkipRequest(get) == ""; forPage != want {
					t.Errorf("ForPage = %v, want %v", forPage, want)
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
				// Every response is counted once, with the request's reason
				// first (known at Wrap), else the response's.
				want := SkipRequest(r)
				if want == "" {
					want = SkipResponse(rs.status, http.Header{"Content-Type": {rs.ct}, "Content-Range": h["Content-Range"]})
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

// serveEdited runs a request through the Writer to a site whose handlers
// below edit the request's fields in place, as Caddy's request_header
// (ordered after ahp) and encode (If-None-Match) do.
func serveEdited(t *testing.T, method string, sent http.Header, edit func(http.Header), status int) (*httptest.ResponseRecorder, bool, reasons) {
	t.Helper()
	in := mustNew(t, noticeConfig())
	r := httptest.NewRequest(method, "/", nil)
	for k, v := range sent {
		r.Header[k] = v
	}
	rec := httptest.NewRecorder()
	var seen reasons
	iw := in.Wrap(rec, r, &seen, nil)
	edit(r.Header)
	h := iw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Etag", `"v1"`)
	h.Set("Content-Length", "51")
	iw.WriteHeader(status)
	if method != http.MethodHead && status == http.StatusOK {
		_, _ = iw.Write([]byte("<!doctype html><html><body><p>hi</p></body></html>"))
	}
	forPage := iw.ForPage()
	iw.Finish()
	return rec, forPage, seen
}

// The request is judged as the client sent it: a handler below that
// edits its fields changes nothing about the page (found in review: a
// Writer that read them at WriteHeader let `request_header -Cache-Control`
// undo a client's no-transform).
func TestWriterJudgesTheRequestAsSent(t *testing.T) {
	del := func(name string) func(http.Header) { return func(h http.Header) { delete(h, name) } }
	t.Run("no-transform removed below", func(t *testing.T) {
		rec, forPage, _ := serveEdited(t, http.MethodGet, http.Header{"Cache-Control": {"no-transform"}}, del("Cache-Control"), http.StatusOK)
		if strings.Contains(rec.Body.String(), noticeClass) || forPage {
			t.Errorf("the client asked for no-transform: snippet %v, ForPage %v", strings.Contains(rec.Body.String(), noticeClass), forPage)
		}
	})
	t.Run("fetch() whose Sec-Fetch-Dest is removed below", func(t *testing.T) {
		rec, _, seen := serveEdited(t, http.MethodGet, http.Header{"Sec-Fetch-Dest": {"empty"}}, del("Sec-Fetch-Dest"), http.StatusOK)
		if strings.Contains(rec.Body.String(), noticeClass) {
			t.Errorf("a fragment got the snippet: %q", rec.Body.String())
		}
		if len(seen) != 1 || seen[0] != ReasonFragmentRequest {
			t.Errorf("observer saw %q", seen)
		}
	})
	t.Run("no-transform added below, for the upstream", func(t *testing.T) {
		rec, _, _ := serveEdited(t, http.MethodGet, nil, func(h http.Header) { h.Set("Cache-Control", "no-transform") }, http.StatusOK)
		if !strings.Contains(rec.Body.String(), noticeClass) {
			t.Errorf("a page lost the snippet: %q", rec.Body.String())
		}
	})
	t.Run("HEAD of a no-transform GET", func(t *testing.T) {
		rec, _, _ := serveEdited(t, http.MethodHead, http.Header{"Cache-Control": {"no-transform"}}, del("Cache-Control"), http.StatusOK)
		if rec.Header().Get("Etag") != `"v1"` || rec.Header().Get("Content-Length") != "51" {
			t.Errorf("the header was made an injected GET's: %v", rec.Header())
		}
	})
	t.Run("If-None-Match rewritten below (encode strips its -gzip)", func(t *testing.T) {
		// The 304 does not say it is HTML, so only the client's
		// If-None-Match could weaken its ETag, and the client listed
		// W/"v1-gzip", not W/"v1".
		in := mustNew(t, noticeConfig())
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("If-None-Match", `W/"v1-gzip"`)
		rec := httptest.NewRecorder()
		iw := in.Wrap(rec, r, nil, nil)
		r.Header["If-None-Match"] = []string{`W/"v1"`}
		iw.Header().Set("Etag", `"v1"`)
		iw.WriteHeader(http.StatusNotModified)
		iw.Finish()
		if got := rec.Header().Get("Etag"); got != `"v1"` {
			t.Errorf("304 ETag %q, want the strong one the client's field leaves", got)
		}
	})
	t.Run("a fragment whose answer is never written is still counted", func(t *testing.T) {
		in := mustNew(t, noticeConfig())
		r := httptest.NewRequest(http.MethodGet, "/missing.js", nil)
		r.Header.Set("Sec-Fetch-Dest", "script")
		var seen reasons
		iw := in.Wrap(httptest.NewRecorder(), r, &seen, nil)
		iw.Finish()
		if len(seen) != 1 || seen[0] != ReasonFragmentRequest {
			t.Errorf("observer saw %q", seen)
		}
	})
}
