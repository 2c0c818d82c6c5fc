//! The `integrations` table: connections, their status, and the refresh bookkeeping.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{
    CONNECTED, ConnectionType, DISCONNECTED, HealthState, Integration, IntegrationId,
    IntegrationStatus, Platform, RECONNECTED, UserId, WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};

/// The unique index behind "one connection per workspace + platform + provider account".
const ACCOUNT_KEY: &str = "integrations_workspace_platform_account_key";

macro_rules! columns {
    () => {
        "i.id, i.workspace_id, i.platform, i.status, i.status_reason, i.display_name, \
         i.metadata, i.provider_account_id, i.scopes, i.health_state, i.credential_expires_at, \
         i.last_check_at, i.created_at, i.updated_at, i.credential_fields, i.connection_type, \
         i.credential_version, i.health_reason, i.health_message, i.next_check_at, \
         i.health_failures, i.health_successes"
    };
}

macro_rules! select {
    ($($tail:literal)*) => {
        concat!("SELECT ", columns!(), " FROM integrations i ", $($tail),*)
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    platform: String,
    status: String,
    status_reason: Option<String>,
    display_name: String,
    metadata: sqlx::types::Json<Map<String, Value>>,
    provider_account_id: String,
    scopes: Vec<String>,
    health_state: String,
    credential_expires_at: Option<DateTime<Utc>>,
    last_check_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    credential_fields: Vec<String>,
    connection_type: String,
    credential_version: i64,
    health_reason: Option<String>,
    health_message: String,
    next_check_at: DateTime<Utc>,
    health_failures: i32,
    health_successes: i32,
}

impl TryFrom<Row> for Integration {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        // CHECK constraints keep these in range; a mismatch means schema and code disagree.
        let bad = |col: &str, v: &str| {
            Error::internal(anyhow::anyhow!(
                "unexpected {col} {v:?} in integrations row"
            ))
        };
        Ok(Integration {
            id: IntegrationId(r.id),
            workspace_id: WorkspaceId(r.workspace_id),
            platform: Platform::parse(&r.platform).ok_or_else(|| bad("platform", &r.platform))?,
            connection_type: ConnectionType::parse(&r.connection_type)
                .ok_or_else(|| bad("connection_type", &r.connection_type))?,
            status: IntegrationStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            status_reason: r.status_reason,
            display_name: r.display_name,
            metadata: r.metadata.0,
            provider_account_id: r.provider_account_id,
            scopes: r.scopes,
            health_state: HealthState::parse(&r.health_state)
                .ok_or_else(|| bad("health_state", &r.health_state))?,
            health_reason: r.health_reason,
            health_message: r.health_message,
            next_check_at: r.next_check_at,
            health_failures: u32::try_from(r.health_failures).unwrap_or(0),
            health_successes: u32::try_from(r.health_successes).unwrap_or(0),
            credential_fields: r.credential_fields,
            credential_expires_at: r.credential_expires_at,
            credential_version: r.credential_version,
            last_check_at: r.last_check_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RowWithSealed {
    #[sqlx(flatten)]
    row: Row,
    #[sqlx(flatten)]
    sealed: super::credentials::MaybeSealed,
}

/// An integration of the workspace with its credentials opened, in one round trip: the hot
/// path of every connector call.
pub async fn get_opened(
    exec: impl PgExecutor<'_>,
    keyring: &crate::secrets::KeyRing,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<Option<(Integration, super::credentials::Opened)>, Error> {
    let rows: Vec<RowWithSealed> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        ", c.field AS c_field, c.key_id AS c_key_id, c.aad_version AS c_aad_version, \
         c.nonce AS c_nonce, c.ciphertext AS c_ciphertext \
         FROM integrations i LEFT JOIN credentials c ON c.integration_id = i.id \
         WHERE i.workspace_id = $1 AND i.id = $2"
    ))
    .bind(workspace.0)
    .bind(id.0)
    .fetch_all(exec)
    .await?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let mut opened = super::credentials::Opened::new();
    first
        .sealed
        .open_into(workspace, id, keyring, &mut opened)?;
    for r in rows {
        r.sealed.open_into(workspace, id, keyring, &mut opened)?;
    }
    Ok(Some((Integration::try_from(first.row)?, opened)))
}

/// What a new integration row holds.
pub struct NewIntegration<'a> {
    pub id: IntegrationId,
    pub workspace_id: WorkspaceId,
    pub platform: Platform,
    pub display_name: &'a str,
    pub metadata: &'a Map<String, Value>,
    pub provider_account_id: &'a str,
    pub scopes: &'a [String],
    pub credential_expires_at: Option<DateTime<Utc>>,
    pub created_by: UserId,
    /// Slack's bot user, as Slack named it (see `count_sharing_bot_token`).
    pub bot_user_id: Option<&'a str>,
}

pub async fn insert(conn: &mut PgConnection, new: &NewIntegration<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO integrations (id, workspace_id, platform, status, display_name, metadata,
             provider_account_id, scopes, credential_expires_at, created_by, bot_user_id)
         VALUES ($1, $2, $3, 'connected', $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id.0)
    .bind(new.workspace_id.0)
    .bind(new.platform.as_str())
    .bind(new.display_name)
    .bind(sqlx::types::Json(new.metadata))
    .bind(new.provider_account_id)
    .bind(new.scopes)
    .bind(new.credential_expires_at)
    .bind(new.created_by.0)
    .bind(new.bot_user_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some(ACCOUNT_KEY) => Error::new(
            ErrorKind::AlreadyExists,
            Reason::IntegrationAlreadyExists,
            format!(
                "this workspace already has a {} integration for that account",
                new.platform
            ),
        )
        .with_metadata("platform", new.platform.as_str()),
        _ => Error::from(e),
    })?;
    let message = format!("{} connected", new.platform.title());
    super::health::transition(
        conn,
        new.id,
        HealthState::Unknown,
        CONNECTED,
        &message,
        true,
        true,
    )
    .await?;
    Ok(())
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<Option<Integration>, Error> {
    let row: Option<Row> = sqlx::query_as(select!("WHERE i.workspace_id = $1 AND i.id = $2"))
        .bind(workspace.0)
        .bind(id.0)
        .fetch_optional(exec)
        .await?;
    row.map(Integration::try_from).transpose()
}

/// Locks the row for the rest of the transaction.
pub async fn get_for_update(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<Option<Integration>, Error> {
    let row: Option<Row> = sqlx::query_as(select!(
        "WHERE i.workspace_id = $1 AND i.id = $2 FOR UPDATE OF i"
    ))
    .bind(workspace.0)
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    row.map(Integration::try_from).transpose()
}

/// One page in id order (creation order), after `after` when given.
pub async fn list(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    after: Option<IntegrationId>,
    platform: Option<Platform>,
    status: Option<IntegrationStatus>,
    limit: i64,
) -> Result<Vec<Integration>, Error> {
    let rows: Vec<Row> = sqlx::query_as(select!(
        "WHERE i.workspace_id = $1 AND ($2::uuid IS NULL OR i.id > $2) "
        "AND ($3::text IS NULL OR i.platform = $3) AND ($4::text IS NULL OR i.status = $4) "
        "ORDER BY i.id LIMIT $5"
    ))
    .bind(workspace.0)
    .bind(after.map(|a| a.0))
    .bind(platform.map(Platform::as_str))
    .bind(status.map(IntegrationStatus::as_str))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(Integration::try_from).collect()
}

/// The workspace's live (not disconnected) integrations of `platforms` (all when empty), in id
/// order.
pub async fn list_live(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    platforms: &[Platform],
    limit: i64,
) -> Result<Vec<Integration>, Error> {
    let platforms: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
    let rows: Vec<Row> = sqlx::query_as(select!(
        "WHERE i.workspace_id = $1 AND i.status <> 'revoked' "
        "AND (cardinality($2::text[]) = 0 OR i.platform = ANY($2)) ORDER BY i.id LIMIT $3"
    ))
    .bind(workspace.0)
    .bind(&platforms)
    .bind(limit)
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(Integration::try_from).collect()
}

pub async fn update_details(
    conn: &mut PgConnection,
    id: IntegrationId,
    display_name: &str,
    metadata: &Map<String, Value>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET display_name = $2, metadata = $3, updated_at = now() WHERE id = $1",
    )
    .bind(id.0)
    .bind(display_name)
    .bind(sqlx::types::Json(metadata))
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a disconnected integration; its credentials are deleted in the same transaction.
pub async fn mark_revoked(conn: &mut PgConnection, id: IntegrationId) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET status = 'revoked', status_reason = 'DISCONNECTED',
             credential_expires_at = NULL, revoked_at = now(), check_claimed_until = NULL,
             refresh_lease_holder = NULL, refresh_lease_until = NULL, disconnecting_at = NULL,
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    super::health::transition(
        conn,
        id,
        HealthState::Revoked,
        DISCONNECTED,
        "disconnected",
        true,
        false,
    )
    .await?;
    Ok(())
}

/// Creates the integration an OAuth grant produced, or, when the workspace already has a live
/// one for that provider account, updates it (reconnecting is not an error; its health starts
/// again from UNKNOWN and it is probed at once). Returns its id.
pub async fn upsert_oauth(
    conn: &mut PgConnection,
    new: &NewIntegration<'_>,
    status_reason: Option<Reason>,
) -> Result<IntegrationId, Error> {
    let (id, inserted): (Uuid, bool) = sqlx::query_as(
        "INSERT INTO integrations (id, workspace_id, platform, status, status_reason, display_name,
             metadata, provider_account_id, scopes, credential_expires_at, created_by, connection_type,
             bot_user_id)
         VALUES ($1, $2, $3, 'connected', $10, $4, $5, $6, $7, $8, $9, 'oauth', $11)
         ON CONFLICT (workspace_id, platform, provider_account_id)
             WHERE status <> 'revoked' AND (provider_account_id <> '' OR connection_type <> 'oauth')
         DO UPDATE SET status = 'connected', status_reason = EXCLUDED.status_reason,
             bot_user_id = EXCLUDED.bot_user_id,
             metadata = integrations.metadata || EXCLUDED.metadata, scopes = EXCLUDED.scopes,
             credential_expires_at = EXCLUDED.credential_expires_at, connection_type = 'oauth',
             credential_version = integrations.credential_version + 1, refresh_failures = 0,
             next_refresh_attempt_at = NULL, tokens_refreshed_at = NULL, updated_at = now()
         RETURNING id, xmax = 0",
    )
    .bind(new.id.0)
    .bind(new.workspace_id.0)
    .bind(new.platform.as_str())
    .bind(new.display_name)
    .bind(sqlx::types::Json(new.metadata))
    .bind(new.provider_account_id)
    .bind(new.scopes)
    .bind(new.credential_expires_at)
    .bind(new.created_by.0)
    .bind(status_reason.map(Reason::as_str))
    .bind(new.bot_user_id)
    .fetch_one(&mut *conn)
    .await?;
    // xmax is 0 on a row this statement inserted, and set on one it updated.
    let (reason, verb) = if inserted {
        (CONNECTED, "connected")
    } else {
        (RECONNECTED, "reconnected")
    };
    let message = format!("{} {verb}", new.platform.title());
    super::health::transition(
        conn,
        IntegrationId(id),
        HealthState::Unknown,
        reason,
        &message,
        true,
        true,
    )
    .await?;
    Ok(IntegrationId(id))
}

/// The provider says the grant is gone: a person must reconnect; background refresh stops.
pub async fn mark_needs_reauth(
    conn: &mut PgConnection,
    id: IntegrationId,
    reason: Reason,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET status = 'needs_reauth', status_reason = $2,
             refresh_claimed_until = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(reason.as_str())
    .execute(&mut *conn)
    .await?;
    super::health::transition(
        conn,
        id,
        HealthState::NeedsReauth,
        reason.as_str(),
        "the provider no longer accepts the grant; reconnect",
        false,
        false,
    )
    .await?;
    Ok(())
}

/// Other live integrations, in any workspace, holding the same Slack bot token as `id`: the
/// same team and bot user, both as Slack named them (never a caller's claim). None when `id`'s
/// bot user is unknown (a row from before it was recorded), so nobody can tell.
pub async fn count_sharing_bot_token(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT CASE WHEN me.bot_user_id IS NULL THEN NULL ELSE (
             SELECT count(*) FROM integrations o
              WHERE o.platform = me.platform AND o.provider_account_id = me.provider_account_id
                AND o.bot_user_id = me.bot_user_id AND o.id <> me.id AND o.status <> 'revoked')
         END
         FROM integrations me WHERE me.id = $1",
    )
    .bind(id.0)
    .fetch_optional(exec)
    .await?
    .flatten())
}
