package htmlinject

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// TestMemoryPerPage measures the memory a page in flight holds: streams
// opened and written all but Close, then the heap they keep, per stream.
// It fails past its limits, about 1.3 times what it measured. Encoders
// are not part of it: they exist only during Close (their size is logged
// too).
func TestMemoryPerPage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	page, _ := os.ReadFile("testdata/page70k.html")
	big := bigPage(2 << 20)
	flushed := func(w io.WriteCloser, f interface{ Flush() error }, body []byte) {
		for p := body; len(p) > 0; p = p[min(len(p), 16<<10):] {
			w.Write(p[:min(len(p), 16<<10)])
			f.Flush()
		}
		w.Close()
	}
	codecs := map[string]testCodec{}
	for _, c := range testCodecs {
		codecs[c.name] = c
	}
	in := mustNew(t, noticeConfig())
	for _, tc := range []struct {
		name, coding string
		body         func() []byte
		limit        int // bytes per page in flight
	}{
		{"identity", "", func() []byte { return page }, 120 << 10},
		{"gzip", "gzip", func() []byte { return compress(t, codecs["gzip"], page) }, 260 << 10},
		{"deflate", "deflate", func() []byte { return compress(t, codecs["deflate"], page) }, 260 << 10},
		{"br", "br", func() []byte { return compress(t, codecs["br"], page) }, 480 << 10},
		{"zstd (128 KiB window)", "zstd", func() []byte { return compress(t, codecs["zstd"], page) }, 480 << 10},
		{"gzip, 300 KB page", "gzip", func() []byte { return compress(t, codecs["gzip"], bigPage(300<<10)) }, 480 << 10},
		{"br, 300 KB page", "br", func() []byte { return compress(t, codecs["br"], bigPage(300<<10)) }, 1 << 20},
		{"zstd (128 KiB window), 300 KB page", "zstd", func() []byte { return compress(t, codecs["zstd"], bigPage(300<<10)) }, 800 << 10},
		{"br lgwin 22, 2.1 MB page", "br", func() []byte {
			var b bytes.Buffer
			w := brotli.NewWriterOptions(&b, brotli.WriterOptions{Quality: 5, LGWin: 22})
			flushed(w, w, big)
			return b.Bytes()
		}, 6 << 20},
		{"zstd 2 MiB window, 2.1 MB page", "zstd", func() []byte {
			var b bytes.Buffer
			w, _ := zstd.NewWriter(&b, zstd.WithWindowSize(2<<20))
			flushed(w, w, big)
			return b.Bytes()
		}, 5 << 20},
	} {
		body := tc.body()
		h := http.Header{}
		if tc.coding != "" {
			h.Set("Content-Encoding", tc.coding)
		}
		const n = 16
		streams := make([]*Stream, n)
		before := heapInUse()
		for i := range streams {
			s, err := in.Begin(io.Discard, h.Clone())
			if err != nil {
				t.Fatal(err)
			}
			s.Write(body) // all but Close: the most a page holds
			streams[i] = s
		}
		per := int(heapInUse()-before) / n
		for _, s := range streams {
			s.Close()
		}
		t.Logf("%-32s %8d bytes per page in flight (%d bytes compressed)", tc.name, per, len(body))
		if per > tc.limit {
			t.Errorf("%s: %d bytes per page in flight, want at most %d", tc.name, per, tc.limit)
		}
	}
	for _, name := range []string{"gzip", "deflate", "br", "zstd"} {
		before := heapInUse()
		cd := &codec{coding: codingOf(name)}
		w := cd.getEncoder(io.Discard)
		w.Write(page[:40<<10])
		t.Logf("%-32s %8d bytes per Close in progress", name+" encoder", int(heapInUse()-before))
		cd.putEncoder(w)
	}
}

// bigPage is an HTML page of about n bytes that compresses like text, not
// like one page repeated.
func bigPage(n int) []byte {
	b := []byte("<!DOCTYPE html><html><body><table>\n")
	x := uint64(0x9e3779b97f4a7c15)
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = fmt.Appendf(b, "<tr><td class=\"c%d\">%x</td><td>item %d</td></tr>\n", x%7, x, x%1000)
	}
	return append(b, "</table></body></html>\n"...)
}

func codingOf(name string) coding {
	c, _ := contentCoding([]string{name})
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
