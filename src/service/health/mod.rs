//! Connection health: checks run through the state machine (`domain::Health`), passive signals
//! from real traffic, the dashboard and history, the sweep (`sweep.rs`) and the live event
//! stream (`stream.rs`).

mod group;
mod stream;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::time::Instant;

pub use self::stream::{Hub, MAX_FILTERED_INTEGRATIONS, WatchInput};
use super::operations::Operations;
use super::paging;
use crate::domain::{
    Caller, Evidence, HealthState, Hysteresis, Integration, IntegrationId, Platform, WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};
pub use crate::store::health::{CheckRow, Source};
use crate::store::{self, health::Observation};

/// `FH_HEALTH_*`.
#[derive(Clone, Debug)]
pub struct HealthSettings {
    /// Whether this replica runs the sweep.
    pub sweep: bool,
    /// How often each integration is probed.
    pub check_interval: Duration,
    pub hysteresis: Hysteresis,
    /// Probes one replica runs at once.
    pub sweep_concurrency: usize,
    /// How long history rows are kept.
    pub history_retention: Duration,
    /// How long events are kept (and so how far back a stream can resume).
    pub event_retention: Duration,
    /// Events a replica buffers for slow subscribers; one further behind reads the table.
    pub stream_buffer: usize,
}

/// Probes one replica runs at once. A probe mostly waits on its provider: at 32 a sweep holds
/// about a third of the default pool's 16 connections, leaving the rest to requests, where
/// 64 would take them all (measured in `benches/health.rs`, README).
pub const DEFAULT_SWEEP_CONCURRENCY: usize = 32;

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            sweep: true,
            check_interval: Duration::from_secs(6 * 3600),
            hysteresis: Hysteresis::default(),
            sweep_concurrency: DEFAULT_SWEEP_CONCURRENCY,
            history_retention: Duration::from_secs(30 * 24 * 3600),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            stream_buffer: 4096,
        }
    }
}

impl HealthSettings {
    /// The next probe, from now: the interval plus up to 10% jitter, so integrations connected
    /// together drift apart, and never sooner than the interval.
    fn next_check_in(&self) -> Duration {
        self.check_interval
            .mul_f64(1.0 + rand::random::<f64>() * 0.1)
    }
}

/// Most integrations one `CheckWorkspace` probes; the sweep covers any number.
const MAX_WORKSPACE_CHECKS: i64 = 100;
/// Probes one `CheckWorkspace` runs at once.
const WORKSPACE_CHECK_CONCURRENCY: usize = 8;
/// Failed checks the dashboard lists.
const RECENT_ERRORS: i64 = 10;

/// Writes evidence through the state machine. Operations hold one for passive signals.
#[derive(Clone)]
pub struct Recorder {
    db: PgPool,
    settings: Arc<HealthSettings>,
    /// Writes what changes the state; see `group.rs`.
    writer: group::Writer,
}

impl Recorder {
    /// Starts this replica's transition writer; must be called within the runtime.
    pub fn new(db: PgPool, settings: Arc<HealthSettings>) -> Self {
        let writer = group::Writer::start(db.clone());
        Self {
            db,
            settings,
            writer,
        }
    }

