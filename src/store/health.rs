//! Health: recording checks through the state machine, lifecycle transitions, the sweep's
//! claims, the history, the events (each insert NOTIFYs) and their retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::{
    Evidence, Health, HealthEvent, HealthState, Hysteresis, IntegrationId, IntegrationStatus,
    Platform, WorkspaceId,
};
use crate::error::{Error, Reason};

/// The channel every replica LISTENs on.
pub const CHANNEL: &str = "fh_health_events";

/// Held by every event insert until its commit, so that seq order is commit order: a reader
/// that has seen seq n has seen every event before it, and a stream never skips one that
/// committed late. Transitions are rare (changes, not checks), so the lock is cold.
const EVENT_ORDER_LOCK: i64 = 0x4648_4845_5645_4e54; // "FHHEVENT"

/// Longest event message; keeps a NOTIFY payload far below PostgreSQL's 8000-byte limit.
const MAX_MESSAGE_CHARS: usize = 500;

fn clip(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

fn bad(col: &str, v: &str) -> Error {
    Error::internal(anyhow::anyhow!("unexpected {col} {v:?} in a health row"))
}

fn state(v: &str) -> Result<HealthState, Error> {
    HealthState::parse(v).ok_or_else(|| bad("state", v))
}

fn platform(v: &str) -> Result<Platform, Error> {
    Platform::parse(v).ok_or_else(|| bad("platform", v))
}

/// An event as stored and as sent in a NOTIFY payload (short keys keep payloads small).
#[derive(Serialize, Deserialize, sqlx::FromRow)]
struct EventRow {
    seq: i64,
    #[serde(rename = "w")]
    workspace_id: Uuid,
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
struct Change<'a> {
    id: IntegrationId,
    workspace_id: Uuid,
    platform: &'a str,
    previous: HealthState,
    state: HealthState,
    reason: &'a str,
    message: &'a str,
}

/// Inserts the event and NOTIFYs every replica, inside the caller's transaction (delivered on
/// commit, in commit order).
async fn insert_event(conn: &mut PgConnection, c: Change<'_>) -> Result<HealthEvent, Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_ORDER_LOCK)
        .execute(&mut *conn)
        .await?;
    let row: EventRow = sqlx::query_as(
        "INSERT INTO health_events (workspace_id, integration_id, platform, previous_state, state, reason, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING seq, workspace_id, integration_id, platform, previous_state, state, reason, message, created_at",
    )
    .bind(c.workspace_id)
    .bind(c.id.0)
    .bind(c.platform)
    .bind(c.previous.as_str())
    .bind(c.state.as_str())
    .bind(c.reason)
    .bind(clip(c.message))
    .fetch_one(&mut *conn)
    .await?;
    let payload =
        serde_json::to_string(&row).map_err(|e| Error::internal(anyhow::Error::from(e)))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    HealthEvent::try_from(row)
}

/// A lifecycle change (connected, reconnected, disconnected, a refresh that found the grant
/// dead): sets the state, resets the runs, and records the event, always when `always`, else
/// only when the state changes. `check_now` makes the sweep probe it at once.
pub async fn transition(
    conn: &mut PgConnection,
    id: IntegrationId,
    to: HealthState,
    reason: &str,
    message: &str,
    always: bool,
    check_now: bool,
) -> Result<Option<HealthEvent>, Error> {
    let row: Option<(String, Uuid, String)> = sqlx::query_as(
        "UPDATE integrations i SET health_state = $2, health_reason = NULLIF($3, ''),
             health_message = $4, health_failures = 0, health_successes = 0,
             next_check_at = CASE WHEN $5 THEN now() ELSE i.next_check_at END,
             check_claimed_until = CASE WHEN $5 THEN NULL ELSE i.check_claimed_until END
         FROM (SELECT id, health_state FROM integrations WHERE id = $1 FOR UPDATE) old
         WHERE i.id = old.id
         RETURNING old.health_state, i.workspace_id, i.platform",
    )
    .bind(id.0)
    .bind(to.as_str())
    .bind(reason)
    .bind(clip(message))
    .bind(check_now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((previous, workspace_id, platform)) = row else {
        return Ok(None);
    };
    let previous = state(&previous)?;
    if previous == to && !always {
        return Ok(None);
    }
    let event = insert_event(
        conn,
        Change {
            id,
            workspace_id,
            platform: &platform,
            previous,
            state: to,
            reason,
            message,
        },
    )
    .await?;
    Ok(Some(event))
}

/// Where a piece of evidence came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Probe,
    Traffic,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Probe => "probe",
            Source::Traffic => "traffic",
        }
    }
}

