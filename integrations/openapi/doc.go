// Package openapi is the OpenAPI front door of an AHP site (spec §4.4.2,
// Appendix E): an OpenAPI 3.1 document describing the manifest's
// capabilities, for tool importers such as GPT Actions, and the mapping of
// the operations it describes onto the site's converse pipeline ("proxied,
// not duplicated", §4.4.3).
//
// # Wiring
//
// Build the document once at provisioning, from the completed manifest:
//
//	doc, err := openapi.New(m, openapi.Options{MCPPath: "/mcp"})
//
// Route requests whose path is the configured document path (e.g.
// /openapi.json) to doc.ServeHTTP(w, r): it answers GET and HEAD, and 405
// to other methods. For any other request, ask
// doc.CapabilityName(r, r.URL.Path): when it reports a name (any request
// for a capability's path, or a JSON POST to another name under
// /capabilities/), call doc.ServeCapability(w, r, name, dispatch) and
// return its error (it is dispatch's); otherwise the request is the
// site's. dispatch is the same
// function the MCP front door takes (see package mcp): it runs the internal
// POST {endpoints.converse} through the whole AHP handler and the rest of
// the chain, writing to the ResponseWriter it is given, here the client's
// own, so that the pipeline's answer (status, rate-limit headers, body)
// reaches the client unchanged. The internal request is a clone of the
// client's (same context, RemoteAddr, credentials) with the converse body,
// Content-Type application/json, and the credential in the scheme's header.
//
// # The document
//
// OpenAPI 3.1.0, validated in the tests by kin-openapi (which validates 3.1
// documents with JSON Schema 2020-12 semantics). info.title and
// info.description come from the manifest, info.version is the AHP
// version; servers[0].url is Options.BaseURL or, by default, the scheme and
// host the client reached with its request for the document (TLS; the
// X-Forwarded-Proto and X-Forwarded-Host of a proxy only with
// Options.TrustForwardedProto, or from a peer Options.TrustedPeer trusts,
// and then with Vary: X-Forwarded-Proto, X-Forwarded-Host; "/" when the
// host is not one: see httpx.PublicOrigin): the document is rendered once
// at load and only the URL is written in per request, with an ETag that
// covers it.
//
// Paths, in manifest order: one POST /capabilities/{name} per MODE2 and
// MODE3 capability (operationId the name, summary the description); GET
// {endpoints.converse}/status/{session_id} (getAsyncStatus) when a
// capability is async, whose description then documents the polling
// pattern (§9); GET of the MODE1 content path (getSiteContent). MODE1
// capabilities get no operation (E.5). Request bodies are the same
// arguments object the MCP tools take: query (required), session_id,
// clarification, and the capability's input_schema properties, with its
// definitions hoisted to components.schemas and its local $refs rewritten
// to them; structured inputs travel in query as package bridge describes.
// Responses: 200 (and 202 for async) with the shared AHPResponse schema
// (Appendix E.3 completed from §6 and §9.2) and the rate-limit headers;
// 400, 401 and 403 (when the site has auth), 413, 429 (with Retry-After),
// 500 and 503 with the AHPError schema (§10).
//
// Security: components.securitySchemes has bearerAuth (http bearer) or
// apiKey (X-AHP-Key header) per the manifest's authentication. Capabilities
// that need credentials (action, async, auth_required) require it; the
// others accept it optionally ([{}, {scheme: []}]): a verified key selects
// the authenticated rate limit tier.
//
// # Calls
//
// ServeCapability refuses before the pipeline, with AHP error bodies, what
// the document does not admit: another method (405), a Content-Type other
// than JSON (application/json or any +json, as the gateway takes), or none
// (415: a cross-site form or fetch can send
// those with the user's cookies and without a preflight), over
// Options.MaxBodyBytes (413 request_too_large), a body that cannot be read
// (400 invalid_request), no query (400 missing_field), fields or types
// outside the request schema (400 invalid_request). Each is charged to the
// client's tier, as the gateway charges its own refusals. An "auth" member (Appendix D.4) is a credential: moved
// to the scheme's header (a header already present wins), never forwarded
// in a body.
package openapi
