//! Shared by every table that holds sealed values: reading the stored columns back into a
//! `Sealed`, counting and rewrapping rows, and what one batch of `keys rewrap` did.

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::secrets::{AadVersion, KeyId, KeyRing, KeyringError, SealContext, Sealed};

/// The stored columns of one sealed value, as a `Sealed`.
///
/// # Errors
/// A key id or AAD version that does not parse: the row was written by something else.
pub fn from_columns(
    key_id: &str,
    aad_version: i16,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Sealed, KeyringError> {
    Ok(Sealed {
        key_id: KeyId::parse(key_id)?,
        aad: AadVersion::from_column(aad_version)?,
        nonce: nonce.to_vec(),
        ciphertext: ciphertext.to_vec(),
    })
}

/// A stored value that did not open during a rewrap: skipped, left as it is.
#[derive(Debug)]
pub struct Unopenable {
    /// The row anchoring the value (integration, oauth state, queued revocation).
    pub row_id: Uuid,
    pub field: String,
    pub key_id: String,
    pub error: KeyringError,
}

/// One batch of a rewrap, over rows after a cursor.
#[derive(Debug)]
pub struct RewrapBatch<K> {
    /// Rows re-sealed under the active key and the current AAD version.
    pub rewrapped: u64,
    /// Rows that did not open: unchanged, so the next batch goes past them by the cursor.
    pub unopenable: Vec<Unopenable>,
    /// Where the next batch starts; `None` when this batch found no row.
    pub last: Option<K>,
}

impl<K> RewrapBatch<K> {
    pub(super) fn new() -> Self {
        RewrapBatch {
            rewrapped: 0,
            unopenable: Vec::new(),
            last: None,
        }
    }

    /// Re-seals one row's value: `Some` with the new value to write, or `None` when it does
    /// not open (noted, and the row stays as it is).
    pub(super) fn reseal(
        &mut self,
        keyring: &KeyRing,
        ctx: &SealContext<'_>,
        stored: (&str, i16, &[u8], &[u8]),
    ) -> Option<Sealed> {
        let (key_id, aad_version, nonce, ciphertext) = stored;
        match from_columns(key_id, aad_version, nonce, ciphertext)
            .and_then(|sealed| keyring.reseal(ctx, &sealed))
        {
            Ok(sealed) => {
                self.rewrapped += 1;
                Some(sealed)
            }
            Err(error) => {
                self.unopenable.push(Unopenable {
                    row_id: ctx.row_id,
                    field: ctx.field.to_owned(),
                    key_id: key_id.to_owned(),
                    error,
                });
                None
            }
        }
    }
}

/// How many rows `sql` counts; its `$1` is the active key id, `$2` the current AAD version.
pub(super) async fn count_needing_rewrap(
    pool: &PgPool,
    keyring: &KeyRing,
    sql: &'static str,
) -> Result<i64, Error> {
    let n: i64 = sqlx::query_scalar(sql)
        .bind(keyring.active_id().as_str())
        .bind(AadVersion::CURRENT.as_column())
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// The one sealed value of a row keyed by a uuid (`oauth_states`, `pending_revocations`), as the
/// `select` of [`rewrap_by_id`] names its columns.
#[derive(sqlx::FromRow)]
struct ById {
    id: Uuid,
    workspace_id: Option<Uuid>,
    key_id: String,
    aad_version: i16,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// A rewrap batch of a table keyed by a uuid. `select` returns the `ById` columns of rows that
/// need a rewrap ($1 active key id, $2 current AAD version, $3 cursor or NULL, $4 limit), locked
/// `FOR UPDATE SKIP LOCKED`; `update` writes one ($1 id, $2 workspace, $3 key id, $4 AAD version,
/// $5 nonce, $6 ciphertext). A row without a workspace cannot be bound to one: skipped, left.
pub(super) async fn rewrap_by_id(
    pool: &PgPool,
    keyring: &KeyRing,
    (after, batch): (Option<Uuid>, i64),
    (select, update): (&'static str, &'static str),
    context: fn(WorkspaceId, Uuid) -> SealContext<'static>,
) -> Result<RewrapBatch<Uuid>, Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<ById> = sqlx::query_as(select)
        .bind(keyring.active_id().as_str())
        .bind(AadVersion::CURRENT.as_column())
        .bind(after)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
    let mut done = RewrapBatch::new();
    for row in &rows {
        let Some(workspace) = row.workspace_id else {
            continue;
        };
        let ctx = context(WorkspaceId(workspace), row.id);
        let stored = (
            row.key_id.as_str(),
            row.aad_version,
            row.nonce.as_slice(),
            row.ciphertext.as_slice(),
        );
        let Some(sealed) = done.reseal(keyring, &ctx, stored) else {
            continue;
        };
        sqlx::query(update)
            .bind(row.id)
            .bind(workspace)
            .bind(sealed.key_id.as_str())
            .bind(sealed.aad.as_column())
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    done.last = rows.last().map(|r| r.id);
    Ok(done)
}
