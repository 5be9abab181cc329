package handshake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// The speed benchmarks compare the context and action answers with a
// baseline handler that writes a body of the same size with the same
// headers, both served over loopback HTTP by net/http, so the ratio is the
// share of a real request's cost the handler adds (the target:
// >= 0.8 of a plain answer of the same size, memory store):
//
//	go test -run - -bench 'Answer' -benchtime 20000x ./handshake
//
// ratio = ns/op of Baseline / ns/op of the handler's.

func benchHandler(b *testing.B, mutate ...func(*Config)) (*Handler, session) {
	b.Helper()
	st := NewMemoryStore()
	lim := limiter.NewMemory(limiter.MemoryOptions{})
	cfg := Config{Store: st, Limiter: lim, Zone: "bench", Rate: limiter.Limit{Events: 1 << 40, Window: time.Minute}}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close(); _ = lim.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = h.ServeHTTP(w, r, site{}) }))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/handshake/session", "application/json", strings.NewReader(contactForm))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ SessionID, Token string }
	if err := jsonDecode(resp.Body, &s); err != nil {
		b.Fatal(err)
	}
	return h, session{ID: s.SessionID, Token: s.Token}
}

// serveBench runs requests made by mk against handler over loopback HTTP.
func serveBench(b *testing.B, handler http.Handler, mk func() *http.Request) {
	srv := httptest.NewServer(handler)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := mk()
			req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// answerOf records one answer, for the baseline's body and headers.
func answerOf(h *Handler, req *http.Request) (http.Header, []byte) {
	rec := httptest.NewRecorder()
	_ = h.ServeHTTP(rec, req, site{})
	return rec.Header(), rec.Body.Bytes()
}

func baseline(hdr http.Header, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		for k, v := range hdr {
			w.Header()[k] = []string{v[0]}
		}
		w.WriteHeader(200)
		_, _ = w.Write(body)
	})
}

func handlerOf(h *Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = h.ServeHTTP(w, r, site{}) })
}

func BenchmarkContextAnswer(b *testing.B) {
	h, s := benchHandler(b)
	mk := func() *http.Request {
		r, _ := http.NewRequest("GET", "/handshake/context/"+s.ID, nil)
		r.Header.Set("X-Handshake-Token", s.Token)
		return r
	}
	b.Run("Handler", func(b *testing.B) { serveBench(b, handlerOf(h), mk) })
	hdr, body := answerOf(h, mk())
	b.Run("Baseline", func(b *testing.B) { serveBench(b, baseline(hdr, body), mk) })
}

const benchAction = `{"actions":[{"type":"set","key":"name","value":"Alice"},{"type":"set","key":"age","value":30},{"type":"set","key":"email","value":"x@example.com"}],"stream":false}`

