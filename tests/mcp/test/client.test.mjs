// The official TypeScript MCP client against the real binary: connect with a bearer token, the
// caller's tool list, read and write calls against a fake Fireflies, paging, roles, tool errors
// that name the field and the choices, and no secret in any answer or log line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startService } from "../../harness/server.mjs";
import { KEYS, FIREFLIES_READS, FIREFLIES_WRITES, connectFireflies, fakeFireflies, mcpClient, toolError } from "../support.mjs";

let svc, fake, ws, twoWs, one, pair, tokens;
const clients = [];

before(async () => {
  fake = await fakeFireflies();
  svc = await startService({ env: { FH_FIREFLIES_BASE_URL: `${fake.url}/graphql` } });
  ws = randomUUID();
  twoWs = randomUUID();
  tokens = {
    admin: await svc.token({ workspace: ws, role: "admin" }),
    member: await svc.token({ workspace: ws, role: "member" }),
    viewer: await svc.token({ workspace: ws, role: "viewer" }),
    twoAdmin: await svc.token({ workspace: twoWs, role: "admin" }),
    twoMember: await svc.token({ workspace: twoWs, role: "member" }),
  };
  one = await connectFireflies(svc.restUrl, tokens.admin, KEYS[0], "Sales calls");
  pair = [
    await connectFireflies(svc.restUrl, tokens.twoAdmin, KEYS[0], "Sales calls"),
    await connectFireflies(svc.restUrl, tokens.twoAdmin, KEYS[1], "Board calls"),
  ];
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await svc?.stop();
  await fake?.close();
});

async function client(token) {
  const c = await mcpClient(svc.restUrl, token);
  clients.push(c);
  return c;
}

const names = (list) => list.tools.map((t) => t.name);

test("the client connects with a bearer token and sees our server", async () => {
  const c = await client(tokens.member);
  assert.equal(c.getServerVersion().name, "founderhouse-integrations");
  assert.ok(c.getServerCapabilities().tools, "tools are served");
});

test("tools/list shows exactly the connected platform's tools, a viewer only the read ones", async () => {
  const member = await (await client(tokens.member)).listTools();
  const viewer = await (await client(tokens.viewer)).listTools();
  const stranger = await (await client(await svc.token({ workspace: randomUUID(), role: "admin" }))).listTools();

  assert.deepEqual(names(member), [...FIREFLIES_READS, ...FIREFLIES_WRITES, "check_integration", "list_integrations"].sort());
  assert.deepEqual(names(viewer), [...FIREFLIES_READS, "list_integrations"].sort());
  assert.deepEqual(names(stranger), ["check_integration", "list_integrations"]);
  const read = member.tools.find((t) => t.name === "fireflies_list_transcripts");
  const write = member.tools.find((t) => t.name === "fireflies_graphql_query");
  assert.equal(read.annotations.readOnlyHint, true);
  assert.equal(write.annotations.readOnlyHint, false);
  assert.ok(read.description.length > 10, "the registry's description");
  assert.ok(read.inputSchema.properties.page_token, "listed operations take page_token");
  assert.ok(read.inputSchema.properties.integration, "every operation takes integration");
  assert.ok(!read.inputSchema.required.includes("integration"), "optional with one integration");
});

test("a read tool answers structured data from the fake and pages with page_token", async () => {
  const c = await client(tokens.viewer);
  const first = await c.callTool({ name: "fireflies_list_transcripts", arguments: { limit: 2 } });
  const next = first.structuredContent.next_page_token;
  const second = await c.callTool({ name: "fireflies_list_transcripts", arguments: { limit: 2, page_token: next } });

  assert.equal(first.isError, false, JSON.stringify(first));
  assert.deepEqual(first.structuredContent.data.map((t) => t.id), ["t1", "t2"]);
  assert.deepEqual(JSON.parse(first.content[0].text), first.structuredContent, "a JSON text block too");
  assert.ok(next);
  assert.deepEqual(second.structuredContent.data.map((t) => t.id), ["t3"]);
  assert.equal(second.structuredContent.next_page_token, "");
  const sent = fake.requests.filter((r) => r.body.includes("transcripts("));
  assert.equal(sent.at(-1).headers.authorization, `Bearer ${KEYS[0]}`, "the provider's key, not the caller's token");
});

