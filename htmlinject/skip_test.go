package htmlinject

import (
	"bytes"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
)

func TestSkipRequest(t *testing.T) {
	for _, tc := range []struct {
		method string
		header http.Header
		skip   bool
	}{
		{"GET", nil, false},
		{"POST", nil, false},
		{"GET", http.Header{"Accept-Encoding": {"gzip, br"}}, false},
		{"GET", http.Header{"Range": {"bytes=0-99"}}, false}, // decided by the 206 it gets
		{"HEAD", nil, true},
		{"CONNECT", nil, true},
		{"GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
		{"GET", http.Header{"Connection": {"keep-alive, upgrade"}}, true},
		{"GET", http.Header{"Upgrade": {"h2c"}}, true},
		{"GET", http.Header{"Cache-Control": {"max-age=0, No-Transform"}}, true},
		{"GET", http.Header{"Cache-Control": {"no-cache"}}, false},
		// Requests for a part of a page to swap in (fetch, XHR, htmx).
		{"GET", http.Header{"Sec-Fetch-Dest": {"document"}}, false},
		{"GET", http.Header{"Sec-Fetch-Dest": {"iframe"}}, false},
		{"GET", http.Header{"Sec-Fetch-Dest": {"frame"}}, false},
		{"GET", http.Header{"Sec-Fetch-Dest": {"empty"}}, true},
		{"GET", http.Header{"Sec-Fetch-Dest": {"script"}}, true},
		{"GET", http.Header{"Hx-Request": {"true"}}, true},
		{"GET", http.Header{"Hx-Request": {"false"}}, false},
	} {
		r, _ := http.NewRequest(tc.method, "http://example.com/", nil)
		if tc.header != nil {
			r.Header = tc.header
		}
		if got := SkipRequest(r); (got != "") != tc.skip {
			t.Errorf("%s %v: SkipRequest = %q, want skip %v", tc.method, tc.header, got, tc.skip)
		}
	}
}

func TestSkipResponse(t *testing.T) {
	html := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		status int
		header http.Header
		skip   bool
	}{
		{200, html(), false},
		{404, html(), false},
		{500, html(), false},
		{302, html(), false},
		{429, html(), false},
		{200, http.Header{"Content-Type": {"text/html"}}, false},
		{200, http.Header{"Content-Type": {"TEXT/HTML; Charset=ISO-8859-1"}}, false},
		{200, http.Header{"Content-Type": {" text/html ;charset=utf-8"}}, false},
		{200, http.Header{"Content-Type": {"application/xhtml+xml"}}, false},
		{200, http.Header{"Content-Type": {"application/XHTML+XML; charset=utf-8"}}, false},
		{200, html("Content-Encoding", "gzip"), false}, // Begin decides on encodings
		{100, html(), true},
		{101, html(), true},
		{103, html(), true},
		{204, html(), true},
		{205, html(), true},
		{304, html(), true},
		{206, html(), true},
		{200, html("Content-Range", "bytes 0-99/1000"), true},
		{200, html("Cache-Control", "public, no-transform"), true},
		{200, html("Content-Disposition", "attachment; filename=page.html"), true},
		{200, html("Content-Disposition", "inline"), false},
		{200, http.Header{"Content-Type": {"text/event-stream"}}, true},
		{200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, true},
		{200, http.Header{"Content-Type": {"application/json"}}, true},
		{200, http.Header{"Content-Type": {"text/htmlx"}}, true},
		{200, http.Header{"Content-Type": {"image/svg+xml"}}, true},
		{200, http.Header{"Content-Type": {"application/xml"}}, true},
		{200, http.Header{}, true},
		// The ASCII snippet would corrupt a page in an encoding that is
		// not ASCII-compatible.
		{200, http.Header{"Content-Type": {"text/html; charset=utf-16"}}, true},
		{200, http.Header{"Content-Type": {"text/html; charset=UTF-16LE"}}, true},
		{200, http.Header{"Content-Type": {`text/html; q=1; Charset="utf-32be"`}}, true},
		{200, http.Header{"Content-Type": {"application/xhtml+xml;charset=ucs-2"}}, true},
		{200, http.Header{"Content-Type": {"text/html; charset=IBM037"}}, true},
		{200, http.Header{"Content-Type": {"text/html; charset=windows-1252"}}, false},
		{200, http.Header{"Content-Type": {"text/html; charset="}}, false},
		// A digest trailer would vouch for the original bytes.
		{200, html("Trailer", "Content-Digest"), true},
		{200, html("Trailer", "X-Timing, repr-digest"), true},
		{200, html("Trailer", "Digest"), true},
		{200, html("Trailer", "X-Timing"), false},
	} {
		if got := SkipResponse(tc.status, tc.header); (got != "") != tc.skip {
			t.Errorf("%d %v: SkipResponse = %q, want skip %v", tc.status, tc.header, got, tc.skip)
		}
	}
}

