//! The `oauth_states` table: one row per started authorization, used up by its callback.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{Role, UserId, WorkspaceId};
use crate::error::Error;
use crate::secrets::{KeyId, Sealed};

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
             verifier_key_id, verifier_nonce, verifier_ciphertext, return_to, redirect_uri, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    user_role: String,
    provider: String,
    platform: String,
    verifier_key_id: Option<String>,
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
    pub fn verifier(&self) -> Result<Option<Sealed>, Error> {
        match (
            &self.verifier_key_id,
            &self.verifier_nonce,
            &self.verifier_ciphertext,
        ) {
            (Some(k), Some(n), Some(c)) => Ok(Some(Sealed {
                key_id: KeyId::parse(k).map_err(Error::internal)?,
                nonce: n.clone(),
                ciphertext: c.clone(),
            })),
            _ => Ok(None),
        }
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
                verifier_nonce, verifier_ciphertext, return_to, redirect_uri,
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