/// One piece of evidence to run through the state machine.
pub struct Observation<'a> {
    pub workspace: WorkspaceId,
    pub id: IntegrationId,
    pub source: Source,
    pub evidence: Evidence,
    pub message: &'a str,
    pub latency_ms: i64,
    pub hysteresis: Hysteresis,
    /// When the sweep should probe it next, from now.
    pub next_check_in: Duration,
    /// Whether this observation is a history row (every probe, and traffic failures).
    pub keep: bool,
}

/// A stored check.
#[derive(Clone, Debug)]
pub struct CheckRow {
    pub id: Uuid,
    pub integration_id: IntegrationId,
    pub platform: Platform,
    pub source: Source,
    pub healthy: bool,
    pub state: HealthState,
    pub reason: Option<String>,
    pub message: String,
    pub latency_ms: i64,
    pub checked_at: DateTime<Utc>,
}

/// What recording did: the check as stored (the state after it), and the event when the
/// state changed.
pub struct Recorded {
    pub check: CheckRow,
    pub event: Option<HealthEvent>,
}

/// Runs the evidence through the state machine under the row's lock and writes the result:
/// counters and schedule, the history row, the event on a transition, and the integration's
/// status (NEEDS_REAUTH on dead credentials, connected again on the next success). None when
/// the integration is not in the workspace, or was disconnected.
pub async fn record(
    conn: &mut PgConnection,
    o: &Observation<'_>,
) -> Result<Option<Recorded>, Error> {
    let row: Option<(String, String, String, i32, i32)> = sqlx::query_as(
        "SELECT platform, status, health_state, health_failures, health_successes
         FROM integrations WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
    )
    .bind(o.id.0)
    .bind(o.workspace.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((platform_name, status, previous, failures, successes)) = row else {
        return Ok(None);
    };
    if IntegrationStatus::parse(&status) == Some(IntegrationStatus::Revoked) {
        return Ok(None);
    }
    let before = Health {
        state: state(&previous)?,
        failures: u32::try_from(failures).unwrap_or(0),
        successes: u32::try_from(successes).unwrap_or(0),
    };
    let after = before.next(o.evidence, o.hysteresis);
    let reason = o.evidence.reason().map(Reason::as_str);
    let message = clip(o.message);
    let checked_at: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE integrations SET health_state = $2, health_failures = $3, health_successes = $4,
             health_reason = $5, health_message = $6, last_check_at = now(),
             next_check_at = now() + make_interval(secs => $7), check_claimed_until = NULL,
             status = CASE
                 WHEN $8 AND status IN ('connected', 'error') THEN 'needs_reauth'
                 WHEN $9 AND status = 'needs_reauth' THEN 'connected'
                 ELSE status END,
             status_reason = CASE
                 WHEN $8 AND status IN ('connected', 'error') THEN $5
                 WHEN $9 AND status = 'needs_reauth' THEN NULL
                 ELSE status_reason END,
             updated_at = CASE WHEN health_state = $2 THEN updated_at ELSE now() END
         WHERE id = $1
         RETURNING now()",
    )
    .bind(o.id.0)
    .bind(after.state.as_str())
    .bind(i32::try_from(after.failures).unwrap_or(i32::MAX))
    .bind(i32::try_from(after.successes).unwrap_or(i32::MAX))
    .bind(reason)
    .bind(&message)
    .bind(o.next_check_in.as_secs_f64())
    .bind(matches!(o.evidence, Evidence::Auth(_)))
    .bind(o.evidence.healthy())
    .fetch_one(&mut *conn)
    .await?;
    let check = CheckRow {
        id: Uuid::now_v7(),
        integration_id: o.id,
        platform: platform(&platform_name)?,
        source: o.source,
        healthy: o.evidence.healthy(),
        state: after.state,
        reason: reason.map(str::to_owned),
        message,
        latency_ms: o.latency_ms,
        checked_at,
    };
    if o.keep {
        sqlx::query(
            "INSERT INTO health_checks (id, integration_id, workspace_id, source, healthy, state, reason, message, latency_ms, checked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(check.id)
        .bind(o.id.0)
        .bind(o.workspace.0)
        .bind(o.source.as_str())
        .bind(check.healthy)
        .bind(check.state.as_str())
        .bind(&check.reason)
        .bind(&check.message)
        .bind(check.latency_ms)
        .bind(checked_at)
        .execute(&mut *conn)
        .await?;
    }
    let event = if after.state != before.state {
        Some(
            insert_event(
                conn,
                Change {
                    id: o.id,
                    workspace_id: o.workspace.0,
                    platform: &platform_name,
                    previous: before.state,
                    state: after.state,
                    reason: reason.unwrap_or(""),
                    message: &check.message,
                },
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Some(Recorded { check, event }))
}

/// Successful traffic: the next probe can wait. No row lock, no history; one cheap update.
pub async fn postpone(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
    next_check_in: Duration,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET next_check_at = greatest(next_check_at, now() + make_interval(secs => $2))
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(next_check_in.as_secs_f64())
    .execute(exec)
    .await?;
    Ok(())
}

/// Claims up to `limit` integrations due for a probe, for `lease`, skipping rows another
/// replica is claiming; committed by the caller before any probe starts.
pub async fn claim_due(
    exec: impl PgExecutor<'_>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<(WorkspaceId, IntegrationId)>, Error> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE integrations SET check_claimed_until = now() + make_interval(secs => $1)
         WHERE id IN (
             SELECT id FROM integrations
             WHERE status <> 'revoked' AND next_check_at <= now()
               AND (check_claimed_until IS NULL OR check_claimed_until < now())
             ORDER BY next_check_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
         RETURNING workspace_id, id",
    )
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(w, i)| (WorkspaceId(w), IntegrationId(i)))
        .collect())
}

/// A claimed probe that could not run (our failure, not the integration's): try again later.
pub async fn release(
    exec: impl PgExecutor<'_>,
    id: IntegrationId,
    retry_in: Duration,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE integrations SET check_claimed_until = NULL,
             next_check_at = now() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(retry_in.as_secs_f64())
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CheckDbRow {
    id: Uuid,
    integration_id: Uuid,
    platform: String,
    source: String,
    healthy: bool,
    state: String,
    reason: Option<String>,
    message: String,
    latency_ms: i64,
    checked_at: DateTime<Utc>,
}

impl TryFrom<CheckDbRow> for CheckRow {
    type Error = Error;

    fn try_from(r: CheckDbRow) -> Result<Self, Error> {
        Ok(CheckRow {
            id: r.id,
            integration_id: IntegrationId(r.integration_id),
            platform: platform(&r.platform)?,
            source: if r.source == "traffic" {
                Source::Traffic
            } else {
                Source::Probe
            },
            healthy: r.healthy,
            state: state(&r.state)?,
            reason: r.reason,
            message: r.message,
            latency_ms: r.latency_ms,
            checked_at: r.checked_at,
        })
    }
}

/// One page of an integration's history, newest first, before `before` when given.
pub async fn list_checks(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    id: IntegrationId,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CheckRow>, Error> {
    let rows: Vec<CheckDbRow> = sqlx::query_as(
        "SELECT c.id, c.integration_id, i.platform, c.source, c.healthy, c.state, c.reason,
                c.message, c.latency_ms, c.checked_at
         FROM health_checks c JOIN integrations i ON i.id = c.integration_id
         WHERE c.workspace_id = $1 AND c.integration_id = $2 AND ($3::uuid IS NULL OR c.id < $3)
         ORDER BY c.id DESC LIMIT $4",
    )
    .bind(workspace.0)
    .bind(id.0)
    .bind(before)
    .bind(limit)
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(CheckRow::try_from).collect()
}

/// The workspace's latest failed checks, newest first.
pub async fn recent_failures(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
    limit: i64,
) -> Result<Vec<CheckRow>, Error> {
    let rows: Vec<CheckDbRow> = sqlx::query_as(
        "SELECT c.id, c.integration_id, i.platform, c.source, c.healthy, c.state, c.reason,
                c.message, c.latency_ms, c.checked_at
         FROM health_checks c JOIN integrations i ON i.id = c.integration_id
         WHERE c.workspace_id = $1 AND NOT c.healthy AND i.status <> 'revoked'
         ORDER BY c.checked_at DESC LIMIT $2",
    )
    .bind(workspace.0)
    .bind(limit)
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(CheckRow::try_from).collect()
}

/// Live integrations of a workspace by platform and health state, and the time of the read.
pub async fn counts(
    exec: impl PgExecutor<'_>,
    workspace: WorkspaceId,
) -> Result<(Vec<(Platform, HealthState, i64)>, DateTime<Utc>), Error> {
    let rows: Vec<(String, String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT platform, health_state, count(*), now() FROM integrations
         WHERE workspace_id = $1 AND status <> 'revoked'
         GROUP BY platform, health_state ORDER BY platform, health_state",
    )
    .bind(workspace.0)
    .fetch_all(exec)
    .await?;
    let at = rows.first().map_or_else(Utc::now, |r| r.3);
    let counts = rows
        .into_iter()
        .map(|(p, s, n, _)| Ok((platform(&p)?, state(&s)?, n)))
        .collect::<Result<_, Error>>()?;
    Ok((counts, at))
}

/// Every replica's integrations by platform and health state, for `/metrics`.
pub async fn counts_everywhere(
    exec: impl PgExecutor<'_>,
) -> Result<Vec<(Platform, HealthState, i64)>, Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT platform, health_state, count(*) FROM integrations WHERE status <> 'revoked'
         GROUP BY platform, health_state",
    )
    .fetch_all(exec)
    .await?;
    rows.into_iter()
        .map(|(p, s, n)| Ok((platform(&p)?, state(&s)?, n)))
        .collect()
}

/// How long the most overdue probe has been waiting (0 when none is overdue).
pub async fn sweep_lag(exec: impl PgExecutor<'_>) -> Result<Duration, Error> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM now() - min(next_check_at))::float8 FROM integrations
         WHERE status <> 'revoked' AND next_check_at < now()",
    )
    .fetch_one(exec)
    .await?;
    Ok(Duration::from_secs_f64(secs.unwrap_or(0.0).max(0.0)))
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

/// Deletes up to `batch` history rows older than `age`; returns how many.
pub async fn prune_checks(
    exec: impl PgExecutor<'_>,
    age: Duration,
    batch: i64,
) -> Result<u64, Error> {
    let done = sqlx::query(
        "DELETE FROM health_checks WHERE id IN (
             SELECT id FROM health_checks WHERE checked_at < now() - make_interval(secs => $1)
             ORDER BY checked_at LIMIT $2)",
    )
    .bind(age.as_secs_f64())
    .bind(batch)
    .execute(exec)
    .await?;
    Ok(done.rows_affected())
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
