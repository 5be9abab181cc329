package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeadOfErrorPage: a GET of a missing page gets the handle_errors
// page through the plugin's writer (the notice, no Content-Length, a weak
// ETag); a HEAD of the same URL gets the same header fields (RFC 9110
// §9.3.2), not the error page's own length and strong ETag, which Caddy's
// error handling outside the plugin's writer would send.
func TestHeadOfErrorPage(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html": "<html><body><p>Home</p></body></html>",
		"404.html":   "<html><body><h1>Lost</h1></body></html>",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startCaddy(t, fmt.Sprintf(noticeSite, `root * `+dir+`
	file_server
	handle_errors 404 {
		rewrite * /404.html
		file_server
	}`))
	get := s.get("/missing.html")
	head := s.do("HEAD", "/missing.html", nil)
	if get.StatusCode != 404 || !strings.HasPrefix(get.Header.Get("ETag"), "W/") {
		t.Fatalf("GET of a missing page: %d ETag %q, want 404 and the notice's weak ETag", get.StatusCode, get.Header.Get("ETag"))
	}
	// RFC 9110 §8.6: a HEAD's Content-Length, if any, is GET's.
	badLength := len(head.Header["Content-Length"]) > 0 && head.Header.Get("Content-Length") != get.Header.Get("Content-Length")
	if head.StatusCode != get.StatusCode || head.Header.Get("ETag") != get.Header.Get("ETag") || badLength {
		t.Errorf("HEAD of an error page: %d Content-Length %q ETag %q; GET: %d Content-Length %q ETag %q: want GET's header fields",
			head.StatusCode, head.Header["Content-Length"], head.Header.Get("ETag"), get.StatusCode, get.Header["Content-Length"], get.Header.Get("ETag"))
	}
}
