package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

func signalsManifest() *manifest.Manifest {
	no, yes := false, true
	return &manifest.Manifest{Name: "x", ContentSignals: &manifest.ContentSignals{AITrain: &no, Search: &yes}}
}

const wantGroup = "# Content signals from this site's AHP manifest (/.well-known/agent.json)\nUser-agent: *\n" +
	"Content-Signal: ai-train=no, search=yes\nContent-Usage: / train-ai=n, search=y\n"

func robotsStepFor(t *testing.T, mode string) func(http.ResponseWriter, *http.Request, string, caddyhttp.Handler) (bool, error) {
	t.Helper()
	fn, err := provisionRobots(mode, signalsManifest(), "", zap.NewNop())
	if err != nil || fn == nil {
		t.Fatal(mode, err)
	}
	return fn
}

// site is the rest of the chain: it records the request it got.
type site struct {
	fn   func(w http.ResponseWriter, r *http.Request) error
	seen *http.Request
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	s.seen = r.Clone(r.Context())
	return s.fn(w, r)
}

func serveRobots(t *testing.T, step func(http.ResponseWriter, *http.Request, string, caddyhttp.Handler) (bool, error), method, path string, next *site, hdr ...string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	served, err := step(w, r, r.URL.Path, next)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if served && r.Method != method {
		t.Fatalf("the request's method was left as %s", r.Method)
	}
	return w, served
}

func textSite(body string, hdr ...string) *site {
	return &site{fn: func(w http.ResponseWriter, r *http.Request) error {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		_, err := io.WriteString(w, body)
		return err
	}}
}

func TestRobotsServe(t *testing.T) {
	step := robotsStepFor(t, RobotsServe)
	next := textSite("User-agent: *\nDisallow: /\n")
	w, served := serveRobots(t, step, "GET", "/robots.txt", next)
	if !served || next.seen != nil || w.Code != 200 || w.Body.String() != wantGroup ||
		w.Header().Get("Content-Type") != "text/plain; charset=utf-8" || w.Header().Get("Content-Length") != strconv.Itoa(len(wantGroup)) {
		t.Fatalf("%v %d %q %v", served, w.Code, w.Body, w.Header())
	}
	w, _ = serveRobots(t, step, "HEAD", "/robots.txt", next)
	if w.Body.Len() != 0 || w.Header().Get("Content-Length") != strconv.Itoa(len(wantGroup)) {
		t.Fatalf("HEAD: %q %v", w.Body, w.Header())
	}
	for _, c := range []struct{ method, path string }{{"POST", "/robots.txt"}, {"GET", "/robots.txt/"}, {"GET", "/ROBOTS.TXT"}, {"GET", "/"}} {
		if _, served := serveRobots(t, step, c.method, c.path, next); served {
			t.Errorf("%s %s served", c.method, c.path)
		}
	}
}

func TestRobotsExtend(t *testing.T) {
	step := robotsStepFor(t, RobotsExtend)
	for _, c := range []struct {
		name string
		next *site
		want string // "" means the site's answer unchanged
	}{
		{"with newline", textSite("User-agent: *\nDisallow: /private\n", "Content-Type", "text/plain; charset=utf-8", "Etag", `"v1"`, "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT"),
			"User-agent: *\nDisallow: /private\n\n" + wantGroup},
		{"no final newline", textSite("User-agent: *\nDisallow: /private", "Content-Type", "text/plain"), "User-agent: *\nDisallow: /private\n\n" + wantGroup},
		{"no content type", textSite("User-agent: *\nAllow: /\n"), "User-agent: *\nAllow: /\n\n" + wantGroup},
		{"empty", textSite("", "Content-Type", "text/plain"), wantGroup},
		{"written 404", &site{fn: func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, "<h1>Not found</h1>")
			return nil
		}}, wantGroup},
		{"file_server's 404 error", &site{fn: func(w http.ResponseWriter, r *http.Request) error {
			return caddyhttp.Error(http.StatusNotFound, errors.New("not found"))
		}}, wantGroup},
		{"410", &site{fn: func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(410); return nil }}, wantGroup},
		{"html from a catch-all", textSite("<!doctype html><p>app", "Content-Type", "text/html"), ""},
		{"compressed", textSite("\x1f\x8b...", "Content-Type", "text/plain", "Content-Encoding", "gzip"), ""},
		{"server error", &site{fn: func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "down")
			return nil
		}}, ""},
		{"redirect", &site{fn: func(w http.ResponseWriter, r *http.Request) error {
			http.Redirect(w, r, "https://elsewhere.example/robots.txt", http.StatusMovedPermanently)
			return nil
		}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			// What the site answers on its own, for comparison.
			alone := httptest.NewRecorder()
			_ = c.next.ServeHTTP(alone, httptest.NewRequest("GET", "/robots.txt", nil))

			w, served := serveRobots(t, step, "GET", "/robots.txt", c.next,
				"Accept-Encoding", "gzip", "If-None-Match", `"v1"`, "Range", "bytes=0-10", "If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT")
			if !served {
				t.Fatal("not served")
			}
			for _, f := range []string{"Accept-Encoding", "If-None-Match", "Range", "If-Modified-Since"} {
				if v := c.next.seen.Header.Get(f); v != "" {
					t.Errorf("the site was asked with %s: %s", f, v)
				}
			}
			if c.want == "" {
				if w.Code != alone.Code || !bytes.Equal(w.Body.Bytes(), alone.Body.Bytes()) {
					t.Fatalf("changed: %d %q, the site said %d %q", w.Code, w.Body, alone.Code, alone.Body)
				}
				return
			}
			if w.Code != 200 || w.Body.String() != c.want {
				t.Fatalf("%d %q, want %q", w.Code, w.Body, c.want)
			}
			h := w.Header()
			if h.Get("Content-Length") != strconv.Itoa(len(c.want)) || h.Get("Etag") != "" || h.Get("Last-Modified") != "" ||
				!strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
				t.Fatalf("headers %v", h)
			}
			// HEAD answers with GET's length and no body.
			hw, _ := serveRobots(t, step, "HEAD", "/robots.txt", c.next)
			if hw.Body.Len() != 0 || hw.Header().Get("Content-Length") != strconv.Itoa(len(c.want)) || c.next.seen.Method != "GET" {
				t.Fatalf("HEAD: %q %v (site asked with %s)", hw.Body, hw.Header(), c.next.seen.Method)
			}
		})
	}
}

