//! Revocations to retry: tokens a provider could not revoke when asked.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::sealed::{self, RewrapBatch};
use crate::domain::{IntegrationId, WorkspaceId};
use crate::error::Error;
use crate::secrets::{KeyRing, KeyringError, SealContext, Sealed};

pub struct NewPending<'a> {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub integration: IntegrationId,
    pub provider: &'a str,
    pub method: &'a str,
    pub hint: &'a str,
    pub token: &'a Sealed,
    pub first_retry_in: std::time::Duration,
}

pub async fn insert(exec: impl PgExecutor<'_>, p: &NewPending<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO pending_revocations (id, integration_id, provider, method, token_type_hint,
             key_id, nonce, ciphertext, next_attempt_at, workspace_id, aad_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9), $10, $11)",
    )
    .bind(p.id)
    .bind(p.integration.0)
    .bind(p.provider)
    .bind(p.method)
    .bind(p.hint)
    .bind(p.token.key_id.as_str())
    .bind(&p.token.nonce)
    .bind(&p.token.ciphertext)
    .bind(p.first_retry_in.as_secs_f64())
    .bind(p.workspace.0)
    .bind(p.token.aad.as_column())
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub struct Pending {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub provider: String,
    pub method: String,
    pub token_type_hint: String,
    /// Absent only on v1 rows queued before workspaces were recorded.
    workspace_id: Option<Uuid>,
    pub key_id: String,
    aad_version: i16,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    pub attempts: i32,
}

impl Pending {
    /// The sealed token.
    ///
    /// # Errors
    /// Stored columns that do not parse (key id, AAD version): the row does not open.
    pub fn sealed(&self) -> Result<Sealed, KeyringError> {
        sealed::from_columns(
            &self.key_id,
            self.aad_version,
            &self.nonce,
            &self.ciphertext,
        )
    }

    /// What the token's AAD binds it to: this queued revocation and its workspace.
    pub fn context(&self) -> SealContext<'static> {
        // Only v1 rows may lack a workspace (a CHECK says so), and v1 does not use it.
        let workspace = self.workspace_id.unwrap_or_default();
        SealContext::pending_revocation(WorkspaceId(workspace), self.id)
    }
}

/// Claims due retries for `lease`, skipping rows another replica holds.
pub async fn claim_due(
    exec: impl PgExecutor<'_>,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<Pending>, Error> {
    Ok(sqlx::query_as(
        "UPDATE pending_revocations SET claimed_until = now() + make_interval(secs => $1)
         WHERE id IN (
             SELECT id FROM pending_revocations
             WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, integration_id, provider, method, token_type_hint, workspace_id, key_id,
                   aad_version, nonce, ciphertext, attempts",
    )
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Done (revoked, refused for good, or given up): the sealed token goes.
pub async fn delete(exec: impl PgExecutor<'_>, id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM pending_revocations WHERE id = $1")
        .bind(id)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn retry_later(
    exec: impl PgExecutor<'_>,
    id: Uuid,
    after: std::time::Duration,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE pending_revocations SET attempts = attempts + 1, claimed_until = NULL,
             next_attempt_at = now() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(after.as_secs_f64())
    .execute(exec)
    .await?;
    Ok(())
}

/// How many queued tokens are under a key other than the active one, or an older AAD version.
pub async fn count_needing_rewrap(pool: &PgPool, keyring: &KeyRing) -> Result<i64, Error> {
    sealed::count_needing_rewrap(
        pool,
        keyring,
        "SELECT count(*) FROM pending_revocations WHERE key_id <> $1 OR aad_version <> $2",
    )
    .await
}

/// Re-seals up to `batch` queued tokens after `after` (by id) under the active key and the
/// current AAD version, as `credentials::rewrap_batch` does, and records the workspace on rows
/// that lacked it (v1 rows queued before workspaces were recorded take their integration's). A
/// row whose integration is gone has no workspace to bind to: it stays v1 (it still opens) and
/// is counted as left.
pub async fn rewrap_batch(
    pool: &PgPool,
    keyring: &KeyRing,
    after: Option<Uuid>,
    batch: i64,
) -> Result<RewrapBatch<Uuid>, Error> {
    let select = "SELECT p.id, coalesce(p.workspace_id, i.workspace_id) AS workspace_id,
                p.key_id, p.aad_version, p.nonce, p.ciphertext
         FROM pending_revocations p LEFT JOIN integrations i ON i.id = p.integration_id
         WHERE (p.key_id <> $1 OR p.aad_version <> $2) AND ($3::uuid IS NULL OR p.id > $3)
         ORDER BY p.id LIMIT $4 FOR UPDATE OF p SKIP LOCKED";
    let update = "UPDATE pending_revocations SET workspace_id = $2, key_id = $3, aad_version = $4,
             nonce = $5, ciphertext = $6
         WHERE id = $1";
    sealed::rewrap_by_id(
        pool,
        keyring,
        (after, batch),
        (select, update),
        SealContext::pending_revocation,
    )
    .await
}
