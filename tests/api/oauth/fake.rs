//! One fake OAuth 2.0 provider with a flavour per real provider. It behaves like the provider's
//! documentation says, and it is strict: a request the real provider would reject is rejected
//! here too, and recorded as a protocol problem that tests assert away.
//!
//! - `GET /authorize` checks the authorization request (client id, redirect URI, state, scope
//!   format, PKCE or its absence, the flavour's extra parameters) and redirects the browser back
//!   with a single-use code, or with `error=...` when told to deny.
//! - `POST /token` exchanges codes and refreshes tokens. It checks the flavour's client
//!   authentication (HTTP Basic or body) and body format (form, or JSON for Notion), the
//!   redirect URI against the authorization's and the PKCE verifier against the challenge.
//!   Refresh tokens rotate with reuse detection: presenting an already rotated refresh token
//!   revokes the whole grant and answers `invalid_grant`, so a refresh race fails loudly. Google
//!   keeps its refresh token (refresh responses carry none); Monday's legacy tokens cannot be
//!   refreshed; Slack answers errors as HTTP 200 `{ok:false}` and issues expiring tokens only
//!   with rotation on.
//! - `POST /revoke` is RFC 7009 (200 even for unknown tokens) with the flavour's client auth,
//!   Notion with a JSON body, Slack's `auth.revoke` with the token as a bearer token. Microsoft
//!   has no revocation endpoint: any call is a protocol problem.
//!
//! State changes happen before the configured delay, as at a real provider: a client that gives
//! up mid-request has still rotated the refresh token.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::oauth::{ClientAuth, ProviderSettings};
use founderhouse_integrations::proto::Platform;
use http::{HeaderMap, StatusCode, header};
use reqwest::Url;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The base URL the app builds redirect URIs from in tests (`Config::public_url`'s default).
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Which real provider the fake behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    Zoom,
    Slack,
    Discord,
    Microsoft,
    Monday,
    Notion,
    Google,
    Loom,
    Custom,
}

impl Flavour {
    /// The provider id in configuration.
    pub fn provider_id(self) -> &'static str {
        match self {
            Flavour::Zoom => "zoom",
            Flavour::Slack => "slack",
            Flavour::Discord => "discord",
            Flavour::Microsoft => "microsoft",
            Flavour::Monday => "monday",
            Flavour::Notion => "notion",
            Flavour::Google => "google",
            Flavour::Loom => "loom",
            Flavour::Custom => "custom",
        }
    }

    /// The platform name in REST paths and in the callback's redirect.
    pub fn platform_name(self) -> &'static str {
        match self {
            Flavour::Microsoft => "outlook",
            Flavour::Google => "gmail",
            other => other.provider_id(),
        }
    }

    pub fn platform(self) -> Platform {
        match self {
            Flavour::Zoom => Platform::Zoom,
            Flavour::Slack => Platform::Slack,
            Flavour::Discord => Platform::Discord,
            Flavour::Microsoft => Platform::Outlook,
            Flavour::Monday => Platform::Monday,
            Flavour::Notion => Platform::Notion,
            Flavour::Google => Platform::Gmail,
            Flavour::Loom => Platform::Loom,
            Flavour::Custom => Platform::Custom,
        }
    }

    /// How tokens are called in this flavour (prefixes make leaks easy to attribute).
    fn token_prefix(self) -> &'static str {
        self.provider_id()
    }
}

/// Choices that real providers leave to the app's registration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Custom only: whether the provider is configured for PKCE (the default) or not.
    pub pkce: bool,
    /// Custom only: `Some(Post)` configures body client auth; `None` leaves the default (Basic).
    pub client_auth: Option<ClientAuth>,
    /// Slack only: token rotation (expiring bot and user tokens with their refresh tokens).
    pub slack_rotation: bool,
    /// Custom only: scopes configured for the provider.
    pub custom_scopes: Vec<String>,
    /// Configure a revocation endpoint (every flavour except Microsoft has one by default).
    pub revoke_url: bool,
    /// Configure `issuer` as this value.
    pub issuer: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pkce: true,
            client_auth: None,
            slack_rotation: false,
            custom_scopes: vec!["read".to_owned(), "write".to_owned()],
            revoke_url: true,
            issuer: None,
        }
    }
}

impl Options {
    fn expects_pkce(&self, flavour: Flavour) -> bool {
        match flavour {
            Flavour::Slack | Flavour::Monday | Flavour::Notion => false,
            Flavour::Custom => self.pkce,
            _ => true,
        }
    }

    fn expects_basic(&self, flavour: Flavour) -> bool {
        match flavour {
            Flavour::Zoom | Flavour::Discord | Flavour::Notion => true,
            Flavour::Custom => self.client_auth != Some(ClientAuth::Post),
            _ => false,
        }
    }
}

/// What a revocation request revoked, as the fake understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    Access,
    Refresh,
    /// Slack's bot token (shared by every installation in the team).
    Bot,
    /// Slack's user token.
    User,
    /// A token the fake never issued or already revoked (RFC 7009 still answers 200).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct RevokeCall {
    pub revoked: Revoked,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// One authorization (a code exchange), with its live tokens.
#[derive(Clone, Debug, Default)]
struct Grant {
    revoked: bool,
    /// Why, for messages.
    revoked_because: String,
    access: String,
    refresh: Option<String>,
    used_refresh: HashSet<String>,
    /// Slack's user token and, under rotation, its refresh token.
    user_access: Option<String>,
    user_refresh: Option<String>,
    used_user_refresh: HashSet<String>,
    user_revoked: bool,
    /// Slack's team.
    team: Option<String>,
    /// Who signed in (`sign_in_as`): what the identity call names.
    account: String,
    /// Every token ever issued for this grant (for leak checks).
    issued: Vec<String>,
}

#[derive(Clone, Debug)]
struct CodeRecord {
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    user_scope: Option<String>,
    used: bool,
    grant: Option<usize>,
}

