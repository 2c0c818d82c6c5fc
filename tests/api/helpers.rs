//! `spawn_app()`: the real App on 127.0.0.1:0 against a fresh, migrated database, with typed
//! gRPC clients, a REST client that does not follow redirects, and a clean stop.

use std::net::SocketAddr;
use std::time::Duration;

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::app::App;
use founderhouse_integrations::config::{Config, Limits};
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::secrets::KeyRing;
use founderhouse_integrations::store::db::PoolSettings;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

/// The server PostgreSQL tests create their databases on.
pub fn server_url() -> String {
    std::env::var("FH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".to_owned())
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Where `/metrics` is served when it has a listener of its own (`FH_METRICS_ADDR`).
    pub metrics_addr: Option<SocketAddr>,
    pub db_name: String,
    pub db_url: String,
    pub jwt_secret: Secret<String>,
    /// The FH_ENCRYPTION_KEYS value the app runs with.
    pub keys: String,
    /// A workspace with tokens ready for each role.
    pub workspace: Uuid,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Set once `stop` has dropped the database; otherwise `Drop` does it.
    stopped: bool,
}

/// A test that fails (panics) before `stop` still stops its server and drops its database.
impl Drop for TestApp {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        // Drop cannot await, and the test's runtime may be unwinding: a thread of its own with a
        // runtime of its own drops the database.
        let name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(drop_db(&name)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.db_name);
        }
    }
}

/// A fresh database name; created (and migrated) by the app itself on start.
pub fn fresh_db() -> (String, String) {
    let name = format!("fh_test_{}", Uuid::new_v4().simple());
    let url = format!("{}/{}", server_url(), name);
    (name, url)
}

pub fn test_config(db_url: &str) -> (Config, Secret<String>, String) {
    let secret = format!("test-secret-{}", Uuid::new_v4().simple());
    let keys = KeyRing::generate_entry();
    let config = Config {
        grpc_addr: "127.0.0.1:0".parse().expect("literal address"),
        http_addr: "127.0.0.1:0".parse().expect("literal address"),
        database_url: Secret::new(db_url.to_owned()),
        pool: PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(2),
        },
        jwt_secret: Some(Secret::new(secret.clone())),
        jwks_url: None,
        jwt_issuer: None,
        jwt_audience: None,
        jwt_max_ttl: Duration::from_secs(24 * 3600),
        jwks_max_stale: Duration::from_secs(3600),
        keyring: KeyRing::parse(&keys, None).expect("generated keys parse"),
        public_url: "http://127.0.0.1:8080".parse().expect("literal url"),
        frontend_url: "http://localhost:3000".parse().expect("literal url"),
        cors_origins: vec!["http://localhost:3000".to_owned()],
        limits: Limits {
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_message_bytes: 4 * 1024 * 1024,
            concurrency_limit: 256,
            max_concurrent_streams: 1024,
        },
        network: Default::default(),
        providers: Default::default(),
        // Every refresh request reaches the provider, unless a test is about the reuse window.
        oauth: founderhouse_integrations::oauth::OAuthSettings {
            refresh_reuse_window: Duration::ZERO,
            ..Default::default()
        },
        // The fakes live on loopback, which credential-provided base URLs may not reach by default.
        connectors: founderhouse_integrations::connectors::ConnectorConfig {
            allow_private_hosts: true,
            ..Default::default()
        },
        // Probes reach the fakes too, so tests about health turn the sweep on themselves.
        health: founderhouse_integrations::service::health::HealthSettings {
            sweep: false,
            ..Default::default()
        },
    };
    (config, Secret::new(secret), keys)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (db_name, db_url) = fresh_db();
    let (mut config, jwt_secret, keys) = test_config(&db_url);
    tweak(&mut config);
    let app = App::build(config).await.expect("app builds");
    let (grpc_addr, http_addr) = (app.grpc_addr(), app.http_addr());
    let metrics_addr = app.metrics_addr();
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run());
    TestApp {
        grpc_addr,
        http_addr,
        metrics_addr,
        db_name,
        db_url,
        jwt_secret,
        keys,
        workspace: Uuid::new_v4(),
        shutdown,
        handle: Some(handle),
        stopped: false,
    }
}

