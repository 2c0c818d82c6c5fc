//! The `oauth_handles` table: the sealed code a callback received, redeemed once by the user who
//! started the flow.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::oauth_states::StateRow;
use super::sealed::{self, RewrapBatch};
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::secrets::{KeyRing, KeyringError, SealContext, Sealed};

pub struct NewHandle<'a> {
    pub id: Uuid,
    pub hash: &'a [u8],
    pub state_id: Uuid,
    pub workspace_id: WorkspaceId,
    pub code: &'a Sealed,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(exec: impl PgExecutor<'_>, h: &NewHandle<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO oauth_handles (handle_hash, id, state_id, workspace_id, code_key_id,
             code_aad_version, code_nonce, code_ciphertext, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(h.hash)
    .bind(h.id)
    .bind(h.state_id)
    .bind(h.workspace_id.0)
    .bind(h.code.key_id.as_str())
    .bind(h.code.aad.as_column())
    .bind(&h.code.nonce)
    .bind(&h.code.ciphertext)
    .bind(h.expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    handle_id: Uuid,
    handle_workspace_id: Uuid,
    code_key_id: Option<String>,
    code_aad_version: i16,
    code_nonce: Option<Vec<u8>>,
    code_ciphertext: Option<Vec<u8>>,
    handle_expired: bool,
    handle_consumed: bool,
    #[sqlx(flatten)]
    state: super::oauth_states::Row,
}

/// A handle and the authorization state it came from, as CompleteAuthorization reads it.
pub struct HandleRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    code_key_id: Option<String>,
    code_aad_version: i16,
    code_nonce: Option<Vec<u8>>,
    code_ciphertext: Option<Vec<u8>>,
    pub expired: bool,
    pub consumed: bool,
    /// Who started the flow, with which provider, verifier and redirect URI.
    pub state: StateRow,
}

impl HandleRow {
    /// The sealed code; `None` once the handle is redeemed (the code is cleared then).
    ///
    /// # Errors
    /// Stored columns that do not parse (key id, AAD version): the row does not open.
    pub fn code(&self) -> Result<Option<Sealed>, KeyringError> {
        match (&self.code_key_id, &self.code_nonce, &self.code_ciphertext) {
            (Some(k), Some(n), Some(c)) => {
                sealed::from_columns(k, self.code_aad_version, n, c).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// What the code's AAD binds it to: this handle and its workspace.
    pub fn code_context(&self) -> SealContext<'static> {
        SealContext::oauth_code(WorkspaceId(self.workspace_id), self.id)
    }
}

/// Locks the handle for the rest of the transaction, so concurrent redemptions of one handle
/// serialize and all but the first see it consumed.
pub async fn get_for_update(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<HandleRow>, Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT h.id AS handle_id, h.workspace_id AS handle_workspace_id, h.code_key_id,
                h.code_aad_version, h.code_nonce, h.code_ciphertext,
                h.expires_at <= now() AS handle_expired, h.consumed_at IS NOT NULL AS handle_consumed,
                s.id, s.workspace_id, s.user_id, s.user_role, s.provider, s.platform,
                s.verifier_key_id, s.verifier_aad_version, s.verifier_nonce, s.verifier_ciphertext,
                s.return_to, s.redirect_uri, s.expires_at <= now() AS expired,
                s.consumed_at IS NOT NULL AS consumed
         FROM oauth_handles h JOIN oauth_states s ON s.id = h.state_id
         WHERE h.handle_hash = $1 FOR UPDATE OF h",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(HandleRow {
            id: r.handle_id,
            workspace_id: r.handle_workspace_id,
            code_key_id: r.code_key_id,
            code_aad_version: r.code_aad_version,
            code_nonce: r.code_nonce,
            code_ciphertext: r.code_ciphertext,
            expired: r.handle_expired,
            consumed: r.handle_consumed,
            state: StateRow::try_from(r.state)?,
        })
    })
    .transpose()
}

/// Uses the handle up and destroys the sealed code with it: a redeemed code is never stored.
pub async fn consume(conn: &mut PgConnection, hash: &[u8]) -> Result<(), Error> {
    sqlx::query(
        "UPDATE oauth_handles
         SET consumed_at = now(), code_key_id = NULL, code_nonce = NULL, code_ciphertext = NULL
         WHERE handle_hash = $1 AND consumed_at IS NULL",
    )
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Handles an hour past expiry are deleted with their sealed codes: they can only be refused.
pub async fn delete_stale(exec: impl PgExecutor<'_>) -> Result<u64, Error> {
    let done =
        sqlx::query("DELETE FROM oauth_handles WHERE expires_at < now() - interval '1 hour'")
            .execute(exec)
            .await?;
    Ok(done.rows_affected())
}

/// How many sealed codes are under a key other than the active one, or an older AAD version.
pub async fn count_needing_rewrap(pool: &PgPool, keyring: &KeyRing) -> Result<i64, Error> {
    sealed::count_needing_rewrap(
        pool,
        keyring,
        "SELECT count(*) FROM oauth_handles
         WHERE code_ciphertext IS NOT NULL AND (code_key_id <> $1 OR code_aad_version <> $2)",
    )
    .await
}

/// Re-seals up to `batch` codes of unredeemed handles after `after` (by id) under the active
/// key and the current AAD version, as `oauth_states::rewrap_batch` does.
pub async fn rewrap_batch(
    pool: &PgPool,
    keyring: &KeyRing,
    after: Option<Uuid>,
    batch: i64,
) -> Result<RewrapBatch<Uuid>, Error> {
    let select = "SELECT id, workspace_id, code_key_id AS key_id, code_aad_version AS aad_version,
                code_nonce AS nonce, code_ciphertext AS ciphertext
         FROM oauth_handles
         WHERE code_key_id IS NOT NULL AND code_nonce IS NOT NULL AND code_ciphertext IS NOT NULL
           AND (code_key_id <> $1 OR code_aad_version <> $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED";
    let update = "UPDATE oauth_handles SET code_key_id = $3, code_aad_version = $4,
             code_nonce = $5, code_ciphertext = $6
         WHERE id = $1 AND workspace_id = $2 AND consumed_at IS NULL";
    sealed::rewrap_by_id(
        pool,
        keyring,
        (after, batch),
        (select, update),
        SealContext::oauth_code,
    )
    .await
}