/// How the fake answers, set by tests.
#[derive(Clone, Debug)]
struct Knobs {
    /// Answer the token endpoint with this status (no state change).
    token_status: Option<u16>,
    /// Answer the token endpoint after this long (state changes first).
    token_delay: Duration,
    /// Answer the revocation endpoint with this status.
    revoke_status: Option<u16>,
    /// Redirect from `/authorize` with `error=<this>` and no code.
    deny: Option<String>,
    /// Redirect from `/authorize` with neither code nor error.
    drop_code: bool,
    /// Add `iss=<this>` to the authorization response.
    iss: Option<String>,
    /// Reject the next code exchanges with the flavour's error (Slack `ok:false`).
    reject_exchanges: bool,
    /// Answer every refresh with invalid_grant, revoking the grant (the user removed the app).
    refuse_refreshes: bool,
    /// Leave the refresh token out of code exchanges (Google/Microsoft without offline access).
    omit_refresh_token: bool,
    /// `expires_in` of exchanges and refreshes; `None` means the flavour's default.
    exchange_expires_in: Option<u64>,
    refresh_expires_in: Option<u64>,
    /// The account the user signs in with: Slack team id, Notion workspace id, Google sub,
    /// Microsoft `tid:oid`; Zoom, Discord, Monday and Loom user ids.
    account: String,
    /// Answer the identity calls with this status.
    identity_status: Option<u16>,
}

#[derive(Debug, Default)]
struct Records {
    exchanges: usize,
    refreshes: usize,
    /// Refresh tokens presented to the token endpoint, in order.
    refresh_tokens_presented: Vec<String>,
    reuse_detected: usize,
    revocations: Vec<RevokeCall>,
    /// Every request to the revocation endpoint, answered or not.
    revoke_attempts: usize,
    /// Query parameters of every `/authorize` request.
    authorizations: Vec<BTreeMap<String, String>>,
    /// Requests the real provider would reject because the client broke the protocol.
    problems: Vec<String>,
    /// Everything secret the fake saw or issued: codes, states, verifiers, tokens.
    secrets: Vec<(String, String)>,
    /// The scope string granted by the last exchange.
    last_granted_scope: Option<String>,
    /// Seen request paths that are not part of the provider.
    unexpected: Vec<String>,
}

struct Inner {
    knobs: Knobs,
    records: Records,
    codes: HashMap<String, CodeRecord>,
    grants: Vec<Grant>,
    /// Slack without rotation: the live bot token of each team (shared by its installations).
    slack_bots: HashMap<String, String>,
    revoked_slack_bots: HashSet<String>,
}

struct Shared {
    flavour: Flavour,
    options: Options,
    client_id: String,
    client_secret: String,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake provider state")
    }
}

/// A running fake provider on 127.0.0.1; stopped when dropped.
pub struct Fake {
    pub flavour: Flavour,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    shared: Arc<Shared>,
    options: Options,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A summary of one grant, for assertions.
#[derive(Clone, Debug)]
pub struct GrantView {
    pub revoked: bool,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub user_token: Option<String>,
    pub user_revoked: bool,
}

impl Fake {
    pub async fn start(flavour: Flavour) -> Self {
        Self::start_with(flavour, Options::default()).await
    }

