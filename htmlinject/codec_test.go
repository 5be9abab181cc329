package htmlinject

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// A test codec: how an upstream would encode a body, and how a client decodes it.
type testCodec struct {
	name   string // Content-Encoding
	encode func(w io.Writer) io.WriteCloser
	decode func(r io.Reader) (io.Reader, error)
}

var testCodecs = []testCodec{
	{"gzip",
		func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, gzip.BestCompression); return z },
		func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
	{"x-gzip",
		func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
	{"deflate",
		func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
		func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }},
	{"deflate", // raw DEFLATE, as some servers send it
		func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, flate.DefaultCompression); return z },
		func(r io.Reader) (io.Reader, error) { return flate.NewReader(r), nil }},
	{"br",
		func(w io.Writer) io.WriteCloser { return brotli.NewWriterLevel(w, 6) },
		func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
	{"zstd", // with Caddy's encoder's window
		func(w io.Writer) io.WriteCloser { z, _ := zstd.NewWriter(w, zstd.WithWindowSize(128<<10)); return z },
		func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
}

func compress(t testing.TB, c testCodec, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := c.encode(&buf)
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompress(t testing.TB, c testCodec, body []byte) []byte {
	t.Helper()
	r, err := c.decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return out
}

func TestEncodedRoundTrips(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html")
	docs := map[string][]byte{
		"page":      page,
		"no body":   []byte("<p>fragment"),
		"notice":    []byte(`<body><div class="ahp-notice">x</div></body>`),
		"empty":     nil,
		"uppercase": []byte("<HTML><BODY>x<!-- </BODY> --></BODY></HTML>"),
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range testCodecs {
		for name, doc := range docs {
			want := referenceSplice(doc, in)
			encoded := compress(t, c, doc)
			for _, sizes := range [][]int{nil, {1}, {100}, randomChunks(r, len(encoded))} {
				h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {c.name}, "Content-Length": {"1"}}
				got, s := spliceChunks(t, in, h, encoded, sizes...)
				if ce := h.Get("Content-Encoding"); ce != c.name || h.Get("Content-Length") != "" {
					t.Fatalf("%s: header became %v", c.name, h)
				}
				if decoded := decompress(t, c, got); !bytes.Equal(decoded, want) {
					t.Fatalf("%s %s, chunks %v: decoded output differs (%d bytes, want %d)", c.name, name, sizes[:min(5, len(sizes))], len(decoded), len(want))
				}
				if s.Inserted() != !bytes.Equal(want, doc) {
					t.Fatalf("%s %s: Inserted() = %v", c.name, name, s.Inserted())
				}
			}
		}
	}
}

func TestGzipMembersAndTrailingBytes(t *testing.T) {
	in := mustNew(t, noticeConfig())
	gz := testCodecs[0]
	two := append(compress(t, gz, []byte("<html><body>one ")), compress(t, gz, []byte("two</body></html>"))...)
	got, _ := spliceChunks(t, in, http.Header{"Content-Encoding": {"gzip"}}, two, 7)
	if want := "<html><body>one two" + string(in.Snippet()) + "</body></html>"; string(decompress(t, gz, got)) != want {
		t.Fatalf("two members: %q", decompress(t, gz, got))
	}

	junk := append(compress(t, gz, []byte("<body>x</body>")), "\r\n"...)
	got, _ = spliceChunks(t, in, http.Header{"Content-Encoding": {"gzip"}}, junk)
	if want := "<body>x" + string(in.Snippet()) + "</body>"; string(decompress(t, gz, got)) != want {
		t.Fatalf("trailing bytes: %q", decompress(t, gz, got))
	}
}

// TestCompressedBodyIsHeld: a compressed body goes out only at Close (or
// once it cannot get the snippet), whatever the upstream flushes, so that
// the decision can still leave it unchanged.
func TestCompressedBodyIsHeld(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, c := range testCodecs {
		var upstream bytes.Buffer
		zw := c.encode(&upstream)
		flusher := zw.(interface{ Flush() error })

		var dst bytes.Buffer
		s, err := in.Begin(&dst, http.Header{"Content-Encoding": {c.name}})
		if err != nil {
			t.Fatal(err)
		}
		sent := ""
		for i := range 5 {
			part := strings.Repeat("<p>streamed</p>", i+1)
			sent += part
			zw.Write([]byte(part))
			flusher.Flush()
			s.Write(upstream.Bytes())
			upstream.Reset()
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if dst.Len() != 0 {
				t.Fatalf("%s: %d bytes went out before Close", c.name, dst.Len())
			}
		}
		zw.Write([]byte("</body>"))
		zw.Close()
		s.Write(upstream.Bytes())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := decompress(t, c, dst.Bytes()), sent+string(in.Snippet())+"</body>"; string(got) != want || !s.Inserted() {
			t.Fatalf("%s: %q", c.name, got)
		}
	}
}

// TestCompressedBound: a compressed body that arrives as, or decodes to,
// more than MaxDecoded bytes goes out exactly as it came, at once; one
// within the bound gets the snippet.
func TestCompressedBound(t *testing.T) {
	page, _ := os.ReadFile("testdata/page70k.html") // 72,641 bytes
	bomb := append([]byte("<html><body>"), bytes.Repeat([]byte(" "), 300<<10)...)
	bomb = append(bomb, "</body></html>"...)
	for _, c := range testCodecs {
		for _, tc := range []struct {
			name   string
			body   []byte
			max    int64
			insert bool
		}{
			{"within", page, int64(len(page)), true},
			{"one byte over", page, int64(len(page)) - 1, false},
			{"a bomb", bomb, 64 << 10, false}, // ~1 KB compressed, 300 KB decoded
			{"a bomb within", bomb, 1 << 20, true},
		} {
			cfg := noticeConfig()
			cfg.MaxDecoded = tc.max
			in := mustNew(t, cfg)
			body := compress(t, c, tc.body)
			var dst recorder
			s, err := in.Begin(&dst, http.Header{"Content-Encoding": {c.name}})
			if err != nil {
				t.Fatal(err)
			}
			sent := 0
			for p := body; len(p) > 0; p = p[min(len(p), 1000):] {
				s.Write(p[:min(len(p), 1000)])
				sent += min(len(p), 1000)
				if !tc.insert && dst.Len() > 0 && dst.Len() < sent {
					t.Fatalf("%s %s: passing through, yet %d of %d bytes out", c.name, tc.name, dst.Len(), sent)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s.Inserted() != tc.insert {
				t.Fatalf("%s %s: Inserted() = %v", c.name, tc.name, s.Inserted())
			}
			if !tc.insert {
				if !bytes.Equal(dst.Bytes(), body) {
					t.Fatalf("%s %s: the body was changed", c.name, tc.name)
				}
				if tc.name == "a bomb" && dst.writes < 2 && len(body) > 1000 {
					t.Errorf("%s %s: the body should go out as soon as it is over the bound", c.name, tc.name)
				}
				continue
			}
			if got := decompress(t, c, dst.Bytes()); !bytes.Equal(got, referenceSplice(tc.body, in)) {
				t.Fatalf("%s %s: decoded output differs", c.name, tc.name)
			}
		}
	}
	// A raw body over the bound, even if it would decode to little.
	cfg := noticeConfig()
	cfg.MaxDecoded = 100
	in := mustNew(t, cfg)
	body := append(compress(t, testCodecs[0], []byte("<body>x</body>")), bytes.Repeat([]byte{0}, 200)...)
	if got, s := spliceChunks(t, in, http.Header{"Content-Encoding": {"gzip"}}, body, 7); !bytes.Equal(got, body) || s.Inserted() {
		t.Fatal("a body that arrives as more than the bound should pass through")
	}
	// A negative bound leaves compressed bodies alone altogether.
	cfg.MaxDecoded = -1
	in = mustNew(t, cfg)
	if _, err := in.Begin(io.Discard, http.Header{"Content-Encoding": {"gzip"}}); !errors.Is(err, ErrUnsupportedEncoding) {
		t.Fatalf("MaxDecoded < 0: Begin = %v", err)
	}
	if s, err := in.Begin(io.Discard, http.Header{}); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
}

// TestBigWindowsPassThrough: a stream that declares a window above the
// bound passes through unchanged rather than cost its window in memory.
func TestBigWindowsPassThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html")
	big := bytes.Repeat(page, 3)
	stream := func(w io.WriteCloser, f interface{ Flush() error }) func() []byte {
		return func() []byte {
			for p := big; len(p) > 0; p = p[min(len(p), 16<<10):] {
				w.Write(p[:min(len(p), 16<<10)])
				f.Flush()
			}
			w.Close()
			return nil
		}
	}
	for _, tc := range []struct {
		name, coding string
		encode       func(io.Writer) []byte
		pass         bool
	}{
		{"zstd 8 MiB window", "zstd", func(dst io.Writer) []byte {
			z, _ := zstd.NewWriter(dst, zstd.WithWindowSize(8<<20))
			return stream(z, z)()
		}, true},
		{"zstd 2 MiB window", "zstd", func(dst io.Writer) []byte {
			z, _ := zstd.NewWriter(dst, zstd.WithWindowSize(2<<20))
			return stream(z, z)()
		}, false},
		{"brotli lgwin 24", "br", func(dst io.Writer) []byte {
			z := brotli.NewWriterOptions(dst, brotli.WriterOptions{Quality: 5, LGWin: 24})
			return stream(z, z)()
		}, true},
		{"brotli lgwin 22", "br", func(dst io.Writer) []byte {
			z := brotli.NewWriterOptions(dst, brotli.WriterOptions{Quality: 5, LGWin: 22})
			return stream(z, z)()
		}, false},
	} {
		var body bytes.Buffer
		tc.encode(&body)
		got, s := spliceChunks(t, in, http.Header{"Content-Encoding": {tc.coding}}, body.Bytes(), 4096)
		if tc.pass && (s.Inserted() || !bytes.Equal(got, body.Bytes())) {
			t.Errorf("%s: should pass through unchanged", tc.name)
		}
		if !tc.pass && !s.Inserted() {
			t.Errorf("%s: should get the notice", tc.name)
		}
	}
	for b, want := range map[byte]int{0x00: 16, 0x0b: 22, 0x0f: 24, 0x01: 17, 0x21: 10, 0x71: 15, 0x11: 31} {
		if got := brotliWindowBits(b); got != want {
			t.Errorf("brotliWindowBits(%#x) = %d, want %d", b, got, want)
		}
	}
}

// TestMarkerPassesThroughAtOnce: a compressed page that carries the
// marker goes out as it came as soon as the marker is seen.
func TestMarkerPassesThroughAtOnce(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html")
	// Four pages: zstd decodes nothing before a whole block (128 KiB) came.
	marked := append([]byte(`<html><body><section class="ahp-notice">x</section>`), bytes.Repeat(page, 4)...)
	for _, c := range testCodecs {
		body := compress(t, c, marked)
		var dst bytes.Buffer
		s, _ := in.Begin(&dst, http.Header{"Content-Encoding": {c.name}})
		s.Write(body[:len(body)*3/4])
		if dst.Len() == 0 {
			t.Errorf("%s: a page with the marker is still held", c.name)
		}
		s.Write(body[len(body)*3/4:])
		s.Close()
		if !bytes.Equal(dst.Bytes(), body) || s.Inserted() {
			t.Errorf("%s: a page with the marker was changed", c.name)
		}
	}
}

// TestCorruptBodies: a corrupt body never panics or hangs; it fails with an
// error, or, when nothing could be decoded before the damage, passes through
// unchanged. Only raw DEFLATE, which carries no checksum, may decode
// garbage silently.
func TestCorruptBodies(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html")
	for k, c := range testCodecs {
		good := compress(t, c, page)
		garbled := append([]byte{}, good[:len(good)/3]...)
		garbled = append(garbled, bytes.Repeat([]byte{0xff, 0x00, 0x13}, 500)...)
		garbled = append(garbled, good[len(good)/3:]...)
		for name, body := range map[string][]byte{
			"truncated":     good[:len(good)/2],
			"garbled":       garbled,
			"cut in header": good[:1],
		} {
			type result struct {
				out []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				var dst bytes.Buffer
				s, _ := in.Begin(&dst, http.Header{"Content-Encoding": {c.name}})
				var werr error
				for p := body; len(p) > 0 && werr == nil; {
					n := min(len(p), 4096)
					_, werr = s.Write(p[:n])
					p = p[n:]
				}
				err := errors.Join(werr, s.Close())
				done <- result{dst.Bytes(), err}
			}()
			select {
			case r := <-done:
				rawDeflate := k == 3
				if r.err == nil && !bytes.Equal(r.out, body) && !rawDeflate {
					t.Errorf("%s %s: no error, and the body was changed: %q -> %q", c.name, name, body[:min(len(body), 20)], r.out[:min(len(r.out), 20)])
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %s: hangs", c.name, name)
			}
		}
	}
}

func TestUndecodableBodyPassesThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, body := range []string{
		"<html><body>plain HTML labelled gzip</body></html>",
		"",
		"\x1f\x8b", // a gzip header, cut
	} {
		for _, ce := range []string{"gzip", "deflate", "br", "zstd"} {
			got, s := spliceChunks(t, in, http.Header{"Content-Encoding": {ce}}, []byte(body), 3)
			if string(got) != body || s.Inserted() {
				t.Errorf("%s %q: got %q, want it unchanged", ce, body, got)
			}
		}
	}
}

func TestBrokenDestinationWithEncoding(t *testing.T) {
	page, _ := os.ReadFile("testdata/page70k.html")
	body := compress(t, testCodecs[0], page)
	marked := compress(t, testCodecs[0], append([]byte(`<p class="ahp-notice">`), page...))
	for _, tc := range []struct {
		name string
		body []byte
		max  int64
	}{
		{"rewritten at Close", body, 0},
		{"passing through (marker)", marked, 0},
		{"passing through (bound)", body, 20 << 10},
	} {
		cfg := noticeConfig()
		cfg.MaxDecoded = tc.max
		in := mustNew(t, cfg)
		s, _ := in.Begin(&failingWriter{after: 100}, http.Header{"Content-Encoding": {"gzip"}})
		var err error
		for p := tc.body; len(p) > 0 && err == nil; p = p[min(len(p), 1000):] {
			_, err = s.Write(p[:min(len(p), 1000)])
		}
		if err == nil {
			err = s.Flush()
		}
		if err == nil {
			err = s.Close()
		} else if cerr := s.Close(); !errors.Is(cerr, errBroken) {
			t.Fatalf("%s: Close = %v after %v", tc.name, cerr, err)
		}
		if !errors.Is(err, errBroken) || s.Inserted() {
			t.Fatalf("%s: error = %v, inserted %v; want broken pipe", tc.name, err, s.Inserted())
		}
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	in := mustNew(t, noticeConfig())
	body := compress(t, testCodecs[0], []byte("<html><body>x</body></html>"))
	before := runtime.NumGoroutine()
	for i := range 200 {
		s, _ := in.Begin(io.Discard, http.Header{"Content-Encoding": {"gzip"}})
		switch i % 3 {
		case 0: // a whole body
			s.Write(body)
		case 1: // a body cut short: Close ends the decoder
			s.Write(body[:len(body)/2])
		case 2: // corrupt
			s.Write(body[:12])
			s.Write(bytes.Repeat([]byte{0xff}, 64))
		}
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
}

func TestFlushBeforeDecodingThenPassThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	header := compress(t, testCodecs[0], []byte("<html>"))[:10] // a gzip header alone
	body := append(append([]byte{}, header...), "<html><body>not deflate data</body></html>"...)
	var dst bytes.Buffer
	s, _ := in.Begin(&dst, http.Header{"Content-Encoding": {"gzip"}})
	s.Write(body[:10])
	if err := s.Flush(); err != nil || dst.Len() != 0 {
		t.Fatalf("Flush before any decoded byte wrote %q (%v)", dst.Bytes(), err)
	}
	s.Write(body[10:])
	s.Close()
	if !bytes.Equal(dst.Bytes(), body) {
		t.Fatalf("got %q, want the body unchanged", dst.Bytes())
	}
}
