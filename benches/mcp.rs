//! MCP benchmark: `tools/call` of a read operation against a fake answering at once, next to
//! gRPC `Invoke` of the same operation on the same server in the same run (interleaved), at 1
//! and at N in flight. Prints req/s, p50 and p99 per run and their medians, and the overhead of
//! a tool call over an Invoke.
//!
//! Run: `scripts/bench.sh mcp` (or `cargo bench --bench mcp -- [--seconds N] [--runs N]
//! [--concurrency N]`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::domain::{Role, Secret};
use founderhouse_integrations::proto::connector_service_client::ConnectorServiceClient;
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::proto::{ConnectIntegrationRequest, InvokeRequest, Platform};
use serde_json::json;
use support::{RunResult, authed, drive, median};
use tonic::transport::Channel;

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

/// Spawns the release binary on port 0; its JSON "listening" line gives the addresses.
// The child is killed and waited for at the end of main; the only other exit is a panic when it
// never listened, and then it has already exited.
#[allow(clippy::zombie_processes)]
fn start_server(db_url: &str, secret: &str, data_dir: &str, fake: &str) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_founderhouse-integrations"))
        .arg("serve")
        .env("FH_GRPC_ADDR", "127.0.0.1:0")
        .env("FH_HTTP_ADDR", "127.0.0.1:0")
        .env("FH_DATABASE_URL", db_url)
        .env("FH_JWT_SECRET", secret)
        .env("FH_DATA_DIR", data_dir)
        .env("FH_LOG_FORMAT", "json")
        // As load.rs. FH_BENCH_LOG overrides it, to see what logging costs; it must keep
        // founderhouse_integrations at info, whose "listening" line gives the addresses.
        .env(
            "FH_LOG",
            std::env::var("FH_BENCH_LOG")
                .unwrap_or_else(|_| "warn,founderhouse_integrations=info".to_owned()),
        )
        .env("FH_DB_MAX_CONNECTIONS", "16")
        .env("FH_HEALTH_SWEEP", "false")
        .env("FH_FIREFLIES_BASE_URL", format!("{fake}/graphql"))
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
            return (child, grpc, http);
        }
    }
}

