//! The real binary: `serve` with graceful SIGTERM, `migrate`, `token`, `keys generate`, `--help`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use founderhouse_integrations::proto::ListIntegrationsRequest;
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::secrets::KeyRing;
use founderhouse_integrations::store::db::MIGRATOR;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use uuid::Uuid;

use crate::helpers::{self, authed, drop_db};

const BIN: &str = env!("CARGO_BIN_EXE_founderhouse-integrations");

/// The binary with an empty environment, so nothing from the test's environment leaks in.
fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    cmd
}

/// Runs to completion off the async runtime.
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("command task")
        .expect("the binary runs")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("fh-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `serve`; killed if the test ends early.
struct Server {
    child: Child,
    stderr: UnboundedReceiver<String>,
}

impl Server {
    fn start(db_url: &str, data_dir: &Path) -> Self {
        let mut child = bin()
            .arg("serve")
            .env("FH_GRPC_ADDR", "127.0.0.1:0")
            .env("FH_HTTP_ADDR", "127.0.0.1:0")
            .env("FH_LOG_FORMAT", "json")
            .env("FH_DATABASE_URL", db_url)
            .env("FH_DATA_DIR", data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let pipe = child.stderr.take().expect("stderr is piped");
        let (tx, stderr) = unbounded_channel();
        // Drains stderr to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stderr }
    }

    /// The next stderr line, or None once stderr is closed.
    async fn line(&mut self, deadline: Instant) -> Option<String> {
        tokio::time::timeout_at(deadline, self.stderr.recv())
            .await
            .expect("the server logs in time")
    }

    /// Reads JSON log lines until one has the message `message`; returns it.
    async fn wait_for(&mut self, message: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let Some(line) = self.line(deadline).await else {
                panic!("stderr closed before {message:?}:\n{}", seen.join("\n"));
            };
            let json: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if json["message"] == message {
                return json;
            }
            seen.push(line);
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The REST client. No App is built in this process, and reqwest is built without a default
/// rustls provider: install the one the App installs.
fn rest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    helpers::http()
}

fn addr(listening: &Value, field: &str) -> SocketAddr {
    listening[field]
        .as_str()
        .unwrap_or_else(|| panic!("the listening line has no {field}: {listening}"))
        .parse()
        .unwrap_or_else(|e| panic!("{field} is not an address ({e}): {listening}"))
}

#[tokio::test]
async fn serve_listens_on_the_ports_it_logs_accepts_a_dev_token_and_exits_cleanly_on_sigterm() {
    let (db_name, db_url) = helpers::fresh_db();
    let data_dir = TempDir::new();
    let mut server = Server::start(&db_url, data_dir.path());
    let listening = server.wait_for("listening", Duration::from_secs(30)).await;
    let (grpc, http) = (addr(&listening, "grpc"), addr(&listening, "http"));
    assert_eq!(listening["level"], "INFO");

    let ready = rest_client()
        .get(format!("http://{http}/readyz"))
        .send()
        .await
        .expect("/readyz responds");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);

    let workspace = Uuid::new_v4();
    let mut cmd = bin();
    cmd.args([
        "token",
        "--workspace",
        &workspace.to_string(),
        "--role",
        "admin",
    ])
    .env("FH_DATA_DIR", data_dir.path());
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let token = stdout.trim_end_matches('\n');
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let listed = rest_client()
        .get(format!("http://{http}/api/v1/integrations"))
        .bearer_auth(token)
        .send()
        .await
        .expect("REST list responds");
    assert_eq!(listed.status(), reqwest::StatusCode::OK);
    let body: Value = listed.json().await.expect("JSON body");
    assert_eq!(body["integrations"], serde_json::json!([]));
    let mut grpc_client = IntegrationServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("gRPC connects");
    let via_grpc = grpc_client
        .list_integrations(authed(ListIntegrationsRequest::default(), token))
        .await
        .expect("gRPC list answers")
        .into_inner();
    assert!(via_grpc.integrations.is_empty());
    drop(grpc_client);

    server.signal("-TERM");
    let status = server.exit_status(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    server.wait_for("stopped", Duration::from_secs(5)).await;
    let after = rest_client()
        .get(format!("http://{http}/readyz"))
        .send()
        .await
        .expect_err("nothing listens after exit");
    assert!(after.is_connect(), "{after:?}");
    assert!(
        tokio::net::TcpStream::connect(grpc).await.is_err(),
        "the gRPC port is closed"
    );

    for name in ["jwt-secret", "encryption-keys"] {
        let meta = std::fs::metadata(data_dir.path().join(name))
            .unwrap_or_else(|e| panic!("dev secret {name} exists: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode of {name}");
    }
    drop_db(&db_name).await;
}

#[tokio::test]
async fn migrate_creates_and_migrates_a_fresh_database() {
    let (db_name, db_url) = helpers::fresh_db();
    let data_dir = TempDir::new();
    let mut cmd = bin();
    cmd.arg("migrate")
        .env("FH_DATABASE_URL", &db_url)
        .env("FH_DATA_DIR", data_dir.path())
        .env("FH_LOG", "warn");
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "migrations applied\n"
    );

    let pool = PgPool::connect(&db_url).await.expect("the database exists");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("migrations table");
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    assert!(!known.is_empty());
    assert_eq!(applied, known);
    pool.close().await;
    drop_db(&db_name).await;
}

#[tokio::test]
async fn keys_generate_prints_one_entry_that_parses_as_a_key_ring() {
    let mut cmd = bin();
    cmd.args(["keys", "generate"]);
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let entry = stdout.trim_end_matches('\n');
    let (id, key) = entry.split_once(':').expect("<id>:<base64>");
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{id}"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("standard base64");
    assert_eq!(bytes.len(), 32);
    let ring = KeyRing::parse(entry, None).expect("the entry parses");
    assert_eq!(ring.active_id().as_str(), id);
}

#[tokio::test]
async fn token_with_an_unknown_role_fails_and_names_the_valid_roles() {
    let data_dir = TempDir::new();
    let mut cmd = bin();
    cmd.args([
        "token",
        "--workspace",
        &Uuid::new_v4().to_string(),
        "--role",
        "wizard",
    ])
    .env("FH_DATA_DIR", data_dir.path());
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "no token printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--role must be owner, admin, member, viewer or service"),
        "{stderr}"
    );
}

#[tokio::test]
async fn help_lists_the_main_environment_variables() {
    let mut cmd = bin();
    cmd.arg("--help");
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "FH_GRPC_ADDR",
        "FH_HTTP_ADDR",
        "FH_DATABASE_URL",
        "FH_JWT_SECRET",
        "FH_ENCRYPTION_KEYS",
        "FH_PUBLIC_URL",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing from:\n{help}"
        );
    }
}

#[tokio::test]
async fn help_never_shows_the_jwt_secret_or_encryption_keys_set_in_the_environment() {
    let secret = format!("jwt-secret-{}", Uuid::new_v4().simple());
    let keys = KeyRing::generate_entry();
    let mut cmd = bin();
    cmd.arg("--help")
        .env("FH_JWT_SECRET", &secret)
        .env("FH_ENCRYPTION_KEYS", &keys);
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("[env: FH_JWT_SECRET]"), "{help}");
    assert!(!help.contains(&secret), "the JWT secret is shown");
    assert!(
        !help.contains(keys.split_once(':').expect("entry").1),
        "key material is shown"
    );
}

#[tokio::test]
async fn help_never_shows_the_database_password_set_in_the_environment() {
    let password = format!("pw{}", Uuid::new_v4().simple());
    let mut cmd = bin();
    cmd.arg("--help").env(
        "FH_DATABASE_URL",
        format!("postgres://app:{password}@db.internal:5432/founderhouse"),
    );
    let output = run(cmd).await;
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("[env: FH_DATABASE_URL"), "{help}");
    assert!(!help.contains(&password), "the database password is shown");
}
