//! Group commit of health transitions. A transition holds the event-order lock (and NOTIFY's
//! queue lock) until it commits, so transitions commit one at a time, each paying a WAL flush
//! under the lock. One writer per replica takes every transition waiting and records them in
//! one transaction: a burst (a first sweep, a provider outage) costs a commit per batch, not
//! per integration, and a lone transition is written at once, as before.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::domain::IntegrationId;
use crate::error::Error;
use crate::store::{self, health::Observation, health::Recorded};

/// Most transitions one transaction records: short enough that the rows it locks are not
/// held for long.
const MAX_GROUP: usize = 64;
/// Transitions waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 1024;

type Outcome = Result<Option<Recorded>, Error>;

struct Job {
    observation: Observation,
    reply: oneshot::Sender<Outcome>,
}

/// The handle callers record through; the writer ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task; must be called within the runtime.
    pub(super) fn start(db: PgPool) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, rx));
        Self { jobs }
    }

    /// Records the observation under the row's lock, committed before this returns. The
    /// caller going away does not cancel it: the probe happened, so it is recorded.
    pub(super) async fn record(&self, observation: Observation) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::internal(anyhow::anyhow!("the health writer has stopped"));
        self.jobs
            .send(Job { observation, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(db: PgPool, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        let observations: Vec<&Observation> = jobs.iter().map(|j| &j.observation).collect();
        match record_all(&db, &observations).await {
            Ok(recorded) => {
                for (job, r) in jobs.drain(..).zip(recorded) {
                    // A caller that went away needs no answer.
                    let _ = job.reply.send(Ok(r));
                }
            }
            // The batch rolled back whole. Each alone, so one observation's failure (its row
            // deleted meanwhile, say) is its own and the others are recorded.
            Err(_) if jobs.len() > 1 => {
                for job in jobs.drain(..) {
                    let r = record_all(&db, &[&job.observation])
                        .await
                        .map(|mut r| r.pop().flatten());
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                if let Some(job) = jobs.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
    }
}

/// Records every observation in one transaction, in order (one integration may appear twice).
async fn record_all(
    db: &PgPool,
    observations: &[&Observation],
) -> Result<Vec<Option<Recorded>>, Error> {
    let mut tx = db.begin().await?;
    if observations.len() > 1 {
        let ids: Vec<IntegrationId> = observations.iter().map(|o| o.id).collect();
        store::health::lock_rows(&mut tx, &ids).await?;
    }
    let mut recorded = Vec::with_capacity(observations.len());
    for o in observations {
        recorded.push(store::health::record(&mut tx, o).await?);
    }
    tx.commit().await?;
    Ok(recorded)
}
