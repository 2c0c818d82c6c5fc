//! The real binary: `serve` with graceful SIGTERM, `migrate`, `token`, `keys generate`,
//! `keys rewrap` over every sealed table, `--help`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use founderhouse_integrations::domain::{Role, WorkspaceId};
use founderhouse_integrations::proto::integration_service_client::IntegrationServiceClient;
use founderhouse_integrations::proto::{ListIntegrationsRequest, RevokeIntegrationRequest};
use founderhouse_integrations::secrets::{AadVersion, KeyId, KeyRing, SealContext, Sealed};
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

/// Row id, workspace, key id, nonce, ciphertext.
type SealedRow = (Uuid, Uuid, String, Vec<u8>, Vec<u8>);

/// A sealed value as stored, for opening it with a given ring after the binary ran.
fn stored(key_id: &str, nonce: Vec<u8>, ciphertext: Vec<u8>) -> Sealed {
    Sealed {
        key_id: KeyId::parse(key_id).expect("a stored key id"),
        aad: AadVersion::V2,
        nonce,
        ciphertext,
    }
}

#[tokio::test]
async fn keys_rewrap_moves_rows_of_every_sealed_table_and_counts_and_skips_those_whose_key_is_gone()
{
    use crate::oauth::{Flavour, connect_ok, oauth_client, rig, start};

    let (app, fake) = rig(Flavour::Google).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        fake.sign_in_as(&format!("sub-{n}"));
        ids.push(connect_ok(&app, &fake).await.id);
    }
    // Two revocations the provider cannot take now are queued, sealed.
    fake.fail_revocation(Some(503));
    for id in &ids[..2] {
        oauth_client(&app)
            .await
            .revoke_integration(authed(
                RevokeIntegrationRequest { name: id.clone() },
                &app.token(Role::Admin),
            ))
            .await
            .expect("revokes locally");
    }
    // Two flows started and not finished: their PKCE verifiers are sealed.
    for _ in 0..2 {
        start(&app, Flavour::Google, "", &app.token(Role::Member))
            .await
            .expect("starts");
    }
    let pool = app.pool().await;
    let kept = Uuid::parse_str(&ids[2]).unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let credentials = count("SELECT count(*) FROM credentials").await;
    let states = count("SELECT count(*) FROM oauth_states WHERE verifier_key_id IS NOT NULL").await;
    assert!(credentials >= 2, "{credentials} credential fields");
    assert_eq!(count("SELECT count(*) FROM pending_revocations").await, 2);
    assert_eq!(states, 5, "three spent flows, two live ones");

    // One row of each table names a key the ring no longer has.
    let removed = [
        "UPDATE credentials SET key_id = 'removed'
         WHERE (integration_id, field) = (SELECT integration_id, min(field) FROM credentials
                                          GROUP BY integration_id LIMIT 1)",
        "UPDATE pending_revocations SET key_id = 'removed'
         WHERE id = (SELECT min(id::text)::uuid FROM pending_revocations)",
        "UPDATE oauth_states SET verifier_key_id = 'removed'
         WHERE id = (SELECT min(id::text)::uuid FROM oauth_states WHERE consumed_at IS NULL)",
    ];
    for sql in removed {
        let done = sqlx::query(sql).execute(&pool).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }

    let k2 = format!("rotated2:{}", key_material(&KeyRing::generate_entry()));
    let data_dir = TempDir::new();
    let mut cmd = bin();
    cmd.args(["keys", "rewrap", "--batch", "2"])
        .env("FH_DATABASE_URL", &app.db_url)
        .env("FH_ENCRYPTION_KEYS", format!("{},{k2}", app.keys))
        .env("FH_DATA_DIR", data_dir.path())
        .env("FH_LOG", "info")
        .env("FH_LOG_FORMAT", "json");
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rewrap failed: {stdout}\n{stderr}");

    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains(": rewrapped "))
        .collect();
    assert_eq!(
        summary,
        [
            format!(
                "to rewrap under key rotated2 with aad v2: credentials {credentials}, pending_revocations 2, oauth_states {states}, oauth_handles 0"
            ),
            format!(
                "credentials: {} rewrapped, 1 could not be opened, 1 left",
                credentials - 1
            ),
            "pending_revocations: 1 rewrapped, 1 could not be opened, 1 left".to_owned(),
            format!(
                "oauth_states: {} rewrapped, 1 could not be opened, 1 left",
                states - 1
            ),
            "oauth_handles: 0 rewrapped, 0 could not be opened, 0 left".to_owned(),
            "3 row(s) could not be opened (key removed or value tampered with); the log names them"
                .to_owned(),
        ],
        "{stdout}"
    );
    let logs: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let skipped: Vec<&str> = logs
        .iter()
        .filter(|l| l["message"] == "a sealed value does not open; skipped and left as it is")
        .map(|l| {
            assert_eq!(l["level"], "WARN");
            assert_eq!(l["key_id"], "removed", "{l}");
            l["table"].as_str().expect("the table is named")
        })
        .collect();
    assert_eq!(
        skipped,
        ["credentials", "pending_revocations", "oauth_states"]
    );
    let finished: Vec<(String, u64, u64)> = logs
        .iter()
        .filter(|l| l["message"] == "rewrap of a table finished")
        .map(|l| {
            let n = |f: &str| l[f].as_u64().expect("a count");
            (
                l["table"].as_str().unwrap().to_owned(),
                n("rewrapped"),
                n("unopenable"),
            )
        })
        .collect();
    assert_eq!(
        finished,
        [
            ("credentials".to_owned(), credentials as u64 - 1, 1),
            ("pending_revocations".to_owned(), 1, 1),
            ("oauth_states".to_owned(), states as u64 - 1, 1),
            ("oauth_handles".to_owned(), 0, 0),
        ]
    );
    for (name, secret) in fake.secrets() {
        assert!(
            !stdout.contains(&secret) && !stderr.contains(&secret),
            "the {name} is in the output"
        );
    }
    assert!(!stderr.contains(key_material(&k2)) && !stdout.contains(key_material(&k2)));

    // Everything but the skipped rows is now under rotated2, v2, and opens with it alone.
    let only_k2 = KeyRing::parse(&k2, None).expect("k2 parses");
    let by_key: Vec<(String, i16, i64)> = sqlx::query_as(
        "SELECT key_id, aad_version, count(*) FROM (
             SELECT key_id, aad_version FROM credentials
             UNION ALL SELECT key_id, aad_version FROM pending_revocations
             UNION ALL SELECT verifier_key_id, verifier_aad_version FROM oauth_states
                 WHERE verifier_key_id IS NOT NULL) t
         GROUP BY key_id, aad_version ORDER BY key_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let moved = credentials + 1 + states - 2;
    assert_eq!(
        by_key,
        [
            ("removed".to_owned(), 2, 3),
            ("rotated2".to_owned(), 2, moved)
        ]
    );
    let revocations: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, workspace_id, key_id, nonce, ciphertext FROM pending_revocations
         WHERE key_id = 'rotated2'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (id, workspace, key, nonce, ciphertext) in revocations {
        let ctx = SealContext::pending_revocation(WorkspaceId(workspace), id);
        let token = only_k2
            .open_string(&ctx, &stored(&key, nonce, ciphertext))
            .expect("a queued token opens under the new key");
        assert!(
            fake.secrets().iter().any(|(_, s)| s == token.expose()),
            "it is a token the provider issued"
        );
    }
    let verifiers: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, workspace_id, verifier_key_id, verifier_nonce, verifier_ciphertext
         FROM oauth_states WHERE verifier_key_id = 'rotated2'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(verifiers.len() as i64, states - 1);
    for (id, workspace, key, nonce, ciphertext) in verifiers {
        let ctx = SealContext::pkce_verifier(WorkspaceId(workspace), id);
        only_k2
            .open_string(&ctx, &stored(&key, nonce, ciphertext))
            .expect("a verifier opens under the new key");
    }
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT field FROM credentials WHERE integration_id = $1 AND key_id = 'rotated2'",
    )
    .bind(kept)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(fields.len() as i64, credentials - 1, "{fields:?}");
    pool.close().await;
    app.stop().await;
}

fn key_material(entry: &str) -> &str {
    entry.split_once(':').expect("entry is <id>:<base64>").1
}
