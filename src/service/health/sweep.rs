//! The sweep: every replica that runs it claims due integrations (`FOR UPDATE SKIP LOCKED`, a
//! lease, committed), probes them outside any transaction a few at a time, and reschedules
//! each. A replica that dies mid-probe frees its claims when their lease runs out. Also the
//! retention of history and events, in small batches.

use std::time::Duration;

use tokio::task::JoinSet;

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
    /// Probes every due integration until none is due. Rows are claimed only when a probe
    /// slot is free for them, so every claimed probe starts at once and finishes within its
    /// deadline: the lease (twice that, plus a second) never runs out under a live sweeper.
    pub async fn sweep(&self) -> Result<Sweep, Error> {
        let concurrency = self.settings.sweep_concurrency.max(1);
        // Claim in batches of a quarter of the slots: fewer claim queries, probes still start
        // as soon as they are claimed.
        let batch = (concurrency / 4).max(1);
        let probe_budget = self.operations.default_deadline();
        let lease = probe_budget * 2 + Duration::from_secs(1);
        let mut sweep = Sweep::default();
        // Each probe is a task of its own: in one task (a FuturesUnordered) they would all run
        // on one worker thread, and the service's share of a probe (SQL, decryption, JSON)
        // capped a replica at one core.
        let mut running = JoinSet::new();
        let mut exhausted = false;
        loop {
            let free = concurrency - running.len();
            if !exhausted && (free >= batch || running.is_empty()) {
                let claimed =
                    store::health::claim_due(&self.db, lease, i64::try_from(free).unwrap_or(1))
                        .await;
                let claimed = match claimed {
                    Ok(c) => c,
                    // Probes under way still finish and are recorded.
                    Err(e) if !running.is_empty() => {
                        tracing::warn!(reason = %e.reason(), "the sweep cannot claim more; finishing those under way");
                        exhausted = true;
                        Vec::new()
                    }
                    Err(e) => return Err(e),
                };
                exhausted |= claimed.len() < free;
                for (workspace, id) in claimed {
                    let this = self.clone();
                    running.spawn(
                        async move { this.probe_claimed(workspace, id, probe_budget).await },
                    );
                }
            }
            match running.join_next().await {
                Some(Ok(result)) => sweep.record(&result),
                // A probe that panicked: its claim lapses with the lease and it is retried.
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a probe task ended abnormally");
                    sweep.failed += 1;
                }
                None if exhausted => return Ok(sweep),
                None => {}
            }
        }
    }

    /// One claimed probe, recorded; a failure of ours frees the claim for a later retry.
    async fn probe_claimed(
        self,
        workspace: crate::domain::WorkspaceId,
        id: crate::domain::IntegrationId,
        budget: Duration,
    ) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + budget;
        match self.probe(workspace, id, deadline).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(integration_id = %id, reason = %e.reason(), "could not probe an integration");
                metrics::counter!("fh_health_checks_total", "source" => "probe", "result" => "error")
                    .increment(1);
                let retry = RETRY_OURS.min(self.settings.check_interval);
                store::health::release(&self.db, id, retry).await?;
                Err(e)
            }
        }
    }

    /// Deletes history and events past their retention, a batch at a time.
    pub async fn prune(&self) -> Result<Sweep, Error> {
        let mut done = 0u64;
        loop {
            let n = store::health_events::prune_events(
                &self.db,
                self.settings.event_retention,
                PRUNE_BATCH,
            )
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
