//! `health_events`: inserting an event (ordered, NOTIFYing every replica), reading them back by
//! seq, a stream's snapshot, retention, and the replica's LISTEN connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::health::{clip, platform, state};
use crate::domain::{HealthEvent, HealthState, IntegrationId, Platform, WorkspaceId};
use crate::error::Error;

/// The channel every replica LISTENs on.
pub const CHANNEL: &str = "fh_health_events";

/// Held by every event insert until its commit, so that seq order is commit order: a reader
/// that has seen seq n has seen every event before it, and a stream never skips one that
/// committed late. Transitions are rare (changes, not checks), so the lock is cold.
const EVENT_ORDER_LOCK: i64 = 0x4648_4845_5645_4e54; // "FHHEVENT"

/// An event as stored and as sent in a NOTIFY payload (short keys keep payloads small).
#[derive(Deserialize, sqlx::FromRow)]
struct EventRow {
    seq: i64,
    #[serde(rename = "w")]
    pub(super) workspace_id: Uuid,
    #[serde(rename = "i")]
    integration_id: Uuid,
    #[serde(rename = "p")]
    platform: String,
    #[serde(rename = "ps")]
    previous_state: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "r")]
    reason: String,
    #[serde(rename = "m")]
    message: String,
    #[serde(rename = "t")]
    created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for HealthEvent {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self, Error> {
        Ok(HealthEvent {
            seq: r.seq,
            workspace_id: WorkspaceId(r.workspace_id),
            integration_id: IntegrationId(r.integration_id),
            platform: platform(&r.platform)?,
            previous_state: state(&r.previous_state)?,
            state: state(&r.state)?,
            reason: r.reason,
            message: r.message,
            time: r.created_at,
            snapshot: false,
        })
    }
}

/// What an event says; the integration's workspace and platform come from its row.
pub(super) struct Change<'a> {
    pub(super) id: IntegrationId,
    pub(super) workspace_id: Uuid,
    pub(super) platform: &'a str,
    pub(super) previous: HealthState,
    pub(super) state: HealthState,
    pub(super) reason: &'a str,
    pub(super) message: &'a str,
}

