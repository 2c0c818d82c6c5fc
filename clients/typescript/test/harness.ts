// Typed access to the shared Node harness (tests/harness/server.mjs), plus the fakes and the
// TCP cut these suites need. Compiled to dist/test/, four levels below the repo root.
import { connect, createServer, type Server, type Socket } from "node:net";
import { randomUUID } from "node:crypto";

export interface Service {
  grpcUrl: string;
  restUrl: string;
  token(opts?: { workspace?: string; role?: string; sub?: string; ttl?: string }): Promise<string>;
  logs(): string;
  stop(): Promise<void>;
}
export interface Fake {
  url: string;
  requests: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }[];
  close(): Promise<void>;
}
export interface FakeAnswer {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
}
interface Harness {
  startService(opts?: { env?: Record<string, string>; replicas?: number }): Promise<Service>;
  fakeServer(handler: (req: { method?: string; url?: string; headers: Record<string, unknown> }, body: string) => FakeAnswer | undefined | Promise<FakeAnswer | undefined>): Promise<Fake>;
  eventually<T>(check: () => T | Promise<T>, opts?: { ms?: number; what?: string }): Promise<T>;
}

const harnessUrl = new URL("../../../../tests/harness/server.mjs", import.meta.url);
export const harness = (await import(harnessUrl.href)) as Harness;

/**
 * Fireflies' GraphQL API as documented: `Authorization: Bearer <key>`, the `user` query for the
 * connection test, and 401 `invalid_api_key` for keys it does not know. `revoke(key)` makes a
 * key fail from then on, as when someone deletes it in Fireflies.
 */
export async function fireflies() {
  const revoked = new Set<string>();
  const fake = await harness.fakeServer((req, body) => {
    if (req.method !== "POST" || req.url !== "/graphql") return undefined;
    const auth = String(req.headers["authorization"] ?? "");
    if (!auth.startsWith("Bearer ff-") || revoked.has(auth.slice("Bearer ".length))) {
      return {
        status: 200,
        json: { errors: [{ message: "Invalid API key", extensions: { code: "invalid_api_key", status: 401 } }] },
      };
    }
    if (JSON.parse(body).query?.includes("user {")) {
      return { json: { data: { user: { user_id: "u-1", email: "ada@example.com", name: "Ada" } } } };
    }
    return { json: { data: {} } };
  });
  return { ...fake, baseUrl: `${fake.url}/graphql`, revoke: (key: string) => revoked.add(key) };
}

/** A fresh Fireflies key name, so each test's connection is its own account. */
export const newKey = () => `ff-${randomUUID()}`;

/**
 * A TCP relay to `target` that can drop every connection and refuse new ones (`down()`) until
 * `up()`: a real network cut between the client and the service.
 */
export async function relay(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the relay has no TCP address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    down() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      refusing = false;
    },
    close: () => new Promise<void>((ok) => {
      for (const s of sockets) s.destroy();
      server.close(() => ok());
    }),
  };
}
