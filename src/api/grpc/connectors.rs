use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::not_yet;
use crate::proto::{self, connector_service_server::ConnectorService};

/// Connector operations arrive in a later release; every RPC authenticates and says so.
pub struct ConnectorsGrpc;

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
        Err(not_yet(&req, "connector operations"))
    }

    async fn proxy(
        &self,
        req: Request<proto::ProxyRequest>,
    ) -> Result<Response<proto::ProxyResponse>, Status> {
        Err(not_yet(&req, "the authenticated proxy"))
    }

    async fn download(
        &self,
        req: Request<proto::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        Err(not_yet(&req, "recording downloads"))
    }
}