    pub async fn start_with(flavour: Flavour, options: Options) -> Self {
        let client_id = format!("{}-client-{}", flavour.provider_id(), short_id());
        let client_secret = format!(
            "{}-client-secret-{}",
            flavour.provider_id(),
            Uuid::new_v4().simple()
        );
        let account = match flavour {
            Flavour::Slack => "T123".to_owned(),
            Flavour::Notion => format!("notion-ws-{}", short_id()),
            Flavour::Google => format!("1{}", &Uuid::new_v4().as_u128().to_string()[..20]),
            Flavour::Microsoft => format!("tenant-{}:object-{}", short_id(), short_id()),
            // Named by the identity call (`users/me`, `users/@me`, Monday's `me`), not the
            // token response.
            Flavour::Zoom | Flavour::Discord | Flavour::Monday | Flavour::Loom => {
                format!("{}-user-{}", flavour.provider_id(), short_id())
            }
            Flavour::Custom => String::new(),
        };
        let mut records = Records::default();
        records
            .secrets
            .push(("client secret".to_owned(), client_secret.clone()));
        let shared = Arc::new(Shared {
            flavour,
            options: options.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            inner: Mutex::new(Inner {
                knobs: Knobs {
                    token_status: None,
                    token_delay: Duration::ZERO,
                    revoke_status: None,
                    deny: None,
                    drop_code: false,
                    iss: None,
                    reject_exchanges: false,
                    refuse_refreshes: false,
                    omit_refresh_token: false,
                    exchange_expires_in: None,
                    refresh_expires_in: None,
                    account,
                    identity_status: None,
                },
                records,
                codes: HashMap::new(),
                grants: Vec::new(),
                slack_bots: HashMap::new(),
                revoked_slack_bots: HashSet::new(),
            }),
        });
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/connector/users/me", get(identity))
            .route("/connector/users/@me", get(identity))
            .route("/connector/auth.test", get(identity).post(identity))
            .route("/connector", post(identity))
            .fallback(unexpected)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake provider binds");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake provider serves");
        });
        Self {
            flavour,
            url,
            client_id,
            client_secret,
            shared,
            options,
            task,
        }
    }

    /// The provider settings pointing at this fake.
    pub fn settings(&self) -> ProviderSettings {
        let custom = self.flavour == Flavour::Custom;
        let revoke = self.options.revoke_url && self.flavour != Flavour::Microsoft;
        ProviderSettings {
            client_id: Some(self.client_id.clone()),
            client_secret: Some(Secret::new(self.client_secret.clone())),
            authorize_url: Some(format!("{}/authorize", self.url)),
            token_url: Some(format!("{}/token", self.url)),
            revoke_url: revoke.then(|| format!("{}/revoke", self.url)),
            issuer: self.options.issuer.clone(),
            scopes: custom.then(|| self.options.custom_scopes.clone()),
            client_auth: if custom {
                self.options.client_auth
            } else {
                None
            },
            pkce: custom.then_some(self.options.pkce),
        }
    }

    /// Registers this fake as its provider in `config`, and as its platform's API for the
    /// identity calls.
    pub fn configure(&self, config: &mut Config) {
        config
            .providers
            .insert(self.flavour.provider_id().to_owned(), self.settings());
        if let Some(platform) =
            founderhouse_integrations::domain::Platform::parse(self.flavour.platform_name())
        {
            // Custom has no connector (so no identity call): nothing to point.
            let _ = config
                .connectors
                .base_urls
                .set(platform, &format!("{}/connector", self.url));
        }
    }

    /// The redirect URI the app must use for this flavour (with the default public URL).
    pub fn redirect_uri(&self) -> String {
        format!(
            "{PUBLIC_URL}/api/v1/oauth/{}/callback",
            self.flavour.platform_name()
        )
    }

    // --- knobs -------------------------------------------------------------------------------

    fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.shared.lock().knobs);
    }

    /// The token endpoint answers `status` (e.g. 500, 503) until told otherwise.
    pub fn fail_token_endpoint(&self, status: Option<u16>) {
        self.knobs(|k| k.token_status = status);
    }

    /// The token endpoint changes its state at once, then answers after `delay`.
    pub fn slow_token_endpoint(&self, delay: Duration) {
        self.knobs(|k| k.token_delay = delay);
    }

    /// The revocation endpoint answers `status` until told otherwise.
    pub fn fail_revocation(&self, status: Option<u16>) {
        self.knobs(|k| k.revoke_status = status);
    }

    /// The user declines (or the provider fails) at the consent screen: the browser comes back
    /// with `error=<code>` and no code.
    pub fn deny(&self, error: Option<&str>) {
        self.knobs(|k| k.deny = error.map(str::to_owned));
    }

    /// The browser comes back with the state but neither a code nor an error.
    pub fn drop_code(&self) {
        self.knobs(|k| k.drop_code = true);
    }

    /// Adds `iss=<issuer>` to the authorization response (RFC 9207).
    pub fn send_iss(&self, issuer: &str) {
        self.knobs(|k| k.iss = Some(issuer.to_owned()));
    }

    /// Code exchanges are rejected (`invalid_grant`, Slack `ok:false invalid_code`).
    pub fn reject_exchanges(&self, reject: bool) {
        self.knobs(|k| k.reject_exchanges = reject);
    }

    /// Every refresh gets invalid_grant and revokes its grant, until told otherwise.
    pub fn refuse_refreshes(&self, refuse: bool) {
        self.knobs(|k| k.refuse_refreshes = refuse);
    }

    /// Exchanges issue no refresh token (offline access not granted).
    pub fn omit_refresh_token(&self) {
        self.knobs(|k| k.omit_refresh_token = true);
    }

    pub fn expires_in(&self, exchange: Option<u64>, refresh: Option<u64>) {
        self.knobs(|k| {
            k.exchange_expires_in = exchange;
            k.refresh_expires_in = refresh;
        });
    }

    /// The account the next sign-ins belong to (Slack team, Notion workspace, Google sub,
    /// Microsoft `tid:oid`).
    pub fn sign_in_as(&self, account: &str) {
        self.knobs(|k| k.account = account.to_owned());
    }

    /// The identity calls answer `status` (e.g. 500) until told otherwise.
    pub fn fail_identity(&self, status: Option<u16>) {
        self.knobs(|k| k.identity_status = status);
    }

    pub fn account(&self) -> String {
        self.shared.lock().knobs.account.clone()
    }

    /// The user removes the app at the provider: every grant dies, refreshes get invalid_grant.
    pub fn revoke_all_grants(&self) {
        let mut inner = self.shared.lock();
        for g in &mut inner.grants {
            g.revoked = true;
            g.revoked_because = "revoked by the user".to_owned();
        }
    }

    // --- records -----------------------------------------------------------------------------

    /// Code exchanges received (every `grant_type=authorization_code` request).
    pub fn exchanges(&self) -> usize {
        self.shared.lock().records.exchanges
    }

    /// Refreshes received (every `grant_type=refresh_token` request).
    pub fn refreshes(&self) -> usize {
        self.shared.lock().records.refreshes
    }

    pub fn token_calls(&self) -> usize {
        let inner = self.shared.lock();
        inner.records.exchanges + inner.records.refreshes
    }

    pub fn refresh_tokens_presented(&self) -> Vec<String> {
        self.shared.lock().records.refresh_tokens_presented.clone()
    }

    /// Times an already rotated refresh token was presented (each revoked its grant).
    pub fn reuse_detected(&self) -> usize {
        self.shared.lock().records.reuse_detected
    }

    pub fn revocations(&self) -> Vec<RevokeCall> {
        self.shared.lock().records.revocations.clone()
    }

    pub fn revoke_attempts(&self) -> usize {
        self.shared.lock().records.revoke_attempts
    }

    pub fn authorizations(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.lock().records.authorizations.clone()
    }

    pub fn last_granted_scope(&self) -> Option<String> {
        self.shared.lock().records.last_granted_scope.clone()
    }

    pub fn grants(&self) -> Vec<GrantView> {
        let inner = self.shared.lock();
        inner
            .grants
            .iter()
            .map(|g| GrantView {
                revoked: g.revoked,
                access_token: g.access.clone(),
                refresh_token: g.refresh.clone(),
                user_token: g.user_access.clone(),
                user_revoked: g.user_revoked,
            })
            .collect()
    }

    pub fn grant(&self, n: usize) -> GrantView {
        self.grants()
            .get(n)
            .cloned()
            .unwrap_or_else(|| panic!("the fake issued no grant #{n}"))
    }

    /// Slack without rotation: whether the team's shared bot token has been revoked.
    pub fn slack_bot_revoked(&self, team: &str) -> bool {
        let inner = self.shared.lock();
        match inner.slack_bots.get(team) {
            Some(bot) => inner.revoked_slack_bots.contains(bot),
            None => panic!("the fake issued no bot token for team {team}"),
        }
    }

    /// Every secret the fake saw or issued, named: client secret, codes, states, verifiers,
    /// access and refresh tokens, id tokens.
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.shared.lock().records.secrets.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        let inner = self.shared.lock();
        let mut all = inner.records.problems.clone();
        all.extend(
            inner
                .records
                .unexpected
                .iter()
                .map(|p| format!("unexpected request {p}")),
        );
        all
    }

    /// No request broke the provider's protocol and no rotated refresh token was reused.
    #[track_caller]
    pub fn assert_clean(&self) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "the {:?} fake saw protocol problems: {problems:#?}",
            self.flavour
        );
        assert_eq!(
            self.reuse_detected(),
            0,
            "a rotated {:?} refresh token was reused (a refresh race or a lost rotated token)",
            self.flavour
        );
    }

    /// Polls `what` until true, for at most `within`.
    pub async fn wait_until(&self, what: &str, within: Duration, f: impl Fn(&Fake) -> bool) {
        let deadline = Instant::now() + within;
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn short_id() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_owned()
}

