//! The database going away: calls fail fast with UNAVAILABLE, nothing is half-written, and the
//! service recovers when the database comes back. The app reaches PostgreSQL through a TCP proxy
//! the test can cut.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::proto::{
    ConnectIntegrationRequest, ConnectIntegrationResponse, ListIntegrationsRequest, Platform,
    integration_service_client::IntegrationServiceClient,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::helpers::{self, TestApp, authed, drop_db, fireflies, reason, spawn_app_with};

/// Pool acquire timeout in tests is 2 s: an answer must come well before a hang would.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

#[derive(Default)]
struct ProxyState {
    cut: bool,
    live: Vec<AbortHandle>,
}

/// A TCP proxy to PostgreSQL. `cut` drops every live connection and closes the port, so new
/// connections are refused, as when the database host goes down; `cut_accepting` drops live
/// connections and closes new ones right after accepting them, as a load balancer in front of a
/// dead database does. `restore` forwards again on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let accept = tokio::spawn(accept_loop(listener, upstream, state.clone()));
        Self {
            addr,
            upstream,
            state,
            accept,
        }
    }

    /// Closes the port, then drops live connections: new connections are refused.
    async fn cut(&mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
        self.cut_accepting();
    }

    /// Drops live connections; new ones are accepted and closed at once.
    fn cut_accepting(&self) {
        let mut s = self.state.lock().expect("proxy state");
        s.cut = true;
        for h in s.live.drain(..) {
            h.abort();
        }
    }

    /// Connections currently forwarded.
    fn live(&self) -> usize {
        let mut s = self.state.lock().expect("proxy state");
        s.live.retain(|h| !h.is_finished());
        s.live.len()
    }

    /// Forwards again, on the same port.
    async fn restore(&mut self) {
        self.state.lock().expect("proxy state").cut = false;
        if self.accept.is_finished() {
            let listener = TcpListener::bind(self.addr)
                .await
                .expect("proxy binds its port again");
            self.accept = tokio::spawn(accept_loop(listener, self.upstream, self.state.clone()));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_accepting();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<Mutex<ProxyState>>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        // Check and register under one lock, so a cut cannot miss a connection.
        let mut s = state.lock().expect("proxy state");
        if s.cut {
            drop(inbound);
            continue;
        }
        s.live.retain(|h| !h.is_finished());
        let task = tokio::spawn(forward(inbound, upstream));
        s.live.push(task.abort_handle());
    }
}

async fn forward(mut inbound: TcpStream, upstream: SocketAddr) {
    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}

/// The app behind a proxy, and the database it uses (reached directly for assertions).
struct Outage {
    app: TestApp,
    /// The app's pool size.
    max_connections: u32,
    proxy: Proxy,
    db_name: String,
    db_url: String,
}

impl Outage {
    async fn start() -> Self {
        let server = reqwest::Url::parse(&helpers::server_url()).expect("server url parses");
        let upstream = (
            server.host_str().expect("server url has a host"),
            server.port().unwrap_or(5432),
        )
            .to_socket_addrs()
            .expect("server address resolves")
            .next()
            .expect("server address");
        let proxy = Proxy::start(upstream).await;
        let (db_name, db_url) = helpers::fresh_db();
        let mut via = reqwest::Url::parse(&db_url).expect("db url parses");
        via.set_ip_host(proxy.addr.ip())
            .expect("url takes an ip host");
        via.set_port(Some(proxy.addr.port()))
            .expect("url takes a port");
        let via = via.to_string();
        let mut max_connections = 0;
        let app = spawn_app_with(|c| {
            c.database_url = Secret::new(via);
            max_connections = c.pool.max_connections;
        })
        .await;
        Self {
            app,
            max_connections,
            proxy,
            db_name,
            db_url,
        }
    }

    /// A pool on the real port, past the proxy.
    async fn direct_pool(&self) -> PgPool {
        PgPool::connect(&self.db_url)
            .await
            .expect("direct pool connects")
    }

    async fn finish(mut self) {
        self.proxy.restore().await;
        self.app.stop().await;
        drop_db(&self.db_name).await;
    }
}

async fn connect(
    client: &mut IntegrationServiceClient<Channel>,
    token: &str,
    request: ConnectIntegrationRequest,
) -> Result<ConnectIntegrationResponse, tonic::Status> {
    tokio::time::timeout(
        ANSWER_WITHIN,
        client.connect_integration(authed(request, token)),
    )
    .await
    .expect("ConnectIntegration answers within 5 s, it does not hang")
    .map(tonic::Response::into_inner)
}

fn integration_id(response: &ConnectIntegrationResponse) -> Uuid {
    let integration = response.integration.as_ref().expect("integration returned");
    Uuid::parse_str(&integration.id).expect("integration id is a uuid")
}

fn zerodb(n: usize) -> ConnectIntegrationRequest {
    ConnectIntegrationRequest {
        platform: Platform::Zerodb as i32,
        credentials: [
            ("api_key".to_owned(), format!("zdb-key-{n}")),
            ("base_url".to_owned(), format!("https://db{n}.example.com")),
        ]
        .into(),
        display_name: String::new(),
        metadata: None,
        provider_account_id: String::new(),
    }
}

