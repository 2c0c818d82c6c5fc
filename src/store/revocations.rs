//! Revocations to retry: tokens a provider could not revoke when asked.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::IntegrationId;
use crate::error::Error;
use crate::secrets::{KeyId, Sealed};

pub struct NewPending<'a> {
    pub id: Uuid,
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
             key_id, nonce, ciphertext, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))",
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
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    pub attempts: i32,
}

impl Pending {
    pub fn sealed(&self) -> Result<Sealed, Error> {
        Ok(Sealed {
            key_id: KeyId::parse(&self.key_id).map_err(Error::internal)?,
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        })
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
         RETURNING id, integration_id, provider, method, token_type_hint, key_id, nonce,
                   ciphertext, attempts",
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
