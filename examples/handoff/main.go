// Command handoff runs the stand-in Agent Handoff provider backend of
// package provider, an EXAMPLE kept in memory, for trying the
// agent_handoff directive with examples/handoff/Caddyfile:
//
//	go run ./examples/handoff &
//	go run ./cmd/caddy run --config examples/handoff/Caddyfile --adapter caddyfile
//
// docs/agent-handoff.md walks through the whole flow with curl.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/caddy-ahp/caddy-ahp/examples/handoff/provider"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on (Caddy proxies to it)")
	api := flag.String("api", "http://localhost:8080", "the API's public URL")
	content := flag.String("content", "sandbox.localhost:8081", "the published content's domain: http://{handle}.<domain>/")
	preview := flag.String("preview", "http://preview.localhost:8082", "the preview origin's public URL")
	ttl := flag.Duration("ttl", 48*time.Hour, "sandbox lifetime")
	flag.Parse()
	p := provider.New(provider.Options{APIBase: *api, ContentDomain: *content, PreviewBase: *preview, TTL: *ttl})
	srv := &http.Server{Addr: *listen, Handler: p, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("stand-in provider backend on %s (API %s, content *.%s, preview %s)", *listen, *api, *content, *preview)
	log.Fatal(srv.ListenAndServe())
}
