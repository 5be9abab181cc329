package handshake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type htmlSite struct{ body string }

func (s htmlSite) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, s.body)
	return nil
}

func TestInjectForms(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.InjectForms = true })
	tag := string(ScriptTag(DefaultPrefix))
	for _, c := range []struct {
		page string
		want bool
	}{
		{"<html><body><form><input name=a></form></body></html>", true},
		{"<html><body><p>no form</p></body></html>", false},
		{"<html><body><FORM action=/x></FORM>" + tag + "</body></html>", false}, // already there
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/contact.html", nil)
		if err := f.h.ServeHTTP(rec, req, htmlSite{c.page}); err != nil {
			t.Fatal(err)
		}
		got := rec.Body.String()
		if inserted := strings.Count(got, tag) > strings.Count(c.page, tag); inserted != c.want {
			t.Errorf("%q: inserted=%v, want %v: %s", c.page, inserted, c.want, got)
		}
		if c.want && !strings.HasSuffix(got, tag+"</body></html>") {
			t.Errorf("script not before </body>: %s", got)
		}
	}
}