    /// Records one piece of evidence: an unchanged state in one statement, a transition
    /// through the writer's short transactions (no provider call inside either). None when
    /// the integration was disconnected meanwhile.
    async fn record(
        &self,
        integration: &Integration,
        source: Source,
        evidence: Evidence,
        message: &str,
        latency_ms: i64,
    ) -> Result<Option<CheckRow>, Error> {
        // History holds every probe, and the failures real traffic met.
        let keep = source == Source::Probe || !evidence.healthy();
        let o = Observation {
            workspace: integration.workspace_id,
            id: integration.id,
            source,
            evidence,
            message: message.to_owned(),
            latency_ms,
            hysteresis: self.settings.hysteresis,
            next_check_in: self.settings.next_check_in(),
            keep,
        };
        let unchanged = store::health::record_unchanged(&self.db, &o, integration.health()).await?;
        let recorded = match unchanged {
            Some(check) => store::health::Recorded { check, event: None },
            None => match self.writer.record(o).await? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        let result = match evidence {
            Evidence::Success => "healthy",
            Evidence::Transient(_) => "transient",
            Evidence::Auth(_) => "auth",
        };
        metrics::counter!("fh_health_checks_total", "source" => source.as_str(), "result" => result)
            .increment(1);
        if let Some(e) = &recorded.event {
            tracing::info!(integration_id = %e.integration_id, platform = %e.platform, from = %e.previous_state, to = %e.state, reason = %e.reason, "health changed");
        }
        Ok(Some(recorded.check))
    }

    /// What a real call (Invoke, Proxy, Download) said. Dead credentials mark the integration
    /// within the call; a struggling provider counts towards DEGRADED; success postpones the
    /// next probe (at most one write per half interval) and ends a bad state. A failure to
    /// record is logged: it never changes the call's own answer.
    pub async fn traffic(&self, integration: &Integration, outcome: Result<(), Reason>) {
        let result = match outcome {
            Ok(()) if integration.health_state != HealthState::Healthy => self
                .record(
                    integration,
                    Source::Traffic,
                    Evidence::Success,
                    "a call succeeded",
                    0,
                )
                .await
                .map(drop),
            Ok(()) => {
                let soon = Utc::now()
                    + chrono::Duration::from_std(self.settings.check_interval / 2)
                        .unwrap_or(chrono::Duration::MAX);
                if integration.next_check_at < soon {
                    store::health::postpone(&self.db, integration.id, self.settings.next_check_in())
                        .await
                } else {
                    Ok(())
                }
            }
            Err(reason) => match Evidence::of_traffic_failure(reason) {
                Some(evidence) => self
                    .record(
                        integration,
                        Source::Traffic,
                        evidence,
                        &format!("a call failed: {reason}"),
                        0,
                    )
                    .await
                    .map(drop),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::warn!(integration_id = %integration.id, reason = %e.reason(), "could not record a call's health signal");
        }
    }
}

/// The dashboard, from stored state.
pub struct Dashboard {
    pub total: i64,
    pub healthy: i64,
    pub unhealthy: i64,
    /// healthy / total * 100, two decimals; 0 with no integrations.
    pub success_rate: f64,
    /// Every health state (zeros included), in state order.
    pub by_state: Vec<(HealthState, i64)>,
    /// (platform, total, healthy, unhealthy) for platforms with integrations.
    pub by_platform: Vec<(Platform, i64, i64, i64)>,
    pub recent_errors: Vec<CheckRow>,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Health {
    db: PgPool,
    operations: Operations,
    recorder: Recorder,
    settings: Arc<HealthSettings>,
    hub: Arc<Hub>,
}

impl Health {
    pub fn new(
        db: PgPool,
        operations: Operations,
        recorder: Recorder,
        settings: Arc<HealthSettings>,
        hub: Arc<Hub>,
    ) -> Self {
        Self {
            db,
            operations,
            recorder,
            settings,
            hub,
        }
    }

    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    /// Probes one integration now and records it. Members and up.
    pub async fn check(
        &self,
        caller: &Caller,
        id: IntegrationId,
        deadline: Instant,
    ) -> Result<CheckRow, Error> {
        caller.require_member()?;
        self.probe(caller.workspace_id, id, deadline).await
    }

    /// Probes the workspace's live integrations (of `platforms`, or all), a few at a time.
    pub async fn check_workspace(
        &self,
        caller: &Caller,
        platforms: &[Platform],
        deadline: Instant,
    ) -> Result<Vec<CheckRow>, Error> {
        caller.require_member()?;
        let live = store::integrations::list_live(
            &self.db,
            caller.workspace_id,
            platforms,
            MAX_WORKSPACE_CHECKS,
        )
        .await?;
        let mut checks: Vec<CheckRow> = futures::stream::iter(live)
            .map(|i| async move { self.probe(i.workspace_id, i.id, deadline).await })
            .buffer_unordered(WORKSPACE_CHECK_CONCURRENCY)
            .filter_map(|r| async move {
                // One integration our side could not probe (it was disconnected meanwhile, say)
                // does not fail the others' answers.
                r.map_err(|e| tracing::debug!(reason = %e.reason(), "skipped in a workspace check"))
                    .ok()
            })
            .collect()
            .await;
        checks.sort_by_key(|c| c.integration_id);
        Ok(checks)
    }

    /// One probe, recorded. Failures that say nothing about the integration (ours, the
    /// caller's) are answered as errors and not recorded.
    async fn probe(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        deadline: Instant,
    ) -> Result<CheckRow, Error> {
        let probe = self.operations.probe(workspace, id, deadline).await?;
        self.recorder
            .record(
                &probe.integration,
                Source::Probe,
                probe.evidence,
                &probe.message,
                probe.latency_ms,
            )
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    Reason::IntegrationRevoked,
                    "the integration was disconnected",
                )
            })
    }