func TestBeginAdjustsHeader(t *testing.T) {
	in := mustNew(t, noticeConfig())
	h := http.Header{
		"Content-Type":   {"text/html"},
		"Content-Length": {"1234"},
		"Accept-Ranges":  {"bytes"},
		"Etag":           {`"abc123"`},
		"Last-Modified":  {"Mon, 02 Jan 2006 15:04:05 GMT"},
		"Cache-Control":  {"public, max-age=60"},
		"Vary":           {"Accept-Encoding"},
		"Content-Digest": {"sha-256=:x:"},
		"Set-Cookie":     {"a=b"},
	}
	s, err := in.Begin(&bytes.Buffer{}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := http.Header{
		"Content-Type":  {"text/html"},
		"Etag":          {`W/"abc123"`},
		"Last-Modified": {"Mon, 02 Jan 2006 15:04:05 GMT"},
		"Cache-Control": {"public, max-age=60"},
		"Vary":          {"Accept-Encoding"},
		"Set-Cookie":    {"a=b"},
	}
	if !maps.EqualFunc(h, want, func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
		t.Fatalf("header = %v\nwant %v", h, want)
	}

	weak := http.Header{"Etag": {`W/"abc"`}}
	s2, _ := in.Begin(&bytes.Buffer{}, weak)
	s2.Close()
	if got := weak.Get("Etag"); got != `W/"abc"` {
		t.Errorf("weak ETag became %q", got)
	}
}

func TestBeginUnsupportedEncoding(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, ce := range [][]string{{"compress"}, {"gzip, br"}, {"gzip", "gzip"}, {"zstd, identity, br"}, {"exi"}, {"dcb"}} {
		h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": ce, "Content-Length": {"10"}, "Etag": {`"x"`}}
		before := h.Clone()
		s, err := in.Begin(&bytes.Buffer{}, h)
		if !errors.Is(err, ErrUnsupportedEncoding) || s != nil {
			t.Errorf("%q: Begin = %v, %v; want ErrUnsupportedEncoding", ce, s, err)
		}
		if !maps.EqualFunc(h, before, func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }) {
			t.Errorf("%q: header changed to %v", ce, h)
		}
	}
	for _, ce := range [][]string{nil, {""}, {"identity"}, {"GZIP"}, {"x-gzip"}, {"br, identity"}, {" zstd "}, {"Deflate"}} {
		h := http.Header{"Content-Encoding": ce}
		s, err := in.Begin(&bytes.Buffer{}, h)
		if err != nil {
			t.Errorf("%q: %v", ce, err)
			continue
		}
		s.Close()
	}
}

// TestNotModifiedETag: a 304 gets the weak ETag its 200 would have had
// when it is labelled HTML or the client revalidates the weak form; not
// otherwise, and the request's own slices stay as they were.
func TestNotModifiedETag(t *testing.T) {
	for _, tc := range []struct {
		name        string
		header      http.Header
		ifNoneMatch []string
		want        string
	}{
		{"labelled HTML", http.Header{"Etag": {`"v1"`}, "Content-Type": {"text/html"}}, nil, `W/"v1"`},
		{"weak form revalidated", http.Header{"Etag": {`"v1"`}}, []string{`"a", W/"v1"`}, `W/"v1"`},
		{"strong form revalidated", http.Header{"Etag": {`"v1"`}}, []string{`"v1"`}, `"v1"`},
		{"no If-None-Match", http.Header{"Etag": {`"v1"`}}, nil, `"v1"`},
		{"already weak", http.Header{"Etag": {`W/"v1"`}, "Content-Type": {"text/html"}}, nil, `W/"v1"`},
		{"a stylesheet", http.Header{"Etag": {`"v1"`}, "Content-Type": {"text/css"}}, []string{`"v1"`}, `"v1"`},
	} {
		before := tc.header["Etag"]
		notModified(tc.header, tc.ifNoneMatch)
		if got := tc.header.Get("Etag"); got != tc.want {
			t.Errorf("%s: ETag %s, want %s", tc.name, got, tc.want)
		}
		if before[0] != tc.header["Etag"][0] && before[0] != `"v1"` {
			t.Errorf("%s: the handler's slice was edited", tc.name)
		}
	}
}
