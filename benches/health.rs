//! Health benchmark harness: the release binary as separate processes (replicas) on one fresh
//! database, a fake Fireflies that answers probes, and this process driving and watching.
//!
//! Run: `scripts/bench.sh health` (or `cargo bench --bench health -- [--runs N]
//! [--integrations N] [--subscribers N] [--seconds N] [--concurrency N]`). Reports, as medians
//! of the runs:
//! - a sweep of N integrations against a fake answering in 20 ms: wall time (first probe to
//!   last) on one replica and on two sharing the work, and any integration probed twice;
//! - `CheckIntegration` against a fake answering at once: req/s with 64 in flight, next to
//!   `grpc.health.v1/Check` in the same run;
//! - `WatchHealthEvents` with N subscribers on replica B while replica A commits transitions:
//!   delivery latency p50/p99 (commit to the subscriber's hands) and events lost;
//! - RSS per idle open stream (read after the replica's periodic memory trim), and
//!   SIGTERM-to-exit with every stream open.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::domain::{Role, Secret};
use founderhouse_integrations::proto::health_service_client::HealthServiceClient;
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::proto::{
    CheckIntegrationRequest, ConnectIntegrationRequest, Platform, WatchHealthEventsRequest,
};
use futures::StreamExt;
use support::{authed, median, rss_kib};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

struct Opts {
    runs: usize,
    integrations: usize,
    subscribers: usize,
    seconds: u64,
    concurrency: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        runs: 3,
        integrations: 10_000,
        subscribers: 1_000,
        seconds: 5,
        concurrency: 64,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let Ok(v) = pair[1].parse::<usize>() else {
            continue;
        };
        match pair[0].as_str() {
            "--runs" => o.runs = v,
            "--integrations" => o.integrations = v,
            "--subscribers" => o.subscribers = v,
            "--seconds" => o.seconds = v as u64,
            "--concurrency" => o.concurrency = v,
            _ => {}
        }
    }
    o
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Server {
    child: Child,
    grpc: String,
}

impl Server {
    /// Spawns the binary on port 0 and reads its JSON "listening" line for the address.
    // Waited for in `stop`; the only other exit is a panic when it never listened.
    #[allow(clippy::zombie_processes)]
    fn start(db_url: &str, secret: &str, data_dir: &str, fake: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_founderhouse-integrations"));
        cmd.arg("serve")
            .env("FH_GRPC_ADDR", "127.0.0.1:0")
            .env("FH_HTTP_ADDR", "127.0.0.1:0")
            .env("FH_DATABASE_URL", db_url)
            .env("FH_JWT_SECRET", secret)
            .env("FH_DATA_DIR", data_dir)
            .env("FH_LOG_FORMAT", "json")
            .env("FH_LOG", "warn,founderhouse_integrations=info")
            .env("FH_DB_MAX_CONNECTIONS", "16")
            .env("FH_FIREFLIES_BASE_URL", format!("{fake}/graphql"))
            .env("FH_SHUTDOWN_GRACE", "10s");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
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
                std::thread::spawn(move || for _ in lines {});
                return Server { child, grpc };
            }
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits; answers how long the exit took.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        started.elapsed()
    }
}

