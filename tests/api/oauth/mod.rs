//! OAuth for the 8 providers and a custom one, through the public surfaces only: gRPC
//! `OAuthService`, the REST gateway, and a browser that follows the provider's redirect back to
//! the callback. Every provider is played by one fake (`fake.rs`) in its flavour.

mod account;
mod complete;
mod connect;
mod disconnect_race;
mod fake;
mod leaks;
mod refresh;
mod return_to;
mod revoke;
mod state;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use founderhouse_integrations::app::App;
use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient;
use founderhouse_integrations::proto::{
    CompleteAuthorizationRequest, CompleteAuthorizationResponse, GetIntegrationRequest,
    Integration, IntegrationStatus, StartAuthorizationRequest, StartAuthorizationResponse,
};
use founderhouse_integrations::secrets::KeyRing;
use reqwest::Url;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::helpers::{TestApp, authed, http, spawn_app_with, test_config};

pub use fake::{Fake, Flavour, Options, PUBLIC_URL, Revoked};

/// Where the browser lands when the state names no `return_to` (`Config::frontend_url` default).
pub const FRONTEND_LANDING: &str = "http://localhost:3000/integrations";

/// Longer than any single step here may take; exceeding it is a hang.
pub const NO_HANG: Duration = Duration::from_secs(15);

/// The app with one fake provider configured, and `tweak` applied after it.
pub async fn rig(flavour: Flavour) -> (TestApp, Fake) {
    rig_with(flavour, Options::default(), |_| {}).await
}

pub async fn rig_with(
    flavour: Flavour,
    options: Options,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, Fake) {
    let fake = Fake::start_with(flavour, options).await;
    let app = spawn_app_with(|c| {
        fake.configure(c);
        tweak(c);
    })
    .await;
    (app, fake)
}

pub async fn oauth_client(app: &TestApp) -> OAuthServiceClient<Channel> {
    OAuthServiceClient::new(app.channel().await)
}

