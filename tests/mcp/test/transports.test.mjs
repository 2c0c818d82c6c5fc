// The raw JSON-RPC exchange with curl, in the stateless 2026-07-28 revision (server/discover,
// Mcp-Method / Mcp-Name headers, _meta) and in the session-based 2025-06-18 one (initialize,
// then plain requests), against each of two replicas: no request needs the replica that
// answered the one before. Also: a disallowed Origin and a disallowed Host are refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { startService } from "../../harness/server.mjs";
import { KEYS, connectFireflies, fakeFireflies } from "../support.mjs";

const run = promisify(execFile);
let svc, fake, token;

const META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "curl", version: "8" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

before(async () => {
  fake = await fakeFireflies();
  svc = await startService({ replicas: 2, env: { FH_FIREFLIES_BASE_URL: `${fake.url}/graphql` } });
  const ws = randomUUID();
  token = await svc.token({ workspace: ws, role: "member" });
  await connectFireflies(svc.restUrl, await svc.token({ workspace: ws, role: "admin" }), KEYS[0], "Sales calls");
});

after(async () => {
  await svc?.stop();
  await fake?.close();
});

/** POSTs `body` to `url` with curl; the status, lower-cased headers and parsed JSON body. */
async function curl(url, headers, body) {
  const args = ["-sS", "-i", "-X", "POST", url, "--data-binary", typeof body === "string" ? body : JSON.stringify(body)];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  const { stdout } = await run("curl", args);
  const split = stdout.indexOf("\r\n\r\n");
  const head = stdout.slice(0, split).split("\r\n");
  const status = Number(head[0].split(" ")[1]);
  const hdrs = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  const text = stdout.slice(split + 4);
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status, headers: hdrs, json, text };
}

const base = () => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
});

function stateless(replica, method, params, extra = {}) {
  return curl(`${replica.restUrl}/mcp`, { ...base(), "mcp-protocol-version": "2026-07-28", "mcp-method": method, ...extra },
    { jsonrpc: "2.0", id: 1, method, params: { ...params, _meta: META } });
}

function legacy(replica, message) {
  return curl(`${replica.restUrl}/mcp`, { ...base(), "mcp-protocol-version": "2025-06-18" }, message);
}

for (const [i, j] of [[0, 1], [1, 0]]) {
  test(`the stateless 2026-07-28 revision works on replica ${i}, then ${j}`, async () => {
    const [a, b] = [svc.replicas[i], svc.replicas[j]];
    const discover = await stateless(a, "server/discover", {});
    const list = await stateless(b, "tools/list", {});
    const call = await stateless(a, "tools/call", { name: "fireflies_list_transcripts", arguments: { limit: 1 } },
      { "mcp-name": "fireflies_list_transcripts" });
    const unnamed = await stateless(b, "tools/call", { name: "fireflies_list_transcripts", arguments: {} });

    assert.equal(discover.status, 200, discover.text);
    assert.ok(discover.json.result.supportedVersions.includes("2026-07-28"));
    assert.ok(discover.json.result.supportedVersions.includes("2025-06-18"));
    assert.equal(list.json.result.cacheScope, "private");
    assert.ok(list.json.result.tools.some((t) => t.name === "fireflies_list_transcripts"), list.text);
    assert.equal(call.json.result.isError, false, call.text);
    assert.equal(call.json.result.structuredContent.data[0].id, "t1");
    assert.equal(call.json.result.resultType, "complete");
    assert.equal(unnamed.json.error.code, -32020, "a tools/call without Mcp-Name is protocol misuse");
  });

  test(`the session-based 2025-06-18 revision initializes on replica ${i} and goes on on replica ${j}`, async () => {
    const [a, b] = [svc.replicas[i], svc.replicas[j]];
    const init = await legacy(a, {
      jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "curl", version: "8" } },
    });
    const initialized = await legacy(b, { jsonrpc: "2.0", method: "notifications/initialized" });
    const list = await legacy(b, { jsonrpc: "2.0", id: 2, method: "tools/list" });
    const call = await legacy(a, { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "list_integrations", arguments: {} } });

    assert.equal(init.status, 200, init.text);
    assert.equal(init.json.result.protocolVersion, "2025-06-18");
    assert.equal(init.headers["mcp-session-id"], undefined, "no session to be sticky to");
    assert.equal(initialized.status, 202);
    assert.ok(list.json.result.tools.some((t) => t.name === "fireflies_list_transcripts"), list.text);
    assert.equal(call.json.result.structuredContent.data[0].platform, "fireflies");
  });
}

test("a disallowed Origin and a disallowed Host are refused, the frontend's Origin is served", async () => {
  const url = `${svc.restUrl}/mcp`;
  const message = { jsonrpc: "2.0", id: 1, method: "tools/list" };
  const headers = { ...base(), "mcp-protocol-version": "2025-06-18" };
  const origin = await curl(url, { ...headers, origin: "https://evil.example" }, message);
  const host = await curl(url, { ...headers, host: "evil.example" }, message);
  const frontend = await curl(url, { ...headers, origin: "http://localhost:3000" }, message);

  assert.equal(origin.status, 403);
  assert.equal(host.status, 403);
  assert.equal(frontend.status, 200, frontend.text);
});

test("a body that is not JSON-RPC gets a JSON-RPC parse error", async () => {
  const res = await curl(`${svc.restUrl}/mcp`, { ...base(), "mcp-protocol-version": "2025-06-18" }, "{not json");

  assert.equal(res.status, 400);
  assert.equal(res.json.error.code, -32700);
});