/// A fake Fireflies: keys containing "slow" answer after 20 ms; the key "flip-key" is refused
/// (401) while `reject` is set; everything else answers the identity query at once.
async fn fake(reject: Arc<AtomicBool>) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |headers: HeaderMap| {
            let reject = reject.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                if auth.contains("slow") {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if auth.contains("flip-key") && reject.load(Ordering::SeqCst) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"errors": [{"message": "Invalid API key"}]})),
                    )
                        .into_response();
                }
                axum::Json(serde_json::json!({"data": {"user": {"user_id": "u", "email": "e@example.com", "name": "E"}}}))
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Connects `n` Fireflies integrations with keys `{prefix}-{i}`, `concurrency` at a time.
async fn seed(
    channel: &Channel,
    token: &str,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|i| {
            let mut c = IntegrationServiceClient::new(channel.clone());
            let req = authed(
                ConnectIntegrationRequest {
                    platform: Platform::Fireflies as i32,
                    credentials: [("api_key".to_owned(), format!("{prefix}-{i}"))].into(),
                    provider_account_id: format!("{prefix}-{i}"),
                    ..Default::default()
                },
                token,
            );
            async move {
                c.connect_integration(req)
                    .await
                    .expect("seed connect")
                    .into_inner()
                    .integration
                    .expect("integration")
                    .name
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Requests completed per second with `concurrency` in flight for `seconds`.
async fn rate<F, Fut>(seconds: u64, concurrency: usize, call: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < until {
                if call(w).await {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / seconds as f64
}

/// (wall seconds from the first probe of the workspace to its last, probes, integrations).
async fn sweep_figures(pool: &sqlx::PgPool, workspace: uuid::Uuid) -> (f64, i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(EXTRACT(EPOCH FROM max(checked_at) - min(checked_at))::float8, 0),
                count(*), count(DISTINCT integration_id)
         FROM health_checks WHERE workspace_id = $1",
    )
    .bind(workspace)
    .fetch_one(pool)
    .await
    .expect("sweep figures")
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
    let data_dir = data_dir.to_str().expect("utf-8 temp dir").to_owned();
    let reject = Arc::new(AtomicBool::new(false));
    let fake_url = fake(reject.clone()).await;
    let token_for = |workspace: uuid::Uuid| {
        mint_token(
            &Secret::new(secret.clone()),
            uuid::Uuid::new_v4(),
            workspace,
            Role::Service,
            Duration::from_secs(3600),
        )
        .expect("token")
    };
    let no_sweep = [("FH_HEALTH_SWEEP", "false")];
    let sweeping = [
        ("FH_HEALTH_SWEEP", "true"),
        ("FH_HEALTH_CHECK_INTERVAL", "1h"),
    ];

    println!(
        "founderhouse-integrations health benchmark: {} runs (medians reported), {} integrations swept, {} subscribers",
        o.runs, o.integrations, o.subscribers
    );

    // Replica A: seeds, runs checks, commits the transitions the stream carries.
    let a = Server::start(&db_url, &secret, &data_dir, &fake_url, &no_sweep);
    let a_channel = a.channel().await;
    let pool = sqlx::PgPool::connect(&db_url).await.expect("bench pool");
    let (swept, checked, flipped) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let seeding = Instant::now();
    seed(
        &a_channel,
        &token_for(swept),
        "slow-key",
        o.integrations,
        64,
    )
    .await;
    // Enough integrations that 64 concurrent checks rarely wait for one row's lock.
    let fast = seed(&a_channel, &token_for(checked), "fast-key", 100, 16).await;
    let flip = seed(&a_channel, &token_for(flipped), "flip-key", 1, 1).await;
    println!(
        "seeded {} integrations in {:.1} s",
        o.integrations + 101,
        seeding.elapsed().as_secs_f64()
    );

    // 1. The sweep, on one replica and on two; first sweeps (every probe a transition from
    //    UNKNOWN, so every one writes an event) and steady ones (states unchanged).
    for (replicas, first) in [(1usize, true), (1, false), (2, true), (2, false)] {
        let kind = if first { "first" } else { "steady" };
        let mut walls = Vec::new();
        let mut duplicates = 0i64;
        for run in 0..o.runs {
            sqlx::query(
                "UPDATE integrations SET next_check_at = now() + interval '1 hour',
                     last_check_at = NULL, check_claimed_until = NULL WHERE workspace_id <> $1",
            )
            .bind(swept)
            .execute(&pool)
            .await
            .expect("park the others");
            sqlx::query(
                "UPDATE integrations SET next_check_at = now(), last_check_at = NULL,
                     check_claimed_until = NULL,
                     health_state = CASE WHEN $2 THEN 'unknown' ELSE health_state END
                 WHERE workspace_id = $1",
            )
            .bind(swept)
            .bind(first)
            .execute(&pool)
            .await
            .expect("make due");
            sqlx::query("DELETE FROM health_checks")
                .execute(&pool)
                .await
                .expect("clear history");
            let servers: Vec<Server> = (0..replicas)
                .map(|_| Server::start(&db_url, &secret, &data_dir, &fake_url, &sweeping))
                .collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let (_, _, distinct) = sweep_figures(&pool, swept).await;
                if distinct as usize >= o.integrations || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for s in servers {
                s.stop();
            }
            let (wall, probes, distinct) = sweep_figures(&pool, swept).await;
            duplicates += probes - distinct;
            println!(
                "  run {} {kind} sweep of {} on {replicas} replica(s): {wall:.2} s ({:.0} probes/s), {} probed twice",
                run + 1,
                distinct,
                distinct as f64 / wall.max(1e-9),
                probes - distinct
            );
            walls.push(wall);
        }
        println!(
            "{kind} sweep of {} integrations (fake answers in 20 ms), {replicas} replica(s): median {:.2} s, {duplicates} duplicates",
            o.integrations,
            median(walls)
        );
    }

    // 2. CheckIntegration against a fake answering at once, next to the ceiling.
    let channels: Vec<Channel> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(a.channel().await);
        }
        v
    };
    let check_token = token_for(checked);
    let (mut ceilings, mut checks) = (Vec::new(), Vec::new());
    for run in 0..o.runs {
        let chans = channels.clone();
        let ceiling = rate(o.seconds, o.concurrency, move |w| {
            let mut c = HealthClient::new(chans[w % chans.len()].clone());
            async move {
                c.check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok()
            }
        })
        .await;
        let (chans, token, names) = (channels.clone(), check_token.clone(), fast.clone());
        let check = rate(o.seconds, o.concurrency, move |w| {
            let mut c = HealthServiceClient::new(chans[w % chans.len()].clone());
            let req = authed(
                CheckIntegrationRequest {
                    name: names[w % names.len()].clone(),
                },
                &token,
            );
            async move { c.check_integration(req).await.is_ok() }
        })
        .await;
        println!(
            "  run {} grpc.health.v1/Check {ceiling:.0} req/s, CheckIntegration {check:.0} req/s ({:.1}%)",
            run + 1,
            check / ceiling * 100.0
        );
        ceilings.push(ceiling);
        checks.push(check);
    }
    let (ceiling, check) = (median(ceilings), median(checks));
    println!(
        "CheckIntegration, {} in flight: median {check:.0} req/s vs Check {ceiling:.0} req/s ({:.1}%)",
        o.concurrency,
        check / ceiling * 100.0
    );

    // 3. Streams on replica B, transitions committed on A.
    let b = Server::start(&db_url, &secret, &data_dir, &fake_url, &no_sweep);
    let b_channels: Vec<Channel> = {
        let mut v = Vec::new();
        // At most 1,024 streams per HTTP/2 connection by default.
        for _ in 0..o.subscribers.div_ceil(500).max(1) {
            v.push(b.channel().await);
        }
        v
    };
    // RSS is read once the replica's memory trim has run (every TRIM_EVERY, up to 20% late),
    // both before the streams and with them: what idle streams keep, not a burst's leftovers.
    let trimmed =
        founderhouse_integrations::memory::TRIM_EVERY.mul_f64(1.2) + Duration::from_secs(1);
    tokio::time::sleep(trimmed).await;
    let rss_before = rss_kib(b.pid());
    let watch_token = token_for(flipped);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, i64, f64)>();
    let ended = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut ready = Vec::new();
    for s in 0..o.subscribers {
        let mut c = HealthServiceClient::new(b_channels[s % b_channels.len()].clone());
        let (tx, token, ended) = (tx.clone(), watch_token.clone(), ended.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        ready.push(ready_rx);
        tokio::spawn(async move {
            let mut stream = c
                .watch_health_events(authed(WatchHealthEventsRequest::default(), &token))
                .await
                .expect("watch")
                .into_inner();
            let mut ready_tx = Some(ready_tx);
            loop {
                match stream.message().await {
                    Ok(Some(e)) if e.snapshot => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Some(e)) => {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .expect("after 1970")
                            .as_secs_f64();
                        let t = e.time.expect("a time");
                        let at = t.seconds as f64 + f64::from(t.nanos) / 1e9;
                        let _ = tx.send((s, e.seq, (now - at) * 1e3));
                    }
                    Ok(None) => break,
                    Err(status) => {
                        if status.code() == tonic::Code::Unavailable {
                            ended.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    tokio::time::sleep(trimmed).await;
    let rss_open = rss_kib(b.pid());
    println!(
        "RSS of replica B: {:.1} MiB idle, {:.1} MiB with {} open streams: {:.1} KiB per stream",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        o.subscribers,
        (rss_open.saturating_sub(rss_before)) as f64 / o.subscribers as f64
    );
    let flip_token = token_for(flipped);
    let mut flip_client = HealthServiceClient::new(a_channel.clone());
    let per_run = 200usize;
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    let mut lost_total = 0usize;
    for run in 0..o.runs {
        for _ in 0..per_run {
            reject.fetch_xor(true, Ordering::SeqCst);
            flip_client
                .check_integration(authed(
                    CheckIntegrationRequest {
                        name: flip[0].clone(),
                    },
                    &flip_token,
                ))
                .await
                .expect("flip check");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let expected = per_run * o.subscribers;
        let mut latencies = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.len() < expected && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some((_, _, ms))) => latencies.push(ms),
                _ => break,
            }
        }
        let lost = expected - latencies.len();
        lost_total += lost;
        latencies.sort_by(|a, b| a.total_cmp(b));
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        println!(
            "  run {} {per_run} transitions x {} subscribers: delivered {}, lost {lost}, p50 {p50:.2} ms, p99 {p99:.2} ms",
            run + 1,
            o.subscribers,
            latencies.len()
        );
        p50s.push(p50);
        p99s.push(p99);
    }
    println!(
        "WatchHealthEvents, {} subscribers on B, transitions on A: median p50 {:.2} ms, p99 {:.2} ms, {lost_total} lost",
        o.subscribers,
        median(p50s),
        median(p99s)
    );

    // 4. Shutdown with every stream open.
    let took = b.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "SIGTERM -> exit of replica B with {} open streams: {:.0} ms; {} streams ended with UNAVAILABLE",
        o.subscribers,
        took.as_secs_f64() * 1e3,
        ended.load(Ordering::SeqCst)
    );

    a.stop();
    pool.close().await;
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
