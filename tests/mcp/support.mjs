// Shared pieces of the MCP suite: a fake Fireflies (GraphQL, as its docs answer), connecting
// integrations over REST, and the official SDK client with a bearer token.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { fakeServer } from "../harness/server.mjs";

/** Fireflies API keys the fake accepts (one per integration, so accounts differ). */
export const KEYS = ["ff-mcp-key-7c1d9e2a4b", "ff-mcp-key-0a8b3f6c5d"];

const TRANSCRIPTS = [
  { id: "t1", title: "Board meeting", date: 1714550400000, duration: 42.5, summary: { overview: "Runway is 18 months" } },
  { id: "t2", title: "Customer call: Acme", date: 1714636800000, duration: 30, summary: { overview: "Acme wants SSO" } },
  { id: "t3", title: "Weekly sync", date: 1714723200000, duration: 15, summary: { overview: "All green" } },
];

/** Fireflies' GraphQL endpoint: bearer API key, `{data}` or `{errors}` in a 200. */
export function fakeFireflies() {
  return fakeServer((req, raw) => {
    const auth = req.headers.authorization ?? "";
    if (!KEYS.some((k) => auth === `Bearer ${k}`)) {
      return { json: { errors: [{ message: "Invalid API key", extensions: { code: "invalid_api_key", status: 401 } }] } };
    }
    const { query = "", variables = {} } = JSON.parse(raw || "{}");
    if (query.includes("user {")) {
      const n = KEYS.findIndex((k) => auth === `Bearer ${k}`);
      return { json: { data: { user: { user_id: `u-${n}`, email: `ada${n}@example.com`, name: "Ada" } } } };
    }
    if (query.includes("transcripts(")) {
      const skip = variables.skip ?? 0;
      const limit = variables.limit ?? 50;
      return { json: { data: { transcripts: TRANSCRIPTS.slice(skip, skip + limit) } } };
    }
    return { json: { data: { echo: { query, variables } } } };
  });
}

/** Connects Fireflies with `key` in the token's workspace; answers the integration's JSON. */
export async function connectFireflies(restUrl, adminToken, key, displayName) {
  const res = await fetch(`${restUrl}/api/v1/integrations/connect`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ platform: "fireflies", credentials: { api_key: key }, display_name: displayName, provider_account_id: displayName }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`connect failed: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** The official client, connected to `/mcp` with the token as a header. */
export async function mcpClient(restUrl, token) {
  const client = new Client({ name: "founderhouse-mcp-tests", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${restUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return client;
}

/** The tool error's ErrorInfo-like object, asserting the result is a tool error. */
export function toolError(result) {
  if (result.isError !== true) throw new Error(`expected a tool error, got ${JSON.stringify(result)}`);
  return result.structuredContent.error;
}

/** Every Fireflies tool of the registry, as MCP names them. */
export const FIREFLIES_READS = ["fireflies_get_summary", "fireflies_get_transcript", "fireflies_list_transcripts", "fireflies_search_transcripts"];
export const FIREFLIES_WRITES = ["fireflies_graphql_query"];
