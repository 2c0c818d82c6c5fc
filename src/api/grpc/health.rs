//! `HealthService` over gRPC: authenticates and scopes each call; the checks themselves are not built yet.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{Ctx, not_yet, not_yet_for};
use crate::proto::{self, health_service_server::HealthService};

/// Connection health arrives in a later release; every RPC authenticates and says so.
pub struct HealthGrpc {
    pub integrations: crate::service::Integrations,
}

#[tonic::async_trait]
impl HealthService for HealthGrpc {
    type WatchHealthEventsStream =
        Pin<Box<dyn Stream<Item = Result<proto::HealthEvent, Status>> + Send>>;

    async fn check_integration(
        &self,
        req: Request<proto::CheckIntegrationRequest>,
    ) -> Result<Response<proto::CheckIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "name",
            &req.get_ref().name,
            "connection health checks",
        )
        .await)
    }

    async fn check_workspace(
        &self,
        req: Request<proto::CheckWorkspaceRequest>,
    ) -> Result<Response<proto::CheckWorkspaceResponse>, Status> {
        Err(not_yet(&req, "connection health checks"))
    }

    async fn get_health_dashboard(
        &self,
        req: Request<proto::GetHealthDashboardRequest>,
    ) -> Result<Response<proto::GetHealthDashboardResponse>, Status> {
        Err(not_yet(&req, "the health dashboard"))
    }

    async fn list_health_checks(
        &self,
        req: Request<proto::ListHealthChecksRequest>,
    ) -> Result<Response<proto::ListHealthChecksResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "integration",
            &req.get_ref().integration,
            "health check history",
        )
        .await)
    }

    async fn watch_health_events(
        &self,
        req: Request<proto::WatchHealthEventsRequest>,
    ) -> Result<Response<Self::WatchHealthEventsStream>, Status> {
        Err(not_yet(&req, "the health event stream"))
    }
}