test("a member runs a write tool", async () => {
  const c = await client(tokens.member);
  const result = await c.callTool({
    name: "fireflies_graphql_query",
    arguments: { query: "mutation { noop }", variables: { n: 1 } },
  });

  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.data.echo.query, "mutation { noop }");
  assert.deepEqual(result.structuredContent.data.echo.variables, { n: 1 });
});

test("a viewer's write is refused, and nothing reaches the provider", async () => {
  const c = await client(tokens.viewer);
  const before = fake.requests.length;
  const result = await c.callTool({ name: "fireflies_graphql_query", arguments: { query: "mutation { noop }" } });

  assert.equal(toolError(result).reason, "PERMISSION_DENIED");
  assert.equal(fake.requests.length, before);
});

test("a bad argument is a tool error naming the field", async () => {
  const c = await client(tokens.member);
  const result = await c.callTool({ name: "fireflies_list_transcripts", arguments: { limit: "lots", colour: "red" } });

  const error = toolError(result);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  assert.deepEqual(error.field_violations.map((v) => v.field).sort(), ["colour", "limit"]);
});

test("an ambiguous integration is required, and both the schema and the error name the choices", async () => {
  const c = await client(tokens.twoMember);
  const tool = (await c.listTools()).tools.find((t) => t.name === "fireflies_list_transcripts");
  const missing = await c.callTool({ name: "fireflies_list_transcripts", arguments: {} });
  const chosen = await c.callTool({ name: "fireflies_list_transcripts", arguments: { integration: pair[1].id, limit: 1 } });

  assert.ok(tool.inputSchema.required.includes("integration"));
  assert.deepEqual([...tool.inputSchema.properties.integration.enum].sort(), pair.map((i) => i.id).sort());
  const error = toolError(missing);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  assert.equal(error.field_violations[0].field, "integration");
  for (const i of pair) assert.ok(error.field_violations[0].description.includes(i.id), error.field_violations[0].description);
  assert.equal(chosen.isError, false, JSON.stringify(chosen));
  const last = fake.requests.filter((r) => r.body.includes("transcripts(")).at(-1);
  assert.equal(last.headers.authorization, `Bearer ${KEYS[1]}`, "the chosen integration's key");
});

test("another workspace's integration named in an argument is not found", async () => {
  const c = await client(tokens.twoMember);
  const result = await c.callTool({ name: "fireflies_list_transcripts", arguments: { integration: one.id } });

  assert.equal(toolError(result).reason, "INTEGRATION_NOT_FOUND");
});

test("list_integrations and check_integration answer the workspace's integrations and their health", async () => {
  const c = await client(tokens.member);
  const listed = await c.callTool({ name: "list_integrations", arguments: {} });
  const checked = await c.callTool({ name: "check_integration", arguments: {} });

  assert.deepEqual(listed.structuredContent.data.map((i) => [i.id, i.platform, i.display_name]), [[one.id, "fireflies", "Sales calls"]]);
  assert.equal(checked.isError, false, JSON.stringify(checked));
  assert.equal(checked.structuredContent.data.state, "healthy");
});

test("no provider key or caller token appears in any log line of the run", async () => {
  const logs = svc.logs();
  assert.ok(logs.includes("running a write operation"), "the run's log lines are captured");
  for (const secret of [...KEYS, ...Object.values(tokens)]) {
    assert.ok(!logs.includes(secret), "a secret is in the logs");
    assert.ok(!logs.includes(secret.split(".").at(-1)), "a token signature is in the logs");
  }
});
