//! `credentials`: one sealed row per credential field, and rewrapping them under the active key.
//!
//! The AAD of each value names the workspace of its integration (v2), read from `integrations`
//! on every seal and open, so an integration moved to another workspace no longer opens.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::sealed::{self, RewrapBatch};
use crate::domain::{IntegrationId, Secret, WorkspaceId};
use crate::error::Error;
use crate::secrets::{AadVersion, KeyRing, SealContext};

/// Seals each field under the active key and stores it, replacing any previous value.
pub async fn put(
    conn: &mut PgConnection,
    keyring: &KeyRing,
    integration: IntegrationId,
    fields: &BTreeMap<&str, Secret<String>>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    // The workspace goes into the AAD; taken from the row itself so no caller can pass another.
    let workspace: Uuid = sqlx::query_scalar("SELECT workspace_id FROM integrations WHERE id = $1")
        .bind(integration.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "credentials for integration {integration}, which does not exist"
            ))
        })?;
    for (field, value) in fields {
        let ctx = SealContext::credential(WorkspaceId(workspace), integration.0, field);
        let sealed = keyring
            .seal(&ctx, value.expose().as_bytes())
            .map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO credentials (integration_id, field, key_id, nonce, ciphertext, expires_at,
                 aad_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (integration_id, field) DO UPDATE
             SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                 aad_version = EXCLUDED.aad_version, expires_at = EXCLUDED.expires_at, version = credentials.version + 1, updated_at = now()",
        )
        .bind(integration.0)
        .bind(field)
        .bind(sealed.key_id.as_str())
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(expires_at)
        .bind(sealed.aad.as_column())
        .execute(&mut *conn)
        .await?;
    }
    sync_field_names(conn, integration).await
}

/// Keeps `integrations.credential_fields` equal to the fields stored here, in the caller's
/// transaction, so listing integrations needs no join.
async fn sync_field_names(
    conn: &mut PgConnection,
    integration: IntegrationId,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET credential_fields = ARRAY(
             SELECT field FROM credentials WHERE integration_id = $1 ORDER BY field)
         WHERE id = $1",
    )
    .bind(integration.0)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    integration_id: Uuid,
    workspace_id: Uuid,
    field: String,
    key_id: String,
    aad_version: i16,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The columns of `SealedRow`, from `credentials c JOIN integrations i`.
macro_rules! sealed_columns {
    () => {
        "c.integration_id, i.workspace_id, c.field, c.key_id, c.aad_version, c.nonce, c.ciphertext"
    };
}

impl SealedRow {
    fn ctx(&self) -> SealContext<'_> {
        SealContext::credential(
            WorkspaceId(self.workspace_id),
            self.integration_id,
            &self.field,
        )
    }

    fn stored(&self) -> (&str, i16, &[u8], &[u8]) {
        (
            &self.key_id,
            self.aad_version,
            &self.nonce,
            &self.ciphertext,
        )
    }

    fn open(&self, keyring: &KeyRing) -> Result<Secret<String>, Error> {
        let (key_id, aad, nonce, ciphertext) = self.stored();
        // A row that fails to open was tampered with, moved, or sealed under a key we no longer
        // hold: all operator problems, so the caller sees "internal error" and the log says which.
        sealed::from_columns(key_id, aad, nonce, ciphertext)
            .and_then(|sealed| keyring.open_string(&self.ctx(), &sealed))
            .map_err(|e| {
                Error::internal(anyhow::Error::new(e).context(format!(
                    "credential {} of integration {} does not open",
                    self.field, self.integration_id
                )))
            })
    }
}

/// Opened credential fields by name.
pub type Opened = BTreeMap<String, Secret<String>>;

/// The credential columns of a LEFT JOIN: absent for an integration without credentials.
#[derive(sqlx::FromRow)]
pub struct MaybeSealed {
    c_field: Option<String>,
    c_key_id: Option<String>,
    c_aad_version: Option<i16>,
    c_nonce: Option<Vec<u8>>,
    c_ciphertext: Option<Vec<u8>>,
}

