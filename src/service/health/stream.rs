//! The live event stream. Each replica LISTENs for committed events and fans them out to its
//! subscribers through one broadcast channel; a subscriber that lags, and the listener after a
//! lost connection, catch up from the table by seq. Seq order is commit order (see
//! `store::health`), so "everything after seq n" is always well defined: no gap, no duplicate.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domain::{HealthEvent, HealthState, IntegrationId, Platform, WorkspaceId};
use crate::error::{Error, ErrorKind, Reason};
use crate::store;

/// Rows per catch-up read.
const BATCH: i64 = 500;
/// Most integrations one snapshot sends.
const MAX_SNAPSHOT: i64 = 10_000;
/// Most integrations one stream may name in its filter.
pub const MAX_FILTERED_INTEGRATIONS: usize = 100;

/// What a subscriber asked for.
#[derive(Clone, Debug, Default)]
pub struct WatchInput {
    /// Resume after this seq; 0 starts with a snapshot.
    pub after_seq: i64,
    pub platforms: Vec<Platform>,
    pub integrations: Vec<IntegrationId>,
    pub states: Vec<HealthState>,
}

impl WatchInput {
    fn wants(&self, e: &HealthEvent) -> bool {
        (self.platforms.is_empty() || self.platforms.contains(&e.platform))
            && (self.integrations.is_empty() || self.integrations.contains(&e.integration_id))
            && (self.states.is_empty() || self.states.contains(&e.state))
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<HealthEvent, Error>> + Send>>;

/// This replica's fan-out of committed events.
pub struct Hub {
    tx: broadcast::Sender<Arc<HealthEvent>>,
    db: PgPool,
    shutdown: CancellationToken,
}

fn shutting_down() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        Reason::DatabaseUnavailable,
        "the server is shutting down; resume with your last seq",
    )
    .with_retry_after(Duration::from_millis(100))
}

fn expired() -> Error {
    Error::new(
        ErrorKind::OutOfRange,
        Reason::EventsExpired,
        "events after that seq are no longer retained; start again with after_seq 0 for a snapshot",
    )
}

impl Hub {
    /// Streams end with UNAVAILABLE when `shutdown` is cancelled. `buffer` events wait for
    /// momentarily slow subscribers; one that falls further behind reads the table.
    pub fn new(db: PgPool, shutdown: CancellationToken, buffer: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(buffer.max(1));
        Arc::new(Self { tx, db, shutdown })
    }

    /// Connects the listener and returns the loop that runs it until shutdown. Awaited before
    /// the servers start, so that every event committed after any stream's first read reaches
    /// this replica. From then on every committed event, on any replica, reaches this replica's
    /// subscribers once, in seq order; a lost connection is re-established and the events
    /// committed meanwhile are read from the table.
    pub async fn listen(
        self: Arc<Self>,
    ) -> Result<impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static, Error> {
        let listener = store::health_events::Listener::connect(&self.db).await?;
        // Listening before reading the position: nothing committed in between is missed.
        let (_, newest) = store::health_events::seq_bounds(&self.db).await?;
        Ok(self.run(listener, newest))
    }