/// StartAuthorization over gRPC.
pub async fn start(
    app: &TestApp,
    flavour: Flavour,
    return_to: &str,
    token: &str,
) -> Result<StartAuthorizationResponse, tonic::Status> {
    oauth_client(app)
        .await
        .start_authorization(authed(
            StartAuthorizationRequest {
                platform: flavour.platform() as i32,
                return_to: return_to.to_owned(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The query parameters of a URL, by name (the last one wins).
pub fn query(url: &Url) -> std::collections::BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The browser at the provider: GET the authorization URL, which redirects back to our
/// redirect URI. Returns that redirect, exactly as the provider issued it.
pub async fn at_provider(authorization_url: &str) -> Url {
    let response = http()
        .get(authorization_url)
        .send()
        .await
        .expect("the fake provider answers");
    let status = response.status();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        reqwest::StatusCode::FOUND,
        "the provider refused the authorization request: {body}"
    );
    Url::parse(&location.expect("the provider redirects")).expect("an absolute redirect")
}

/// CompleteAuthorization over gRPC: the frontend redeems the callback's handle.
pub async fn complete(
    app: &TestApp,
    handle: &str,
    token: &str,
) -> Result<CompleteAuthorizationResponse, tonic::Status> {
    oauth_client(app)
        .await
        .complete_authorization(authed(
            CompleteAuthorizationRequest {
                handle: handle.to_owned(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// `POST /api/v1/oauth/{platform}/complete` with `{"handle": ...}`: status and JSON body.
pub async fn complete_rest(
    app: &TestApp,
    platform: &str,
    handle: &str,
    token: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = http()
        .post(app.rest_url(&format!("/api/v1/oauth/{platform}/complete")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "handle": handle }))
        .send()
        .await
        .expect("complete answers");
    let status = response.status();
    let body = response.json().await.unwrap_or_default();
    (status, body)
}

/// Where the browser was sent by our callback, and (when the frontend redeemed the handle it
/// came with) what CompleteAuthorization answered.
#[derive(Debug, Clone)]
pub struct Landing {
    pub location: Url,
    pub raw: String,
    pub completed: Option<Result<CompleteAuthorizationResponse, tonic::Status>>,
}

impl Landing {
    pub fn param(&self, name: &str) -> Option<String> {
        query(&self.location).get(name).cloned()
    }

    /// Asserts the callback's success landing for `flavour`: a one-time handle, no error.
    #[track_caller]
    pub fn assert_handle(&self, flavour: Flavour) -> String {
        assert_eq!(self.param("error"), None, "not a handle: {}", self.raw);
        assert_eq!(
            self.param("platform").as_deref(),
            Some(flavour.platform_name()),
            "{}",
            self.raw
        );
        for gone in ["success", "integration_id", "warning"] {
            assert_eq!(self.param(gone), None, "{}", self.raw);
        }
        let handle = self
            .param("oauth_handle")
            .unwrap_or_else(|| panic!("no oauth_handle in {}", self.raw));
        assert!(
            handle.len() >= 43,
            "a handle of 32 random bytes: {handle:?}"
        );
        handle
    }

    /// What CompleteAuthorization answered; panics when it succeeded or never ran.
    #[track_caller]
    pub fn completion_error(&self) -> &tonic::Status {
        match &self.completed {
            Some(Err(status)) => status,
            other => panic!(
                "CompleteAuthorization did not fail: {other:?} ({})",
                self.raw
            ),
        }
    }

    /// The completion's warning (`""` when none).
    #[track_caller]
    pub fn warning(&self) -> String {
        match &self.completed {
            Some(Ok(done)) => done.warning.clone(),
            other => panic!("CompleteAuthorization did not succeed: {other:?}"),
        }
    }

    /// Scheme, host, port and path, without the query.
    pub fn base(&self) -> String {
        let mut u = self.location.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }

    /// Asserts a handle landing for `flavour` that CompleteAuthorization redeemed; returns the
    /// integration id.
    #[track_caller]
    pub fn assert_success(&self, flavour: Flavour) -> String {
        self.assert_handle(flavour);
        let done = match &self.completed {
            Some(Ok(done)) => done,
            other => panic!(
                "CompleteAuthorization did not succeed: {other:?} ({})",
                self.raw
            ),
        };
        let id = done
            .integration
            .as_ref()
            .expect("an integration")
            .id
            .clone();
        uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("integration id {id:?} is no uuid"));
        id
    }

    /// Asserts a failure landing with `reason` on the default page.
    #[track_caller]
    pub fn assert_error(&self, reason: &str, flavour: Flavour) {
        assert_eq!(self.base(), FRONTEND_LANDING, "{}", self.raw);
        self.assert_error_anywhere(reason, flavour);
    }

    #[track_caller]
    pub fn assert_error_anywhere(&self, reason: &str, flavour: Flavour) {
        assert_eq!(
            self.param("error").as_deref(),
            Some(reason),
            "wrong landing: {}",
            self.raw
        );
        assert_eq!(
            self.param("platform").as_deref(),
            Some(flavour.platform_name()),
            "{}",
            self.raw
        );
        assert_eq!(self.param("success"), None, "{}", self.raw);
        assert_eq!(self.param("integration_id"), None, "{}", self.raw);
        assert_eq!(self.param("oauth_handle"), None, "{}", self.raw);
    }
}

/// The browser follows a redirect to our callback: path and query go to the app's REST port
/// (the redirect URI itself names the configured public URL). Asserts the invariants of every
/// callback answer: 303, `Referrer-Policy: no-referrer`, a Location, and none of the request's
/// codes or states in it.
pub async fn follow_to_app(app: &TestApp, redirect: &Url) -> Landing {
    let path_and_query = match redirect.query() {
        Some(q) => format!("{}?{q}", redirect.path()),
        None => redirect.path().to_owned(),
    };
    callback_raw(app, &path_and_query).await
}

/// GET a callback path (with its query) on the app; asserts the callback invariants.
pub async fn callback_raw(app: &TestApp, path_and_query: &str) -> Landing {
    let response = http()
        .get(app.rest_url(path_and_query))
        .send()
        .await
        .expect("the callback answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        reqwest::StatusCode::SEE_OTHER,
        "the callback must always answer 303, got {status} for {path_and_query}: {body}"
    );
    assert_eq!(
        headers.get("referrer-policy").and_then(|v| v.to_str().ok()),
        Some("no-referrer"),
        "the callback must send Referrer-Policy: no-referrer"
    );
    let raw = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("the callback sends a Location")
        .to_owned();
    let location = Url::parse(&raw).unwrap_or_else(|e| panic!("Location {raw:?}: {e}"));
    let sent =
        Url::parse(&format!("http://callback.invalid{path_and_query}")).expect("a path and query");
    for (name, value) in sent.query_pairs() {
        if matches!(name.as_ref(), "code" | "state") && value.len() >= 8 {
            assert!(
                !raw.contains(value.as_ref()),
                "the callback's Location carries the {name}: {raw}"
            );
        }
    }
    for forbidden in [
        "code",
        "state",
        "access_token",
        "refresh_token",
        "code_verifier",
    ] {
        assert!(
            !query(&location).contains_key(forbidden),
            "the Location has a {forbidden} parameter: {raw}"
        );
    }
    Landing {
        location,
        raw,
        completed: None,
    }
}

/// The browser back at the callback, then the frontend redeeming its handle (when it got one)
/// with `token`, as the signed-in user.
pub async fn follow_and_complete(app: &TestApp, redirect: &Url, token: &str) -> Landing {
    let mut landing = follow_to_app(app, redirect).await;
    if let Some(handle) = landing.param("oauth_handle") {
        landing.completed = Some(complete(app, &handle, token).await);
    }
    landing
}

/// A full browser connect in the app's workspace as a member: start, consent at the provider,
/// back to the callback, and the frontend completing with the member's token.
pub async fn connect(app: &TestApp, fake: &Fake) -> Landing {
    connect_as(app, fake, &app.token(Role::Member), "").await
}

pub async fn connect_as(app: &TestApp, fake: &Fake, token: &str, return_to: &str) -> Landing {
    let started = start(app, fake.flavour, return_to, token)
        .await
        .unwrap_or_else(|s| panic!("StartAuthorization for {:?}: {s:?}", fake.flavour));
    let redirect = at_provider(&started.authorization_url).await;
    follow_and_complete(app, &redirect, token).await
}

/// Connects and returns the integration as GetIntegration shows it.
pub async fn connect_ok(app: &TestApp, fake: &Fake) -> Integration {
    let landing = connect(app, fake).await;
    assert_eq!(landing.base(), FRONTEND_LANDING, "{}", landing.raw);
    let id = landing.assert_success(fake.flavour);
    get(app, &id, &app.token(Role::Viewer)).await
}

pub async fn get(app: &TestApp, name: &str, token: &str) -> Integration {
    app.integrations()
        .await
        .get_integration(authed(
            GetIntegrationRequest {
                name: name.to_owned(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("GetIntegration {name}: {s:?}"))
        .into_inner()
        .integration
        .expect("an integration")
}

pub fn status_of(i: &Integration) -> IntegrationStatus {
    IntegrationStatus::try_from(i.status).unwrap_or(IntegrationStatus::Unspecified)
}

pub fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

pub fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Splits a granted scope string (space or comma separated).
pub fn scope_set(scope: &str) -> BTreeSet<String> {
    scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Seconds from now until `ts` (negative when past).
pub fn secs_from_now(ts: &prost_types::Timestamp) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    ts.seconds - now
}

/// A second replica of `app`: same database, same JWT secret and keys, its own listeners.
pub struct Replica {
    pub grpc_addr: SocketAddr,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_replica(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> Replica {
    let (mut config, _, _) = test_config(&app.db_url);
    config.jwt_secret = Some(app.jwt_secret.clone());
    config.keyring = KeyRing::parse(&app.keys, None).expect("the first app's keys parse");
    tweak(&mut config);
    let replica = App::build(config).await.expect("the replica builds");
    let grpc_addr = replica.grpc_addr();
    let shutdown = replica.shutdown_token();
    let handle = tokio::spawn(replica.run());
    Replica {
        grpc_addr,
        shutdown,
        handle: Some(handle),
    }
}

impl Replica {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("valid uri")
            .connect()
            .await
            .expect("gRPC connects to the replica")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await
                .expect("replica task")
                .expect("the replica ran cleanly");
        }
    }

    /// Kills the replica as a crash would: its tasks are dropped mid-flight, nothing is
    /// cleaned up, and what it claimed in the database stays claimed until the lease runs out.
    pub async fn kill(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            let _ = h.await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Short timings for tests of the refresh loop.
pub fn fast_refresh_loop(c: &mut Config, ahead: Duration, every: Duration) {
    c.oauth.refresh_ahead = ahead;
    c.oauth.refresh_interval = every;
}
