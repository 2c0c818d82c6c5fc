// The generated client and its convenience layer against the real service binary on a fresh
// database, over native gRPC (HTTP/2) and grpc-web (HTTP/1.1), with a fake Fireflies.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createNodeClients,
  errorInfo,
  HealthState,
  IntegrationStatus,
  Platform,
  watchHealthEvents,
  type HealthEvent,
} from "../src/node.js";
import { fireflies, harness, newKey, relay, type Service } from "./harness.js";

let service: Service;
let ff: Awaited<ReturnType<typeof fireflies>>;

before(async () => {
  ff = await fireflies();
  service = await harness.startService({ env: { FH_FIREFLIES_BASE_URL: ff.baseUrl } });
});
after(async () => {
  await service?.stop();
  await ff?.close();
});

const { eventually } = harness;

/** Consumes an iterator in the background; `done` resolves to the error that ended it, if any. */
function collect(events: AsyncIterable<HealthEvent>) {
  const seen: HealthEvent[] = [];
  const done = (async () => {
    for await (const e of events) seen.push(e);
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  return { seen, done };
}

for (const protocol of ["grpc", "grpc-web"] as const) {
  describe(`over ${protocol === "grpc" ? "native gRPC on HTTP/2" : "grpc-web on HTTP/1.1"}`, () => {
    const clients = async (opts: { role?: string; baseUrl?: string; workspace?: string } = {}) => {
      const token = await service.token({ role: opts.role ?? "admin", workspace: opts.workspace });
      return createNodeClients({ baseUrl: opts.baseUrl ?? service.grpcUrl, token, protocol });
    };
    const connectFireflies = (c: Awaited<ReturnType<typeof clients>>, key: string) =>
      c.integrations.connectIntegration({
        platform: Platform.FIREFLIES,
        credentials: { api_key: key },
        displayName: "Sales calls",
        providerAccountId: `acct-${crypto.randomUUID()}`,
      });

    test("fireflies connects, lists, gets, updates and disconnects, and no answer holds the key", async () => {
      const c = await clients();
      const key = newKey();
      const { integration } = await connectFireflies(c, key);
      assert.ok(integration);
      assert.equal(integration.status, IntegrationStatus.CONNECTED);
      assert.deepEqual(integration.credentialFields, ["api_key"]);
      assert.match(integration.name, /^workspaces\/[0-9a-f-]+\/integrations\/[0-9a-f-]+$/);

      const list = await c.integrations.listIntegrations({});
      assert.deepEqual(list.integrations.map((i) => i.id), [integration.id]);
      const got = await c.integrations.getIntegration({ name: integration.id });
      assert.equal(got.integration?.displayName, "Sales calls");

      const updated = await c.integrations.updateIntegration({
        integration: { name: integration.name, displayName: "Board calls" },
        updateMask: { paths: ["display_name"] },
      });
      assert.equal(updated.integration?.displayName, "Board calls");

      const gone = await c.integrations.disconnectIntegration({ name: integration.name });
      assert.equal(gone.integration?.status, IntegrationStatus.REVOKED);
      assert.deepEqual(gone.integration?.credentialFields, []);
      const after = await c.integrations.getIntegration({ name: integration.id });
      assert.equal(after.integration?.status, IntegrationStatus.REVOKED);
      for (const answer of [list, got, updated, gone, after]) {
        assert.ok(!JSON.stringify(answer, (_, v) => (typeof v === "bigint" ? String(v) : v)).includes(key));
      }
    });

    test("a bad zerovoice account SID reads as INVALID_ARGUMENT naming credentials.account_sid", async () => {
      const c = await clients();
      const err = await c.integrations
        .connectIntegration({
          platform: Platform.ZEROVOICE,
          credentials: { account_sid: "AC123", auth_token: "not-checked" },
        })
        .then(() => assert.fail("connected with a bad SID"), (e: unknown) => e);
      const info = errorInfo(err);
      assert.equal(info.code, Code.InvalidArgument);
      assert.equal(info.codeName, "INVALID_ARGUMENT");
      assert.equal(info.reason, "INVALID_ARGUMENT");
      assert.equal(info.domain, "integrations.founderhouse");
      assert.deepEqual(info.fieldViolations.map((v) => v.field), ["credentials.account_sid"]);
      assert.ok(info.fieldViolations[0]?.description);
      assert.ok(info.requestId, "a request id to quote");
    });

    test("without a token, calls and streams are UNAUTHENTICATED", async () => {
      const c = createNodeClients({ baseUrl: service.grpcUrl, protocol });
      const err = await c.integrations.listIntegrations({}).then(() => assert.fail("listed"), (e: unknown) => e);
      assert.equal(errorInfo(err).code, Code.Unauthenticated);
      assert.equal(errorInfo(err).reason, "UNAUTHENTICATED");
      // The resuming iterator gives up at once: retrying would never help.
      let reconnects = 0;
      const stream = watchHealthEvents(c.health, {}, { onReconnect: () => reconnects++ });
      await assert.rejects(stream.next(), (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated);
      assert.equal(reconnects, 0);
    });

    test("WatchHealthEvents pushes the new connection, then the failed check of a revoked key", async () => {
      const c = await clients();
      const abort = new AbortController();
      const { seen, done } = collect(watchHealthEvents(c.health, {}, { signal: abort.signal }));
      try {
        const key = newKey();
        const { integration } = await connectFireflies(c, key);
        await eventually(() => seen.some((e) => e.integration === integration?.name && e.reason === "CONNECTED"), {
          what: "the CONNECTED event",
        });
        ff.revoke(key);
        const { check } = await c.health.checkIntegration({ name: integration!.name });
        assert.equal(check?.state, HealthState.NEEDS_REAUTH);
        const failed = await eventually(
          () => seen.find((e) => e.integration === integration?.name && e.state === HealthState.NEEDS_REAUTH),
          { what: "the NEEDS_REAUTH event" },
        );
        assert.equal(failed?.platform, Platform.FIREFLIES);
        assert.equal(failed?.snapshot, false);
        assert.ok(failed?.reason, "the event says why");
      } finally {
        abort.abort();
        assert.equal(await done, undefined);
      }
    });

    test("the watch iterator resumes from its last seq after a network cut, losing and repeating nothing", async () => {
      const cut = await relay(service.grpcUrl);
      const workspace = crypto.randomUUID();
      const direct = await clients({ workspace });
      const viaRelay = await clients({ workspace, baseUrl: cut.url });
      const key = newKey();
      const { integration } = await connectFireflies(direct, key);
      const abort = new AbortController();
      let reconnects = 0;
      const { seen, done } = collect(
        watchHealthEvents(viaRelay.health, {}, {
          signal: abort.signal,
          initialDelayMs: 50,
          onReconnect: () => reconnects++,
        }),
      );
      try {
        await eventually(() => seen.some((e) => e.snapshot), { what: "the snapshot" });
        await direct.health.checkIntegration({ name: integration!.name });
        await eventually(() => seen.some((e) => e.state === HealthState.HEALTHY), { what: "the first change" });

        cut.down();
        await eventually(() => reconnects >= 2, { what: "a failed reconnect while the network is down" });
        ff.revoke(key);
        await direct.health.checkIntegration({ name: integration!.name });
        cut.up();

        await eventually(() => seen.some((e) => e.state === HealthState.NEEDS_REAUTH), {
          ms: 10_000,
          what: "the change made during the cut",
        });
        // Resumed by seq: one snapshot only (a restart from 0 would send another), every change
        // once, in order.
        assert.deepEqual(
          seen.map((e) => [e.snapshot, e.state]),
          [[true, HealthState.UNKNOWN], [false, HealthState.HEALTHY], [false, HealthState.NEEDS_REAUTH]],
        );
        assert.ok(seen[1]!.seq < seen[2]!.seq);
      } finally {
        abort.abort();
        await cut.close();
        assert.equal(await done, undefined);
      }
    });
  });
}