/// Fireflies' GraphQL endpoint answering ten transcripts at once.
async fn fake() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/graphql",
        post(|| async {
            let items: Vec<serde_json::Value> = (0..10)
                .map(|i| json!({"id": format!("t{i}"), "title": "Weekly sync", "date": 1_700_000_000_000i64, "duration": 30.5}))
                .collect();
            axum::Json(json!({"data": {"transcripts": items}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

type Call = dyn Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
    + Send
    + Sync;

/// A `tools/call` body of `revision`; 2026-07-28 carries its `_meta` (and its headers, below).
fn tool_call(revision: &str, integration: &str) -> String {
    let mut params = json!({
        "name": "fireflies_list_transcripts",
        "arguments": {"integration": integration, "limit": 10},
    });
    if revision == "2026-07-28" {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": revision,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        });
    }
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).to_string()
}

fn mcp_scenario(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    ids: &[String],
    revision: &'static str,
) -> Arc<Call> {
    let (http, url, token) = (http.clone(), url.to_owned(), token.to_owned());
    let bodies: Vec<String> = ids.iter().map(|id| tool_call(revision, id)).collect();
    Arc::new(move |w| {
        let req = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", revision)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "fireflies_list_transcripts")
            .body(bodies[w % bodies.len()].clone());
        Box::pin(async move {
            // A tool error is a failed call too: only a result with data counts.
            match req.send().await {
                Ok(r) if r.status().is_success() => r
                    .bytes()
                    .await
                    .is_ok_and(|b| memchr(b"\"isError\":false", &b)),
                _ => false,
            }
        })
    })
}

fn memchr(needle: &[u8], hay: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::main]
async fn main() {
    let o = opts();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_url = std::env::var("FH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".to_owned());
    let db_name = format!("fh_bench_{}", uuid::Uuid::new_v4().simple());
    let db_url = format!("{server_url}/{db_name}");
    let secret = format!("bench-secret-{}", uuid::Uuid::new_v4().simple());
    let data_dir = std::env::temp_dir().join(&db_name);
    std::fs::create_dir_all(&data_dir).expect("temp dir");
    let fake = fake().await;
    let (mut child, grpc, http_addr) = start_server(
        &db_url,
        &secret,
        data_dir.to_str().expect("utf-8 temp dir"),
        &fake,
    );
    let grpc_url = format!("http://{grpc}");
    let channel = loop {
        if let Ok(ch) = Channel::from_shared(grpc_url.clone())
            .expect("uri")
            .connect()
            .await
        {
            break ch;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let token = mint_token(
        &Secret::new(secret.clone()),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        Role::Service,
        Duration::from_secs(3600),
    )
    .expect("token");
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = IntegrationServiceClient::new(channel.clone())
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
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(grpc_url.clone())
                .expect("uri")
                .connect()
                .await
                .expect("connect"),
        );
    }
    // MCP clients speak HTTP/1.1 (Streamable HTTP); a pool as large as the concurrency.
    let http1 = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let mcp_url = format!("http://{http_addr}/mcp");
    let invoke: Arc<Call> = {
        let (chans, token, ids) = (channels.clone(), token.clone(), ids.clone());
        Arc::new(move |w| {
            let mut c = ConnectorServiceClient::new(chans[w % chans.len()].clone());
            let limit = prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(10.0)),
            };
            let req = authed(
                InvokeRequest {
                    integration: ids[w % ids.len()].clone(),
                    operation: "fireflies.list_transcripts".to_owned(),
                    params: Some(prost_types::Struct {
                        fields: [("limit".to_owned(), limit)].into(),
                    }),
                    page_token: String::new(),
                },
                &token,
            );
            Box::pin(async move { c.invoke(req).await.is_ok() })
        })
    };
    let scenarios: Vec<(&str, Arc<Call>)> = vec![
        ("Invoke fireflies.list_transcripts (gRPC)", invoke),
        (
            "tools/call, 2025-06-18 stateless (HTTP/1.1)",
            mcp_scenario(&http1, &mcp_url, &token, &ids, "2025-06-18"),
        ),
        (
            "tools/call, 2026-07-28 (HTTP/1.1)",
            mcp_scenario(&http1, &mcp_url, &token, &ids, "2026-07-28"),
        ),
    ];

    println!(
        "founderhouse-integrations MCP benchmark: 1 and {} in flight, {} s per run, {} runs (medians reported)",
        o.concurrency, o.seconds, o.runs
    );
    for concurrency in [1, o.concurrency] {
        println!("\n{concurrency} in flight:");
        let mut results: Vec<Vec<RunResult>> = vec![Vec::new(); scenarios.len()];
        // Interleaved within each run, so every scenario sees the same machine conditions.
        for run in 0..o.runs {
            for (i, (name, call)) in scenarios.iter().enumerate() {
                let r = drive(o.seconds, concurrency, call.clone()).await;
                println!(
                    "  run {} {:<46} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
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
        let med = |i: usize, f: fn(&RunResult) -> f64| median(results[i].iter().map(f).collect());
        println!("  medians:");
        for (i, (name, _)) in scenarios.iter().enumerate() {
            println!(
                "    {:<46} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                name,
                med(i, |r| r.rps),
                med(i, |r| r.p50_ms),
                med(i, |r| r.p99_ms)
            );
        }
        // Time per call: 1/throughput under load, the median latency with one in flight.
        for (i, (name, _)) in scenarios.iter().enumerate().skip(1) {
            let more = if concurrency == 1 {
                med(i, |r| r.p50_ms) / med(0, |r| r.p50_ms) - 1.0
            } else {
                med(0, |r| r.rps) / med(i, |r| r.rps) - 1.0
            };
            println!(
                "  {name}: {:+.1}% per call vs Invoke (target <= +25%)",
                more * 100.0
            );
        }
    }

    let _ = child.kill();
    let _ = child.wait();
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
