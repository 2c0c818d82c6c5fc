// The one harness for every Node test suite (clients, console, MCP): starts the real service
// binary on a fresh PostgreSQL database over loopback, mints caller tokens with its `token`
// subcommand, and runs fake providers as plain local HTTP servers. No dependencies on purpose:
// each suite's package brings its own client libraries, this file only needs Node itself.
import { spawn, execFile } from "node:child_process";
import { createServer } from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The service binary: `FH_BIN`, else the debug build (`cargo build --bin founderhouse-integrations`). */
export const BINARY = process.env.FH_BIN ?? resolve(root, "target/debug/founderhouse-integrations");

/** The PostgreSQL server the service and `scripts/postgres.sh` agree on. */
const PG = process.env.FH_TEST_PG ?? "postgres://postgres:postgres@127.0.0.1:5432";

/**
 * Starts `replicas` processes of the service sharing one fresh database.
 *
 * `env` is added to (and overrides) the defaults below, e.g. `FH_FIREFLIES_BASE_URL`,
 * `FH_PROVIDER_ZOOM_CLIENT_ID`, `FH_CORS_ORIGINS`. Listeners bind port 0; their addresses come
 * from the service's own "listening" log line.
 *
 * Returns the first replica's URLs plus `replicas` (each `{ grpcUrl, restUrl, logs() }`),
 * `token({ workspace, role, sub, ttl })`, `logs()` (every replica's output so far) and `stop()`.
 */
export async function startService({ env = {}, replicas = 1 } = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`no service binary at ${BINARY}: run \`cargo build --bin founderhouse-integrations\` or set FH_BIN`);
  }
  const database = `fh_test_node_${randomUUID().replaceAll("-", "")}`;
  const databaseUrl = `${PG}/${database}`;
  const base = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? "/tmp",
    FH_DATABASE_URL: databaseUrl,
    FH_GRPC_ADDR: "127.0.0.1:0",
    FH_HTTP_ADDR: "127.0.0.1:0",
    FH_JWT_SECRET: randomBytes(32).toString("hex"),
    FH_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    // Fakes live on loopback, which credential-supplied base URLs may not reach by default.
    FH_CONNECTOR_ALLOW_PRIVATE_HOSTS: "true",
    // Probes would reach the fakes at random moments; suites about health turn it on.
    FH_HEALTH_SWEEP: "false",
    FH_LOG_FORMAT: "json",
    FH_LOG: "info",
    ...env,
  };
  const procs = [];
  try {
    // The first replica creates and migrates the database; the others start after it.
    for (let i = 0; i < replicas; i++) procs.push(await startOne(base));
  } catch (err) {
    await Promise.all(procs.map((p) => p.kill()));
    await dropDatabase(database);
    throw err;
  }
  const first = procs[0];
  return {
    grpcUrl: first.grpcUrl,
    restUrl: first.restUrl,
    databaseUrl,
    env: base,
    replicas: procs.map(({ grpcUrl, restUrl, logs }) => ({ grpcUrl, restUrl, logs })),
    /** A caller JWT from the binary's `token` subcommand (same secret as the service). */
    async token({ workspace = randomUUID(), role = "member", sub, ttl = "1h" } = {}) {
      const args = ["token", "--workspace", workspace, "--role", role, "--ttl", ttl];
      if (sub) args.push("--sub", sub);
      const { stdout } = await run(BINARY, args, { env: base });
      return stdout.trim();
    },
    logs: () => procs.map((p) => p.logs()).join(""),
    async stop() {
      await Promise.all(procs.map((p) => p.kill()));
      await dropDatabase(database);
    },
  };
}

async function startOne(env) {
  const child = spawn(BINARY, [], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let exited = null;
  const listening = new Promise((resolveAddr, reject) => {
    const onData = (chunk) => {
      output += chunk;
      for (const line of output.split("\n")) {
        if (!line.includes('"listening"')) continue;
        try {
          const j = JSON.parse(line);
          const f = j.fields ?? j;
          if (f.grpc && f.http) resolveAddr({ grpc: f.grpc, http: f.http });
        } catch {
          // A partial line; the rest arrives with the next chunk.
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      reject(new Error(`service exited (${code ?? signal}) before listening:\n${output}`));
    });
    setTimeout(() => reject(new Error(`service did not listen within 30 s:\n${output}`)), 30_000).unref();
  });
  const addr = await listening;
  return {
    grpcUrl: `http://${addr.grpc}`,
    restUrl: `http://${addr.http}`,
    logs: () => output,
    kill: () =>
      new Promise((done) => {
        if (exited) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

async function dropDatabase(name) {
  // psql ships with PostgreSQL; the password is the one scripts/postgres.sh sets.
  const url = new URL(PG);
  await run(
    "psql",
    ["-qAt", "-h", url.hostname, "-p", url.port || "5432", "-U", decodeURIComponent(url.username), "-d", "postgres",
      "-c", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`],
    { env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password) } },
  ).catch(() => {});
}

/**
 * A fake third-party server on 127.0.0.1:0. `handler(req, body)` gets the request and its body
 * as a string, and returns `{ status = 200, headers = {}, json | text }` (or a promise of it).
 * Every request is kept in `requests` (method, url, headers, body) so tests can check what we sent.
 */
export async function fakeServer(handler) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString("utf8");
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    try {
      const out = (await handler(req, body)) ?? { status: 404, json: { error: "not found" } };
      const headers = { ...(out.headers ?? {}) };
      let payload = out.text ?? "";
      if (out.json !== undefined) {
        payload = JSON.stringify(out.json);
        headers["content-type"] ??= "application/json";
      }
      res.writeHead(out.status ?? 200, headers);
      res.end(payload);
    } catch (err) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err));
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); }),
  };
}

/** Polls `check` (sync or async, truthy = done) every 20 ms until `ms` pass. */
export async function eventually(check, { ms = 5_000, what = "condition" } = {}) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} not reached within ${ms} ms${last ? `: ${last.message}` : ""}`);
}