func BenchmarkActionAnswer(b *testing.B) {
	h, s := benchHandler(b)
	mk := func() *http.Request {
		r, _ := http.NewRequest("POST", "/handshake/action/"+s.ID, strings.NewReader(benchAction))
		r.Header.Set("X-Handshake-Token", s.Token)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	b.Run("Handler", func(b *testing.B) { serveBench(b, handlerOf(h), mk) })
	hdr, body := answerOf(h, mk())
	b.Run("Baseline", func(b *testing.B) { serveBench(b, baseline(hdr, body), mk) })
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkIdleSessionMemory reports the memory one idle session of the
// contact form (7 fields, 2 values) holds in the memory store.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 10000
	req, err := parseCreate([]byte(contactForm))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		st := NewMemoryStore()
		st.MaxSessions = n
		before := heap()
		for j := 0; j < n; j++ {
			r2, _ := parseCreate([]byte(contactForm)) // each session parses its own body
			init, _ := initialState(r2, true, 0)
			tok := newToken()
			if err := st.Create(context.Background(), &Record{ID: newSessionID(), TokenHash: hashToken(tok), Mode: req.mode, Form: true, Schema: r2.schema, Meta: r2.meta}, init, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		after := heap()
		b.ReportMetric(float64(after-before)/n, "bytes/session")
		runtime.KeepAlive(st)
		_ = st.Close()
	}
}

// BenchmarkOpenSocketMemory reports the server-side memory of one open,
// idle WebSocket: 2,000 sockets opened by raw TCP clients (which hold no
// Go memory beyond a net.Conn), measured as heap plus goroutine stacks.
func BenchmarkOpenSocketMemory(b *testing.B) {
	const n = 2000
	h, s := benchHandler(b, func(c *Config) { c.WSPerSession = n })
	srv := httptest.NewServer(handlerOf(h))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for i := 0; i < b.N; i++ {
		before := heap()
		conns := make([]net.Conn, 0, n)
		for j := 0; j < n; j++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /ws/handshake/%s?token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", s.ID, s.Token, addr)
			br := bufio.NewReader(c)
			status, err := br.ReadString('\n')
			if err != nil || !strings.Contains(status, "101") {
				b.Fatalf("upgrade: %q %v", status, err)
			}
			conns = append(conns, c)
		}
		for h.hub().Open() < n {
			time.Sleep(time.Millisecond)
		}
		after := heap()
		b.ReportMetric(float64(after-before)/n, "bytes/socket")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		for _, c := range conns {
			_ = c.Close()
		}
		for h.hub().Open() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

func jsonDecode(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return jsonUnmarshal(b, v)
}

var _ = strconv.Itoa

// BenchmarkAnswerRatio pairs the handler with the baseline under the same
// load: each iteration sends one request to each (in ABBA order across
// iterations) over loopback HTTP and times them; it reports both times and
// ratio = baseline / handler (the target: >= 0.8, memory store).
func BenchmarkAnswerRatio(b *testing.B) {
	h, s := benchHandler(b)
	for _, c := range []struct {
		name string
		mk   func() *http.Request
	}{
		{"context", func() *http.Request {
			r, _ := http.NewRequest("GET", "/handshake/context/"+s.ID, nil)
			r.Header.Set("X-Handshake-Token", s.Token)
			return r
		}},
		{"action", func() *http.Request {
			r, _ := http.NewRequest("POST", "/handshake/action/"+s.ID, strings.NewReader(benchAction))
			r.Header.Set("X-Handshake-Token", s.Token)
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			hdr, body := answerOf(h, c.mk())
			ours := httptest.NewServer(handlerOf(h))
			defer ours.Close()
			base := httptest.NewServer(baseline(hdr, body))
			defer base.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 4}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			send := func(srv *httptest.Server) time.Duration {
				req := c.mk()
				req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				return d
			}
			send(ours)
			send(base)
			var tOurs, tBase time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					tOurs += send(ours)
					tBase += send(base)
				} else {
					tBase += send(base)
					tOurs += send(ours)
				}
			}
			b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ns/handler")
			b.ReportMetric(float64(tBase.Nanoseconds())/float64(b.N), "ns/baseline")
			b.ReportMetric(float64(tBase)/float64(tOurs), "ratio")
		})
	}
}

type discardW struct{ h http.Header }

func (d *discardW) Header() http.Header         { return d.h }
func (d *discardW) WriteHeader(int)             {}
func (d *discardW) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHandlerAction and BenchmarkHandlerContext: the handler's own
// CPU and allocations per answer, without HTTP (memory store).
func BenchmarkHandlerAction(b *testing.B) {
	h, s := benchHandler(b)
	r := httptest.NewRequest("POST", "/handshake/action/"+s.ID, nil)
	r.Header.Set("X-Handshake-Token", s.Token)
	body := []byte(benchAction)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Body = io.NopCloser(bytes.NewReader(body))
		w := &discardW{h: http.Header{}}
		_ = h.ServeHTTP(w, r, site{})
	}
}
func BenchmarkHandlerContext(b *testing.B) {
	h, s := benchHandler(b)
	r := httptest.NewRequest("GET", "/handshake/context/"+s.ID, nil)
	r.Header.Set("X-Handshake-Token", s.Token)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w := &discardW{h: http.Header{}}
		_ = h.ServeHTTP(w, r, site{})
	}
}

// BenchmarkPassthrough is a request for the site's own page through the
// handler, in process: with hooks configured the handler also drops any
// client X-Handshake-Hook header (a walk over the request's headers).
//
//	go test -run - -bench Passthrough ./handshake
func BenchmarkPassthrough(b *testing.B) {
	noop := nextFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, c := range []struct {
		name  string
		hooks Hooks
	}{
		{"plain", Hooks{}},
		{"hooks", Hooks{Create: &Hook{Path: "/hooks/create"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, _ := benchHandler(b, func(cfg *Config) { cfg.Hooks = c.hooks })
			req := httptest.NewRequest("GET", "/products/desk?ref=home", nil)
			for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cookie", "User-Agent", "Referer", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Cache-Control", "Priority"} {
				req.Header[k] = []string{"x"}
			}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = h.ServeHTTP(w, req, noop)
			}
		})
	}
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// BenchmarkObjectManyNames: one body-limit object of short distinct names
// (the duplicate check's worst case) against a walk of its first
// linearNames members, the common case.
func BenchmarkObjectManyNames(b *testing.B) {
	raw := manyMembers(maxMembers, "")
	small := manyMembers(linearNames, "")
	nop := func(string, json.RawMessage) error { return nil }
	b.Run("Max", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for i := 0; i < b.N; i++ {
			_ = object(raw, nop)
		}
	})
	b.Run("Small", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = object(small, nop)
		}
	})
}