    async fn run(
        self: Arc<Self>,
        first: store::health_events::Listener,
        start: i64,
    ) -> anyhow::Result<()> {
        let mut last = start;
        let mut listener = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut current = match listener.take() {
                Some(l) => l,
                None => {
                    let connected = tokio::select! {
                        _ = self.shutdown.cancelled() => return Ok(()),
                        l = store::health_events::Listener::connect(&self.db) => l,
                    };
                    match connected {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!(reason = %e.reason(), cause = ?e.cause().map(|c| format!("{c:#}")), "health listener cannot connect; retrying");
                            tokio::select! {
                                _ = self.shutdown.cancelled() => return Ok(()),
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
            };
            backoff = Duration::from_millis(100);
            // Listening again before reading the table: nothing committed in between is missed.
            if let Err(e) = self.catch_up(&mut last).await {
                tracing::warn!(reason = %e.reason(), "health listener cannot catch up; reconnecting");
                continue;
            }
            loop {
                let next = tokio::select! {
                    _ = self.shutdown.cancelled() => return Ok(()),
                    n = current.next() => n,
                };
                match next {
                    Ok(Some(e)) => self.publish(&mut last, e),
                    Ok(None) => {
                        tracing::warn!("health listener lost its connection; catching up");
                        if let Err(e) = self.catch_up(&mut last).await {
                            tracing::warn!(reason = %e.reason(), "health listener cannot catch up; reconnecting");
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(reason = %e.reason(), "health listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    fn publish(&self, last: &mut i64, e: HealthEvent) {
        if e.seq <= *last {
            return;
        }
        *last = e.seq;
        metrics::histogram!("fh_health_event_notify_seconds").record(seconds_since(e.time));
        // No receivers is fine: nobody on this replica is watching.
        let _ = self.tx.send(Arc::new(e));
    }

    /// Publishes what was committed after `last`.
    async fn catch_up(&self, last: &mut i64) -> Result<(), Error> {
        loop {
            let batch = store::health_events::events_after(&self.db, None, *last, BATCH).await?;
            let full = batch.len() as i64 == BATCH;
            for e in batch {
                self.publish(last, e);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// A stream of the workspace's events: a snapshot first (after_seq 0) or the events after
    /// `after_seq` from the table, then live ones. Ends with UNAVAILABLE at shutdown.
    pub async fn watch(
        self: &Arc<Self>,
        workspace: WorkspaceId,
        input: WatchInput,
    ) -> Result<EventStream, Error> {
        if input.after_seq < 0 {
            return Err(Error::invalid_field("after_seq", "must not be negative"));
        }
        if input.integrations.len() > MAX_FILTERED_INTEGRATIONS {
            return Err(Error::invalid_field(
                "integrations",
                format!("names more than {MAX_FILTERED_INTEGRATIONS} integrations"),
            ));
        }
        // Subscribe before reading the table: an event committed after the read is then
        // certainly broadcast to us, and one both read and broadcast is dropped by seq.
        let rx = self.tx.subscribe();
        let mut pending = VecDeque::new();
        let (cursor, replaying) = if input.after_seq == 0 {
            let with_revoked = input.states.contains(&HealthState::Revoked);
            let (rows, seq) =
                store::health_events::snapshot(&self.db, workspace, with_revoked, MAX_SNAPSHOT)
                    .await?;
            for r in rows {
                let e = HealthEvent {
                    seq,
                    workspace_id: workspace,
                    integration_id: r.id,
                    platform: r.platform,
                    previous_state: r.state,
                    state: r.state,
                    reason: r.reason,
                    message: r.message,
                    time: r.time,
                    snapshot: true,
                };
                if input.wants(&e) {
                    pending.push_back(e);
                }
            }
            (seq, false)
        } else {
            let (pruned, newest) = store::health_events::seq_bounds(&self.db).await?;
            if input.after_seq < pruned {
                return Err(expired());
            }
            if input.after_seq > newest {
                return Err(Error::invalid_field(
                    "after_seq",
                    "is after every event: resume only from a seq this service sent",
                ));
            }
            (input.after_seq, true)
        };
        let state = Subscriber {
            hub: self.clone(),
            rx,
            workspace,
            input,
            cursor,
            replaying,
            pending,
            done: false,
            _open: OpenStream::new(),
        };
        Ok(Box::pin(futures::stream::unfold(state, Subscriber::next)))
    }
}

fn seconds_since(t: chrono::DateTime<Utc>) -> f64 {
    (Utc::now() - t)
        .to_std()
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Counts open streams in `fh_health_streams_open`.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("fh_health_streams_open").increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("fh_health_streams_open").decrement(1.0);
    }
}

/// One stream's position: everything up to `cursor` (a global seq) has been sent or skipped.
struct Subscriber {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<HealthEvent>>,
    workspace: WorkspaceId,
    input: WatchInput,
    cursor: i64,
    /// Reading the table (resuming, or after lagging) before going back to the channel.
    replaying: bool,
    pending: VecDeque<HealthEvent>,
    done: bool,
    _open: OpenStream,
}

impl Subscriber {
    async fn next(mut self) -> Option<(Result<HealthEvent, Error>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(e) = self.pending.pop_front() {
                return Some((Ok(e), self));
            }
            if self.replaying {
                // Boxed: the replay's queries would otherwise be part of every idle stream's
                // state, and most streams never replay.
                if let Err(e) = Box::pin(self.replay()).await {
                    self.done = true;
                    return Some((Err(e), self));
                }
                continue;
            }
            let received = tokio::select! {
                biased;
                _ = self.hub.shutdown.cancelled() => {
                    self.done = true;
                    return Some((Err(shutting_down()), self));
                }
                r = self.rx.recv() => r,
            };
            match received {
                Ok(e) => {
                    if e.seq <= self.cursor {
                        continue;
                    }
                    self.cursor = e.seq;
                    if e.workspace_id == self.workspace && self.input.wants(&e) {
                        metrics::histogram!("fh_health_event_delivery_seconds")
                            .record(seconds_since(e.time));
                        return Some((Ok(HealthEvent::clone(&e)), self));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a health stream lagged; reading the table");
                    metrics::counter!("fh_health_stream_lagged_total").increment(1);
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some((Err(shutting_down()), self));
                }
            }
        }
    }

    /// Reads one batch after the cursor; stops replaying when the table has nothing newer.
    async fn replay(&mut self) -> Result<(), Error> {
        let read = async {
            let (pruned, newest) = store::health_events::seq_bounds(&self.hub.db).await?;
            // Pruning passed us while we were away: say so rather than skip events.
            if pruned > self.cursor {
                return Err(expired());
            }
            let batch = store::health_events::events_after(
                &self.hub.db,
                Some(self.workspace),
                self.cursor,
                BATCH,
            )
            .await?;
            Ok((newest, batch))
        };
        let (newest, batch) = tokio::select! {
            biased;
            _ = self.hub.shutdown.cancelled() => return Err(shutting_down()),
            r = read => r?,
        };
        let full = batch.len() as i64 == BATCH;
        for e in batch {
            self.cursor = e.seq;
            if self.input.wants(&e) {
                self.pending.push_back(e);
            }
        }
        if !full {
            // Every event of ours up to `newest` was committed before the read, so it was in
            // the batch: the cursor may move past other workspaces' events too.
            self.cursor = self.cursor.max(newest);
            self.replaying = false;
        }
        Ok(())
    }
}
