package mcp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// answer is a minimal concierge behind the gateway: it reads the request
// and answers a fixed success, so the benchmarks measure the door and the
// gateway, not a site.
var answerBody = []byte(`{"status":"success","session_id":"s-1","response":{"answer":"ok"},"meta":{"tokens_used":3}}`)

var answer = nextFunc(func(w http.ResponseWriter, r *http.Request) error {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(answerBody)
	return err
})

// benchServer is the door in front of a real gateway with limits a
// benchmark never reaches, in a memory store.
func benchServer(b *testing.B) (*Server, *gateway.Gateway) {
	m := sitetest.Manifest(b)
	store := limiter.NewMemory(limiter.MemoryOptions{})
	b.Cleanup(func() { store.Close() })
	huge := limiter.Limit{Events: 1 << 40, Window: time.Minute}
	lim := ratelimit.New(ratelimit.Config{Store: store, Zone: "b", Unauthenticated: huge, Authenticated: huge, Static: huge, Action: huge,
		ClientKey: func(*http.Request) string { return "192.0.2.7" }})
	g, err := gateway.New(gateway.Config{Manifest: m, Rules: converse.NewRules(m, converse.Options{}), Limits: lim, EchoSignals: true})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(m, Options{Gateway: g, Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	return srv, g
}

func benchServe(b *testing.B, body string, header ...string) {
	srv, _ := benchServer(b)
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/mcp", nil)
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rd := strings.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		w := httptest.NewRecorder()
		_ = srv.ServeHTTP(w, r, answer)
		if w.Code != 200 || strings.Contains(w.Body.String(), `"isError"`) {
			b.Fatal(w.Code, w.Body)
		}
	}
}

const benchCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"inventory_check","arguments":{"query":"In stock?","sku":"AHP-1","qty":2}`

// BenchmarkToolsCall is one tools/call through the door and the real
// gateway (rules, limits in memory) into a minimal concierge. Compare with
// BenchmarkDirectConverse, the same call sent to the gateway's converse
// endpoint directly: the ratio is what the MCP door adds (decode, validate
// arguments, build the internal request, record the answer, render the
// result). Before this door called the gateway's entry point directly, a
// call went through a dispatcher that re-read the body
// (docs/mcp.md has the numbers).
func BenchmarkToolsCall(b *testing.B) {
	benchServe(b, benchCall+`}}`)
}

// BenchmarkToolsCallModern is the same call in MCP 2026-07-28: headers
// checked against the body, _meta read, resultType and serverInfo added.
func BenchmarkToolsCallModern(b *testing.B) {
	benchServe(b, benchCall+`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "inventory_check")
}

func BenchmarkDirectConverse(b *testing.B) {
	_, g := benchServer(b)
	body := `{"ahp":"0.1","capability":"inventory_check","query":"In stock?\n\nArguments: {\"qty\":2,\"sku\":\"AHP-1\"}","context":{"accept_types":["application/data","text/answer"]}}`
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/agent/converse", nil)
	r.Header.Set("Content-Type", "application/json")
	rd := strings.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, gateway.ConverseRoute, answer)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkToolsList answers from bytes rendered at load (and charges the
// static tier).
func BenchmarkToolsList(b *testing.B) {
	benchServe(b, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
}
