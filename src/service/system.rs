//! Operator use cases: readiness, the connection pool's figures, and re-sealing every credential
//! under the active key (`keys rewrap`).

use std::sync::Arc;

use crate::error::Error;
use crate::secrets::KeyRing;
use crate::store::{self, Database};

/// What a rewrap did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewrapReport {
    pub rewrapped: u64,
    /// Still under other keys when it ended: rows a concurrent rewrap held locked.
    pub left: i64,
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

    /// How many credentials are sealed under keys other than the active one.
    pub async fn credentials_to_rewrap(&self) -> Result<i64, Error> {
        store::credentials::count_needing_rewrap(&self.db.pool, &self.keyring).await
    }

    /// Re-seals every credential under the active key in batches of `batch` rows (each its own
    /// transaction, `SKIP LOCKED`, so it runs safely beside serving replicas and other
    /// rewraps). `progress` hears the running count after each batch.
    pub async fn rewrap(
        &self,
        batch: i64,
        mut progress: impl FnMut(u64),
    ) -> Result<RewrapReport, Error> {
        let pool = &self.db.pool;
        let mut rewrapped = 0u64;
        loop {
            let n = store::credentials::rewrap_batch(pool, &self.keyring, batch.clamp(1, 10_000))
                .await?;
            if n == 0 {
                break;
            }
            rewrapped += n;
            progress(rewrapped);
        }
        let left = self.credentials_to_rewrap().await?;
        Ok(RewrapReport { rewrapped, left })
    }
}
