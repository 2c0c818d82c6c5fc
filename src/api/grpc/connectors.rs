use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{Ctx, not_yet, not_yet_for};
use crate::proto::{self, connector_service_server::ConnectorService};

/// Connector operations arrive in a later release; every RPC authenticates and says so.
pub struct ConnectorsGrpc {
    pub integrations: crate::service::Integrations,
}

#[tonic::async_trait]
impl ConnectorService for ConnectorsGrpc {
    type DownloadStream =
        Pin<Box<dyn Stream<Item = Result<proto::DownloadResponse, Status>> + Send>>;

    async fn list_operations(
        &self,
        req: Request<proto::ListOperationsRequest>,
    ) -> Result<Response<proto::ListOperationsResponse>, Status> {
        Err(not_yet(&req, "the connector operation catalogue"))
    }

    async fn invoke(
        &self,
        req: Request<proto::InvokeRequest>,
    ) -> Result<Response<proto::InvokeResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "integration",
            &req.get_ref().integration,
            "connector operations",
        )
        .await)
    }

    async fn proxy(
        &self,
        req: Request<proto::ProxyRequest>,
    ) -> Result<Response<proto::ProxyResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "integration",
            &req.get_ref().integration,
            "the authenticated proxy",
        )
        .await)
    }

    async fn download(
        &self,
        req: Request<proto::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "integration",
            &req.get_ref().integration,
            "recording downloads",
        )
        .await)
    }
}