// A robots.txt past the limit passes through byte for byte, however it
// is written.
func TestRobotsExtendTooLong(t *testing.T) {
	step := robotsStepFor(t, RobotsExtend)
	body := strings.Repeat("Disallow: /a-long-path-to-hide\n", maxRobotsBytes/30+10)
	for _, chunk := range []int{1 << 10, 64 << 10, len(body)} {
		next := &site{fn: func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", "text/plain")
			for b := body; b != ""; {
				n := min(chunk, len(b))
				if _, err := io.WriteString(w, b[:n]); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		}}
		w, _ := serveRobots(t, step, "GET", "/robots.txt", next)
		if w.Code != 200 || w.Body.String() != body {
			t.Fatalf("chunks of %d: %d, %d bytes, want the %d unchanged", chunk, w.Code, w.Body.Len(), len(body))
		}
	}
	// Announced too long: streamed from the start.
	next := textSite(body, "Content-Type", "text/plain", "Content-Length", strconv.Itoa(len(body)))
	if w, _ := serveRobots(t, step, "GET", "/robots.txt", next); w.Body.String() != body {
		t.Fatal("an announced long body changed")
	}
}

// A site error other than a missing file stays the site's error.
func TestRobotsExtendSiteError(t *testing.T) {
	step := robotsStepFor(t, RobotsExtend)
	boom := caddyhttp.Error(http.StatusBadGateway, errors.New("upstream down"))
	r := httptest.NewRequest("GET", "/robots.txt", nil)
	served, err := step(httptest.NewRecorder(), r, "/robots.txt", &site{fn: func(http.ResponseWriter, *http.Request) error { return boom }})
	if !served || !errors.Is(err, boom) {
		t.Fatalf("%v %v", served, err)
	}
}

// The rewritten path counts as much as the one sent.
func TestRobotsOriginalPath(t *testing.T) {
	step := robotsStepFor(t, RobotsServe)
	r := httptest.NewRequest("GET", "/index.php", nil)
	w := httptest.NewRecorder()
	if served, _ := step(w, r, "/robots.txt", nil); !served || w.Body.String() != wantGroup {
		t.Fatal("a rewritten /robots.txt was not served")
	}
}

func TestRobotsConfig(t *testing.T) {
	for _, mode := range []string{"", RobotsOff} {
		if fn, err := provisionRobots(mode, signalsManifest(), "", zap.NewNop()); fn != nil || err != nil {
			t.Errorf("%q: %v", mode, err)
		}
	}
	if _, err := provisionRobots(RobotsExtend, &manifest.Manifest{Name: "x"}, "", zap.NewNop()); err == nil || !strings.Contains(err.Error(), "ahp robots extend: the manifest sets no content signal") {
		t.Errorf("no signals: %v", err)
	}
	yes := true
	if _, err := provisionRobots(RobotsServe, &manifest.Manifest{ContentSignals: &manifest.ContentSignals{AttributionRequired: &yes}}, "", zap.NewNop()); err == nil {
		t.Error("attribution_required alone has no robots.txt term, yet robots serve provisioned")
	}
	if _, err := provisionRobots("merge", signalsManifest(), "", zap.NewNop()); err == nil {
		t.Error("robots merge provisioned")
	}
	for in, want := range map[string]string{"robots extend": RobotsExtend, "robots serve": RobotsServe, "robots off": RobotsOff} {
		d := caddyfile.NewTestDispenser(in)
		d.Next()
		if got, err := parseRobots(d); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"robots", "robots on", "robots extend serve"} {
		d := caddyfile.NewTestDispenser(in)
		d.Next()
		if _, err := parseRobots(d); err == nil || !strings.Contains(err.Error(), "ahp robots: want extend") {
			t.Errorf("%q: %v", in, err)
		}
	}
}
