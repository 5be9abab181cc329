package mcp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
)

// answer is a minimal concierge: it reads the request and answers a fixed
// success, so the benchmarks measure the front door, not a site.
var answerBody = []byte(`{"status":"success","session_id":"s-1","response":{"answer":"ok"},"meta":{"tokens_used":3}}`)

func answer(w http.ResponseWriter, r *http.Request) error {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(answerBody)
	return err
}

func benchServe(b *testing.B, body string) {
	srv, err := New(sitetest.Manifest(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/mcp", nil)
	r.Header.Set("Content-Type", "application/json")
	rd := strings.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		w := httptest.NewRecorder()
		_ = srv.ServeHTTP(w, r, answer)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkToolsCall is one tools/call through the front door into a
// minimal concierge. Compare with BenchmarkDirectConverse, the baseline of
// the same concierge called directly with the converse body: the ratio is
// what the MCP door adds (decode, validate arguments, build and record the
// internal request, render the result).
func BenchmarkToolsCall(b *testing.B) {
	benchServe(b, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"inventory_check","arguments":{"query":"In stock?","sku":"AHP-1","qty":2}}}`)
}

func BenchmarkDirectConverse(b *testing.B) {
	body := `{"ahp":"0.1","capability":"inventory_check","query":"In stock?\n\nArguments: {\"qty\":2,\"sku\":\"AHP-1\"}"}`
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/agent/converse", nil)
	rd := strings.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		w := httptest.NewRecorder()
		_ = answer(w, r)
	}
}

// BenchmarkToolsList answers from bytes rendered at load.
func BenchmarkToolsList(b *testing.B) {
	benchServe(b, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
}
