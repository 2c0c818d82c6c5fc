//! Background jobs, each on its own timer and each failing on its own: one job's error is
//! logged and counted, and the next tick runs it again; the other jobs never notice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::service::oauth::OAuth;
use crate::service::{Health, Sweep};

/// Ticks closer than this would only load the database.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

type RunOnce = Arc<dyn Fn() -> BoxFuture<'static, Result<Sweep, Error>> + Send + Sync>;

/// One background job: a name (the `job` label of its metrics and logs), a period, and a run.
pub struct Job {
    name: &'static str,
    every: Duration,
    run: RunOnce,
}

impl Job {
    pub fn new<F, Fut>(name: &'static str, every: Duration, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Sweep, Error>> + Send + 'static,
    {
        Self {
            name,
            every: every.max(MIN_INTERVAL),
            run: Arc::new(move || Box::pin(run())),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the job every period (plus jitter) until `shutdown`; returns only then.
    pub async fn run_until(self, shutdown: CancellationToken) {
        loop {
            // Up to 20% jitter spreads replicas that started together.
            let jitter = self.every.mul_f64(rand::random::<f64>() * 0.2);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every + jitter) => {}
            }
            // A run under way when shutdown comes finishes within the shutdown grace.
            let outcome = (self.run)().await;
            self.report(outcome);
        }
    }

    fn report(&self, outcome: Result<Sweep, Error>) {
        let job = self.name;
        let label = match &outcome {
            Ok(sweep) => {
                metrics::counter!("fh_job_rows_total", "job" => job, "outcome" => "done")
                    .increment(sweep.done as u64);
                metrics::counter!("fh_job_rows_total", "job" => job, "outcome" => "failed")
                    .increment(sweep.failed as u64);
                tracing::debug!(job, done = sweep.done, failed = sweep.failed, "job ran");
                if sweep.failed == 0 { "ok" } else { "partial" }
            }
            Err(e) => {
                tracing::warn!(job, reason = %e.reason(), cause = ?e.cause().map(|c| format!("{c:#}")), "job failed");
                "failed"
            }
        };
        metrics::counter!("fh_job_runs_total", "job" => job, "outcome" => label).increment(1);
    }
}

/// The jobs that exist today: refresh ahead of expiry, queued revocation retries, and the
/// cleanup of spent authorization states, all every `every` (`FH_REFRESH_INTERVAL`).
pub fn jobs(oauth: &OAuth, every: Duration) -> Vec<Job> {
    let refresh = oauth.clone();
    let revocations = oauth.clone();
    let states = oauth.clone();
    vec![
        Job::new("token_refresh", every, move || {
            let oauth = refresh.clone();
            async move { oauth.refresh_due().await }
        }),
        Job::new("revocation_retry", every, move || {
            let oauth = revocations.clone();
            async move { oauth.retry_revocations().await }
        }),
        Job::new("state_cleanup", every, move || {
            let oauth = states.clone();
            async move {
                let deleted = oauth.delete_stale_states().await?;
                Ok(Sweep {
                    done: usize::try_from(deleted).unwrap_or(usize::MAX),
                    failed: 0,
                })
            }
        }),
    ]
}

/// Gives freed heap back to the OS (`memory.rs`), on the blocking pool: a trim of a large heap
/// holds each arena's lock for a moment and must not stall a runtime worker.
pub fn memory_job() -> Job {
    Job::new("memory_trim", crate::memory::TRIM_EVERY, || async {
        let released = tokio::task::spawn_blocking(crate::memory::trim)
            .await
            .unwrap_or(false);
        Ok(Sweep {
            done: usize::from(released),
            failed: 0,
        })
    })
}

/// The health sweep (when this replica runs it, `FH_HEALTH_SWEEP`) and the retention of
/// history and events (on every replica; batches are small and idempotent).
pub fn health_jobs(health: &Health) -> Vec<Job> {
    let mut jobs = Vec::new();
    if health.settings().sweep {
        let sweeper = health.clone();
        jobs.push(Job::new("health_sweep", health.sweep_tick(), move || {
            let health = sweeper.clone();
            async move { health.sweep().await }
        }));
    }
    let pruner = health.clone();
    jobs.push(Job::new("health_prune", health.prune_tick(), move || {
        let health = pruner.clone();
        async move { health.prune().await }
    }));
    jobs
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::{ErrorKind, Reason};

    #[tokio::test]
    async fn a_failing_job_keeps_its_timer_and_never_stops_another() {
        let failing_runs = Arc::new(AtomicUsize::new(0));
        let good_runs = Arc::new(AtomicUsize::new(0));
        let failing = Job::new("failing", MIN_INTERVAL, {
            let runs = failing_runs.clone();
            move || {
                runs.fetch_add(1, Ordering::Relaxed);
                async {
                    Err(Error::new(
                        ErrorKind::Unavailable,
                        Reason::DatabaseUnavailable,
                        "down",
                    ))
                }
            }
        });
        let good = Job::new("good", MIN_INTERVAL, {
            let runs = good_runs.clone();
            move || {
                runs.fetch_add(1, Ordering::Relaxed);
                async { Ok(Sweep::default()) }
            }
        });
        let shutdown = CancellationToken::new();
        let tasks = [
            tokio::spawn(failing.run_until(shutdown.clone())),
            tokio::spawn(good.run_until(shutdown.clone())),
        ];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while failing_runs.load(Ordering::Relaxed) < 2 || good_runs.load(Ordering::Relaxed) < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "both jobs run again and again"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        for task in tasks {
            task.await.expect("a job returns at shutdown");
        }

        assert!(
            failing_runs.load(Ordering::Relaxed) >= 2,
            "retried on its timer"
        );
        assert!(good_runs.load(Ordering::Relaxed) >= 2, "unaffected");
    }
}
