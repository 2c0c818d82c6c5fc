// The console in Debian's chromium (playwright-core, no browser download), served from its own
// origin, against the real service binary: listing, an API-key connect with the server's field
// error, an OAuth round trip through the service's callback with a fake Notion, a health change
// pushed by the stream, and a disconnect. Leaves a screenshot in test-artifacts/console.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";
import { createNodeClients, errorInfo, Platform } from "../../dist/src/node.js";
import { fireflies, harness, newKey } from "../../dist/test/harness.js";
import { serveConsole } from "../serve.mjs";

const artifacts = new URL("../../test-artifacts/", import.meta.url);
let service, ff, notion, site, browser, page, api, token;
const pageErrors = [];

/** A port free right now, for the REST listener: FH_PUBLIC_URL must name it before it starts. */
async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

/**
 * Notion as its OAuth documentation describes it: the authorize page sends the browser straight
 * back to `redirect_uri` with `code` and `state` (the user "allowed" it); the token endpoint takes
 * HTTP Basic and a JSON body and answers with the workspace and bot; `/v1/users/me` is the bot.
 */
async function fakeNotion() {
  const access = `secret_notion_${randomUUID()}`;
  return harness.fakeServer((req, body) => {
    const url = new URL(req.url, "http://x");
    if (req.method === "GET" && url.pathname === "/v1/oauth/authorize") {
      const back = new URL(url.searchParams.get("redirect_uri"));
      back.searchParams.set("code", `code-${randomUUID()}`);
      back.searchParams.set("state", url.searchParams.get("state"));
      return { status: 302, headers: { location: back.href } };
    }
    if (req.method === "POST" && url.pathname === "/v1/oauth/token") {
      const basic = `Basic ${Buffer.from("notion-client:notion-secret").toString("base64")}`;
      if (req.headers.authorization !== basic) return { status: 401, json: { error: "invalid_client" } };
      const grant = JSON.parse(body).grant_type;
      if (grant !== "authorization_code" && grant !== "refresh_token") return { status: 400, json: { error: "unsupported_grant_type" } };
      return {
        json: {
          access_token: access, token_type: "bearer", bot_id: "bot-1", refresh_token: `nrt_${randomUUID()}`, expires_in: 3600,
          workspace_id: "notion-ws-console", workspace_name: "Console Workspace", workspace_icon: null,
          owner: { type: "user", user: { object: "user", id: "notion-user-1" } }, duplicated_template_id: null,
        },
      };
    }
    if (req.method === "POST" && url.pathname === "/v1/oauth/revoke") return { json: {} };
    if (req.method === "GET" && url.pathname === "/v1/users/me") {
      if (req.headers.authorization !== `Bearer ${access}`) return { status: 401, json: { object: "error", status: 401, code: "unauthorized", message: "API token is invalid." } };
      return { json: { object: "user", id: "bot-1", type: "bot", bot: {} } };
    }
    return undefined;
  });
}

const row = (platform) => page.locator(`#integrations tbody tr[data-platform="${platform}"]`);

before(async () => {
  ff = await fireflies();
  notion = await fakeNotion();
  site = await serveConsole(0);
  const restPort = await freePort();
  service = await harness.startService({
    env: {
      FH_HTTP_ADDR: `127.0.0.1:${restPort}`,
      FH_PUBLIC_URL: `http://127.0.0.1:${restPort}`,
      FH_FRONTEND_URL: `${site.url}/`,
      FH_CORS_ORIGINS: site.url,
      FH_FIREFLIES_BASE_URL: ff.baseUrl,
      FH_NOTION_BASE_URL: `${notion.url}/v1`,
      FH_PROVIDER_NOTION_CLIENT_ID: "notion-client",
      FH_PROVIDER_NOTION_CLIENT_SECRET: "notion-secret",
      FH_PROVIDER_NOTION_AUTHORIZE_URL: `${notion.url}/v1/oauth/authorize`,
      FH_PROVIDER_NOTION_TOKEN_URL: `${notion.url}/v1/oauth/token`,
      FH_PROVIDER_NOTION_REVOKE_URL: `${notion.url}/v1/oauth/revoke`,
    },
  });
  token = await service.token({ role: "admin", sub: randomUUID() });
  api = createNodeClients({ baseUrl: service.grpcUrl, token });
  const executablePath = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("dialog", (d) => void d.accept());
});

after(async () => {
  if (page) {
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: new URL("console.png", artifacts).pathname, fullPage: true }).catch(() => {});
  }
  await browser?.close();
  await service?.stop();
  await Promise.all([ff?.close(), notion?.close(), site?.close()]);
});

