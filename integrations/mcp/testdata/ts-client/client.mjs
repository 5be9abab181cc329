// Usage: node client.mjs <mcp-url> <bearer-token>
//
// Drives the MCP front door with the official TypeScript SDK's Streamable
// HTTP client, the way an agent would, and prints one JSON object for
// ../../ts_client_test.go to check: the negotiated version and server info,
// the tools, a call of site_info, an unknown tool, book_demo without
// credentials (refused: a tool result with isError, not a thrown transport
// error), a call after the refusal, the resources and the first one read,
// then book_demo with credentials.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node client.mjs <mcp-url> <bearer-token>");
  process.exit(2);
}

async function connect(headers) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "ts-sdk-check", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

// attempt runs a call that may fail and records either outcome.
async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: { code: e.code ?? null, message: String(e.message ?? e) } };
  }
}

const out = {};
try {
  const { client, transport } = await connect({});
  out.protocolVersion = transport.protocolVersion ?? null;
  out.serverVersion = client.getServerVersion();
  out.tools = (await client.listTools()).tools.map((t) => ({ name: t.name, required: t.inputSchema.required ?? [] }));
  out.call = await client.callTool({ name: "site_info", arguments: { query: "Who runs this shop?" } });
  out.unknownTool = await attempt(() => client.callTool({ name: "no_such_tool", arguments: { query: "x" } }));
  out.unauthenticated = await attempt(() => client.callTool({ name: "book_demo", arguments: { query: "Book a demo" } }));
  out.afterRefusal = await attempt(() => client.callTool({ name: "site_info", arguments: { query: "still there?" } }));
  const resources = (await client.listResources()).resources;
  out.resources = resources.map((r) => ({ uri: r.uri, mimeType: r.mimeType }));
  if (resources.length > 0) {
    out.read = (await client.readResource({ uri: resources[0].uri })).contents;
  }
  await client.close();

  const authed = await connect({ Authorization: `Bearer ${token}` });
  out.authenticated = await attempt(() =>
    authed.client.callTool({ name: "book_demo", arguments: { query: "Book a demo", date: "2026-12-01" } }));
  await authed.client.close();
} catch (e) {
  out.fatal = String(e.stack ?? e);
  console.log(JSON.stringify(out));
  process.exit(1);
}
console.log(JSON.stringify(out));
