//! Health: recording checks through the state machine, lifecycle transitions, the sweep's
//! claims, the history and its retention. Events are `health_events.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::health_events::{Change, insert_event};
use crate::domain::{
    Evidence, Health, HealthEvent, HealthState, Hysteresis, IntegrationId, IntegrationStatus,
    Platform, WorkspaceId,
};
use crate::error::{Error, Reason};

/// Longest event message; keeps a NOTIFY payload far below PostgreSQL's 8000-byte limit.
const MAX_MESSAGE_CHARS: usize = 500;

pub(super) fn clip(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

fn bad(col: &str, v: &str) -> Error {
    Error::internal(anyhow::anyhow!("unexpected {col} {v:?} in a health row"))
}

pub(super) fn state(v: &str) -> Result<HealthState, Error> {
    HealthState::parse(v).ok_or_else(|| bad("state", v))
}

pub(super) fn platform(v: &str) -> Result<Platform, Error> {
    Platform::parse(v).ok_or_else(|| bad("platform", v))
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
pub struct Observation {
    pub workspace: WorkspaceId,
    pub id: IntegrationId,
    pub source: Source,
    pub evidence: Evidence,
    pub message: String,
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
pub async fn record(conn: &mut PgConnection, o: &Observation) -> Result<Option<Recorded>, Error> {
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
    let message = clip(&o.message);
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

/// Locks the integrations' rows in id order, so that transactions recording several never
/// deadlock one another (each then takes the event-order lock last).
pub async fn lock_rows(conn: &mut PgConnection, ids: &[IntegrationId]) -> Result<(), Error> {
    let mut ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query("SELECT 1 FROM integrations WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The common case in one statement, without a lock: evidence that leaves the state as it was
/// (`before`, as read with the credentials). A compare-and-set on the state machine's columns;
/// None when the state would change or the row changed meanwhile (the caller then takes the
/// locked path of `record`, which writes the event).
pub async fn record_unchanged(
    exec: impl PgExecutor<'_>,
    o: &Observation,
    before: Health,
) -> Result<Option<CheckRow>, Error> {
    let after = before.next(o.evidence, o.hysteresis);
    if after.state != before.state {
        return Ok(None);
    }
    let reason = o.evidence.reason().map(Reason::as_str);
    let message = clip(&o.message);
    let id = Uuid::now_v7();
    let row: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "WITH u AS (
             UPDATE integrations SET health_failures = $5, health_successes = $6,
                 health_reason = $7, health_message = $8, last_check_at = now(),
                 next_check_at = now() + make_interval(secs => $9), check_claimed_until = NULL,
                 status = CASE
                     WHEN $10 AND status IN ('connected', 'error') THEN 'needs_reauth'
                     WHEN $11 AND status = 'needs_reauth' THEN 'connected'
                     ELSE status END,
                 status_reason = CASE
                     WHEN $10 AND status IN ('connected', 'error') THEN $7
                     WHEN $11 AND status = 'needs_reauth' THEN NULL
                     ELSE status_reason END
             WHERE id = $1 AND workspace_id = $2 AND status <> 'revoked' AND health_state = $3
               AND health_failures = $4 AND health_successes = $12
             RETURNING platform, now() AS at),
         kept AS (
             INSERT INTO health_checks (id, integration_id, workspace_id, source, healthy, state, reason, message, latency_ms, checked_at)
             SELECT $13, $1, $2, $14, $11, $3, $7, $8, $15, at FROM u WHERE $16)
         SELECT platform, at FROM u",
    )
    .bind(o.id.0)
    .bind(o.workspace.0)
    .bind(before.state.as_str())
    .bind(i32::try_from(before.failures).unwrap_or(i32::MAX))
    .bind(i32::try_from(after.failures).unwrap_or(i32::MAX))
    .bind(i32::try_from(after.successes).unwrap_or(i32::MAX))
    .bind(reason)
    .bind(&message)
    .bind(o.next_check_in.as_secs_f64())
    .bind(matches!(o.evidence, Evidence::Auth(_)))
    .bind(o.evidence.healthy())
    .bind(i32::try_from(before.successes).unwrap_or(i32::MAX))
    .bind(id)
    .bind(o.source.as_str())
    .bind(o.latency_ms)
    .bind(o.keep)
    .fetch_optional(exec)
    .await?;
    let Some((platform_name, checked_at)) = row else {
        return Ok(None);
    };
    Ok(Some(CheckRow {
        id,
        integration_id: o.id,
        platform: platform(&platform_name)?,
        source: o.source,
        healthy: o.evidence.healthy(),
        state: after.state,
        reason: reason.map(str::to_owned),
        message,
        latency_ms: o.latency_ms,
        checked_at,
    }))
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