test("the page lists the workspace's integrations", async () => {
  await api.integrations.connectIntegration({
    platform: Platform.OTTER, credentials: { api_key: "otter-key" }, displayName: "Team notes", providerAccountId: "otter-1",
  });
  // The token arrives in the fragment, which never reaches a server, and leaves the address bar.
  await page.goto(`${site.url}/?api=${encodeURIComponent(service.grpcUrl)}#token=${token}`).catch((e) => {
    throw new Error(String(e.message).replaceAll(token, "[token]")); // never print a token
  });
  await row("otter").waitFor();
  assert.match(await row("otter").innerText(), /Otter\s+Team notes\s+Connected/);
  assert.ok(!page.url().includes(token));
});

test("an API-key connect shows the server's field error for a bad key, then connects", async () => {
  await page.selectOption("#connect-platform", { label: "ZeroVoice" });
  await page.fill("#cred-account_sid", "AC123");
  await page.fill("#cred-auth_token", "not-checked");
  await page.click("#connect button[type=submit]");
  const fieldError = page.locator('[id="err-credentials.account_sid"]');
  await fieldError.waitFor();
  // The description comes from the BadRequest detail in grpc-status-details-bin, which the
  // browser can read only because CORS exposes it.
  const expected = await api.integrations
    .connectIntegration({ platform: Platform.ZEROVOICE, credentials: { account_sid: "AC123", auth_token: "x" } })
    .catch((e) => errorInfo(e).fieldViolations[0]?.description);
  assert.ok(expected);
  assert.equal(await fieldError.innerText(), expected);
  assert.equal(await page.getAttribute("#cred-account_sid", "aria-invalid"), "true");
  assert.match(await page.locator("#connect-error").innerText(), /ZeroVoice was not connected.*INVALID_ARGUMENT/);
  assert.equal(await row("zerovoice").count(), 0);
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: new URL("console-field-error.png", artifacts).pathname, fullPage: true });

  await page.selectOption("#connect-platform", { label: "Fireflies" });
  await page.fill("#cred-api_key", (ffKey = newKey()));
  await page.fill("#connect-display-name", "Sales calls");
  await page.click("#connect button[type=submit]");
  await row("fireflies").waitFor();
  assert.match(await row("fireflies").innerText(), /Fireflies\s+Sales calls\s+Connected/);
});
let ffKey;

test("an OAuth connect goes to the provider and comes back connected through the callback", async () => {
  await page.click("text=Connect Notion");
  await row("notion").waitFor({ timeout: 10_000 });
  assert.match(await row("notion").innerText(), /Notion\s+\S.*Connected/);
  assert.match(await page.locator("#notice").innerText(), /Notion connected/);
  // The handle is spent and gone from the address bar.
  assert.ok(!page.url().includes("oauth_handle"), page.url());
  const grants = notion.requests.filter((r) => r.url === "/v1/oauth/token");
  assert.equal(grants.length, 1);
});

test("a row's test and refresh buttons run against the provider and say how it went", async () => {
  await row("notion").getByRole("button", { name: /^Test Notion/ }).click();
  await page.waitForFunction(() => /Test passed in \d+ ms/.test(document.querySelector('#integrations tr[data-platform="notion"] .result')?.textContent ?? ""));
  assert.equal(await row("notion").locator(".health").innerText(), "Healthy");
  await row("notion").getByRole("button", { name: /^Refresh Notion/ }).click();
  await page.waitForFunction(() => document.querySelector('#integrations tr[data-platform="notion"] .result')?.textContent === "Token refreshed");
  const grants = notion.requests.filter((r) => r.url === "/v1/oauth/token").map((r) => JSON.parse(r.body).grant_type);
  assert.deepEqual(grants, ["authorization_code", "refresh_token"]);
  // The refreshed row still shows the recorded health.
  assert.equal(await row("notion").locator(".health").innerText(), "Healthy");
});

test("a health change pushed by the stream shows within a second, without a reload", async () => {
  await page.evaluate(() => { window.stillTheSamePage = true; });
  const [ffRow] = (await api.integrations.listIntegrations({ platform: Platform.FIREFLIES })).integrations;
  ff.revoke(ffKey);
  // As the sweep would: a check by someone else, not by this page.
  await api.health.checkIntegration({ name: ffRow.name });
  await page.waitForFunction(
    () => document.querySelector('#integrations tr[data-platform="fireflies"] .health')?.textContent === "Needs reauth",
    null,
    { timeout: 1_000 },
  );
  assert.match(await page.locator("#events li").first().innerText(), /Fireflies Sales calls: Unknown → Needs reauth/);
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true);
});

test("a row disconnects", async () => {
  await row("otter").getByRole("button", { name: "Disconnect Otter Team notes" }).click();
  await page.waitForFunction(() => document.querySelector('#integrations tr[data-platform="otter"]')?.classList.contains("revoked"));
  assert.match(await row("otter").innerText(), /Disconnected/);
  const { integrations } = await api.integrations.listIntegrations({ platform: Platform.OTTER });
  assert.equal(integrations[0].status, 5 /* REVOKED */);
  assert.deepEqual(pageErrors, []);
});
