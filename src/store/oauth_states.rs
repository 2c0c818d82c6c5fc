//! The `oauth_states` table: one row per started authorization, used up by its callback.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::sealed::{self, RewrapBatch};
use crate::domain::{Role, UserId, WorkspaceId};
use crate::error::Error;
use crate::secrets::{AadVersion, KeyRing, KeyringError, SealContext, Sealed};

pub struct NewState<'a> {
    pub id: Uuid,
    pub hash: &'a [u8],
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub user_role: &'a str,
    pub provider: &'a str,
    pub platform: &'a str,
    pub verifier: Option<&'a Sealed>,
    pub return_to: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(exec: impl PgExecutor<'_>, s: &NewState<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, id, workspace_id, user_id, user_role, provider, platform,
             verifier_key_id, verifier_nonce, verifier_ciphertext, return_to, redirect_uri, expires_at,
             verifier_aad_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(s.hash)
    .bind(s.id)
    .bind(s.workspace_id.0)
    .bind(s.user_id.0)
    .bind(s.user_role)
    .bind(s.provider)
    .bind(s.platform)
    .bind(s.verifier.map(|v| v.key_id.as_str().to_owned()))
    .bind(s.verifier.map(|v| v.nonce.clone()))
    .bind(s.verifier.map(|v| v.ciphertext.clone()))
    .bind(s.return_to)
    .bind(s.redirect_uri)
    .bind(s.expires_at)
    .bind(s.verifier.map_or(AadVersion::CURRENT, |v| v.aad).as_column())
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    user_role: String,
    provider: String,
    platform: String,
    verifier_key_id: Option<String>,
    verifier_aad_version: i16,
    verifier_nonce: Option<Vec<u8>>,
    verifier_ciphertext: Option<Vec<u8>>,
    return_to: Option<String>,
    redirect_uri: String,
    expired: bool,
    consumed: bool,
}

/// A started authorization, as its callback reads it.
pub struct StateRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    /// The role of the user who started the flow, when they started it.
    pub user_role: Role,
    pub provider: String,
    pub platform: String,
    verifier_key_id: Option<String>,
    verifier_aad_version: i16,
    verifier_nonce: Option<Vec<u8>>,
    verifier_ciphertext: Option<Vec<u8>>,
    pub return_to: Option<String>,
    pub redirect_uri: String,
    pub expired: bool,
    pub consumed: bool,
}

impl TryFrom<Row> for StateRow {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        // We wrote the role from a parsed Role; anything else means the row is corrupt.
        let user_role = r.user_role.parse().map_err(|_| {
            Error::internal(anyhow::anyhow!(
                "unexpected user_role {:?} in oauth_states row",
                r.user_role
            ))
        })?;
        Ok(StateRow {
            id: r.id,
            workspace_id: r.workspace_id,
            user_id: r.user_id,
            user_role,
            provider: r.provider,
            platform: r.platform,
            verifier_key_id: r.verifier_key_id,
            verifier_aad_version: r.verifier_aad_version,
            verifier_nonce: r.verifier_nonce,
            verifier_ciphertext: r.verifier_ciphertext,
            return_to: r.return_to,
            redirect_uri: r.redirect_uri,
            expired: r.expired,
            consumed: r.consumed,
        })
    }
}

impl StateRow {
    /// The sealed PKCE verifier, when the flow used PKCE.
    ///
    /// # Errors
    /// Stored columns that do not parse (key id, AAD version): the row does not open.
    pub fn verifier(&self) -> Result<Option<Sealed>, KeyringError> {
        match (
            &self.verifier_key_id,
            &self.verifier_nonce,
            &self.verifier_ciphertext,
        ) {
            (Some(k), Some(n), Some(c)) => {
                sealed::from_columns(k, self.verifier_aad_version, n, c).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// What the verifier's AAD binds it to: this state and its workspace.
    pub fn verifier_context(&self) -> SealContext<'static> {
        SealContext::pkce_verifier(WorkspaceId(self.workspace_id), self.id)
    }
}

/// Locks the state for the rest of the transaction, so two callbacks with one state serialize
/// and the second sees it consumed.
pub async fn get_for_update(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<StateRow>, Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, workspace_id, user_id, user_role, provider, platform, verifier_key_id,
                verifier_aad_version, verifier_nonce, verifier_ciphertext, return_to, redirect_uri,
                expires_at <= now() AS expired, consumed_at IS NOT NULL AS consumed
         FROM oauth_states WHERE state_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(StateRow::try_from).transpose()
}

pub async fn consume(conn: &mut PgConnection, hash: &[u8]) -> Result<(), Error> {
    sqlx::query(
        "UPDATE oauth_states SET consumed_at = now() WHERE state_hash = $1 AND consumed_at IS NULL",
    )
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// States are worthless a while after expiry; keep a day for investigations.
pub async fn delete_stale(exec: impl PgExecutor<'_>) -> Result<u64, Error> {
    let done = sqlx::query("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'")
        .execute(exec)
        .await?;
    Ok(done.rows_affected())
}

/// How many sealed verifiers are under a key other than the active one, or an older AAD version.
pub async fn count_needing_rewrap(pool: &PgPool, keyring: &KeyRing) -> Result<i64, Error> {
    sealed::count_needing_rewrap(
        pool,
        keyring,
        "SELECT count(*) FROM oauth_states
         WHERE verifier_key_id IS NOT NULL AND verifier_nonce IS NOT NULL
           AND verifier_ciphertext IS NOT NULL
           AND (verifier_key_id <> $1 OR verifier_aad_version <> $2)",
    )
    .await
}

/// Re-seals up to `batch` verifiers of states after `after` (by id) under the active key and the
/// current AAD version, as `credentials::rewrap_batch` does. Every state with a verifier is
/// rewrapped, spent ones too: they are deleted a day after expiry anyway, and a rewrap that
/// reports nothing left means the old key opens nothing here.
pub async fn rewrap_batch(
    pool: &PgPool,
    keyring: &KeyRing,
    after: Option<Uuid>,
    batch: i64,
) -> Result<RewrapBatch<Uuid>, Error> {
    let select = "SELECT id, workspace_id, verifier_key_id AS key_id,
                verifier_aad_version AS aad_version, verifier_nonce AS nonce,
                verifier_ciphertext AS ciphertext
         FROM oauth_states
         WHERE verifier_key_id IS NOT NULL AND verifier_nonce IS NOT NULL
           AND verifier_ciphertext IS NOT NULL
           AND (verifier_key_id <> $1 OR verifier_aad_version <> $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED";
    let update = "UPDATE oauth_states SET verifier_key_id = $3, verifier_aad_version = $4,
             verifier_nonce = $5, verifier_ciphertext = $6
         WHERE id = $1 AND workspace_id = $2";
    sealed::rewrap_by_id(
        pool,
        keyring,
        (after, batch),
        (select, update),
        SealContext::pkce_verifier,
    )
    .await
}