fn mint(prefix: &str, kind: &str) -> String {
    format!("{prefix}-{kind}-{}", Uuid::new_v4().simple())
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// An unsigned but well-formed JWT (header.payload.signature, base64url).
fn id_token(claims: Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "fake-key"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(format!("fake-signature-{}", Uuid::new_v4().simple()))
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn slack_error(error: &str) -> Response {
    json_response(StatusCode::OK, json!({"ok": false, "error": error}))
}

/// The state of the `/authorize` checks: the first problem found.
fn check_authorize(shared: &Shared, q: &BTreeMap<String, String>) -> Result<(), String> {
    let flavour = shared.flavour;
    let get = |k: &str| q.get(k).map(String::as_str);
    if flavour == Flavour::Monday {
        // Monday's authorize URL does not need response_type; accept it when present.
        if let Some(rt) = get("response_type")
            && rt != "code"
        {
            return Err(format!("response_type must be code, got {rt:?}"));
        }
    } else if get("response_type") != Some("code") {
        return Err(format!(
            "response_type must be code, got {:?}",
            get("response_type")
        ));
    }
    if get("client_id") != Some(shared.client_id.as_str()) {
        return Err(format!("unknown client_id {:?}", get("client_id")));
    }
    let redirect_uri = get("redirect_uri").ok_or("redirect_uri is missing")?;
    let expected = format!(
        "{PUBLIC_URL}/api/v1/oauth/{}/callback",
        flavour.platform_name()
    );
    if redirect_uri != expected {
        return Err(format!(
            "redirect_uri {redirect_uri:?} is not the registered {expected:?}"
        ));
    }
    let state = get("state").ok_or("state is missing")?;
    let state_ok = state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD
            .decode(state)
            .map(|b| b.len() == 32)
            .unwrap_or(false);
    if !state_ok {
        return Err(format!(
            "state must be 43 base64url characters (32 random bytes), got {} characters",
            state.len()
        ));
    }
    let scope = get("scope").unwrap_or_default();
    if flavour != Flavour::Notion && scope.trim().is_empty() {
        return Err("scope is missing".to_owned());
    }
    match flavour {
        Flavour::Slack => {
            if scope.contains(' ') {
                return Err(format!(
                    "Slack bot scopes are comma separated, got {scope:?}"
                ));
            }
            let user_scope = get("user_scope").unwrap_or_default();
            if !user_scope.split(',').any(|s| s == "search:read") {
                return Err(format!(
                    "Slack user_scope must include search:read, got {user_scope:?}"
                ));
            }
        }
        Flavour::Microsoft => {
            if !scope.split(' ').any(|s| s == "offline_access") {
                return Err(format!(
                    "Microsoft issues no refresh token without offline_access, got {scope:?}"
                ));
            }
        }
        Flavour::Google => {
            if get("access_type") != Some("offline") {
                return Err("Google needs access_type=offline for a refresh token".to_owned());
            }
            if get("prompt") != Some("consent") {
                return Err("Google needs prompt=consent for a refresh token".to_owned());
            }
        }
        Flavour::Notion => {
            if get("owner") != Some("user") {
                return Err("Notion needs owner=user".to_owned());
            }
        }
        Flavour::Custom => {
            let want = shared.options.custom_scopes.join(" ");
            if scope != want {
                return Err(format!(
                    "custom scope must be the configured {want:?}, got {scope:?}"
                ));
            }
        }
        _ => {
            if scope.contains(',') {
                return Err(format!("scopes are space separated, got {scope:?}"));
            }
        }
    }
    let pkce = shared.options.expects_pkce(flavour);
    match (pkce, get("code_challenge"), get("code_challenge_method")) {
        (true, Some(c), Some("S256")) => {
            if c.len() != 43 || URL_SAFE_NO_PAD.decode(c).map(|b| b.len()).ok() != Some(32) {
                return Err(format!("code_challenge is not a base64url SHA-256: {c:?}"));
            }
        }
        (true, _, _) => {
            return Err(
                "PKCE is required: code_challenge with code_challenge_method=S256".to_owned(),
            );
        }
        (false, None, None) => {}
        (false, _, _) => {
            return Err(format!("{flavour:?} does not accept PKCE parameters"));
        }
    }
    Ok(())
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    inner.records.authorizations.push(q.clone());
    if let Some(state) = q.get("state") {
        inner
            .records
            .secrets
            .push(("state".to_owned(), state.clone()));
    }
    if let Err(problem) = check_authorize(&shared, &q) {
        inner
            .records
            .problems
            .push(format!("/authorize: {problem}"));
        // A real provider shows an error page and never redirects a bad request.
        return (StatusCode::BAD_REQUEST, format!("fake provider: {problem}")).into_response();
    }
    let redirect_uri = q["redirect_uri"].clone();
    let mut location = Url::parse(&redirect_uri).expect("checked redirect_uri");
    {
        let mut pairs = location.query_pairs_mut();
        if let Some(error) = inner.knobs.deny.clone() {
            pairs.append_pair("error", &error);
            pairs.append_pair("error_description", "The user denied the request");
        } else if !inner.knobs.drop_code {
            let code = mint(shared.flavour.token_prefix(), "code");
            inner
                .records
                .secrets
                .push(("authorization code".to_owned(), code.clone()));
            inner.codes.insert(
                code.clone(),
                CodeRecord {
                    redirect_uri: redirect_uri.clone(),
                    challenge: q.get("code_challenge").cloned(),
                    scope: q.get("scope").cloned().unwrap_or_default(),
                    user_scope: q.get("user_scope").cloned(),
                    used: false,
                    grant: None,
                },
            );
            pairs.append_pair("code", &code);
        }
        pairs.append_pair("state", &q["state"]);
        if let Some(iss) = &inner.knobs.iss {
            pairs.append_pair("iss", iss);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// Form or JSON parameters of a token or revocation request, as strings.
fn parse_params(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    json_body: bool,
) -> Result<HashMap<String, String>, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if json_body {
        if !content_type.starts_with("application/json") {
            return Err(format!(
                "{:?} needs a JSON body, got content-type {content_type:?}",
                shared.flavour
            ));
        }
        let v: Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| format!("body is not a JSON object: {e}"))?;
        Ok(v.into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect())
    } else {
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(format!(
                "{:?} needs a form-urlencoded body, got content-type {content_type:?}",
                shared.flavour
            ));
        }
        let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
        let url = Url::parse(&format!("http://form.invalid/?{text}"))
            .map_err(|e| format!("unparseable form body: {e}"))?;
        let mut out = HashMap::new();
        for (k, v) in url.query_pairs() {
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("parameter {k} is repeated"));
            }
        }
        Ok(out)
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Checks the flavour's client authentication: the first problem found.
fn check_client_auth(
    shared: &Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(), String> {
    let basic = basic_credentials(headers);
    let body_secret = params.get("client_secret");
    if shared.options.expects_basic(shared.flavour) {
        let Some((id, secret)) = basic else {
            return Err(format!(
                "{:?} authenticates clients with HTTP Basic; no Basic header was sent",
                shared.flavour
            ));
        };
        if body_secret.is_some() {
            return Err("client_secret in the body as well as HTTP Basic (two methods)".to_owned());
        }
        if id != shared.client_id || secret != shared.client_secret {
            return Err("wrong client credentials in the Basic header".to_owned());
        }
    } else {
        if basic.is_some() {
            return Err(format!(
                "{:?} authenticates clients in the body; an HTTP Basic header was sent too",
                shared.flavour
            ));
        }
        if params.get("client_id") != Some(&shared.client_id)
            || body_secret != Some(&shared.client_secret)
        {
            return Err(format!(
                "{:?} needs client_id and client_secret in the body",
                shared.flavour
            ));
        }
    }
    Ok(())
}

fn expires_default(flavour: Flavour, slack_rotation: bool) -> Option<u64> {
    match flavour {
        Flavour::Zoom | Flavour::Microsoft | Flavour::Loom | Flavour::Custom => Some(3600),
        Flavour::Google => Some(3599),
        Flavour::Discord => Some(604_800),
        Flavour::Slack if slack_rotation => Some(43_200),
        Flavour::Slack | Flavour::Monday | Flavour::Notion => None,
    }
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let json_body = shared.flavour == Flavour::Notion;
    let (response, delay) = {
        let mut inner = shared.lock();
        let delay = inner.knobs.token_delay;
        let response = token_locked(&shared, &mut inner, &headers, &body, json_body);
        (response, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn token_locked(
    shared: &Shared,
    inner: &mut Inner,
    headers: &HeaderMap,
    body: &[u8],
    json_body: bool,
) -> Response {
    let flavour = shared.flavour;
    let slack = flavour == Flavour::Slack;
    let params = match parse_params(shared, headers, body, json_body) {
        Ok(p) => p,
        Err(problem) => {
            inner.records.problems.push(format!("/token: {problem}"));
            return if slack {
                slack_error("invalid_arguments")
            } else {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "bad body")
            };
        }
    };
    for (name, key) in [
        ("authorization code (at /token)", "code"),
        ("PKCE verifier", "code_verifier"),
        ("refresh token (at /token)", "refresh_token"),
    ] {
        if let Some(v) = params.get(key) {
            inner.records.secrets.push((name.to_owned(), v.clone()));
        }
    }
    let grant_type = params.get("grant_type").cloned().unwrap_or_default();
    match grant_type.as_str() {
        "authorization_code" => inner.records.exchanges += 1,
        "refresh_token" => {
            inner.records.refreshes += 1;
            if let Some(rt) = params.get("refresh_token") {
                inner.records.refresh_tokens_presented.push(rt.clone());
            }
        }
        _ => {}
    }
    if let Some(status) = inner.knobs.token_status {
        return oauth_error(
            StatusCode::from_u16(status).expect("valid status"),
            "temporarily_unavailable",
            "the fake provider is down",
        );
    }
    if let Err(problem) = check_client_auth(shared, headers, &params) {
        inner.records.problems.push(format!("/token: {problem}"));
        return if slack {
            slack_error("invalid_client_id")
        } else {
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        };
    }
    match grant_type.as_str() {
        "authorization_code" => exchange(shared, inner, &params),
        "refresh_token" => refresh(shared, inner, &params),
        other => {
            inner
                .records
                .problems
                .push(format!("/token: unsupported grant_type {other:?}"));
            if slack {
                slack_error("invalid_grant_type")
            } else {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "unsupported grant_type",
                )
            }
        }
    }
}

fn exchange(shared: &Shared, inner: &mut Inner, params: &HashMap<String, String>) -> Response {
    let flavour = shared.flavour;
    let slack = flavour == Flavour::Slack;
    let reject = |inner: &mut Inner, problem: Option<String>, description: &str| {
        if let Some(p) = problem {
            inner.records.problems.push(format!("/token (code): {p}"));
        }
        if slack {
            slack_error("invalid_code")
        } else {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
        }
    };
    let Some(code) = params.get("code").cloned() else {
        return reject(inner, Some("code is missing".to_owned()), "code is missing");
    };
    let Some(record) = inner.codes.get(&code).cloned() else {
        return reject(inner, Some("unknown code".to_owned()), "unknown code");
    };
    if record.used {
        // RFC 6749 10.5: a reused code revokes what it issued.
        if let Some(g) = record.grant {
            inner.grants[g].revoked = true;
            inner.grants[g].revoked_because = "its code was reused".to_owned();
        }
        return reject(
            inner,
            Some("authorization code reused".to_owned()),
            "code already used",
        );
    }
    inner.codes.get_mut(&code).expect("present").used = true;
    match params.get("redirect_uri") {
        Some(r) if *r == record.redirect_uri => {}
        other => {
            return reject(
                inner,
                Some(format!(
                    "redirect_uri {other:?} differs from the authorization's {:?}",
                    record.redirect_uri
                )),
                "redirect_uri mismatch",
            );
        }
    }
    match (&record.challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let valid_chars = verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !(43..=128).contains(&verifier.len()) || !valid_chars {
                return reject(
                    inner,
                    Some("code_verifier is not 43..128 unreserved characters".to_owned()),
                    "bad verifier",
                );
            }
            if s256(verifier) != *challenge {
                return reject(
                    inner,
                    Some("code_verifier does not match the S256 code_challenge".to_owned()),
                    "PKCE verification failed",
                );
            }
        }
        (Some(_), None) => {
            return reject(
                inner,
                Some("code_verifier is missing for a PKCE authorization".to_owned()),
                "code_verifier required",
            );
        }
        (None, Some(_)) => {
            return reject(
                inner,
                Some("code_verifier sent for an authorization without PKCE".to_owned()),
                "unexpected code_verifier",
            );
        }
        (None, None) => {}
    }
    if inner.knobs.reject_exchanges {
        // Scripted: the provider rejects the code (expired at the provider, say).
        return reject(inner, None, "the code has expired");
    }

    let prefix = flavour.token_prefix();
    let rotation = shared.options.slack_rotation;
    let expires_in = inner
        .knobs
        .exchange_expires_in
        .or(expires_default(flavour, rotation));
    let account = inner.knobs.account.clone();
    let mut grant = Grant {
        account: account.clone(),
        ..Grant::default()
    };
    let granted_scope = match flavour {
        // Microsoft may leave offline_access out of the scopes it lists.
        Flavour::Microsoft => record
            .scope
            .split(' ')
            .filter(|s| *s != "offline_access")
            .collect::<Vec<_>>()
            .join(" "),
        _ => record.scope.clone(),
    };
    inner.records.last_granted_scope = Some(granted_scope.clone());

    let body = match flavour {
        Flavour::Slack => {
            grant.team = Some(account.clone());
            let bot = if rotation {
                mint("xoxe.xoxb-1", "bot")
            } else {
                // Every installation in a team shares the team's bot token.
                match inner.slack_bots.get(&account) {
                    Some(bot) if !inner.revoked_slack_bots.contains(bot) => bot.clone(),
                    _ => {
                        let bot = mint("xoxb", "bot");
                        inner.slack_bots.insert(account.clone(), bot.clone());
                        bot
                    }
                }
            };
            let user = mint(if rotation { "xoxe.xoxp-1" } else { "xoxp" }, "user");
            grant.access = bot.clone();
            grant.user_access = Some(user.clone());
            let mut authed_user = json!({
                "id": "U0FAKEUSER",
                "scope": record.user_scope.clone().unwrap_or_default(),
                "access_token": user,
                "token_type": "user",
            });
            let mut body = json!({
                "ok": true,
                "app_id": "A0FAKEAPP",
                "access_token": bot,
                "token_type": "bot",
                "scope": granted_scope,
                "bot_user_id": "U0FAKEBOT",
                "team": {"id": account, "name": "Fake Team"},
                "enterprise": null,
                "is_enterprise_install": false,
            });
            if rotation {
                let bot_refresh = mint("xoxe-1", "bot-refresh");
                let user_refresh = mint("xoxe-1", "user-refresh");
                grant.refresh = Some(bot_refresh.clone());
                grant.user_refresh = Some(user_refresh.clone());
                body["refresh_token"] = json!(bot_refresh);
                body["expires_in"] = json!(expires_in.unwrap_or(43_200));
                authed_user["refresh_token"] = json!(user_refresh);
                authed_user["expires_in"] = json!(expires_in.unwrap_or(43_200));
            }
            body["authed_user"] = authed_user;
            body
        }
        Flavour::Notion => {
            let access = mint("ntn", "access");
            let refresh = mint("ntn", "refresh");
            grant.access = access.clone();
            grant.refresh = Some(refresh.clone());
            json!({
                "access_token": access,
                "token_type": "bearer",
                "refresh_token": refresh,
                "bot_id": format!("bot-{}", short_id()),
                "workspace_id": account,
                "workspace_name": "Fake Notion Workspace",
                "workspace_icon": null,
                "owner": {"type": "user", "user": {"object": "user", "id": "notion-user-1"}},
                "duplicated_template_id": null,
                "request_id": Uuid::new_v4().to_string(),
            })
        }
        Flavour::Monday => {
            let access = mint(prefix, "access");
            grant.access = access.clone();
            json!({"access_token": access, "token_type": "Bearer", "scope": granted_scope})
        }
        _ => {
            let access = mint(prefix, "access");
            grant.access = access.clone();
            let mut body = json!({
                "access_token": access,
                "token_type": if flavour == Flavour::Zoom { "bearer" } else { "Bearer" },
                "scope": granted_scope,
            });
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            let offline = !(inner.knobs.omit_refresh_token
                && matches!(flavour, Flavour::Google | Flavour::Microsoft));
            if offline {
                let refresh = mint(prefix, "refresh");
                grant.refresh = Some(refresh.clone());
                body["refresh_token"] = json!(refresh);
            }
            match flavour {
                Flavour::Google => {
                    body["id_token"] = json!(id_token(json!({
                        "iss": "https://accounts.google.com",
                        "aud": shared.client_id,
                        "sub": account,
                        "email": "founder@example.com",
                        "email_verified": true,
                        "iat": now_secs(),
                        "exp": now_secs() + 3600,
                    })));
                }
                Flavour::Microsoft => {
                    let (tid, oid) = account.split_once(':').expect("tid:oid");
                    body["ext_expires_in"] = json!(expires_in.unwrap_or(3600));
                    body["id_token"] = json!(id_token(json!({
                        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
                        "aud": shared.client_id,
                        "sub": format!("pairwise-sub-{oid}"),
                        "oid": oid,
                        "tid": tid,
                        "preferred_username": "founder@example.com",
                        "iat": now_secs(),
                        "exp": now_secs() + 3600,
                    })));
                }
                _ => {}
            }
            body
        }
    };
    remember_issued(inner, &mut grant, &body);
    inner.grants.push(grant);
    let index = inner.grants.len() - 1;
    inner.codes.get_mut(&code).expect("present").grant = Some(index);
    json_response(StatusCode::OK, body)
}

/// Records every token-looking string of a response as a secret of the grant.
fn remember_issued(inner: &mut Inner, grant: &mut Grant, body: &Value) {
    let mut found = Vec::new();
    collect_tokens(body, "", &mut found);
    for (name, value) in found {
        grant.issued.push(value.clone());
        inner.records.secrets.push((name, value));
    }
}

fn collect_tokens(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Value::String(s) = v {
                    if matches!(k.as_str(), "access_token" | "refresh_token" | "id_token") {
                        out.push((p.clone(), s.clone()));
                        if k == "id_token"
                            && let Some(sig) = s.rsplit('.').next()
                        {
                            out.push((format!("{p} signature"), sig.to_owned()));
                        }
                    }
                } else {
                    collect_tokens(v, &p, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_tokens(i, path, out)),
        _ => {}
    }
}

fn refresh(shared: &Shared, inner: &mut Inner, params: &HashMap<String, String>) -> Response {
    let flavour = shared.flavour;
    let slack = flavour == Flavour::Slack;
    let invalid = |description: &str| {
        if slack {
            slack_error("invalid_refresh_token")
        } else {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
        }
    };
    if flavour == Flavour::Monday {
        inner
            .records
            .problems
            .push("/token: Monday's legacy tokens cannot be refreshed".to_owned());
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "refresh is not supported",
        );
    }
    let Some(presented) = params.get("refresh_token").cloned() else {
        inner
            .records
            .problems
            .push("/token (refresh): refresh_token is missing".to_owned());
        return invalid("refresh_token is missing");
    };
    // Find the grant and whether the token is its current (bot) or user refresh token.
    let mut found = None;
    for (i, g) in inner.grants.iter().enumerate() {
        if g.refresh.as_deref() == Some(presented.as_str()) {
            found = Some((i, false, false));
        } else if g.user_refresh.as_deref() == Some(presented.as_str()) {
            found = Some((i, true, false));
        } else if g.used_refresh.contains(&presented) {
            found = Some((i, false, true));
        } else if g.used_user_refresh.contains(&presented) {
            found = Some((i, true, true));
        }
        if found.is_some() {
            break;
        }
    }
    let Some((index, user, reused)) = found else {
        return invalid("unknown refresh token");
    };
    if reused {
        inner.records.reuse_detected += 1;
        let g = &mut inner.grants[index];
        g.revoked = true;
        g.revoked_because = "an already rotated refresh token was reused".to_owned();
        return invalid("refresh token reuse detected; the grant is revoked");
    }
    if inner.knobs.refuse_refreshes {
        let g = &mut inner.grants[index];
        g.revoked = true;
        g.revoked_because = "the user removed the app".to_owned();
    }
    if inner.grants[index].revoked || (user && inner.grants[index].user_revoked) {
        return invalid("the grant has been revoked");
    }
    let rotates = flavour != Flavour::Google;
    let expires_in = inner
        .knobs
        .refresh_expires_in
        .or(expires_default(flavour, shared.options.slack_rotation))
        .unwrap_or(3600);
    let prefix = flavour.token_prefix();
    let mut grant = inner.grants[index].clone();
    let body = if slack {
        let access = mint(
            if user { "xoxe.xoxp-1" } else { "xoxe.xoxb-1" },
            "refreshed",
        );
        let new_refresh = mint("xoxe-1", if user { "user-refresh" } else { "bot-refresh" });
        if user {
            grant.used_user_refresh.insert(presented.clone());
            grant.user_access = Some(access.clone());
            grant.user_refresh = Some(new_refresh.clone());
        } else {
            grant.used_refresh.insert(presented.clone());
            grant.access = access.clone();
            grant.refresh = Some(new_refresh.clone());
        }
        json!({
            "ok": true,
            "access_token": access,
            "refresh_token": new_refresh,
            "token_type": if user { "user" } else { "bot" },
            "expires_in": expires_in,
            "team": {"id": grant.team.clone().unwrap_or_default(), "name": "Fake Team"},
        })
    } else {
        let access = mint(prefix, "access-refreshed");
        grant.access = access.clone();
        let mut body = json!({
            "access_token": access,
            "token_type": if flavour == Flavour::Zoom { "bearer" } else { "Bearer" },
        });
        if flavour != Flavour::Notion {
            body["expires_in"] = json!(expires_in);
            if let Some(scope) = inner.records.last_granted_scope.clone() {
                body["scope"] = json!(scope);
            }
        }
        if rotates {
            let new_refresh = mint(prefix, "refresh-rotated");
            grant.used_refresh.insert(presented.clone());
            grant.refresh = Some(new_refresh.clone());
            body["refresh_token"] = json!(new_refresh);
        }
        match flavour {
            Flavour::Notion => {
                body["workspace_id"] = json!(inner.knobs.account);
                body["workspace_name"] = json!("Fake Notion Workspace");
                body["bot_id"] = json!(format!("bot-{}", short_id()));
                body["owner"] =
                    json!({"type": "user", "user": {"object": "user", "id": "notion-user-1"}});
            }
            Flavour::Google => {
                body["id_token"] = json!(id_token(json!({
                    "iss": "https://accounts.google.com",
                    "aud": shared.client_id,
                    "sub": inner.knobs.account,
                    "iat": now_secs(),
                    "exp": now_secs() + 3600,
                })));
            }
            _ => {}
        }
        body
    };
    remember_issued(inner, &mut grant, &body);
    inner.grants[index] = grant;
    json_response(StatusCode::OK, body)
}

async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = shared.lock();
    inner.records.revoke_attempts += 1;
    let flavour = shared.flavour;
    if flavour == Flavour::Microsoft {
        inner
            .records
            .problems
            .push("Microsoft has no per-token revocation endpoint, yet one was called".to_owned());
        return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
    }
    if let Some(status) = inner.knobs.revoke_status {
        inner.records.revocations.push(RevokeCall {
            revoked: Revoked::Unknown,
            status,
        });
        return oauth_error(
            StatusCode::from_u16(status).expect("valid status"),
            "temporarily_unavailable",
            "the fake provider is down",
        );
    }
    if flavour == Flavour::Slack {
        return slack_revoke(&shared, &mut inner, &headers);
    }
    let json_body = flavour == Flavour::Notion;
    let params = match parse_params(&shared, &headers, &body, json_body) {
        Ok(p) => p,
        Err(problem) => {
            inner.records.problems.push(format!("/revoke: {problem}"));
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "bad body");
        }
    };
    if let Err(problem) = check_client_auth(&shared, &headers, &params) {
        inner.records.problems.push(format!("/revoke: {problem}"));
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let Some(token) = params.get("token").cloned() else {
        inner
            .records
            .problems
            .push("/revoke: token is missing".to_owned());
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let hint = params.get("token_type_hint").cloned();
    if let Some(h) = &hint
        && !matches!(h.as_str(), "access_token" | "refresh_token")
    {
        inner.records.problems.push(format!(
            "/revoke: token_type_hint {h:?} is not an RFC 7009 value"
        ));
    }
    let mut revoked = Revoked::Unknown;
    for g in &mut inner.grants {
        if g.revoked {
            continue;
        }
        let kind = if g.access == token {
            Revoked::Access
        } else if g.refresh.as_deref() == Some(token.as_str()) {
            Revoked::Refresh
        } else {
            continue;
        };
        // Revoking either token ends the authorization (Zoom uninstalls, Google revokes the grant).
        g.revoked = true;
        g.revoked_because = format!("revoked upstream ({kind:?})");
        revoked = kind;
        break;
    }
    inner.records.revocations.push(RevokeCall {
        revoked,
        status: 200,
    });
    // RFC 7009: 200 whether or not the token was valid.
    if flavour == Flavour::Notion {
        json_response(StatusCode::OK, json!({}))
    } else {
        StatusCode::OK.into_response()
    }
}

/// Slack's `auth.revoke`: the token to revoke is the bearer token of the call.
fn slack_revoke(shared: &Shared, inner: &mut Inner, headers: &HeaderMap) -> Response {
    let _ = shared;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = bearer else {
        inner
            .records
            .problems
            .push("auth.revoke: no Authorization: Bearer <token>".to_owned());
        return slack_error("not_authed");
    };
    let mut revoked = Revoked::Unknown;
    if let Some(team) = inner
        .slack_bots
        .iter()
        .find(|(_, bot)| **bot == token)
        .map(|(team, _)| team.clone())
    {
        let bot = inner.slack_bots[&team].clone();
        if inner.revoked_slack_bots.insert(bot) {
            revoked = Revoked::Bot;
        }
    } else {
        for g in &mut inner.grants {
            if g.user_access.as_deref() == Some(token.as_str()) && !g.user_revoked {
                g.user_revoked = true;
                revoked = Revoked::User;
                break;
            }
            if g.access == token && !g.revoked {
                // A rotated bot token of its own installation.
                g.revoked = true;
                g.revoked_because = "bot token revoked".to_owned();
                revoked = Revoked::Bot;
                break;
            }
        }
    }
    inner.records.revocations.push(RevokeCall {
        revoked: revoked.clone(),
        status: 200,
    });
    if revoked == Revoked::Unknown {
        return slack_error("invalid_auth");
    }
    json_response(StatusCode::OK, json!({"ok": true, "revoked": true}))
}

/// The platforms' "who am I" calls: Zoom and Loom `users/me`, Discord `users/@me`, Monday's
/// GraphQL `me`, Slack's `auth.test`, answering for the grant the token belongs to.
async fn identity(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let inner = shared.lock();
    let flavour = shared.flavour;
    if let Some(status) = inner.knobs.identity_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(status, json!({"message": "identity unavailable"}));
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Monday takes the token with no scheme.
    let token = auth.strip_prefix("Bearer ").unwrap_or(auth);
    let bot_team = inner
        .slack_bots
        .iter()
        .find(|(_, bot)| bot.as_str() == token && !inner.revoked_slack_bots.contains(*bot))
        .map(|(team, _)| team.clone());
    let grant = inner.grants.iter().find(|g| {
        (g.access == token && !g.revoked)
            || (g.user_access.as_deref() == Some(token) && !g.user_revoked)
    });
    if flavour == Flavour::Slack {
        return match (bot_team, grant) {
            (Some(team), _) => json_response(
                StatusCode::OK,
                json!({"ok": true, "team": "Fake Team", "team_id": team, "user_id": "U0FAKEBOT", "bot_id": "B0FAKEBOT"}),
            ),
            (None, Some(g)) => json_response(
                StatusCode::OK,
                json!({"ok": true, "team": "Fake Team", "team_id": g.team.clone().unwrap_or_default(), "user_id": "U0FAKEUSER"}),
            ),
            (None, None) => slack_error("invalid_auth"),
        };
    }
    let Some(g) = grant else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"code": 124, "message": "Invalid access token."}),
        );
    };
    match flavour {
        Flavour::Monday => {
            json_response(StatusCode::OK, json!({"data": {"me": {"id": g.account}}}))
        }
        _ => json_response(
            StatusCode::OK,
            json!({"id": g.account, "email": "founder@example.com"}),
        ),
    }
}

async fn unexpected(State(shared): State<Arc<Shared>>, req: axum::extract::Request) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    shared.lock().records.unexpected.push(what);
    (StatusCode::NOT_FOUND, "fake provider: no such endpoint").into_response()
}
