//! The sweep: every replica that runs it claims due integrations (`FOR UPDATE SKIP LOCKED`, a
//! lease, committed), probes them outside any transaction a few at a time, and reschedules
//! each. A replica that dies mid-probe frees its claims when their lease runs out. Also the
//! retention of history and events, in small batches.

use std::time::Duration;

use futures::StreamExt;

use super::Health;
use crate::error::Error;
use crate::service::Sweep;
use crate::store;

/// Rows one prune statement deletes: short statements, short locks.
const PRUNE_BATCH: i64 = 1000;
/// A probe that could not run (our failure) is tried again after this, or the interval when
/// shorter.
const RETRY_OURS: Duration = Duration::from_secs(60);

impl Health {
    /// Probes every due integration, batch after batch, until none is due.
    pub async fn sweep(&self) -> Result<Sweep, Error> {
        let concurrency = self.settings.sweep_concurrency.max(1);
        let limit = i64::try_from(concurrency * 4).unwrap_or(64);
        let probe_budget = self.operations.default_deadline();
        // The lease outlives a probe (which the deadline bounds) with room to record it.
        let lease = probe_budget * 2 + Duration::from_secs(1);
        let mut sweep = Sweep::default();
        loop {
            let claimed = store::health::claim_due(&self.db, lease, limit).await?;
            let n = claimed.len();
            let results: Vec<Result<(), Error>> = futures::stream::iter(claimed)
                .map(|(workspace, id)| async move {
                    let deadline = tokio::time::Instant::now() + probe_budget;
                    match self.probe(workspace, id, deadline).await {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            tracing::warn!(integration_id = %id, reason = %e.reason(), "could not probe an integration");
                            metrics::counter!("fh_health_checks_total", "source" => "probe", "result" => "error").increment(1);
                            let retry = RETRY_OURS.min(self.settings.check_interval);
                            store::health::release(&self.db, id, retry).await?;
                            Err(e)
                        }
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for r in &results {
                sweep.record(r);
            }
            if (n as i64) < limit {
                return Ok(sweep);
            }
        }
    }

    /// Deletes history and events past their retention, a batch at a time.
    pub async fn prune(&self) -> Result<Sweep, Error> {
        let mut done = 0u64;
        loop {
            let n =
                store::health::prune_events(&self.db, self.settings.event_retention, PRUNE_BATCH)
                    .await?;
            done += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        loop {
            let n =
                store::health::prune_checks(&self.db, self.settings.history_retention, PRUNE_BATCH)
                    .await?;
            done += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        Ok(Sweep {
            done: usize::try_from(done).unwrap_or(usize::MAX),
            failed: 0,
        })
    }

    /// How often the sweep looks for due integrations: often enough that a new connection is
    /// probed within about a second, however long the check interval.
    pub fn sweep_tick(&self) -> Duration {
        self.settings.check_interval.min(Duration::from_secs(1))
    }

    /// How often retention runs.
    pub fn prune_tick(&self) -> Duration {
        (self
            .settings
            .event_retention
            .min(self.settings.history_retention)
            / 2)
        .min(Duration::from_secs(600))
    }
}
