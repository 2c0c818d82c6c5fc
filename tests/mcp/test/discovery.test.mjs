// 401 discovery as the official client reads it: the challenge names the protected-resource
// metadata, and the metadata names the resource by its public URL and the token issuer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { startService } from "../../harness/server.mjs";

const ISSUER = "https://id.example.test";
let svc;

/** A port free now, so that FH_PUBLIC_URL can name the address the service listens on. */
async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

before(async () => {
  const port = await freePort();
  svc = await startService({
    env: { FH_HTTP_ADDR: `127.0.0.1:${port}`, FH_PUBLIC_URL: `http://127.0.0.1:${port}`, FH_JWT_ISSUER: ISSUER },
  });
});

after(async () => {
  await svc?.stop();
});

test("a request without a token gets 401 and a challenge naming the metadata document", async () => {
  const res = await fetch(`${svc.restUrl}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });

  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate"), /^Bearer /);
  const { resourceMetadataUrl } = extractWWWAuthenticateParams(res);
  assert.equal(String(resourceMetadataUrl), `${svc.restUrl}/.well-known/oauth-protected-resource/mcp`);
});

test("the official client's discovery finds the metadata with the right resource and issuer", async () => {
  const doc = await discoverOAuthProtectedResourceMetadata(`${svc.restUrl}/mcp`);

  assert.equal(doc.resource, `${svc.restUrl}/mcp`);
  assert.deepEqual(doc.authorization_servers, [ISSUER]);
  assert.deepEqual(doc.bearer_methods_supported, ["header"]);
});

test("the official client without a token is refused as unauthorized", async () => {
  const client = new Client({ name: "no-token", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${svc.restUrl}/mcp`));

  await assert.rejects(client.connect(transport), (err) => err instanceof StreamableHTTPError && err.code === 401);
});