/// Inserts the event and NOTIFYs every replica, inside the caller's transaction (delivered on
/// commit, in commit order). One statement: the ordering lock is held from here to the commit,
/// so it costs the commit and nothing more.
pub(super) async fn insert_event(
    conn: &mut PgConnection,
    c: Change<'_>,
) -> Result<HealthEvent, Error> {
    let row: EventRow = sqlx::query_as(
        "WITH ordered AS (SELECT pg_advisory_xact_lock($1)),
              e AS (
                 INSERT INTO health_events (workspace_id, integration_id, platform, previous_state, state, reason, message)
                 SELECT $2, $3, $4, $5, $6, $7, $8 FROM ordered
                 RETURNING seq, workspace_id, integration_id, platform, previous_state, state, reason, message, created_at),
              notified AS (
                 SELECT pg_notify($9, json_build_object('seq', seq, 'w', workspace_id, 'i', integration_id,
                     'p', platform, 'ps', previous_state, 's', state, 'r', reason, 'm', message,
                     't', created_at)::text) FROM e)
         SELECT e.*, (SELECT count(*) FROM notified) AS notified FROM e",
    )
    .bind(EVENT_ORDER_LOCK)
    .bind(c.workspace_id)
    .bind(c.id.0)
    .bind(c.platform)
    .bind(c.previous.as_str())
    .bind(c.state.as_str())
    .bind(c.reason)
    .bind(clip(c.message))
    .bind(CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    HealthEvent::try_from(row)
}

/// The current state of a workspace's integrations, for a stream's snapshot.
pub struct SnapshotRow {
    pub id: IntegrationId,
    pub platform: Platform,
    pub state: HealthState,
    pub reason: String,
    pub message: String,
    pub time: DateTime<Utc>,
}

/// The workspace's integrations (disconnected ones only with `with_revoked`) and the seq they
/// are current as of, read in one snapshot: every event up to that seq is reflected, none after.
pub async fn snapshot(
    pool: &PgPool,
    workspace: WorkspaceId,
    with_revoked: bool,
    limit: i64,
) -> Result<(Vec<SnapshotRow>, i64), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM health_events")
        .fetch_one(&mut *tx)
        .await?;
    #[derive(sqlx::FromRow)]
    struct Current {
        id: Uuid,
        platform: String,
        health_state: String,
        health_reason: Option<String>,
        health_message: String,
        at: DateTime<Utc>,
    }
    let rows: Vec<Current> = sqlx::query_as(
        "SELECT id, platform, health_state, health_reason, health_message,
                coalesce(last_check_at, updated_at) AS at
         FROM integrations WHERE workspace_id = $1 AND ($2 OR status <> 'revoked')
         ORDER BY id LIMIT $3",
    )
    .bind(workspace.0)
    .bind(with_revoked)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            Ok(SnapshotRow {
                id: IntegrationId(r.id),
                platform: platform(&r.platform)?,
                state: state(&r.health_state)?,
                reason: r.health_reason.unwrap_or_default(),
                message: r.health_message,
                time: r.at,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok((rows, seq))
}

/// Events after `after`, in seq order; of one workspace, or of all when `workspace` is None
/// (a listener catching up).
pub async fn events_after(
    exec: impl PgExecutor<'_>,
    workspace: Option<WorkspaceId>,
    after: i64,
    limit: i64,
) -> Result<Vec<HealthEvent>, Error> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, workspace_id, integration_id, platform, previous_state, state, reason, message, created_at
         FROM health_events WHERE ($1::uuid IS NULL OR workspace_id = $1) AND seq > $2
         ORDER BY seq LIMIT $3",
    )
    .bind(workspace.map(|w| w.0))
    .bind(after)
    .bind(limit)
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(HealthEvent::try_from).collect()
}

/// (highest seq pruned, highest seq written).
pub async fn seq_bounds(exec: impl PgExecutor<'_>) -> Result<(i64, i64), Error> {
    Ok(sqlx::query_as(
        "SELECT pruned_through, (SELECT coalesce(max(seq), 0) FROM health_events)
         FROM health_event_retention",
    )
    .fetch_one(exec)
    .await?)
}

/// Deletes up to `batch` events older than `age`, moving the pruned watermark; returns how many.
pub async fn prune_events(
    exec: impl PgExecutor<'_>,
    age: Duration,
    batch: i64,
) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM health_events WHERE seq IN (
                 SELECT seq FROM health_events
                 WHERE created_at < now() - make_interval(secs => $1)
                 ORDER BY seq LIMIT $2)
             RETURNING seq)
         UPDATE health_event_retention
         SET pruned_through = greatest(pruned_through, (SELECT coalesce(max(seq), 0) FROM gone))
         RETURNING (SELECT count(*) FROM gone)",
    )
    .bind(age.as_secs_f64())
    .bind(batch)
    .fetch_one(exec)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A replica's subscription to committed events, on a connection of its own (not the pool's).
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    pub async fn connect(pool: &PgPool) -> Result<Self, Error> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        let mut inner = PgListener::connect_with(&own).await?;
        inner.listen(CHANNEL).await?;
        Ok(Self { inner })
    }

    /// The next event; `Ok(None)` when the connection was lost and re-established, so events
    /// committed meanwhile must be read from the table.
    pub async fn next(&mut self) -> Result<Option<HealthEvent>, Error> {
        loop {
            let Some(n) = self.inner.try_recv().await? else {
                return Ok(None);
            };
            match serde_json::from_str::<EventRow>(n.payload()) {
                Ok(row) => return HealthEvent::try_from(row).map(Some),
                // Only our inserts notify on this channel; anything else is skipped, loudly.
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed health notification"),
            }
        }
    }
}
