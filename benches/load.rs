//! Load benchmark harness: starts the release binary as its own process against a fresh
//! database, then drives it from this process over loopback.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench load -- [--seconds N] [--runs N] [--concurrency N]`).
//! Prints, per scenario, req/s and p50/p99 for each run and their medians, the ratio to
//! `grpc.health.v1/Check` measured on the same server in the same run, idle RSS, and the time
//! from exec to serving.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::proto::connector_service_client::ConnectorServiceClient;
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::proto::{
    ConnectIntegrationRequest, GetIntegrationRequest, InvokeRequest, ListIntegrationsRequest,
    Platform,
};
use prost::Message;
use support::{RunResult, authed, drive, median, rss_kib};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

struct Opts {
    seconds: u64,
    runs: usize,
    concurrency: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        seconds: 5,
        runs: 3,
        concurrency: 64,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let next = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), next) {
            ("--seconds", Some(v)) => o.seconds = v,
            ("--runs", Some(v)) => o.runs = v as usize,
            ("--concurrency", Some(v)) => o.concurrency = v as usize,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

struct Server {
    child: Child,
    grpc: String,
    http: String,
    to_listening: Duration,
}

/// Spawns the binary on port 0 and reads its JSON "listening" log line for the addresses.
// The child is waited for in main after SIGTERM; the only other exit is a panic when it never
// listened, and then it has already exited.
#[allow(clippy::zombie_processes)]
fn start_server(db_url: &str, secret: &str, data_dir: &str, provider: &str) -> Server {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_founderhouse-integrations"))
        .arg("serve")
        .env("FH_GRPC_ADDR", "127.0.0.1:0")
        .env("FH_HTTP_ADDR", "127.0.0.1:0")
        .env("FH_DATABASE_URL", db_url)
        .env("FH_JWT_SECRET", secret)
        .env("FH_DATA_DIR", data_dir)
        .env("FH_LOG_FORMAT", "json")
        .env("FH_LOG", "warn,founderhouse_integrations=info")
        .env("FH_DB_MAX_CONNECTIONS", "16")
        // The harness measures throughput, not the rate limiter.
        .env("FH_RATE_LIMIT_START_AUTHORIZATION", "0")
        .env("FH_RATE_LIMIT_REFRESH", "0")
        .env("FH_RATE_LIMIT_CALLBACK", "0")
        // Google, pointed at the harness's fake provider, for the OAuth scenarios.
        .env("FH_PROVIDER_GOOGLE_CLIENT_ID", "bench-client")
        .env("FH_PROVIDER_GOOGLE_CLIENT_SECRET", "bench-client-secret")
        .env(
            "FH_PROVIDER_GOOGLE_AUTHORIZE_URL",
            format!("{provider}/authorize"),
        )
        .env("FH_PROVIDER_GOOGLE_TOKEN_URL", format!("{provider}/token"))
        .env(
            "FH_PROVIDER_GOOGLE_REVOKE_URL",
            format!("{provider}/revoke"),
        )
        // Fireflies, for the connector scenario: the fake answers at once.
        .env("FH_FIREFLIES_BASE_URL", format!("{provider}/graphql"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the service binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("readable log");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["message"] == "listening" {
            let grpc = v["grpc"].as_str().expect("grpc addr").to_owned();
            let http = v["http"].as_str().expect("http addr").to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Server {
                child,
                grpc,
                http,
                to_listening: started.elapsed(),
            };
        }
    }
}

fn grpc_web_frame(msg: &impl Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[tokio::main]
async fn main() {
    let o = opts();
    // reqwest is built without a default TLS provider; the service installs ring the same way.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_url = std::env::var("FH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".to_owned());
    let db_name = format!("fh_bench_{}", uuid::Uuid::new_v4().simple());
    let db_url = format!("{server_url}/{db_name}");
    let secret = format!("bench-secret-{}", uuid::Uuid::new_v4().simple());
    let data_dir = std::env::temp_dir().join(&db_name);
    std::fs::create_dir_all(&data_dir).expect("temp dir");

    let fake = FakeProvider::start().await;
    let server = start_server(
        &db_url,
        &secret,
        data_dir.to_str().expect("utf-8 temp dir"),
        &fake.url,
    );
    let pid = server.child.id();
    let grpc_url = format!("http://{}", server.grpc);
    let serving_start = Instant::now();
    let mut health = loop {
        if let Ok(ch) = Channel::from_shared(grpc_url.clone())
            .expect("uri")
            .connect()
            .await
        {
            let mut h = HealthClient::new(ch);
            if h.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok()
            {
                break h;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let to_serving = server.to_listening + serving_start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(pid);

    let workspace = uuid::Uuid::new_v4();
    let token = mint_token(
        &Secret::new(secret.clone()),
        uuid::Uuid::new_v4(),
        workspace,
        Role::Service,
        Duration::from_secs(3600),
    )
    .expect("token");
    let channels: Vec<Channel> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                Channel::from_shared(grpc_url.clone())
                    .expect("uri")
                    .connect()
                    .await
                    .expect("connect"),
            );
        }
        v
    };
    let mut client = IntegrationServiceClient::new(channels[0].clone());
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = client
            .connect_integration(authed(
                ConnectIntegrationRequest {
                    platform: Platform::Fireflies as i32,
                    credentials: [("api_key".to_owned(), format!("bench-key-{i}"))].into(),
                    provider_account_id: format!("bench-{i}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("seed connect");
        ids.push(r.into_inner().integration.expect("integration").id);
    }
    let _ = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    let http1 = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    type Scenario = (
        &'static str,
        Box<
            dyn Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                + Send
                + Sync,
        >,
    );
    let scenarios: Vec<Scenario> = vec![
        ("grpc.health.v1/Check (ceiling)", {
            let chans = channels.clone();
            Box::new(move |w| {
                let mut c = HealthClient::new(chans[w % chans.len()].clone());
                Box::pin(async move {
                    c.check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
                })
            })
        }),
        ("GetIntegration (gRPC)", {
            let (chans, token, ids) = (channels.clone(), token.clone(), ids.clone());
            Box::new(move |w| {
                let mut c = IntegrationServiceClient::new(chans[w % chans.len()].clone());
                let req = authed(
                    GetIntegrationRequest {
                        name: ids[w % ids.len()].clone(),
                    },
                    &token,
                );
                Box::pin(async move { c.get_integration(req).await.is_ok() })
            })
        }),
        ("ListIntegrations 10 rows (gRPC)", {
            let (chans, token) = (channels.clone(), token.clone());
            Box::new(move |w| {
                let mut c = IntegrationServiceClient::new(chans[w % chans.len()].clone());
                let req = authed(
                    ListIntegrationsRequest {
                        page_size: 10,
                        ..Default::default()
                    },
                    &token,
                );
                Box::pin(async move {
                    c.list_integrations(req)
                        .await
                        .is_ok_and(|r| r.get_ref().integrations.len() == 10)
                })
            })
        }),
        ("ListIntegrations 10 rows (grpc-web, HTTP/1.1)", {
            let (http1, token) = (http1.clone(), token.clone());
            let url = format!(
                "{grpc_url}/founderhouse.integrations.v1.IntegrationService/ListIntegrations"
            );
            let body = grpc_web_frame(&ListIntegrationsRequest {
                page_size: 10,
                ..Default::default()
            });
            Box::new(move |_| {
                let req = http1
                    .post(&url)
                    .header("content-type", "application/grpc-web+proto")
                    .header("x-grpc-web", "1")
                    .bearer_auth(&token)
                    .body(body.clone());
                Box::pin(async move {
                    match req.send().await {
                        Ok(r) if r.status().is_success() => r
                            .bytes()
                            .await
                            .is_ok_and(|b| b.windows(13).any(|w| w == b"grpc-status:0")),
                        _ => false,
                    }
                })
            })
        }),
        ("GET /api/v1/integrations?page_size=10 (REST)", {
            let (http1, token) = (http1.clone(), token.clone());
            let url = format!("http://{}/api/v1/integrations?page_size=10", server.http);
            Box::new(move |_| {
                let req = http1.get(&url).bearer_auth(&token);
                Box::pin(async move { req.send().await.is_ok_and(|r| r.status().is_success()) })
            })
        }),
        ("GET /api/v1/integrations/{id} (REST)", {
            let (http1, token, ids) = (http1.clone(), token.clone(), ids.clone());
            let base = format!("http://{}/api/v1/integrations/", server.http);
            Box::new(move |w| {
                let req = http1
                    .get(format!("{base}{}", ids[w % ids.len()]))
                    .bearer_auth(&token);
                Box::pin(async move { req.send().await.is_ok_and(|r| r.status().is_success()) })
            })
        }),
        ("Invoke fireflies.list_transcripts (gRPC)", {
            let (chans, token, ids) = (channels.clone(), token.clone(), ids.clone());
            Box::new(move |w| {
                let mut c = ConnectorServiceClient::new(chans[w % chans.len()].clone());
                let req = authed(
                    InvokeRequest {
                        integration: ids[w % ids.len()].clone(),
                        operation: "fireflies.list_transcripts".to_owned(),
                        params: Some(prost_types::Struct {
                            fields: [(
                                "limit".to_owned(),
                                prost_types::Value {
                                    kind: Some(prost_types::value::Kind::NumberValue(10.0)),
                                },
                            )]
                            .into(),
                        }),
                        page_token: String::new(),
                    },
                    &token,
                );
                Box::pin(async move { c.invoke(req).await.is_ok() })
            })
        }),
        ("  the fake's own answer (HTTP/1.1, direct)", {
            let http1 = http1.clone();
            let url = format!("{}/graphql", fake.url);
            Box::new(move |_| {
                let req = http1
                    .post(&url)
                    .body(r#"{"query":"{ transcripts { id } }"}"#);
                Box::pin(async move { req.send().await.is_ok_and(|r| r.status().is_success()) })
            })
        }),
    ];

    println!(
        "founderhouse-integrations load benchmark: {} in flight, {} s per run, {} runs (medians reported)",
        o.concurrency, o.seconds, o.runs
    );
    println!(
        "exec -> listening: {:.0} ms; exec -> first health Check answered: {:.0} ms",
        server.to_listening.as_secs_f64() * 1e3,
        to_serving.as_secs_f64() * 1e3
    );
    println!("idle RSS: {:.1} MiB", idle_rss as f64 / 1024.0);
    // Interleave scenarios within each run so that the ceiling and the DB-backed calls see
    // the same machine conditions.
    let mut results: Vec<Vec<RunResult>> = vec![Vec::new(); scenarios.len()];
    let scenarios: Vec<(&str, Arc<Scenario>)> =
        scenarios.into_iter().map(|s| (s.0, Arc::new(s))).collect();
    for run in 0..o.runs {
        for (i, (name, s)) in scenarios.iter().enumerate() {
            let s = s.clone();
            let r = drive(o.seconds, o.concurrency, Arc::new(move |w| (s.1)(w))).await;
            println!(
                "  run {} {:<48} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
                run + 1,
                name,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors
            );
            results[i].push(r);
        }
    }
    let ceiling = median(results[0].iter().map(|r| r.rps).collect());
    println!("\nmedians of {} runs:", o.runs);
    println!(
        "  {:<48} {:>10} {:>9} {:>9} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms", "vs Check"
    );
    for (i, (name, _)) in scenarios.iter().enumerate() {
        let rps = median(results[i].iter().map(|r| r.rps).collect());
        let p50 = median(results[i].iter().map(|r| r.p50_ms).collect());
        let p99 = median(results[i].iter().map(|r| r.p99_ms).collect());
        println!(
            "  {:<48} {:>10.0} {:>9.2} {:>9.2} {:>9.0}%",
            name,
            rps,
            p50,
            p99,
            rps / ceiling * 100.0
        );
    }
    let p50_of = |prefix: &str| {
        scenarios
            .iter()
            .position(|(n, _)| n.starts_with(prefix))
            .map(|i| median(results[i].iter().map(|r| r.p50_ms).collect()))
    };
    if let (Some(ours), Some(fake_own)) = (p50_of("Invoke fireflies"), p50_of("  the fake's own")) {
        println!(
            "  connector overhead per call (Invoke p50 - fake p50): {:.2} ms",
            ours - fake_own
        );
    }
    oauth_scenarios(&o, &server, &fake, &token, &http1).await;
    println!("RSS after load: {:.1} MiB", rss_kib(pid) as f64 / 1024.0);

    let stop = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut child = server.child;
    let status = child.wait().expect("server exits");
    println!(
        "SIGTERM -> exit: {:.0} ms ({status})",
        stop.elapsed().as_secs_f64() * 1e3
    );

    if let Ok(mut conn) =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server_url}/postgres")).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A fake Google token endpoint: every code is good and names its own account (the id_token's
/// `sub`), refreshes are counted.
struct FakeProvider {
    url: String,
    refreshes: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeProvider {
    async fn start() -> Self {
        use axum::routing::post;
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let refreshes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = refreshes.clone();
        let app = axum::Router::new()
            .route(
                "/token",
                post(move |form: axum::extract::Form<std::collections::HashMap<String, String>>| {
                    let counter = counter.clone();
                    async move {
                        let code = form.get("code").cloned().unwrap_or_default();
                        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return axum::Json(serde_json::json!({
                                "access_token": format!("ya29.refreshed-{}", uuid::Uuid::new_v4()),
                                "expires_in": 3599, "token_type": "Bearer", "scope": "openid email"
                            }));
                        }
                        let claims = URL_SAFE_NO_PAD.encode(serde_json::json!({"sub": code}).to_string());
                        axum::Json(serde_json::json!({
                            "access_token": format!("ya29.{}", uuid::Uuid::new_v4()),
                            "refresh_token": format!("1//{}", uuid::Uuid::new_v4()),
                            "expires_in": 3599, "token_type": "Bearer", "scope": "openid email",
                            "id_token": format!("e30.{claims}.sig"),
                        }))
                    }
                }),
            )
            .route("/revoke", post(|| async { "" }))
            .route(
                "/graphql",
                post(|| async {
                    let items: Vec<serde_json::Value> = (0..10)
                        .map(|i| serde_json::json!({"id": format!("t{i}"), "title": "Weekly sync", "date": 1_700_000_000_000i64, "duration": 30.5}))
                        .collect();
                    axum::Json(serde_json::json!({"data": {"transcripts": items}}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, refreshes }
    }
}

/// Issue-4 figures: callbacks plus completes per second end to end (state lookup, seal the code,
/// 303 with a handle; then the REST complete: claim, exchange, seal, insert), and 1,000 concurrent refreshes of one expired integration with the provider calls
/// they caused.
async fn oauth_scenarios(
    o: &Opts,
    server: &Server,
    fake: &FakeProvider,
    token: &str,
    http1: &reqwest::Client,
) {
    let base = format!("http://{}", server.http);
    let no_redirect = reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let per_run = 2_000usize;
    let mut rates = Vec::new();
    let mut last_integration = String::new();
    for run in 0..o.runs {
        // States are made outside the timed part.
        let mut states = Vec::with_capacity(per_run);
        for chunk in (0..per_run).collect::<Vec<_>>().chunks(o.concurrency) {
            let calls = chunk.iter().map(|_| {
                http1
                    .post(format!("{base}/api/v1/oauth/gmail/authorize"))
                    .bearer_auth(token)
                    .send()
            });
            for r in futures::future::join_all(calls).await {
                let v: serde_json::Value = r.expect("authorize").json().await.expect("json");
                states.push(v["state"].as_str().expect("state").to_owned());
            }
        }
        let states = Arc::new(states);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..o.concurrency {
            let (states, next, client, base, token) = (
                states.clone(),
                next.clone(),
                no_redirect.clone(),
                base.clone(),
                token.to_owned(),
            );
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                let mut last = String::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(state) = states.get(i) else { break };
                    let url = format!(
                        "{base}/api/v1/oauth/gmail/callback?code=acct-{run}-{i}&state={state}"
                    );
                    if let Ok(r) = client.get(url).send().await {
                        let loc = r
                            .headers()
                            .get("location")
                            .and_then(|l| l.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let handle = reqwest::Url::parse(&loc).ok().and_then(|u| {
                            u.query_pairs()
                                .find(|(k, _)| k == "oauth_handle")
                                .map(|(_, v)| v.into_owned())
                        });
                        let Some(handle) = handle.filter(|_| r.status() == 303) else {
                            continue;
                        };
                        let done = client
                            .post(format!("{base}/api/v1/oauth/gmail/complete"))
                            .bearer_auth(&token)
                            .json(&serde_json::json!({ "handle": handle }))
                            .send()
                            .await;
                        if let Ok(done) = done
                            && done.status() == 200
                            && let Ok(v) = done.json::<serde_json::Value>().await
                            && let Some(id) = v["integration"]["id"].as_str()
                        {
                            ok += 1;
                            last = id.to_owned();
                        }
                    }
                }
                (ok, last)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (n, last) = t.await.expect("worker");
            ok += n;
            if !last.is_empty() {
                last_integration = last;
            }
        }
        let rate = ok as f64 / started.elapsed().as_secs_f64();
        println!(
            "  run {} OAuth callback + complete (fake Google)          {:>9.0} connects/s ({ok}/{per_run} succeeded)",
            run + 1,
            rate
        );
        rates.push(rate);
    }
    println!(
        "  median OAuth callbacks + completes/s: {:.0}",
        median(rates)
    );

    // 1,000 concurrent refreshes of one integration.
    assert!(!last_integration.is_empty(), "a connected integration");
    let id = last_integration;
    // Four connections, so no connection's concurrency limit sheds any of the 1,000.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(format!("http://{}", server.grpc))
                .expect("uri")
                .connect()
                .await
                .expect("connect"),
        );
    }
    let mut times = Vec::new();
    for run in 0..o.runs {
        let before = fake.refreshes.load(std::sync::atomic::Ordering::SeqCst);
        // Past the reuse window of the previous run's refresh.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let started = Instant::now();
        let calls = (0..1_000).map(|i| {
            let mut c =
                founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient::new(
                    channels[i % 4].clone(),
                );
            let req = authed(
                founderhouse_integrations::proto::RefreshIntegrationRequest { name: id.clone() },
                token,
            );
            async move { c.refresh_integration(req).await.is_ok() }
        });
        let ok = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        let took = started.elapsed();
        let provider_calls = fake.refreshes.load(std::sync::atomic::Ordering::SeqCst) - before;
        println!(
            "  run {} 1,000 concurrent RefreshIntegration of one integration: {:.0} ms, {ok} ok, {provider_calls} provider call(s)",
            run + 1,
            took.as_secs_f64() * 1e3
        );
        times.push(took.as_secs_f64() * 1e3);
    }
    println!(
        "  median time for 1,000 concurrent refreshes: {:.0} ms",
        median(times)
    );
}