fn assert_database_unavailable(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(reason(status), "DATABASE_UNAVAILABLE", "{status:?}");
}

#[tokio::test]
async fn calls_fail_fast_with_database_unavailable_while_the_database_is_unreachable() {
    let mut outage = Outage::start().await;
    let app = &outage.app;
    let mut client = app.integrations().await;
    let token = app.token(Role::Admin);
    connect(&mut client, &token, fireflies("before"))
        .await
        .expect("connects while the database is up");

    outage.proxy.cut().await;

    let started = Instant::now();
    let status = connect(&mut client, &token, fireflies("during"))
        .await
        .expect_err("cannot connect without a database");
    assert_database_unavailable(&status);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered after {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let resp = tokio::time::timeout(
        ANSWER_WITHIN,
        helpers::http()
            .post(app.rest_url("/api/v1/integrations/connect"))
            .bearer_auth(&token)
            .json(&json!({
                "platform": "fireflies",
                "credentials": {"api_key": "ff-key-rest-during"},
                "provider_account_id": "rest-during",
            }))
            .send(),
    )
    .await
    .expect("REST connect answers within 5 s")
    .expect("REST connect responds");
    assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"]["reason"], "DATABASE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(4));

    let ready = tokio::time::timeout(
        ANSWER_WITHIN,
        helpers::http().get(app.rest_url("/readyz")).send(),
    )
    .await
    .expect("/readyz answers within 5 s")
    .expect("/readyz responds");
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    outage.finish().await;
}

#[tokio::test]
async fn calls_failed_during_an_outage_leave_no_rows_behind() {
    let mut outage = Outage::start().await;
    let app = &outage.app;
    let mut client = app.integrations().await;
    let token = app.token(Role::Admin);
    let kept = integration_id(
        &connect(&mut client, &token, fireflies("before"))
            .await
            .expect("connects while the database is up"),
    );

    outage.proxy.cut().await;
    let status = connect(&mut client, &token, fireflies("during"))
        .await
        .expect_err("cannot connect without a database");
    assert_database_unavailable(&status);
    let resp = tokio::time::timeout(
        ANSWER_WITHIN,
        helpers::http()
            .post(app.rest_url("/api/v1/integrations/connect"))
            .bearer_auth(&token)
            .json(&json!({
                "platform": "fireflies",
                "credentials": {"api_key": "ff-key-rest-during"},
                "provider_account_id": "rest-during",
            }))
            .send(),
    )
    .await
    .expect("REST connect answers within 5 s")
    .expect("REST connect responds");
    assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    outage.proxy.restore().await;

    let pool = outage.direct_pool().await;
    let integrations: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM integrations")
        .fetch_all(&pool)
        .await
        .expect("integrations");
    assert_eq!(integrations, [kept]);
    let credentials: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT integration_id, field FROM credentials ORDER BY field")
            .fetch_all(&pool)
            .await
            .expect("credentials");
    assert_eq!(credentials, [(kept, "api_key".to_owned())]);
    let audit: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT integration_id, action FROM audit_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit events");
    assert_eq!(audit, [(Some(kept), "integration.connected".to_owned())]);
    pool.close().await;

    outage.finish().await;
}

#[tokio::test]
async fn connects_work_again_once_the_database_is_back() {
    let mut outage = Outage::start().await;
    let app = &outage.app;
    let mut client = app.integrations().await;
    let token = app.token(Role::Admin);
    connect(&mut client, &token, fireflies("before"))
        .await
        .expect("connects while the database is up");

    outage.proxy.cut().await;
    let status = connect(&mut client, &token, fireflies("during"))
        .await
        .expect_err("cannot connect without a database");
    assert_database_unavailable(&status);
    outage.proxy.restore().await;

    let after = connect(&mut client, &token, fireflies("after"))
        .await
        .expect("connects again once the database is back");
    let after = after.integration.expect("integration returned");
    assert_eq!(after.provider_account_id, "after");

    let listed = client
        .list_integrations(authed(ListIntegrationsRequest::default(), &token))
        .await
        .expect("lists")
        .into_inner();
    let accounts: Vec<&str> = listed
        .integrations
        .iter()
        .map(|i| i.provider_account_id.as_str())
        .collect();
    assert_eq!(accounts, ["before", "after"]);
    let ready = helpers::http()
        .get(app.rest_url("/readyz"))
        .send()
        .await
        .expect("/readyz responds");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);

    outage.finish().await;
}

