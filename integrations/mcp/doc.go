// Package mcp is the MCP front door of an AHP site (spec §4.4.1, Appendix
// D): a Model Context Protocol server whose tools are the manifest's MODE2
// and MODE3 capabilities and whose resources are its MODE1 content. A
// tools/call becomes a converse request handed to the gateway's typed
// entry point (gateway.Converse), which validates, checks credentials,
// limits, sessions and budgets exactly as for a direct AHP call and sends
// the admitted call through next, the site's route to its concierge:
// "proxied, not duplicated" (§4.4.3), with no loopback HTTP call and no
// re-entry into the handler chain.
//
// # Wiring
//
// Build the server once at provisioning, from the completed manifest:
//
//	srv, err := mcp.New(m, mcp.Options{Path: "/mcp", Gateway: g, Limits: p, Content: d})
//
// Route every request whose path is exactly Options.Path to
// srv.ServeHTTP(w, r, next), whatever its method. The internal requests
// are clones of the MCP request (same context, RemoteAddr, TLS state and
// headers, so the same client, rate-limit key and credentials): POST
// {endpoints.converse} for a call, GET {endpoints.converse}/status/{id}
// through the gateway's status path for an async status, GET of the
// content path from the local file (discovery) or through next.
// Accept-Encoding, conditional, Origin and MCP transport headers are
// dropped, so the answer recorded is plain.
//
// # Revisions
//
// One endpoint serves the stateless revision 2026-07-28 and the
// initialize-era ones (2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05),
// decided per request (see decideEra): the MCP-Protocol-Version header
// names the revision; without it a request is initialize-era (clients
// before 2025-06-18, the AHP suite's plain client) unless its _meta names
// one. In 2026-07-28 every request carries its version and client
// capabilities in params._meta, Mcp-Method and Mcp-Name must match the
// body (400, -32020), an unknown version gets -32022 with data.supported,
// an unknown method 404 with -32601, an unknown resource -32602; results
// carry resultType and serverInfo (with the AHP additions ahp and manifest)
// in _meta, lists and reads ttlMs and cacheScope; server/discover
// describes the server. initialize (lenient: no params or no version gets
// 2024-11-05, Appendix D's) and ping exist in the older revisions only.
//
// The server is stateless in every revision: it issues no Mcp-Session-Id
// and ignores one. Sites run on several Caddy instances behind one
// balancer and reload their config at any time. GET and DELETE answer 405;
// notifications and client responses 202 without a body; batches are
// accepted where the revision has them (before 2025-06-18), 32 messages at
// most. The body is capped (Options.MaxRequestBytes: 413) and must be
// application/json (415). An Origin header must be the endpoint's own or a
// configured one (403 otherwise); requests without one pass. The endpoint's
// own host is the one the request was sent to: behind a trusted proxy
// (Options.TrustedPeer) the proxy's X-Forwarded-Host, which is also the
// host of the absolute resource URIs. Accept only
// frames a 200: SSE events for a client accepting text/event-stream and
// not application/json, JSON otherwise; an error status is always JSON.
// Request ids are strings or integers within ±(2^53-1), echoed as sent.
//
// # Refusals and charges
//
// A refused call to a known tool is a tool result, HTTP 200, in every
// revision: isError, "code: message" as its text, the AHP error body as
// structuredContent, the rate-limit headers and Retry-After on the HTTP
// response. That holds for the gateway's refusals (auth_required,
// forbidden, rate_limited, invalid_request, ...), the concierge's and this
// door's own (arguments the tool's schema refuses, a credential no header
// can carry). Only a call naming no tool of this server is a JSON-RPC
// error (-32602).
//
// A tools/call is charged what the gateway charges (the client's tier by
// capability and credentials, the agent's window, the session's turn; a
// call refused here the client's tier through gateway.Refused), a status read
// what the status path charges; anything else in the HTTP request, and a
// request refused as a whole, the static tier once. Over the static tier,
// the answer is HTTP 429 with a JSON-RPC error whose code is 429 and whose
// data is the AHP body.
//
// # Why not the SDK's server
//
// The official Go SDK (github.com/modelcontextprotocol/go-sdk) is the
// tests' client. Its server does not fit this front door: Appendix D.6
// puts "ahp" and "manifest" in serverInfo, which its Implementation type
// cannot carry; the gateway's rate-limit headers must reach the client,
// which SDK tool handlers cannot set; the AHP spec's transport is a plain
// JSON-RPC POST, which its handler refuses without text/event-stream in
// Accept; and it builds a session per request where this door answers
// lists from bytes rendered at load.
//
// # Tools and resources
//
// One tool per MODE2 and MODE3 capability, in manifest order (stable),
// named exactly as the capability, described by its description (plus
// notes on credentials and asynchronous answers), with readOnlyHint for
// MODE2 and query capabilities; the inputSchema has query (required),
// session_id and clarification (spec §6.3), then the capability's
// input_schema (package bridge; x-mcp-header annotations are refused at
// load). Results: content[0].text is response.answer; the whole AHP body
// is structuredContent and a second text block; clarification_needed and
// accepted become instructions (the question and options; the session_id
// and status URI). Credentials come from the Authorization or X-AHP-Key
// header, params._meta.auth (D.5; a header wins) or an "auth" argument
// (D.4), and travel in the internal request's header, never in a body.
// Resources: the content document at its absolute URL on the host the
// client reached, and async status URIs (a template when the site has
// async capabilities); nothing else on the site is readable this way.
package mcp
