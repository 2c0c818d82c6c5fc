// The integrations console: one page, no framework. It talks to the service over grpc-web with
// the generated client, keeps the API URL and token for this tab only (sessionStorage: the OAuth
// round trip leaves and re-enters the page), and shows health as the stream pushes it.
import {
  codeName,
  createWebClients,
  errorInfo,
  HealthState,
  IntegrationStatus,
  ConnectionType,
  Platform,
  watchHealthEvents,
  type HealthEvent,
  type Integration,
  type IntegrationsClients,
} from "../src/web.js";

/** API-key platforms and their credential fields (README "Direct connections"). */
const DIRECT: { platform: Platform; label: string; fields: { name: string; label: string; secret: boolean; hint?: string }[] }[] = [
  { platform: Platform.FIREFLIES, label: "Fireflies", fields: [{ name: "api_key", label: "API key", secret: true }] },
  { platform: Platform.OTTER, label: "Otter", fields: [{ name: "api_key", label: "API key", secret: true }] },
  { platform: Platform.GRANOLA, label: "Granola", fields: [{ name: "api_key", label: "API key", secret: true, hint: "starts with grn_" }] },
  {
    platform: Platform.ZERODB,
    label: "ZeroDB",
    fields: [
      { name: "api_key", label: "API key", secret: true },
      { name: "base_url", label: "Base URL", secret: false, hint: "http(s)://…" },
    ],
  },
  {
    platform: Platform.ZEROVOICE,
    label: "ZeroVoice",
    fields: [
      { name: "account_sid", label: "Account SID", secret: false, hint: "AC followed by 32 letters or digits" },
      { name: "auth_token", label: "Auth token", secret: true },
    ],
  },
];

const LABELS: Partial<Record<Platform, string>> = {
  [Platform.ZOOM]: "Zoom", [Platform.SLACK]: "Slack", [Platform.DISCORD]: "Discord", [Platform.OUTLOOK]: "Outlook",
  [Platform.MONDAY]: "Monday.com", [Platform.GMAIL]: "Gmail", [Platform.NOTION]: "Notion", [Platform.LOOM]: "Loom",
  [Platform.CUSTOM]: "Custom OAuth",
  ...Object.fromEntries(DIRECT.map((d) => [d.platform, d.label])),
};
const platformLabel = (p: Platform) => LABELS[p] ?? Platform[p] ?? "Unknown";
const stateName = (s: HealthState) => (HealthState[s] ?? "UNSPECIFIED").toLowerCase();
const statusName = (s: IntegrationStatus) => (IntegrationStatus[s] ?? "UNSPECIFIED").toLowerCase();
/** "Fireflies Sales calls", or just "Notion" when the name says nothing more. */
const rowLabel = (i: Integration) =>
  !i.displayName || i.displayName === platformLabel(i.platform) ? platformLabel(i.platform) : `${platformLabel(i.platform)} ${i.displayName}`;
const human = (s: string) => s.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