#[tokio::test]
async fn a_cut_during_concurrent_connects_leaves_only_whole_integrations() {
    const CALLS: usize = 20;
    let mut outage = Outage::start().await;
    let app = &outage.app;
    let client = app.integrations().await;
    let token = app.token(Role::Admin);

    // Open every pooled connection first: a connection cut halfway through its handshake is a
    // different failure (see the accept-then-close test), not the one under test here.
    let deadline = Instant::now() + Duration::from_secs(10);
    while outage.proxy.live() < outage.max_connections as usize {
        assert!(Instant::now() < deadline, "the pool never filled");
        let mut warm = JoinSet::new();
        for _ in 0..outage.max_connections * 2 {
            let mut client = client.clone();
            let token = token.clone();
            warm.spawn(async move {
                client
                    .list_integrations(authed(ListIntegrationsRequest::default(), &token))
                    .await
                    .expect("lists while the database is up");
            });
        }
        while let Some(done) = warm.join_next().await {
            done.expect("warm-up task");
        }
    }

    let mut calls = JoinSet::new();
    for n in 0..CALLS {
        let mut client = client.clone();
        let token = token.clone();
        calls.spawn(async move { (n, connect(&mut client, &token, zerodb(n)).await) });
    }
    // Cut once a quarter of the answers are in, with the others in flight: some in the middle
    // of their transaction, some waiting for a connection.
    let mut results = Vec::new();
    while results.len() < CALLS / 4 {
        let done = calls.join_next().await.expect("a call").expect("call task");
        results.push(done);
    }
    outage.proxy.cut().await;
    while let Some(result) = calls.join_next().await {
        results.push(result.expect("call task"));
    }
    assert_eq!(results.len(), CALLS);

    let mut answered: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for (n, result) in results {
        match result {
            Ok(response) => {
                let integration = response.integration.as_ref().expect("integration returned");
                answered.insert(
                    integration_id(&response),
                    integration.provider_account_id.clone(),
                );
            }
            Err(status) => {
                assert_database_unavailable(&status);
                failed.insert(format!("https://db{n}.example.com"), n);
            }
        }
    }
    outage.proxy.restore().await;

    let pool = outage.direct_pool().await;
    let stored: BTreeMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("SELECT id, provider_account_id FROM integrations")
            .fetch_all(&pool)
            .await
            .expect("integrations")
            .into_iter()
            .collect();
    for (id, account) in &answered {
        assert_eq!(
            stored.get(id),
            Some(account),
            "an answered integration is stored"
        );
    }
    // A commit can land with its acknowledgement lost in the cut: the caller saw UNAVAILABLE for
    // a stored integration. Nothing else may be stored.
    for (id, account) in &stored {
        assert!(
            answered.contains_key(id) || failed.contains_key(account),
            "integration {id} ({account}) was stored for no call"
        );
    }

    let mut fields: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    let credentials: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT integration_id, field FROM credentials ORDER BY field")
            .fetch_all(&pool)
            .await
            .expect("credentials");
    for (id, field) in credentials {
        fields.entry(id).or_default().push(field);
    }
    assert_eq!(
        fields.keys().collect::<BTreeSet<_>>(),
        stored.keys().collect::<BTreeSet<_>>(),
        "credentials belong to stored integrations, and every one has some"
    );
    for (id, fields) in &fields {
        assert_eq!(fields, &["api_key", "base_url"], "credentials of {id}");
    }

    let audit: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT integration_id, action FROM audit_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit events");
    let audited: BTreeSet<Uuid> = audit
        .iter()
        .map(|(id, action)| {
            assert_eq!(action, "integration.connected");
            id.expect("audit event names its integration")
        })
        .collect();
    assert_eq!(audit.len(), stored.len(), "one audit event per integration");
    assert_eq!(audited, stored.keys().copied().collect::<BTreeSet<_>>());

    // UNAVAILABLE is safe to retry: a call whose commit landed answers ALREADY_EXISTS, the others
    // connect, and every account ends with exactly one integration.
    let mut client = client.clone();
    let stored_accounts: BTreeSet<&String> = stored.values().collect();
    for (account, n) in &failed {
        let retried = connect(&mut client, &token, zerodb(*n)).await;
        if stored_accounts.contains(account) {
            let status = retried.expect_err("the first attempt was stored");
            assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
        } else {
            retried.expect("the retry connects");
        }
    }
    let accounts: Vec<String> =
        sqlx::query_scalar("SELECT provider_account_id FROM integrations ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("integrations");
    let mut expected: Vec<String> = (0..CALLS)
        .map(|n| format!("https://db{n}.example.com"))
        .collect();
    expected.sort();
    assert_eq!(accounts, expected);
    pool.close().await;

    outage.finish().await;
}

/// A proxy or load balancer in front of a dead database accepts TCP connections and closes
/// them. sqlx then fails the TLS negotiation with a protocol error ("unexpected response from
/// SSLRequest: 0x00"), which `From<sqlx::Error> for Error` maps to INTERNAL.
#[tokio::test]
async fn a_database_link_that_accepts_then_drops_connections_answers_database_unavailable() {
    let outage = Outage::start().await;
    let app = &outage.app;
    let mut client = app.integrations().await;
    let token = app.token(Role::Admin);
    connect(&mut client, &token, fireflies("before"))
        .await
        .expect("connects while the database is up");

    outage.proxy.cut_accepting();
    let status = connect(&mut client, &token, fireflies("during"))
        .await
        .expect_err("cannot connect without a database");
    assert_database_unavailable(&status);

    outage.finish().await;
}
