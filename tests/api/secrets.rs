//! Credentials at rest: sealed per row and field, never stored in plaintext, and rotated to a
//! new key by `keys rewrap` without losing a value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::domain::{IntegrationId, Role};
use founderhouse_integrations::error::ErrorKind;
use founderhouse_integrations::proto::{
    ConnectIntegrationRequest, ListIntegrationsRequest, Platform,
};
use founderhouse_integrations::secrets::KeyRing;
use founderhouse_integrations::store::credentials;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{self, TestApp, authed, drop_db, spawn_app, spawn_app_with};

mod unopenable;
mod workspace;

fn request(
    platform: Platform,
    credentials: &[(&str, &str)],
    account: &str,
) -> ConnectIntegrationRequest {
    ConnectIntegrationRequest {
        platform: platform as i32,
        credentials: credentials
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        display_name: String::new(),
        metadata: None,
        provider_account_id: account.to_owned(),
    }
}

fn fireflies(api_key: &str, account: &str) -> ConnectIntegrationRequest {
    request(Platform::Fireflies, &[("api_key", api_key)], account)
}

/// A distinctive api key: nothing else in the database or the logs can contain it by chance.
fn distinctive_key(label: &str) -> String {
    format!("ff-{label}-{}", Uuid::new_v4().simple())
}

/// Connects as an admin of the app's workspace; returns the integration id.
async fn connect(app: &TestApp, request: ConnectIntegrationRequest) -> IntegrationId {
    connect_in(app, app.workspace, request).await
}

async fn connect_in(
    app: &TestApp,
    workspace: Uuid,
    request: ConnectIntegrationRequest,
) -> IntegrationId {
    let token = app.token_for(workspace, Role::Admin);
    let response = app
        .integrations()
        .await
        .connect_integration(authed(request, &token))
        .await
        .expect("connects")
        .into_inner();
    let id = response.integration.expect("integration returned").id;
    IntegrationId(Uuid::parse_str(&id).expect("integration id is a uuid"))
}

/// Every field of an integration, opened and exposed.
async fn open(pool: &PgPool, ring: &KeyRing, id: IntegrationId) -> BTreeMap<String, String> {
    credentials::open_all(pool, ring, id)
        .await
        .expect("credentials open")
        .into_iter()
        .map(|(field, value)| (field, value.expose().clone()))
        .collect()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Opening fails with an internal error whose Display and Debug show none of `secrets`.
async fn assert_does_not_open(
    pool: &PgPool,
    ring: &KeyRing,
    id: IntegrationId,
    secrets: &[&str],
) -> String {
    let err = credentials::open_all(pool, ring, id)
        .await
        .expect_err("credentials must not open");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err:?}");
    assert_eq!(err.reason().as_str(), "INTERNAL");
    let shown = format!("{err}\n{err:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "a plaintext is shown in {shown}");
    }
    shown
}

/// The base64 key of a `<id>:<base64>` entry.
fn key_material(entry: &str) -> &str {
    entry.split_once(':').expect("entry is <id>:<base64>").1
}

fn key_id(entry: &str) -> &str {
    entry.split_once(':').expect("entry is <id>:<base64>").0
}