impl MaybeSealed {
    /// Opens the field, if the row has one, into `out`. `workspace` is the integration row's.
    pub fn open_into(
        self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        keyring: &KeyRing,
        out: &mut Opened,
    ) -> Result<(), Error> {
        if let (Some(field), Some(key_id), Some(aad_version), Some(nonce), Some(ciphertext)) = (
            self.c_field,
            self.c_key_id,
            self.c_aad_version,
            self.c_nonce,
            self.c_ciphertext,
        ) {
            let row = SealedRow {
                integration_id: integration.0,
                workspace_id: workspace.0,
                field,
                key_id,
                aad_version,
                nonce,
                ciphertext,
            };
            let value = row.open(keyring)?;
            out.insert(row.field, value);
        }
        Ok(())
    }
}

/// Opens every credential field of an integration.
pub async fn open_all(
    exec: impl PgExecutor<'_>,
    keyring: &KeyRing,
    integration: IntegrationId,
) -> Result<BTreeMap<String, Secret<String>>, Error> {
    let rows: Vec<SealedRow> = sqlx::query_as(concat!(
        "SELECT ",
        sealed_columns!(),
        " FROM credentials c JOIN integrations i ON i.id = c.integration_id
         WHERE c.integration_id = $1"
    ))
    .bind(integration.0)
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| Ok((r.field.clone(), r.open(keyring)?)))
        .collect()
}

pub async fn delete_all(conn: &mut PgConnection, integration: IntegrationId) -> Result<u64, Error> {
    let done = sqlx::query("DELETE FROM credentials WHERE integration_id = $1")
        .bind(integration.0)
        .execute(&mut *conn)
        .await?;
    sync_field_names(conn, integration).await?;
    Ok(done.rows_affected())
}

/// How many credential rows are sealed under a key other than the active one, or with an older
/// AAD version.
pub async fn count_needing_rewrap(pool: &PgPool, keyring: &KeyRing) -> Result<i64, Error> {
    sealed::count_needing_rewrap(
        pool,
        keyring,
        "SELECT count(*) FROM credentials WHERE key_id <> $1 OR aad_version <> $2",
    )
    .await
}

/// Where a credentials rewrap goes on from: the last (integration, field) it saw.
pub type Cursor = (Uuid, String);

/// Re-seals up to `batch` rows after `after` under the active key and the current AAD version,
/// in one transaction. Rows locked by another rewrapper are skipped, so several can run at
/// once; rows that do not open are reported and left as they are.
pub async fn rewrap_batch(
    pool: &PgPool,
    keyring: &KeyRing,
    after: Option<&Cursor>,
    batch: i64,
) -> Result<RewrapBatch<Cursor>, Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<SealedRow> = sqlx::query_as(concat!(
        "SELECT ",
        sealed_columns!(),
        " FROM credentials c JOIN integrations i ON i.id = c.integration_id
         WHERE (c.key_id <> $1 OR c.aad_version <> $2)
           AND ($3::uuid IS NULL OR (c.integration_id, c.field) > ($3, $4))
         ORDER BY c.integration_id, c.field LIMIT $5 FOR UPDATE OF c SKIP LOCKED"
    ))
    .bind(keyring.active_id().as_str())
    .bind(AadVersion::CURRENT.as_column())
    .bind(after.map(|a| a.0))
    .bind(after.map_or("", |a| a.1.as_str()))
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let mut done = RewrapBatch::new();
    for row in &rows {
        let Some(sealed) = done.reseal(keyring, &row.ctx(), row.stored()) else {
            continue;
        };
        sqlx::query(
            "UPDATE credentials SET key_id = $3, aad_version = $4, nonce = $5, ciphertext = $6,
                 version = version + 1, updated_at = now()
             WHERE integration_id = $1 AND field = $2",
        )
        .bind(row.integration_id)
        .bind(&row.field)
        .bind(sealed.key_id.as_str())
        .bind(sealed.aad.as_column())
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    done.last = rows.last().map(|r| (r.integration_id, r.field.clone()));
    Ok(done)
}