impl TestApp {
    pub fn token(&self, role: Role) -> String {
        self.token_for(self.workspace, role)
    }

    pub fn token_for(&self, workspace: Uuid, role: Role) -> String {
        mint_token(
            &self.jwt_secret,
            Uuid::new_v4(),
            workspace,
            role,
            Duration::from_secs(600),
        )
        .expect("token mints")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("valid uri")
            .connect()
            .await
            .expect("gRPC connects")
    }

    pub async fn integrations(&self) -> IntegrationServiceClient<Channel> {
        IntegrationServiceClient::new(self.channel().await)
    }

    pub fn rest_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http_addr, path)
    }

    /// A direct pool for assertions on stored rows.
    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.db_url)
            .await
            .expect("test pool connects")
    }

    /// Graceful shutdown, then drops the database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("app task").expect("app ran cleanly");
        }
        drop_db(&self.db_name).await;
        self.stopped = true;
    }
}

pub async fn drop_db(name: &str) {
    if let Ok(mut conn) = PgConnection::connect(&format!("{}/postgres", server_url())).await {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
}

/// A REST client that never follows redirects.
pub fn http() -> reqwest::Client {
    // The crate builds reqwest without a default TLS provider; the app installs ring, and so
    // do tests that talk HTTP before any app exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A request carrying a bearer token.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("token is ascii"),
    );
    req
}

/// The field names of a status's BadRequest violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

pub fn fireflies(account: &str) -> founderhouse_integrations::proto::ConnectIntegrationRequest {
    founderhouse_integrations::proto::ConnectIntegrationRequest {
        platform: founderhouse_integrations::proto::Platform::Fireflies as i32,
        credentials: [("api_key".to_owned(), format!("ff-key-{account}"))].into(),
        display_name: String::new(),
        metadata: None,
        provider_account_id: account.to_owned(),
    }
}

/// An OAuth integration as the callback would store it, written straight through the store
/// (sealed with the app's keys): for connector tests that need an OAuth platform's tokens
/// without running the browser flow. Returns the integration id.
pub async fn seed_oauth_integration(
    app: &TestApp,
    platform: founderhouse_integrations::domain::Platform,
    account: &str,
    tokens: &[(&str, &str)],
    expires_in: Option<Duration>,
) -> Uuid {
    use founderhouse_integrations::domain::{IntegrationId, UserId, WorkspaceId};
    use founderhouse_integrations::store;
    let pool = app.pool().await;
    let keyring = KeyRing::parse(&app.keys, None).expect("the app's keys parse");
    let mut tx = pool.begin().await.expect("begin");
    let workspace = WorkspaceId(app.workspace);
    store::workspaces::ensure(&mut tx, workspace)
        .await
        .expect("workspace");
    let expires_at = expires_in
        .map(|d| chrono::Utc::now() + chrono::Duration::from_std(d).expect("small duration"));
    let id = store::integrations::upsert_oauth(
        &mut tx,
        &store::integrations::NewIntegration {
            id: IntegrationId::new(),
            workspace_id: workspace,
            platform,
            display_name: platform.title(),
            metadata: &Default::default(),
            provider_account_id: account,
            scopes: &[],
            credential_expires_at: expires_at,
            created_by: UserId(Uuid::new_v4()),
            bot_user_id: None,
        },
        None,
    )
    .await
    .expect("integration row");
    let fields: std::collections::BTreeMap<&str, Secret<String>> = tokens
        .iter()
        .map(|(k, v)| (*k, Secret::new((*v).to_owned())))
        .collect();
    store::credentials::put(&mut tx, &keyring, id, &fields, expires_at)
        .await
        .expect("sealed tokens");
    tx.commit().await.expect("commit");
    pool.close().await;
    id.0
}