    /// The integration with its stored health. Any role.
    pub async fn get(&self, caller: &Caller, id: IntegrationId) -> Result<Integration, Error> {
        store::integrations::get(&self.db, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)
    }

    /// The workspace's live integrations with their stored health (at most 1,000). Any role.
    pub async fn live(&self, caller: &Caller) -> Result<Vec<Integration>, Error> {
        store::integrations::list_live(&self.db, caller.workspace_id, &[], 1000).await
    }

    /// Sets the health gauges of `/metrics` from the database: integrations per state and
    /// platform (all replicas'), and how far the sweep lags. A failed read leaves them as
    /// they were.
    pub async fn observe_gauges(&self) {
        if let Ok(counts) = store::health::counts_everywhere(&self.db).await {
            for p in Platform::ALL {
                for st in HealthState::ALL {
                    let n = counts
                        .iter()
                        .find(|(cp, cs, _)| cp == p && cs == st)
                        .map_or(0, |c| c.2);
                    metrics::gauge!("fh_integrations", "platform" => p.as_str(), "state" => st.as_str())
                        .set(n as f64);
                }
            }
        }
        if let Ok(lag) = store::health::sweep_lag(&self.db).await {
            metrics::gauge!("fh_health_sweep_lag_seconds").set(lag.as_secs_f64());
        }
    }

    /// The workspace's health from stored state, without calling any provider. Any role.
    pub async fn dashboard(&self, caller: &Caller) -> Result<Dashboard, Error> {
        let (counts, as_of) = store::health::counts(&self.db, caller.workspace_id).await?;
        let recent_errors =
            store::health::recent_failures(&self.db, caller.workspace_id, RECENT_ERRORS).await?;
        let unhealthy = |s: HealthState| {
            matches!(
                s,
                HealthState::Degraded | HealthState::NeedsReauth | HealthState::Revoked
            )
        };
        let mut by_state: Vec<(HealthState, i64)> =
            HealthState::ALL.iter().map(|s| (*s, 0)).collect();
        let mut by_platform: Vec<(Platform, i64, i64, i64)> = Vec::new();
        for (platform, state, n) in &counts {
            if let Some(slot) = by_state.iter_mut().find(|(s, _)| s == state) {
                slot.1 += n;
            }
            let row = match by_platform.iter_mut().find(|r| r.0 == *platform) {
                Some(row) => row,
                None => {
                    by_platform.push((*platform, 0, 0, 0));
                    by_platform.last_mut().expect("just pushed")
                }
            };
            row.1 += n;
            if *state == HealthState::Healthy {
                row.2 += n;
            } else if unhealthy(*state) {
                row.3 += n;
            }
        }
        let total: i64 = counts.iter().map(|c| c.2).sum();
        let healthy: i64 = by_platform.iter().map(|r| r.2).sum();
        let unhealthy: i64 = by_platform.iter().map(|r| r.3).sum();
        let success_rate = if total == 0 {
            0.0
        } else {
            (healthy as f64 / total as f64 * 10_000.0).round() / 100.0
        };
        Ok(Dashboard {
            total,
            healthy,
            unhealthy,
            success_rate,
            by_state,
            by_platform,
            recent_errors,
            as_of,
        })
    }

    /// One page of an integration's checks, newest first. Any role.
    pub async fn history(
        &self,
        caller: &Caller,
        id: IntegrationId,
        page_size: i64,
        page_token: &str,
    ) -> Result<(Vec<CheckRow>, String), Error> {
        let size = paging::page_size("page_size", page_size)?;
        let filters = format!("history={id}");
        let before = paging::decode("page_token", page_token, &filters)?;
        self.get(caller, id).await?;
        let mut rows =
            store::health::list_checks(&self.db, caller.workspace_id, id, before, size + 1).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(usize::try_from(size).unwrap_or(0));
            rows.last()
                .map(|last| paging::encode(last.id, &filters))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    /// The stream of the caller's workspace's health events. Any role.
    pub async fn watch(
        &self,
        caller: &Caller,
        input: WatchInput,
    ) -> Result<stream::EventStream, Error> {
        // Naming another workspace's integration is NotFound, as everywhere.
        for id in &input.integrations {
            self.get(caller, *id).await?;
        }
        self.hub.watch(caller.workspace_id, input).await
    }
}
