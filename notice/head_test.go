package notice

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
)

// headOrGetNext serves one resource as file_server or an upstream would:
// the same header for GET and HEAD, the body only for GET, and a 304 for
// an If-None-Match naming its ETag (weak comparison, RFC 9110 §13.1.2).
type headOrGetNext struct {
	hdr  http.Header
	body []byte
}

func (s headOrGetNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	for k, v := range s.hdr {
		h[k] = append([]string(nil), v...)
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == s.hdr.Get("Etag") || inm == "W/"+s.hdr.Get("Etag")) {
		delete(h, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(s.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(s.body)
	return err
}

// TestHeadHeadersAreGets: RFC 9110 §9.3.2, a HEAD answer carries the
// header fields GET's would. A page GET gives the notice loses its
// Content-Length and its strong ETag (the bytes change); a HEAD of it
// must say the same, with no body; anything GET leaves alone, HEAD too.
func TestHeadHeadersAreGets(t *testing.T) {
	in := mustNew(t, Config{})
	page := []byte("<html><body><p>hi</p></body></html>")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(page)
	zw.Close()
	html := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Etag": {`"v1"`}, "Accept-Ranges": {"bytes"},
			"Last-Modified": {"Tue, 01 Sep 2026 10:00:00 GMT"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name     string
		hdr      http.Header
		body     []byte
		req      []string
		modified bool // GET's header is not the resource's
	}{
		{"page", html(), page, nil, true},
		{"gzip page", html("Content-Encoding", "gzip"), gz.Bytes(), nil, true},
		{"304 of a page", html(), page, []string{"If-None-Match", `W/"v1"`}, true},
		{"JSON", http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}, []byte(`{}`), nil, false},
		{"unknown encoding", html("Content-Encoding", "compress"), []byte("x"), nil, false},
		{"no-transform page", html("Cache-Control", "no-transform"), page, nil, false},
		{"no-transform request", html(), page, []string{"Cache-Control", "no-transform"}, false},
		{"fragment request", html(), page, []string{"Sec-Fetch-Dest", "empty"}, false},
	} {
		next := headOrGetNext{hdr: c.hdr, body: c.body}
		serve := func(method string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, "/", nil)
			for i := 0; i+1 < len(c.req); i += 2 {
				r.Header.Set(c.req[i], c.req[i+1])
			}
			w := httptest.NewRecorder()
			if err := (&Pages{Injector: in}).ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			return w
		}
		get, head := serve(http.MethodGet), serve(http.MethodHead)
		if head.Body.Len() != 0 || head.Code != get.Code {
			t.Errorf("%s: HEAD %d with %d bytes, want GET's %d and none", c.name, head.Code, head.Body.Len(), get.Code)
		}
		for _, k := range []string{"Content-Length", "Etag", "Accept-Ranges", "Last-Modified", "Content-Type", "Content-Encoding"} {
			if g, h := get.Header()[k], head.Header()[k]; !slices.Equal(g, h) {
				t.Errorf("%s: %s: HEAD %q, GET %q", c.name, k, h, g)
			}
		}
		if etag := get.Header().Get("Etag"); (etag == `W/"v1"`) != c.modified {
			t.Errorf("%s: GET's ETag %q: the case does not test what it says", c.name, etag)
		}
	}
}
