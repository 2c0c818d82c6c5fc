//! Operator use cases: readiness, the connection pool's figures, and re-sealing every sealed
//! value under the active key and the current AAD version (`keys rewrap`).

use std::future::Future;
use std::sync::Arc;

use crate::error::Error;
use crate::secrets::KeyRing;
use crate::store::sealed::RewrapBatch;
use crate::store::{self, Database};

/// A table that holds sealed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedTable {
    Credentials,
    PendingRevocations,
    OAuthStates,
    OAuthHandles,
}

impl SealedTable {
    /// Every one, in the order `keys rewrap` goes through them.
    pub const ALL: [SealedTable; 4] = [
        SealedTable::Credentials,
        SealedTable::PendingRevocations,
        SealedTable::OAuthStates,
        SealedTable::OAuthHandles,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SealedTable::Credentials => "credentials",
            SealedTable::PendingRevocations => "pending_revocations",
            SealedTable::OAuthStates => "oauth_states",
            SealedTable::OAuthHandles => "oauth_handles",
        }
    }
}

/// What a rewrap did to one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRewrap {
    pub table: SealedTable,
    /// Rows that needed a rewrap when it began.
    pub to_rewrap: i64,
    pub rewrapped: u64,
    /// Rows that did not open (their key is gone, or they were tampered with): logged, skipped,
    /// and left as they are.
    pub unopenable: u64,
    /// Still needing a rewrap when it ended: the unopenable rows, and rows a concurrent rewrap
    /// held locked.
    pub left: i64,
}

/// What a rewrap did, table by table (`SealedTable::ALL` order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapReport {
    pub tables: Vec<TableRewrap>,
}

impl RewrapReport {
    /// Rows left for a reason other than not opening: another rewrap held them, so running
    /// again can still move them.
    pub fn left_movable(&self) -> i64 {
        self.tables
            .iter()
            .map(|t| (t.left - i64::try_from(t.unopenable).unwrap_or(i64::MAX)).max(0))
            .sum()
    }
}

#[derive(Clone)]
pub struct System {
    db: Database,
    keyring: Arc<KeyRing>,
}

impl System {
    pub fn new(db: Database, keyring: Arc<KeyRing>) -> Self {
        Self { db, keyring }
    }

    /// True when the database answers and every migration we know has been applied.
    pub async fn ready(&self) -> bool {
        self.db.ready().await
    }

    /// Open and idle connections of the pool, for `/metrics`.
    pub fn pool_connections(&self) -> (u32, usize) {
        (self.db.pool.size(), self.db.pool.num_idle())
    }

    /// How many rows of `table` need a rewrap: sealed under another key than the active one,
    /// or with an older AAD version.
    pub async fn to_rewrap(&self, table: SealedTable) -> Result<i64, Error> {
        let (pool, ring) = (&self.db.pool, &*self.keyring);
        match table {
            SealedTable::Credentials => store::credentials::count_needing_rewrap(pool, ring).await,
            SealedTable::PendingRevocations => {
                store::revocations::count_needing_rewrap(pool, ring).await
            }
            SealedTable::OAuthStates => store::oauth_states::count_needing_rewrap(pool, ring).await,
            SealedTable::OAuthHandles => {
                store::oauth_handles::count_needing_rewrap(pool, ring).await
            }
        }
    }

    /// Re-seals every sealed value of every table under the active key and the current AAD
    /// version, in batches of `batch` rows (each its own transaction, `SKIP LOCKED`, so it runs
    /// safely beside serving replicas and other rewraps). A row that does not open is logged,
    /// counted and skipped. `progress` hears each table's running figures after every batch.
    pub async fn rewrap(
        &self,
        batch: i64,
        mut progress: impl FnMut(&TableRewrap),
    ) -> Result<RewrapReport, Error> {
        let (pool, ring) = (&self.db.pool, &*self.keyring);
        let batch = batch.clamp(1, 10_000);
        let mut tables = Vec::with_capacity(SealedTable::ALL.len());
        for table in SealedTable::ALL {
            let mut t = TableRewrap {
                table,
                to_rewrap: self.to_rewrap(table).await?,
                rewrapped: 0,
                unopenable: 0,
                left: 0,
            };
            match table {
                SealedTable::Credentials => {
                    rewrap_table(&mut t, &mut progress, |after| async move {
                        store::credentials::rewrap_batch(pool, ring, after.as_ref(), batch).await
                    })
                    .await?;
                }
                SealedTable::PendingRevocations => {
                    rewrap_table(&mut t, &mut progress, |after| {
                        store::revocations::rewrap_batch(pool, ring, after, batch)
                    })
                    .await?;
                }
                SealedTable::OAuthStates => {
                    rewrap_table(&mut t, &mut progress, |after| {
                        store::oauth_states::rewrap_batch(pool, ring, after, batch)
                    })
                    .await?;
                }
                SealedTable::OAuthHandles => {
                    rewrap_table(&mut t, &mut progress, |after| {
                        store::oauth_handles::rewrap_batch(pool, ring, after, batch)
                    })
                    .await?;
                }
            }
            t.left = self.to_rewrap(table).await?;
            tracing::info!(
                table = table.as_str(),
                key_id = %ring.active_id(),
                rewrapped = t.rewrapped,
                unopenable = t.unopenable,
                left = t.left,
                "rewrap of a table finished"
            );
            tables.push(t);
        }
        Ok(RewrapReport { tables })
    }
}

/// Runs one table's batches from the start until one finds no row, logging each row that does
/// not open. The cursor moves past every row seen, so an unopenable row never stops it.
async fn rewrap_table<K, Fut>(
    t: &mut TableRewrap,
    progress: &mut impl FnMut(&TableRewrap),
    mut next: impl FnMut(Option<K>) -> Fut,
) -> Result<(), Error>
where
    Fut: Future<Output = Result<RewrapBatch<K>, Error>>,
{
    let mut after = None;
    loop {
        let done = next(after.take()).await?;
        for u in &done.unopenable {
            tracing::warn!(
                table = t.table.as_str(),
                row_id = %u.row_id,
                field = %u.field,
                key_id = %u.key_id,
                error = %u.error,
                "a sealed value does not open; skipped and left as it is"
            );
        }
        let Some(last) = done.last else {
            return Ok(());
        };
        after = Some(last);
        t.rewrapped += done.rewrapped;
        t.unopenable += done.unopenable.len() as u64;
        progress(t);
    }
}
