//! `HealthService` over gRPC: checks, the dashboard, history and the event stream.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{Ctx, convert, requested_timeout};
use crate::domain::{HealthEvent, WorkspaceId, parse_integration_name};
use crate::error::Error;
use crate::proto::{self, health_service_server::HealthService};
use crate::service::Health;
use crate::service::health::{CheckRow, WatchInput};
use crate::service::operations::Operations;

pub struct HealthGrpc {
    pub health: Health,
    /// For call deadlines.
    pub operations: Operations,
}

pub fn check(workspace: WorkspaceId, c: CheckRow) -> proto::HealthCheck {
    proto::HealthCheck {
        integration: resource(workspace, c.integration_id),
        platform: convert::platform_to_proto(c.platform) as i32,
        state: convert::health_to_proto(c.state) as i32,
        healthy: c.healthy,
        reason: c.reason.unwrap_or_default(),
        message: c.message,
        latency_ms: c.latency_ms,
        check_time: Some(convert::timestamp(c.checked_at)),
        source: c.source.as_str().to_owned(),
    }
}

fn resource(workspace: WorkspaceId, id: crate::domain::IntegrationId) -> String {
    format!("workspaces/{workspace}/integrations/{id}")
}

pub fn event(e: HealthEvent) -> proto::HealthEvent {
    proto::HealthEvent {
        seq: e.seq,
        integration: resource(e.workspace_id, e.integration_id),
        platform: convert::platform_to_proto(e.platform) as i32,
        previous_state: convert::health_to_proto(e.previous_state) as i32,
        state: convert::health_to_proto(e.state) as i32,
        reason: e.reason,
        message: e.message,
        time: Some(convert::timestamp(e.time)),
        snapshot: e.snapshot,
    }
}

impl TryFrom<(&Ctx, proto::WatchHealthEventsRequest)> for WatchInput {
    type Error = Error;

    fn try_from((ctx, r): (&Ctx, proto::WatchHealthEventsRequest)) -> Result<Self, Error> {
        let mut platforms = Vec::new();
        for p in r.platforms {
            platforms.extend(convert::platform_from_proto("platforms", p)?);
        }
        let mut states = Vec::new();
        for s in r.states {
            states.extend(convert::health_from_proto("states", s)?);
        }
        let integrations = r
            .integrations
            .iter()
            .take(crate::service::health::MAX_FILTERED_INTEGRATIONS + 1)
            .map(|n| parse_integration_name("integrations", n, ctx.caller.workspace_id))
            .collect::<Result<_, _>>()?;
        Ok(WatchInput {
            after_seq: r.after_seq,
            platforms,
            integrations,
            states,
        })
    }
}

#[tonic::async_trait]
impl HealthService for HealthGrpc {
    type WatchHealthEventsStream =
        Pin<Box<dyn Stream<Item = Result<proto::HealthEvent, Status>> + Send>>;

    async fn check_integration(
        &self,
        req: Request<proto::CheckIntegrationRequest>,
    ) -> Result<Response<proto::CheckIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let id = ctx.integration(&req.get_ref().name)?;
        let c = self
            .health
            .check(&ctx.caller, id, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::CheckIntegrationResponse {
            check: Some(check(ctx.caller.workspace_id, c)),
        }))
    }

    async fn check_workspace(
        &self,
        req: Request<proto::CheckWorkspaceRequest>,
    ) -> Result<Response<proto::CheckWorkspaceResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let mut platforms = Vec::new();
        for p in &req.get_ref().platforms {
            platforms
                .extend(convert::platform_from_proto("platforms", *p).map_err(|e| ctx.status(e))?);
        }
        let checks = self
            .health
            .check_workspace(&ctx.caller, &platforms, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        let w = ctx.caller.workspace_id;
        Ok(Response::new(proto::CheckWorkspaceResponse {
            checks: checks.into_iter().map(|c| check(w, c)).collect(),
        }))
    }

    async fn get_health_dashboard(
        &self,
        req: Request<proto::GetHealthDashboardRequest>,
    ) -> Result<Response<proto::GetHealthDashboardResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let d = self
            .health
            .dashboard(&ctx.caller)
            .await
            .map_err(|e| ctx.status(e))?;
        let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Response::new(proto::GetHealthDashboardResponse {
            workspace_id: ctx.caller.workspace_id.to_string(),
            summary: Some(proto::HealthSummary {
                total_integrations: count(d.total),
                healthy: count(d.healthy),
                unhealthy: count(d.unhealthy),
                success_rate: d.success_rate,
            }),
            status_breakdown: d
                .by_state
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), count(*n)))
                .collect(),
            platform_health: d
                .by_platform
                .iter()
                .map(|(p, total, healthy, unhealthy)| {
                    (
                        p.as_str().to_owned(),
                        proto::PlatformHealth {
                            total: count(*total),
                            healthy: count(*healthy),
                            unhealthy: count(*unhealthy),
                        },
                    )
                })
                .collect(),
            recent_errors: d
                .recent_errors
                .into_iter()
                .map(|c| proto::RecentError {
                    integration_id: c.integration_id.to_string(),
                    platform: convert::platform_to_proto(c.platform) as i32,
                    error: c.message,
                    check_time: Some(convert::timestamp(c.checked_at)),
                })
                .collect(),
            last_update_time: Some(convert::timestamp(d.as_of)),
        }))
    }

    async fn list_health_checks(
        &self,
        req: Request<proto::ListHealthChecksRequest>,
    ) -> Result<Response<proto::ListHealthChecksResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let r = req.get_ref();
        let id = parse_integration_name("integration", &r.integration, ctx.caller.workspace_id)
            .map_err(|e| ctx.status(e))?;
        let (rows, next) = self
            .health
            .history(&ctx.caller, id, i64::from(r.page_size), &r.page_token)
            .await
            .map_err(|e| ctx.status(e))?;
        let w = ctx.caller.workspace_id;
        Ok(Response::new(proto::ListHealthChecksResponse {
            checks: rows.into_iter().map(|c| check(w, c)).collect(),
            next_page_token: next,
        }))
    }

    async fn watch_health_events(
        &self,
        req: Request<proto::WatchHealthEventsRequest>,
    ) -> Result<Response<Self::WatchHealthEventsStream>, Status> {
        let ctx = Ctx::of(&req)?;
        let input = WatchInput::try_from((&ctx, req.into_inner())).map_err(|e| ctx.status(e))?;
        let events = self
            .health
            .watch(&ctx.caller, input)
            .await
            .map_err(|e| ctx.status(e))?;
        let rid = ctx.rid.clone();
        let stream = events.map(move |r| {
            r.map(event)
                .map_err(|e| crate::api::error::to_status(&e, &rid))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
