//! `audit_events`: who did what to which integration; never a secret.

use serde_json::Value;
use sqlx::PgConnection;

use crate::domain::{Caller, IntegrationId, RequestId};
use crate::error::Error;

/// Records who did what to which integration. `detail` must never hold a secret.
pub async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    integration: Option<IntegrationId>,
    action: &str,
    detail: Value,
    request_id: &RequestId,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO audit_events (workspace_id, integration_id, actor_id, actor_role, action, detail, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(caller.workspace_id.0)
    .bind(integration.map(|i| i.0))
    .bind(caller.user_id.0)
    .bind(caller.role.as_str())
    .bind(action)
    .bind(detail)
    .bind(&request_id.0)
    .execute(conn)
    .await?;
    Ok(())
}
