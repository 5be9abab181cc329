package notice

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// The benchmarks write a realistic 72 KB page in 32 KiB chunks, as
// reverse_proxy and file_server do. Compare Inject with Baseline (the same
// writes straight to the destination) for the cost of injection.

const benchChunk = 32 << 10

func benchPage(b *testing.B) []byte {
	page, err := os.ReadFile("testdata/page70k.html")
	if err != nil {
		b.Fatal(err)
	}
	return page
}

func writeInChunks(w io.Writer, page []byte) {
	for p := page; len(p) > 0; {
		n := min(len(p), benchChunk)
		w.Write(p[:n])
		p = p[n:]
	}
}

func BenchmarkBaseline(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		writeInChunks(io.Discard, page)
	}
}

func BenchmarkInject(b *testing.B) {
	page := benchPage(b)
	in := mustNew(b, Config{})
	h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := in.Begin(io.Discard, h)
		if err != nil {
			b.Fatal(err)
		}
		writeInChunks(s, page)
		if err := s.Close(); err != nil || !s.Inserted() {
			b.Fatal(err)
		}
	}
}

func gzipPage(b *testing.B, page []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(page)
	zw.Close()
	return buf.Bytes()
}

// BenchmarkBaselineGzip is what a gzip'd page costs without us: nothing but
// the copy.
func BenchmarkBaselineGzip(b *testing.B) {
	page := gzipPage(b, benchPage(b))
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		writeInChunks(io.Discard, page)
	}
}

// BenchmarkInjectGzip decodes, injects and re-encodes a gzip'd page.
func BenchmarkInjectGzip(b *testing.B) {
	page := gzipPage(b, benchPage(b))
	in := mustNew(b, Config{})
	h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := in.Begin(io.Discard, h)
		if err != nil {
			b.Fatal(err)
		}
		writeInChunks(s, page)
		if err := s.Close(); err != nil || !s.Inserted() {
			b.Fatal(err)
		}
	}
}
