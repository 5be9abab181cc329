package ratelimit

import (
	"bufio"
	"io"
	"net/http"
	"testing"
)

// BenchmarkAnswerHeader is what net/http does with a proxied answer's
// header when it writes it (a clone, then the sorted fields), with and
// without the fields the protocol adds to a converse answer: Link and the
// four X-RateLimit-* (spec §8). It explains the converse control in
// bench/compare.sh. Most of the five fields' cost is the header map's: a
// Go map keeps up to 8 keys in one group and grows into a table past
// that (and again past 14), so the same five fields cost about twice the
// time and ten times the memory on an upstream answer of four fields (to
// 9 keys) as on one of nine (to 14).
func BenchmarkAnswerHeader(b *testing.B) {
	upstream := []string{"Cache-Control", "Content-Length", "Content-Type", "Via"}
	more := []string{"Etag", "Last-Modified", "Server", "Strict-Transport-Security", "X-Frame-Options"}
	protocol := []string{"Link", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window"}
	for _, c := range []struct {
		name   string
		fields [][]string
	}{
		{"upstream 4", [][]string{upstream}},
		{"upstream 4 + protocol 5", [][]string{upstream, protocol}},
		{"upstream 9", [][]string{upstream, more}},
		{"upstream 9 + protocol 5", [][]string{upstream, more, protocol}},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				h := http.Header{}
				for _, names := range c.fields {
					for _, k := range names {
						h[k] = []string{"1000000000"}
					}
				}
				_ = h.Clone().Write(w)
				w.Reset(io.Discard)
			}
		})
	}
}
