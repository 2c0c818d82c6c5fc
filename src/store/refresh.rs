//! The refresh bookkeeping of `integrations`: the committed lease one refresh (or disconnect)
//! holds while it talks to the provider, the compare-and-set that stores refreshed tokens, and
//! the background loop's claims and backoff.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{IntegrationId, WorkspaceId};
use crate::error::{Error, ErrorKind, Reason};

/// Where an integration's refresh stands, read without any lock.
#[derive(sqlx::FromRow)]
pub struct RefreshState {
    pub workspace_id: Uuid,
    pub platform: String,
    pub status: String,
    pub credential_version: i64,
    /// Seconds since the last successful refresh, when there was one.
    pub refreshed_secs_ago: Option<f64>,
    /// A disconnect has begun: no refresh may start.
    pub disconnecting: bool,
    /// Someone (this or another replica) holds an unexpired refresh lease.
    pub leased: bool,
}

pub async fn refresh_state(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
) -> Result<Option<RefreshState>, Error> {
    Ok(sqlx::query_as(
        "SELECT workspace_id, platform, status, credential_version,
                EXTRACT(EPOCH FROM clock_timestamp() - tokens_refreshed_at)::float8 AS refreshed_secs_ago,
                disconnecting_at IS NOT NULL AS disconnecting,
                coalesce(refresh_lease_until > clock_timestamp(), false) AS leased
         FROM integrations WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(exec)
    .await?)
}

/// Who holds a refresh lease, and the credential version it was taken at: the token write is a
/// compare-and-set on both.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    pub holder: Uuid,
    pub version: i64,
}

/// A transaction for one UPDATE that takes a refresh lease, whose `lock_timeout` is `wait`: a
/// row lock is only ever held for a moment, but a session that died mid-transaction holds it
/// until PostgreSQL notices. The caller commits before it returns, so nothing is held while it
/// talks to the provider.
async fn lease_tx(
    pool: &sqlx::PgPool,
    wait: std::time::Duration,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Error> {
    let mut tx = pool.begin().await?;
    // SET takes no bind parameters; the value is a number we format ourselves. LOCAL keeps it
    // to this transaction.
    let lock_ms = wait.as_millis().max(1);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{lock_ms}ms'"
    )))
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

fn lock_wait_error(e: sqlx::Error) -> Error {
    match &e {
        // 55P03 lock_not_available: lock_timeout expired.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => refresh_in_progress(),
        _ => Error::from(e),
    }
}

/// Unavailable `REFRESH_IN_PROGRESS`: another refresh of the integration holds it too long.
pub fn refresh_in_progress() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        Reason::RefreshInProgress,
        "another refresh of this integration is taking long; retry shortly",
    )
    .with_retry_after(std::time::Duration::from_secs(1))
}

/// Claims the refresh of a connected integration for `lease`, unless it is being disconnected,
/// someone holds an unexpired lease, its credential version moved past `seen`, or it was
/// refreshed less than `reuse` ago. Returns the lease when claimed.
pub async fn claim_refresh(
    pool: &sqlx::PgPool,
    id: IntegrationId,
    seen: i64,
    reuse: std::time::Duration,
    lease: std::time::Duration,
    wait: std::time::Duration,
) -> Result<Option<Lease>, Error> {
    let holder = Uuid::new_v4();
    let mut tx = lease_tx(pool, wait).await?;
    let version: Option<i64> = sqlx::query_scalar(
        "UPDATE integrations
         SET refresh_lease_holder = $2, refresh_lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1 AND status = 'connected' AND disconnecting_at IS NULL
           AND (refresh_lease_until IS NULL OR refresh_lease_until <= clock_timestamp())
           AND credential_version = $4
           AND (tokens_refreshed_at IS NULL
                OR tokens_refreshed_at <= clock_timestamp() - make_interval(secs => $5))
         RETURNING credential_version",
    )
    .bind(id.0)
    .bind(holder)
    .bind(lease.as_secs_f64())
    .bind(seen)
    .bind(reuse.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await
    .map_err(lock_wait_error)?;
    tx.commit().await?;
    Ok(version.map(|version| Lease { holder, version }))
}

/// Takes the refresh lease of an integration that is not revoked, whatever its state, once no
/// unexpired lease is held: a disconnect holds it so that no refresh is in flight while it
/// revokes.
pub async fn take_lease_for_disconnect(
    pool: &sqlx::PgPool,
    id: IntegrationId,
    lease: std::time::Duration,
    wait: std::time::Duration,
) -> Result<Option<Lease>, Error> {
    let holder = Uuid::new_v4();
    let mut tx = lease_tx(pool, wait).await?;
    let version: Option<i64> = sqlx::query_scalar(
        "UPDATE integrations
         SET refresh_lease_holder = $2, refresh_lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1 AND status <> 'revoked'
           AND (refresh_lease_until IS NULL OR refresh_lease_until <= clock_timestamp())
         RETURNING credential_version",
    )
    .bind(id.0)
    .bind(holder)
    .bind(lease.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await
    .map_err(lock_wait_error)?;
    tx.commit().await?;
    Ok(version.map(|version| Lease { holder, version }))
}

/// Gives a lease back (a failed refresh). Returns the credential version when `holder` still
/// held it, None when someone else took it after it ran out.
pub async fn release_lease(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
    lease: Lease,
) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE integrations SET refresh_lease_holder = NULL, refresh_lease_until = NULL
         WHERE id = $1 AND refresh_lease_holder = $2
         RETURNING credential_version",
    )
    .bind(id.0)
    .bind(lease.holder)
    .fetch_optional(exec)
    .await?)
}

