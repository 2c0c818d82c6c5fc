use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{
    HealthState, Integration, IntegrationId, IntegrationStatus, Platform, UserId, WorkspaceId,
};
use crate::error::{Error, ErrorKind};

/// The unique index behind "one connection per workspace + platform + provider account".
const ACCOUNT_KEY: &str = "integrations_workspace_platform_account_key";

macro_rules! select {
    ($($tail:literal)*) => {
        concat!(
            "SELECT i.id, i.workspace_id, i.platform, i.status, i.status_reason, i.display_name, \
             i.metadata, i.provider_account_id, i.scopes, i.health_state, i.credential_expires_at, \
             i.last_check_at, i.created_at, i.updated_at, i.credential_fields \
             FROM integrations i ",
            $($tail),*
        )
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
            status: IntegrationStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            status_reason: r.status_reason,
            display_name: r.display_name,
            metadata: r.metadata.0,
            provider_account_id: r.provider_account_id,
            scopes: r.scopes,
            health_state: HealthState::parse(&r.health_state)
                .ok_or_else(|| bad("health_state", &r.health_state))?,
            credential_fields: r.credential_fields,
            credential_expires_at: r.credential_expires_at,
            last_check_at: r.last_check_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
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
}

pub async fn insert(conn: &mut PgConnection, new: &NewIntegration<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO integrations (id, workspace_id, platform, status, display_name, metadata,
             provider_account_id, scopes, credential_expires_at, created_by)
         VALUES ($1, $2, $3, 'connected', $4, $5, $6, $7, $8, $9)",
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
    .execute(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some(ACCOUNT_KEY) => Error::new(
            ErrorKind::AlreadyExists,
            "INTEGRATION_ALREADY_EXISTS",
            format!(
                "this workspace already has a {} integration for that account",
                new.platform
            ),
        )
        .with_metadata("platform", new.platform.as_str()),
        _ => Error::from(e),
    })?;
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
             health_state = 'revoked', credential_expires_at = NULL, revoked_at = now(),
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}
