// Package mcp is the MCP front door of an AHP site (spec §4.4.1, Appendix
// D): a Model Context Protocol server whose tools are the manifest's MODE2
// and MODE3 capabilities and whose resources are its MODE1 content. Every
// tools/call and resources/read runs through the site's own AHP pipeline
// (validation, auth, sessions, budgets, rate limits, then the concierge)
// via a Dispatch the caller provides: "proxied, not duplicated" (§4.4.3),
// internally, not as a loopback HTTP call.
//
// # Wiring
//
// Build the server once at provisioning, from the completed manifest:
//
//	srv, err := mcp.New(m, mcp.Options{Path: "/mcp", Logger: logger})
//
// Route every request whose path is exactly Options.Path to
// srv.ServeHTTP(w, r, dispatch), whatever its method (the server answers
// 405 itself to anything but POST). dispatch must run the request it is
// given through the whole AHP handler (converse gate included) and the rest
// of the site's chain, exactly as if the client had sent it, and write the
// answer to the ResponseWriter it is given; it must not route it back to the
// MCP endpoint. The internal requests are:
//
//   - tools/call: POST {endpoints.converse}, Content-Type application/json,
//     a converse body built from the arguments, credentials in the
//     manifest's scheme header (Authorization: Bearer or X-AHP-Key);
//   - resources/read: GET {endpoints.content}, or GET
//     {endpoints.converse}/status/{session_id} for an async status.
//
// They are clones of the MCP request: same context, RemoteAddr and TLS
// state, so the gateway sees the same client, the same rate-limit key and
// the same credentials, and MCP calls and direct calls share one budget.
// Accept-Encoding, conditional and MCP transport headers are dropped, so
// the answer recorded is plain. ServeHTTP writes its response itself and
// returns nil.
//
// # Transport
//
// JSON-RPC 2.0 over HTTP POST, as Appendix D.1 asks, which is also the
// Streamable HTTP transport (2025-03-26 and later) answered with a single
// application/json response (or one SSE event per response when the client
// accepts only text/event-stream). Protocol versions 2024-11-05 (the one
// the spec names), 2025-03-26, 2025-06-18 and 2025-11-25 are negotiated in
// initialize: the client's version when supported, else the newest. Clients
// of the 2026-07-28 stateless revision (the Go SDK's default) probe
// server/discover first; its MCP-Protocol-Version header is one we do not
// speak, so it gets a 400 with a JSON-RPC error (a discover without the
// header gets -32601), and they fall back to initialize, as that revision
// prescribes (TestSDKClient covers it).
//
// The server is stateless: it issues no Mcp-Session-Id and accepts requests
// with or without one. Sites run on several Caddy instances behind one
// balancer and reload their config at any time; sessions held in one
// process's memory would break on both. So GET (no server-to-client SSE
// stream) and DELETE (no session to end) answer 405 Method Not Allowed,
// which clients take as "not offered". A present MCP-Protocol-Version must
// be one we speak (400 otherwise). Notifications and client responses get
// 202 Accepted with no body. Batches are accepted when the request's
// revision has them (before 2025-06-18, so also with no version header), at
// most 32 messages. The body is capped (Options.MaxRequestBytes, 64 KiB:
// 413) and must be application/json (415).
//
// # Why not the SDK's server
//
// The official Go SDK (github.com/modelcontextprotocol/go-sdk) is used by
// the tests as the client. Its server does not fit this front door:
//
//   - Appendix D.6 puts "ahp" and "manifest" in serverInfo; the SDK's
//     Implementation type cannot carry them;
//   - auth failures must keep their HTTP meaning (401 with
//     WWW-Authenticate) and the gateway's rate-limit headers must reach the
//     client: SDK tool handlers return results or errors, they cannot set
//     the HTTP response;
//   - the AHP spec's transport is a plain JSON-RPC POST; the SDK's
//     Streamable handler refuses clients that do not accept
//     text/event-stream (400) and answers transport errors in plain text;
//   - it keeps sessions in memory (stateful mode) or builds a server session
//     per request (stateless mode), where this front door needs no state and
//     answers initialize, tools/list and resources/list from bytes rendered
//     at load.
//
// What remains to write is small: a JSON-RPC envelope decoder (fuzzed:
// FuzzDecodeBody) and seven methods.
//
// # Methods
//
// initialize, ping, tools/list, tools/call, resources/list,
// resources/templates/list, resources/read; notifications/initialized and
// any other notification are accepted and ignored. Anything else is
// -32601. Errors: -32700 for a body that is not JSON, -32600 for a message
// that is not a JSON-RPC 2.0 request (id must be a string or a number),
// -32602 for bad params (unknown tool, missing query, arguments that do not
// match the tool's inputSchema), -32002 for an unknown resource.
//
// Tools: one per MODE2 and MODE3 capability, in manifest order, named
// exactly as the capability, described by its description (plus a note
// when it needs credentials or may answer asynchronously), with
// readOnlyHint set for MODE2 and query capabilities. The inputSchema has
// query (required), session_id and clarification (spec §6.3), then the
// capability's input_schema properties, required list and other keywords;
// how structured arguments travel inside the converse request is described
// in package bridge (integrations/internal/bridge): appended to query as
// one "Arguments: {json}" line, since the request schema admits no other
// field. Every converse request also states context.accept_types: the
// capability's response_types, so the concierge serves its richest type.
//
// tools/call results: content[0].text is response.answer; the whole AHP
// body is structuredContent and a second text block (its JSON, for clients
// that read only content). clarification_needed becomes the question, its
// options and how to answer (same tool, session_id, clarification);
// accepted becomes the session_id and the absolute status URI to read with
// resources/read. AHP errors become tool errors: isError true and
// content[0].text "code: message". A non-AHP answer (an HTML 502 page) is a
// tool error named after its status, the body passed on as text.
//
// Auth failures keep their HTTP meaning: when the pipeline answers 401
// auth_required or 403 forbidden, the MCP response is HTTP 401 (with a
// WWW-Authenticate challenge: the pipeline's, else Bearer or AHP-Key) or
// 403, with a JSON-RPC error -32001 or -32003 whose message is
// "code: message" and whose data is the AHP error body. Clients configured
// with a token, or able to ask their user for one, react as they do to any
// protected HTTP endpoint, and SDK clients surface the error without
// dropping the connection. In a batch the same JSON-RPC errors are
// answered with HTTP 200. Credentials come from the MCP request's
// Authorization or X-AHP-Key header, or from params._meta.auth on
// tools/call (D.5; a header wins, as over AHP), or from an "auth" argument
// (D.4's field, for clients that put it there); they are moved to the
// internal request's header and never put in a body. "auth" is therefore
// no input_schema property a tool can publish.
//
// Resources: the MODE1 content document at its absolute URL on the host
// the client reached (resources/list), and the async status URIs (a
// resource template when the site has async capabilities). Nothing else on
// the site can be read through the MCP endpoint.
package mcp