/** What a person should do about the reasons a console user meets most. */
const ADVICE: Record<string, string> = {
  UNAUTHENTICATED: "The token is missing, expired or not accepted: paste a fresh one.",
  PERMISSION_DENIED: "Your role may not do this; ask a workspace admin.",
  INTEGRATION_ALREADY_EXISTS: "This account is already connected in this workspace.",
  PROVIDER_NOT_CONFIGURED: "The operator has not configured this provider yet.",
  NEEDS_REAUTH: "The provider rejected the credentials: check them, or reconnect.",
  PROVIDER_UNAVAILABLE: "The provider is failing right now; try again later.",
  RATE_LIMITED: "Too many attempts; wait a little and try again.",
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

/** A sentence for a failed call: what failed, the server's words, what to do, the request id. */
function describe(action: string, err: unknown): string {
  const info = errorInfo(err);
  const parts = [`${action} failed: ${info.message || human(info.codeName.toLowerCase())}`];
  if (ADVICE[info.reason]) parts.push(ADVICE[info.reason]!);
  parts.push(`(${info.reason || info.codeName}${info.requestId ? `, request ${info.requestId}` : ""})`);
  return parts.join(" ");
}

function notify(kind: "error" | "success", text: string) {
  const n = $("notice");
  n.className = `notice ${kind}`;
  n.textContent = text;
  n.hidden = false;
}

// --- settings: ?api= / #token= / sessionStorage / the form --------------------------------------

function readSettings(): { api: string; token: string } {
  const url = new URL(location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const api = url.searchParams.get("api") ?? sessionStorage.getItem("fh.api") ?? "http://127.0.0.1:50051";
  const token = fragment.get("token") ?? sessionStorage.getItem("fh.token") ?? "";
  if (fragment.has("token")) {
    // Out of the address bar and the history as soon as it is read.
    url.hash = "";
    history.replaceState(null, "", url);
  }
  return { api, token };
}

let clients: IntegrationsClients | undefined;
let watch: AbortController | undefined;
const rows = new Map<string, Integration>();
/** The last action's outcome per row, kept across re-renders (a pushed event redraws the row). */
const results = new Map<string, string>();

function use(api: string, token: string) {
  sessionStorage.setItem("fh.api", api);
  sessionStorage.setItem("fh.token", token);
  $<HTMLInputElement>("api-url").value = api;
  $<HTMLInputElement>("token").value = token;
  clients = createWebClients({ baseUrl: api, token: () => sessionStorage.getItem("fh.token") ?? "" });
}

// --- the table ----------------------------------------------------------------------------------

function badge(kind: string, text: string) {
  return el("span", { className: `badge ${kind}`, textContent: text });
}

function renderRow(i: Integration, result?: string) {
  const live = i.status !== IntegrationStatus.REVOKED;
  const row = el("tr", { className: live ? "" : "revoked" });
  row.dataset.name = i.name;
  row.dataset.platform = Platform[i.platform]?.toLowerCase() ?? "";
  const actions = el("td", { className: "actions" });
  if (live) {
    const label = rowLabel(i);
    const button = (text: string, cls: string, run: () => Promise<void>, enabled = true) => {
      const b = el("button", { type: "button", className: cls, textContent: text, disabled: !enabled });
      b.setAttribute("aria-label", `${text} ${label}`);
      b.addEventListener("click", () => void run());
      return b;
    };
    const oauth = i.connectionType === ConnectionType.OAUTH;
    actions.append(
      button("Test", "secondary", () => testRow(i)),
      button("Refresh", "secondary", () => refreshRow(i, oauth)),
      button("Disconnect", "danger", () => disconnectRow(i)),
    );
  }
  row.append(
    el("td", { textContent: platformLabel(i.platform) }),
    el("td", { textContent: i.displayName || i.providerAccountId || "—" }),
    el("td", {}, badge(statusName(i.status), live ? human(statusName(i.status)) : "Disconnected")),
    el("td", { className: "health" }, badge(stateName(i.healthState), human(stateName(i.healthState)))),
    el("td", { className: "result", textContent: result ?? (i.statusReason ? human(i.statusReason.toLowerCase()) : "") }),
    actions,
  );
  return row;
}

function putRow(i: Integration, result?: string) {
  rows.set(i.name, i);
  if (result !== undefined) results.set(i.name, result);
  result = results.get(i.name);
  const body = $("integrations").querySelector("tbody")!;
  body.querySelector("tr.empty")?.remove();
  const fresh = renderRow(i, result);
  const old = [...body.querySelectorAll("tr")].find((r) => r.dataset.name === i.name);
  if (old) old.replaceWith(fresh);
  else body.append(fresh);
}

async function loadIntegrations() {
  if (!clients) return;
  const body = $("integrations").querySelector("tbody")!;
  const all: Integration[] = [];
  let pageToken = "";
  do {
    const page = await clients.integrations.listIntegrations({ pageSize: 100, pageToken });
    all.push(...page.integrations);
    pageToken = page.nextPageToken;
  } while (pageToken);
  body.replaceChildren();
  rows.clear();
  if (all.length === 0) body.append(el("tr", { className: "empty" }, el("td", { colSpan: 6, textContent: "No integrations yet." })));
  for (const i of all) putRow(i);
}

async function testRow(i: Integration) {
  try {
    // A recorded probe (CheckIntegration), so the badge and the history agree with what it found.
    const { check: r } = await clients!.health.checkIntegration({ name: i.name });
    if (!r) return;
    const text = r.healthy ? `Test passed in ${r.latencyMs} ms` : `Test failed: ${r.message || human(r.reason.toLowerCase())}`;
    putRow({ ...(rows.get(i.name) ?? i), healthState: r.state }, text);
  } catch (err) {
    notify("error", describe(`Testing ${platformLabel(i.platform)}`, err));
  }
}

async function refreshRow(i: Integration, oauth: boolean) {
  try {
    // OAuth connections get a new access token; others are read again.
    const r = oauth
      ? await clients!.oauth.refreshIntegration({ name: i.name })
      : await clients!.integrations.getIntegration({ name: i.name });
    if (r.integration) putRow(r.integration, oauth ? "Token refreshed" : "Reloaded");
  } catch (err) {
    notify("error", describe(`Refreshing ${platformLabel(i.platform)}`, err));
  }
}

async function disconnectRow(i: Integration) {
  if (!confirm(`Disconnect ${rowLabel(i)}? Its credentials are destroyed.`)) return;
  try {
    const r = await clients!.integrations.disconnectIntegration({ name: i.name });
    if (r.integration) putRow(r.integration, "Disconnected");
    notify("success", `${platformLabel(i.platform)} disconnected.`);
  } catch (err) {
    notify("error", describe(`Disconnecting ${platformLabel(i.platform)}`, err));
  }
}

// --- connecting -----------------------------------------------------------------------------------

function renderConnectFields() {
  const select = $<HTMLSelectElement>("connect-platform");
  const def = DIRECT.find((d) => String(d.platform) === select.value) ?? DIRECT[0]!;
  $("connect-fields").replaceChildren(
    ...def.fields.flatMap((f) => {
      const input = el("input", { id: `cred-${f.name}`, name: f.name, type: f.secret ? "password" : "text", required: true, autocomplete: "off" });
      input.setAttribute("aria-describedby", `err-credentials.${f.name}`);
      const label = el("label", {}, `${f.label} `, ...(f.hint ? [el("span", { className: "hint", textContent: `(${f.hint})` })] : []), input);
      const error = el("p", { id: `err-credentials.${f.name}`, className: "field-error", hidden: true });
      return [label, error];
    }),
  );
  clearConnectErrors();
}

function clearConnectErrors() {
  const form = $("connect");
  for (const p of form.querySelectorAll<HTMLElement>(".field-error, .form-error")) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const i of form.querySelectorAll("input")) i.removeAttribute("aria-invalid");
}

async function connect(event: SubmitEvent) {
  event.preventDefault();
  if (!clients) return notify("error", "Enter the API base URL and a token first.");
  clearConnectErrors();
  const form = event.target as HTMLFormElement;
  const platform = Number($<HTMLSelectElement>("connect-platform").value) as Platform;
  const def = DIRECT.find((d) => d.platform === platform)!;
  const credentials = Object.fromEntries(def.fields.map((f) => [f.name, (form.elements.namedItem(f.name) as HTMLInputElement).value]));
  const displayName = $<HTMLInputElement>("connect-display-name").value;
  try {
    const r = await clients.integrations.connectIntegration({ platform, credentials, displayName });
    if (r.integration) putRow(r.integration, "Connected");
    form.reset();
    renderConnectFields();
    notify("success", `${def.label} connected.`);
  } catch (err) {
    const info = errorInfo(err);
    let placed = false;
    for (const v of info.fieldViolations) {
      const p = document.getElementById(`err-${v.field}`);
      if (!p) continue;
      p.textContent = v.description;
      p.hidden = false;
      document.querySelector(`[aria-describedby="err-${CSS.escape(v.field)}"]`)?.setAttribute("aria-invalid", "true");
      placed = true;
    }
    const summary = $("connect-error");
    summary.textContent = placed
      ? `${def.label} was not connected: ${info.fieldViolations.length === 1 ? "a field needs" : "some fields need"} fixing (${info.reason || info.codeName}).`
      : describe(`Connecting ${def.label}`, err);
    summary.hidden = false;
    (form.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
  }
}

async function loadProviders() {
  const list = $("oauth");
  const missing = $("oauth-missing");
  try {
    const { providers } = await clients!.oauth.listProviders({});
    const ready = providers.filter((p) => p.configured).flatMap((p) => p.platforms);
    const absent = providers.filter((p) => !p.configured).flatMap((p) => p.platforms);
    list.replaceChildren(
      ...ready.map((platform) => {
        const b = el("button", { type: "button", className: "secondary", textContent: `Connect ${platformLabel(platform)}` });
        b.addEventListener("click", () => void startOAuth(platform));
        return el("li", {}, b);
      }),
    );
    if (ready.length === 0) list.append(el("li", { className: "empty", textContent: "No OAuth provider is configured." }));
    missing.textContent = absent.length ? `Not configured by the operator: ${absent.map(platformLabel).join(", ")}.` : "";
  } catch (err) {
    list.replaceChildren(el("li", { className: "empty", textContent: describe("Listing OAuth providers", err) }));
  }
}

async function startOAuth(platform: Platform) {
  try {
    const returnTo = `${location.origin}${location.pathname}`;
    const r = await clients!.oauth.startAuthorization({ platform, returnTo });
    location.assign(r.authorizationUrl);
  } catch (err) {
    notify("error", describe(`Connecting ${platformLabel(platform)}`, err));
  }
}

/** Back from the provider: the callback sent `oauth_handle` (or `error`) and the platform. */
async function finishOAuth() {
  const url = new URL(location.href);
  const handle = url.searchParams.get("oauth_handle");
  const failure = url.searchParams.get("error");
  const platform = url.searchParams.get("platform") ?? "the provider";
  if (!handle && !failure) return;
  for (const k of ["oauth_handle", "error", "platform"]) url.searchParams.delete(k);
  history.replaceState(null, "", url);
  const name = human(platform);
  if (failure) return notify("error", `Connecting ${name} failed: ${human(failure)}. Start again.`);
  try {
    const r = await clients!.oauth.completeAuthorization({ handle: handle! });
    if (r.integration) putRow(r.integration, "Connected");
    notify("success", `${name} connected.${r.warning ? ` Warning: ${human(r.warning)}.` : ""}`);
  } catch (err) {
    notify("error", describe(`Connecting ${name}`, err));
  }
}

// --- live health ---------------------------------------------------------------------------------

function addEvent(e: HealthEvent) {
  const list = $("events");
  list.querySelector("li.empty")?.remove();
  const i = rows.get(e.integration);
  const who = i ? rowLabel(i) : platformLabel(e.platform);
  const when = e.time ? new Date(Number(e.time.seconds) * 1000) : new Date();
  const li = el(
    "li",
    {},
    el("time", { dateTime: when.toISOString(), textContent: when.toLocaleTimeString() }),
    `${who}: ${human(stateName(e.previousState))} → `,
    badge(stateName(e.state), human(stateName(e.state))),
    e.message || e.reason ? el("span", { className: "msg", textContent: ` — ${e.message || human(e.reason.toLowerCase())}` }) : "",
  );
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild!.remove();
}

async function follow() {
  watch?.abort();
  watch = new AbortController();
  const live = $("live");
  live.textContent = "Live updates: connecting…";
  try {
    for await (const e of watchHealthEvents(clients!.health, {}, {
      signal: watch.signal,
      onReconnect: () => {
        live.className = "live";
        live.textContent = "Live updates: reconnecting…";
      },
    })) {
      live.className = "live on";
      live.textContent = "Live updates on";
      const i = rows.get(e.integration);
      if (i) putRow({ ...i, healthState: e.state });
      else if (!e.snapshot) await loadIntegrations();
      if (!e.snapshot) addEvent(e);
    }
  } catch (err) {
    live.className = "live";
    live.textContent = "Live updates off";
    notify("error", describe("Watching health", err));
  }
}

// --- start ------------------------------------------------------------------------------------------

async function start() {
  const select = $<HTMLSelectElement>("connect-platform");
  select.replaceChildren(...DIRECT.map((d) => el("option", { value: String(d.platform), textContent: d.label })));
  select.addEventListener("change", renderConnectFields);
  renderConnectFields();
  $("connect").addEventListener("submit", (e) => void connect(e as SubmitEvent));
  $("settings").addEventListener("submit", (e) => {
    e.preventDefault();
    use($<HTMLInputElement>("api-url").value.trim(), $<HTMLInputElement>("token").value.trim());
    void open();
  });
  const { api, token } = readSettings();
  $<HTMLInputElement>("api-url").value = api;
  if (token) {
    use(api, token);
    await open();
  }
}

async function open() {
  $("notice").hidden = true;
  try {
    await loadIntegrations();
  } catch (err) {
    return notify("error", describe("Loading integrations", err));
  }
  await finishOAuth();
  void loadProviders();
  void follow();
}

void start();
