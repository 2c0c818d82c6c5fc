//! `credentials`: one sealed row per credential field, and rewrapping them under the active key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::IntegrationId;
use crate::domain::Secret;
use crate::error::Error;
use crate::secrets::{KeyId, KeyRing, SealContext, Sealed};

/// Seals each field under the active key and stores it, replacing any previous value.
pub async fn put(
    conn: &mut PgConnection,
    keyring: &KeyRing,
    integration: IntegrationId,
    fields: &BTreeMap<&str, Secret<String>>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    for (field, value) in fields {
        let ctx = SealContext {
            integration_id: integration.0,
            field,
        };
        let sealed = keyring
            .seal(&ctx, value.expose().as_bytes())
            .map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO credentials (integration_id, field, key_id, nonce, ciphertext, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (integration_id, field) DO UPDATE
             SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                 expires_at = EXCLUDED.expires_at, version = credentials.version + 1, updated_at = now()",
        )
        .bind(integration.0)
        .bind(field)
        .bind(sealed.key_id.as_str())
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(expires_at)
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
    field: String,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl SealedRow {
    fn open(&self, keyring: &KeyRing) -> Result<Secret<String>, Error> {
        let key_id = KeyId::parse(&self.key_id).map_err(Error::internal)?;
        let sealed = Sealed {
            key_id,
            nonce: self.nonce.clone(),
            ciphertext: self.ciphertext.clone(),
        };
        let ctx = SealContext {
            integration_id: self.integration_id,
            field: &self.field,
        };
        // A row that fails to open was tampered with, moved, or sealed under a key we no longer
        // hold: all operator problems, so the caller sees "internal error" and the log says which.
        keyring.open_string(&ctx, &sealed).map_err(|e| {
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
    c_nonce: Option<Vec<u8>>,
    c_ciphertext: Option<Vec<u8>>,
}

impl MaybeSealed {
    /// Opens the field, if the row has one, into `out`.
    pub fn open_into(
        self,
        integration: IntegrationId,
        keyring: &KeyRing,
        out: &mut Opened,
    ) -> Result<(), Error> {
        if let (Some(field), Some(key_id), Some(nonce), Some(ciphertext)) =
            (self.c_field, self.c_key_id, self.c_nonce, self.c_ciphertext)
        {
            let row = SealedRow {
                integration_id: integration.0,
                field,
                key_id,
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
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT integration_id, field, key_id, nonce, ciphertext FROM credentials WHERE integration_id = $1",
    )
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

/// How many credential rows are sealed under a key other than the active one.
pub async fn count_needing_rewrap(pool: &PgPool, keyring: &KeyRing) -> Result<i64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials WHERE key_id <> $1")
        .bind(keyring.active_id().as_str())
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Re-seals up to `batch` rows under the active key in one transaction. Rows locked by another
/// rewrapper are skipped, so several can run at once. Returns how many rows were rewrapped.
pub async fn rewrap_batch(pool: &PgPool, keyring: &KeyRing, batch: i64) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT integration_id, field, key_id, nonce, ciphertext FROM credentials
         WHERE key_id <> $1 ORDER BY integration_id, field LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(keyring.active_id().as_str())
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let plain = row.open(keyring)?;
        let ctx = SealContext {
            integration_id: row.integration_id,
            field: &row.field,
        };
        let sealed = keyring
            .seal(&ctx, plain.expose().as_bytes())
            .map_err(Error::internal)?;
        sqlx::query(
            "UPDATE credentials SET key_id = $3, nonce = $4, ciphertext = $5,
                 version = version + 1, updated_at = now()
             WHERE integration_id = $1 AND field = $2",
        )
        .bind(row.integration_id)
        .bind(&row.field)
        .bind(sealed.key_id.as_str())
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}
