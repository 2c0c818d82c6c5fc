//! The workspace in the AAD (v2): a credential moved to another workspace does not open, and
//! rows sealed before v2 keep opening until `keys rewrap` moves them, key unchanged.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use founderhouse_integrations::domain::{IntegrationId, WorkspaceId};
use founderhouse_integrations::secrets::KeyRing;
use founderhouse_integrations::store::integrations;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    assert_does_not_open, connect, distinctive_key, fields, fireflies, key_id, open, rewrap,
};
use crate::helpers::spawn_app;

/// A value sealed the way releases before v2 did: AAD = "founderhouse/v1\0" || row || field ||
/// 0x00 || key id, under the key of `entry` (`<id>:<base64>`). Built here, not by the service,
/// so the test pins the old layout that stored rows use.
fn seal_v1(entry: &str, row: Uuid, field: &str, plaintext: &str) -> (Vec<u8>, Vec<u8>) {
    let (id, key) = entry.split_once(':').expect("entry is <id>:<base64>");
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("base64 key");
    let cipher = Aes256Gcm::new_from_slice(&key).expect("a 32-byte key");
    let mut aad = b"founderhouse/v1\0".to_vec();
    aad.extend_from_slice(row.as_bytes());
    aad.extend_from_slice(field.as_bytes());
    aad.push(0);
    aad.extend_from_slice(id.as_bytes());
    let nonce = [0x5a_u8; 12];
    let ciphertext = cipher
        .encrypt(
            &aes_gcm::Nonce::<U12>::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        .expect("encrypts");
    (nonce.to_vec(), ciphertext)
}

/// A second tenant, as someone with database write access would create one.
async fn another_workspace(pool: &PgPool) -> Uuid {
    let other = Uuid::new_v4();
    sqlx::query("INSERT INTO workspaces (id) VALUES ($1)")
        .bind(other)
        .execute(pool)
        .await
        .expect("workspace inserted");
    other
}

/// Moves an integration (and so its credentials) to `workspace` with direct SQL.
async fn move_to(pool: &PgPool, id: IntegrationId, workspace: Uuid) {
    let moved = sqlx::query("UPDATE integrations SET workspace_id = $2 WHERE id = $1")
        .bind(id.0)
        .bind(workspace)
        .execute(pool)
        .await
        .expect("moved");
    assert_eq!(moved.rows_affected(), 1);
}

async fn stored_seal(pool: &PgPool, id: IntegrationId) -> (String, i16) {
    sqlx::query_as("SELECT key_id, aad_version FROM credentials WHERE integration_id = $1")
        .bind(id.0)
        .fetch_one(pool)
        .await
        .expect("one credential row")
}

#[tokio::test]
async fn a_credential_moved_to_another_workspace_does_not_open_there() {
    let app = spawn_app().await;
    let api_key = distinctive_key("moved");
    let id = connect(&app, fireflies(&api_key, "moved")).await;
    let pool = app.pool().await;
    let ring = KeyRing::parse(&app.keys, None).expect("the app's keys parse");
    assert_eq!(stored_seal(&pool, id).await.1, 2, "new seals are v2");
    assert_eq!(
        open(&pool, &ring, id).await,
        fields(&[("api_key", &api_key)])
    );

    let other = another_workspace(&pool).await;
    move_to(&pool, id, other).await;

    let shown = assert_does_not_open(&pool, &ring, id, &[&api_key]).await;
    assert!(shown.contains("does not open"), "{shown}");
    // The connector path, which reads integration and credentials in one query, refuses too.
    let err = integrations::get_opened(&pool, &ring, WorkspaceId(other), id)
        .await
        .expect_err("the moved credential does not open for the other workspace");
    assert_eq!(err.reason().as_str(), "INTERNAL");
    assert!(!format!("{err:?}").contains(&api_key));
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_v1_credential_still_opens_and_keys_rewrap_moves_it_to_v2_under_the_same_key() {
    let app = spawn_app().await;
    let api_key = distinctive_key("v1");
    let id = connect(&app, fireflies(&api_key, "v1")).await;
    let pool = app.pool().await;
    let ring = KeyRing::parse(&app.keys, None).expect("the app's keys parse");
    let (nonce, ciphertext) = seal_v1(&app.keys, id.0, "api_key", &api_key);
    sqlx::query(
        "UPDATE credentials SET aad_version = 1, nonce = $2, ciphertext = $3
         WHERE integration_id = $1",
    )
    .bind(id.0)
    .bind(nonce)
    .bind(ciphertext)
    .execute(&pool)
    .await
    .expect("row made v1");
    assert_eq!(
        open(&pool, &ring, id).await,
        fields(&[("api_key", &api_key)])
    );
    // v1 does not name the workspace: moved, it still opens. This is the gap v2 closes.
    let other = another_workspace(&pool).await;
    move_to(&pool, id, other).await;
    assert_eq!(
        open(&pool, &ring, id).await,
        fields(&[("api_key", &api_key)])
    );
    move_to(&pool, id, app.workspace).await;

    let output = rewrap(&app.db_url, &app.keys, 10).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rewrap failed: {stdout}\n{:?}",
        output.stderr
    );
    assert!(
        stdout.contains("credentials: 1 rewrapped, 0 could not be opened, 0 left"),
        "{stdout}"
    );

    assert_eq!(
        stored_seal(&pool, id).await,
        (key_id(&app.keys).to_owned(), 2),
        "same key, v2"
    );
    assert_eq!(
        open(&pool, &ring, id).await,
        fields(&[("api_key", &api_key)])
    );
    move_to(&pool, id, other).await;
    assert_does_not_open(&pool, &ring, id, &[&api_key]).await;
    pool.close().await;
    app.stop().await;
}