/// Marks the integration as being disconnected, so that no refresh starts from now on.
/// Returns false when it is already revoked (or is not the workspace's).
pub async fn mark_disconnecting(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<bool, Error> {
    let marked: Option<bool> = sqlx::query_scalar(
        "UPDATE integrations SET disconnecting_at = coalesce(disconnecting_at, now())
         WHERE workspace_id = $1 AND id = $2 AND status <> 'revoked'
         RETURNING true",
    )
    .bind(workspace.0)
    .bind(id.0)
    .fetch_optional(exec)
    .await?;
    Ok(marked.is_some())
}

/// New tokens are stored, if `lease` still holds (compare-and-set on the holder and the
/// credential version it was taken at) and the integration was not disconnected meanwhile:
/// bump the version, clear failures and the lease, record the expiry (None when the provider
/// gave none) and the granted scopes when the provider restated them. Returns false, having
/// written nothing, when the lease no longer holds: the caller must not store the tokens.
pub async fn record_refresh(
    conn: &mut PgConnection,
    id: IntegrationId,
    lease: Lease,
    expires_at: Option<DateTime<Utc>>,
    scopes: &[String],
) -> Result<bool, Error> {
    let stored = sqlx::query(
        "UPDATE integrations SET credential_version = credential_version + 1, tokens_refreshed_at = now(),
             credential_expires_at = $2, scopes = CASE WHEN cardinality($3::text[]) > 0 THEN $3 ELSE scopes END,
             refresh_failures = 0, next_refresh_attempt_at = NULL, refresh_claimed_until = NULL,
             refresh_lease_holder = NULL, refresh_lease_until = NULL,
             status = 'connected',
             status_reason = CASE WHEN status_reason = 'SCOPE_MISSING' THEN status_reason ELSE NULL END,
             updated_at = now()
         WHERE id = $1 AND refresh_lease_holder = $4 AND credential_version = $5
           AND status <> 'revoked'",
    )
    .bind(id.0)
    .bind(expires_at)
    .bind(scopes)
    .bind(lease.holder)
    .bind(lease.version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// A transient refresh failure: back off before the background loop tries again.
pub async fn record_refresh_failure(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
    backoff: std::time::Duration,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET refresh_failures = refresh_failures + 1, refresh_claimed_until = NULL,
             next_refresh_attempt_at = now() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(backoff.as_secs_f64())
    .execute(exec)
    .await?;
    Ok(())
}

/// Claims integrations whose access token expires within `ahead`, or whose grant has not
/// been refreshed for `keepalive` (providers drop unused refresh tokens), for `lease`, skipping
/// rows another replica holds. Returns (id, credential_version, consecutive failures).
pub async fn claim_due_refreshes(
    exec: impl PgExecutor<'_>,
    ahead: std::time::Duration,
    keepalive: std::time::Duration,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<(IntegrationId, i64, i32)>, Error> {
    let rows: Vec<(Uuid, i64, i32)> = sqlx::query_as(
        "UPDATE integrations SET refresh_claimed_until = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM integrations
             WHERE status = 'connected' AND disconnecting_at IS NULL
               AND 'refresh_token' = ANY(credential_fields)
               AND (credential_expires_at <= now() + make_interval(secs => $1)
                    OR coalesce(tokens_refreshed_at, created_at) < now() - make_interval(secs => $4))
               AND (refresh_claimed_until IS NULL OR refresh_claimed_until < now())
               AND (next_refresh_attempt_at IS NULL OR next_refresh_attempt_at <= now())
             ORDER BY credential_expires_at NULLS LAST
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         RETURNING id, credential_version, refresh_failures",
    )
    .bind(ahead.as_secs_f64())
    .bind(lease.as_secs_f64())
    .bind(limit)
    .bind(keepalive.as_secs_f64())
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, v, f)| (IntegrationId(id), v, f))
        .collect())
}