/// A fresh key entry under `id`: `generate_entry` names keys by the second, so two generated in
/// the same second would collide.
fn entry_named(id: &str) -> String {
    format!("{id}:{}", key_material(&KeyRing::generate_entry()))
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("fh-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn rewrap(db_url: &str, keys: &str, batch: u32) -> Output {
    let data_dir = TempDir::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_founderhouse-integrations"));
    cmd.env_clear()
        .args(["keys", "rewrap", "--batch", &batch.to_string()])
        .env("FH_DATABASE_URL", db_url)
        .env("FH_ENCRYPTION_KEYS", keys)
        .env(
            "FH_JWT_SECRET",
            format!("rewrap-test-secret-{}", Uuid::new_v4().simple()),
        )
        .env("FH_DATA_DIR", &data_dir.0)
        .env("FH_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("rewrap task")
        .expect("the binary runs");
    drop(data_dir);
    output
}

#[tokio::test]
async fn a_ciphertext_swapped_between_two_integrations_opens_for_neither() {
    let app = spawn_app().await;
    let (key_a, key_b) = (distinctive_key("a"), distinctive_key("b"));
    let a = connect(&app, fireflies(&key_a, "account-a")).await;
    let b = connect(&app, fireflies(&key_b, "account-b")).await;
    let pool = app.pool().await;
    let ring = KeyRing::parse(&app.keys, None).expect("the app's keys parse");
    assert_eq!(open(&pool, &ring, a).await, fields(&[("api_key", &key_a)]));
    assert_eq!(open(&pool, &ring, b).await, fields(&[("api_key", &key_b)]));

    let swapped = sqlx::query(
        "UPDATE credentials c SET nonce = o.nonce, ciphertext = o.ciphertext
         FROM credentials o
         WHERE c.field = 'api_key' AND o.field = 'api_key'
           AND ((c.integration_id = $1 AND o.integration_id = $2)
             OR (c.integration_id = $2 AND o.integration_id = $1))",
    )
    .bind(a.0)
    .bind(b.0)
    .execute(&pool)
    .await
    .expect("swap");
    assert_eq!(swapped.rows_affected(), 2);

    for id in [a, b] {
        let shown = assert_does_not_open(&pool, &ring, id, &[&key_a, &key_b]).await;
        assert!(
            shown.contains(&format!(
                "credential api_key of integration {id} does not open"
            )),
            "{shown}"
        );
    }
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_ciphertext_copied_onto_another_field_does_not_open() {
    let app = spawn_app().await;
    let api_key = distinctive_key("zdb");
    let id = connect(
        &app,
        request(
            Platform::Zerodb,
            &[
                ("api_key", &api_key),
                ("base_url", "https://zdb.example.com"),
            ],
            "",
        ),
    )
    .await;
    let pool = app.pool().await;
    let ring = KeyRing::parse(&app.keys, None).expect("the app's keys parse");
    assert_eq!(
        open(&pool, &ring, id).await,
        fields(&[
            ("api_key", &api_key),
            ("base_url", "https://zdb.example.com")
        ])
    );

    let copied = sqlx::query(
        "UPDATE credentials c SET nonce = o.nonce, ciphertext = o.ciphertext
         FROM credentials o
         WHERE c.integration_id = $1 AND c.field = 'base_url'
           AND o.integration_id = $1 AND o.field = 'api_key'",
    )
    .bind(id.0)
    .execute(&pool)
    .await
    .expect("copy");
    assert_eq!(copied.rows_affected(), 1);

    let shown = assert_does_not_open(&pool, &ring, id, &[&api_key]).await;
    assert!(
        shown.contains(&format!(
            "credential base_url of integration {id} does not open"
        )),
        "{shown}"
    );
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_database_never_holds_a_credential_in_plaintext() {
    let app = spawn_app().await;
    let ff_key = distinctive_key("plain");
    let zv_token = format!("zv-token-{}", Uuid::new_v4().simple());
    let zdb_key = format!("zdb-key-{}", Uuid::new_v4().simple());
    let sid = format!("AC{}", Uuid::new_v4().simple());
    connect(&app, fireflies(&ff_key, "plain")).await;
    connect(
        &app,
        request(
            Platform::Zerovoice,
            &[("account_sid", &sid), ("auth_token", &zv_token)],
            "",
        ),
    )
    .await;
    connect(
        &app,
        request(
            Platform::Zerodb,
            &[
                ("api_key", &zdb_key),
                ("base_url", "https://plain.example.com"),
            ],
            "",
        ),
    )
    .await;

    let pool = app.pool().await;
    let mut dump = String::new();
    let mut rows = 0;
    for table in ["workspaces", "integrations", "credentials", "audit_events"] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
        let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .expect("rows as json");
        rows += texts.len();
        for text in texts {
            dump.push_str(&text);
            dump.push('\n');
        }
    }
    // 1 workspace, 3 integrations, 5 credential fields, 3 audit events.
    assert_eq!(rows, 12, "{dump}");
    assert!(
        dump.contains(&sid),
        "non-secret fields are in the dump: {dump}"
    );

    let sealed: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT nonce, ciphertext FROM credentials")
            .fetch_all(&pool)
            .await
            .expect("sealed values");
    assert_eq!(sealed.len(), 5);
    for secret in [&ff_key, &zv_token, &zdb_key] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for shown in [secret.as_str(), &hex(secret.as_bytes()), &b64] {
            assert!(
                !dump.contains(shown),
                "a credential is stored readably: {dump}"
            );
        }
        for (nonce, ciphertext) in &sealed {
            assert!(!contains_bytes(ciphertext, secret.as_bytes()));
            assert!(!contains_bytes(nonce, secret.as_bytes()));
        }
    }
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn keys_rewrap_moves_every_credential_to_the_new_key_and_the_old_key_opens_none() {
    let app = spawn_app().await;
    let k1 = app.keys.clone();
    let k2 = entry_named("rotated2");
    let mut sent = BTreeMap::new();
    for n in 0..5 {
        let key = distinctive_key(&format!("rot{n}"));
        let id = connect(&app, fireflies(&key, &format!("account-{n}"))).await;
        sent.insert(id, key);
    }
    let pool = app.pool().await;
    let key_ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM credentials")
        .fetch_all(&pool)
        .await
        .expect("key ids");
    assert_eq!(key_ids, [key_id(&k1)]);

    let output = rewrap(&app.db_url, &format!("{k1},{k2}"), 2).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rewrap failed: {stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "to rewrap under key rotated2 with aad v2: credentials 5, pending_revocations 0, oauth_states 0, oauth_handles 0",
            "credentials: rewrapped 2/5",
            "credentials: rewrapped 4/5",
            "credentials: rewrapped 5/5",
            "credentials: 5 rewrapped, 0 could not be opened, 0 left",
            "pending_revocations: 0 rewrapped, 0 could not be opened, 0 left",
            "oauth_states: 0 rewrapped, 0 could not be opened, 0 left",
            "oauth_handles: 0 rewrapped, 0 could not be opened, 0 left",
        ]
    );
    for line in stdout.lines().chain(stderr.lines()) {
        for secret in [key_material(&k1), key_material(&k2)] {
            assert!(!line.contains(secret), "key material in the output: {line}");
        }
        for key in sent.values() {
            assert!(
                !line.contains(key.as_str()),
                "an api key in the output: {line}"
            );
        }
    }

    let key_ids: Vec<String> = sqlx::query_scalar("SELECT key_id FROM credentials")
        .fetch_all(&pool)
        .await
        .expect("key ids");
    assert_eq!(key_ids, ["rotated2"; 5]);
    let only_k2 = KeyRing::parse(&k2, None).expect("k2 parses");
    let only_k1 = KeyRing::parse(&k1, None).expect("k1 parses");
    for (id, key) in &sent {
        assert_eq!(
            open(&pool, &only_k2, *id).await,
            fields(&[("api_key", key)])
        );
        let shown = assert_does_not_open(&pool, &only_k1, *id, &[key]).await;
        assert!(shown.contains("no key with id `rotated2`"), "{shown}");
    }
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_app_restarted_with_a_new_active_key_seals_new_credentials_with_it_and_reads_old_ones() {
    let (db_name, db_url) = helpers::fresh_db();
    let k1 = entry_named("old1");
    let k2 = entry_named("new2");
    let on_my_db = |keys: String| {
        let db_url = db_url.clone();
        move |c: &mut founderhouse_integrations::config::Config| {
            c.database_url = Secret::new(db_url);
            c.keyring = KeyRing::parse(&keys, None).expect("keys parse");
        }
    };

    let before = spawn_app_with(on_my_db(k1.clone())).await;
    let workspace = before.workspace;
    let old_key = distinctive_key("old");
    let old = connect(&before, fireflies(&old_key, "old")).await;
    // stop() drops the database the helper named, not this one.
    before.stop().await;

    let after = spawn_app_with(on_my_db(format!("{k1},{k2}"))).await;
    let new_key = distinctive_key("new");
    let new = connect_in(&after, workspace, fireflies(&new_key, "new")).await;

    let pool = PgPool::connect(&db_url).await.expect("pool connects");
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT integration_id, key_id FROM credentials ORDER BY integration_id")
            .fetch_all(&pool)
            .await
            .expect("credentials");
    assert_eq!(
        rows,
        [(old.0, "old1".to_owned()), (new.0, "new2".to_owned())]
    );
    let ring = KeyRing::parse(&format!("{k1},{k2}"), None).expect("ring parses");
    assert_eq!(
        open(&pool, &ring, old).await,
        fields(&[("api_key", &old_key)])
    );
    assert_eq!(
        open(&pool, &ring, new).await,
        fields(&[("api_key", &new_key)])
    );

    let listed = after
        .integrations()
        .await
        .list_integrations(authed(
            ListIntegrationsRequest::default(),
            &after.token_for(workspace, Role::Viewer),
        ))
        .await
        .expect("lists")
        .into_inner();
    let accounts: Vec<&str> = listed
        .integrations
        .iter()
        .map(|i| i.provider_account_id.as_str())
        .collect();
    assert_eq!(accounts, ["old", "new"]);

    pool.close().await;
    after.stop().await;
    drop_db(&db_name).await;
}
