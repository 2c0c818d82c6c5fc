use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::not_yet;
use crate::proto::{self, health_service_server::HealthService};

/// Connection health arrives in a later release; every RPC authenticates and says so.
pub struct HealthGrpc;

#[tonic::async_trait]
impl HealthService for HealthGrpc {
    type WatchHealthEventsStream =
        Pin<Box<dyn Stream<Item = Result<proto::HealthEvent, Status>> + Send>>;

    async fn check_integration(
        &self,
        req: Request<proto::CheckIntegrationRequest>,
    ) -> Result<Response<proto::CheckIntegrationResponse>, Status> {
        Err(not_yet(&req, "connection health checks"))
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
        Err(not_yet(&req, "health check history"))
    }

    async fn watch_health_events(
        &self,
        req: Request<proto::WatchHealthEventsRequest>,
    ) -> Result<Response<Self::WatchHealthEventsStream>, Status> {
        Err(not_yet(&req, "the health event stream"))
    }
}
