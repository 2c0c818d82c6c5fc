//! `workspaces`: created on first use, so integrations can reference them.

use sqlx::PgConnection;

use crate::domain::WorkspaceId;
use crate::error::Error;

/// Workspaces exist once a token names them; the row anchors foreign keys.
pub async fn ensure(conn: &mut PgConnection, id: WorkspaceId) -> Result<(), Error> {
    sqlx::query("INSERT INTO workspaces (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}
