package htmlinject

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// The benchmarks push a realistic 72 KB page (testdata/page70k.html) in
// 32 KiB writes, as reverse_proxy and file_server do, into a sink that
// copies what it gets, as a socket write does, and counts the Writes it
// gets (writes/op): a chunked response pays about two write syscalls per
// large Write. Baseline is the same page copied through without injection:
// Inject/Baseline is the cost of the notice on the identity path,
// InjectGzip/BaselineGzip on a gzip'd page.

const benchChunk = 32 << 10

func benchPage(b *testing.B) []byte {
	page, err := os.ReadFile("testdata/page70k.html")
	if err != nil {
		b.Fatal(err)
	}
	return page
}

// copySink copies every write into a reused buffer and counts the writes.
type copySink struct {
	buf    []byte
	writes int
}

func (c *copySink) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	c.writes++
	return len(p), nil
}

func (c *copySink) reset() { c.buf = c.buf[:0] }

func (c *copySink) report(b *testing.B) {
	b.ReportMetric(float64(c.writes)/float64(b.N), "writes/op")
}

func writeInChunks(w io.Writer, page []byte) {
	for p := page; len(p) > 0; {
		n := min(len(p), benchChunk)
		w.Write(p[:n])
		p = p[n:]
	}
}

func benchCopy(b *testing.B, page []byte) {
	var sink copySink
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		sink.reset()
		writeInChunks(&sink, page)
	}
	sink.report(b)
}

func benchInject(b *testing.B, page []byte, h http.Header) { benchInjectFlushing(b, page, h, false) }

// benchInjectFlushing flushes after every write when flush is set, as
// reverse_proxy does for an upstream that streams its body.
func benchInjectFlushing(b *testing.B, page []byte, h http.Header, flush bool) {
	in := mustNew(b, noticeConfig())
	var sink copySink
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		sink.reset()
		s, err := in.Begin(&sink, h)
		if err != nil {
			b.Fatal(err)
		}
		for p := page; len(p) > 0; {
			n := min(len(p), benchChunk)
			s.Write(p[:n])
			p = p[n:]
			if flush {
				s.Flush()
			}
		}
		if err := s.Close(); err != nil || !s.Inserted() {
			b.Fatal("not inserted", err)
		}
	}
	sink.report(b)
}

func gzipPage(b *testing.B) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(benchPage(b))
	zw.Close()
	return buf.Bytes()
}

func BenchmarkBaseline(b *testing.B) { benchCopy(b, benchPage(b)) }

func BenchmarkInject(b *testing.B) {
	benchInject(b, benchPage(b), http.Header{"Content-Type": {"text/html; charset=utf-8"}})
}

// BenchmarkInjectFlushed flushes after every 32 KiB write.
func BenchmarkInjectFlushed(b *testing.B) {
	benchInjectFlushing(b, benchPage(b), http.Header{"Content-Type": {"text/html"}}, true)
}

func BenchmarkBaselineGzip(b *testing.B) { benchCopy(b, gzipPage(b)) }

// BenchmarkInjectGzip decodes, injects and re-encodes; the bytes/s are of
// the compressed page.
func BenchmarkInjectGzip(b *testing.B) {
	benchInject(b, gzipPage(b), http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}})
}

// utilityClassPage is a 72 KB page in the utility-class style, dense in '-'.
func utilityClassPage() []byte {
	const row = `<li class="flex items-center justify-between px-4 py-2 text-sm font-medium text-gray-700 hover:bg-gray-50 dark:text-gray-300">` +
		`<a class="ml-2 h-4 w-4 underline-offset-2" href="/docs/getting-started">Getting started</a></li>` + "\n"
	page := []byte("<!DOCTYPE html><html><head><title>Docs</title></head><body><ul>\n")
	for len(page) < 72<<10 {
		page = append(page, row...)
	}
	return append(page, "</ul></body></html>\n"...)
}

func BenchmarkBaselineUtilityClasses(b *testing.B) { benchCopy(b, utilityClassPage()) }

func BenchmarkInjectUtilityClasses(b *testing.B) {
	benchInject(b, utilityClassPage(), http.Header{"Content-Type": {"text/html"}})
}

func compressedPage(b *testing.B, name string) []byte {
	for _, c := range testCodecs {
		if c.name == name {
			return compress(b, c, benchPage(b))
		}
	}
	b.Fatal("no codec ", name)
	return nil
}

// BenchmarkInjectBrotli and BenchmarkInjectZstd: as BenchmarkInjectGzip.
func BenchmarkInjectBrotli(b *testing.B) {
	benchInject(b, compressedPage(b, "br"), http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}})
}

func BenchmarkInjectZstd(b *testing.B) {
	benchInject(b, compressedPage(b, "zstd"), http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"zstd"}})
}

// BenchmarkInjectGzipLarge: a 300 KB page, past the splicer's window, is
// decoded twice (see codec.rewrite).
func BenchmarkInjectGzipLarge(b *testing.B) {
	benchInject(b, compress(b, testCodecs[0], bigPage(300<<10)), http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}})
}
