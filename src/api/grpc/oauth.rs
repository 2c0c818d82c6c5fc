use tonic::{Request, Response, Status};

use super::{Ctx, not_yet, not_yet_for};
use crate::proto::{self, o_auth_service_server::OAuthService};

/// OAuth flows arrive in a later release; every RPC authenticates and says so.
pub struct OAuthGrpc {
    pub integrations: crate::service::Integrations,
}

#[tonic::async_trait]
impl OAuthService for OAuthGrpc {
    async fn start_authorization(
        &self,
        req: Request<proto::StartAuthorizationRequest>,
    ) -> Result<Response<proto::StartAuthorizationResponse>, Status> {
        Err(not_yet(&req, "OAuth authorization"))
    }

    async fn refresh_integration(
        &self,
        req: Request<proto::RefreshIntegrationRequest>,
    ) -> Result<Response<proto::RefreshIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "name",
            &req.get_ref().name,
            "OAuth token refresh",
        )
        .await)
    }

    async fn revoke_integration(
        &self,
        req: Request<proto::RevokeIntegrationRequest>,
    ) -> Result<Response<proto::RevokeIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req);
        Err(not_yet_for(
            &self.integrations,
            ctx,
            "name",
            &req.get_ref().name,
            "OAuth token revocation",
        )
        .await)
    }

    async fn list_providers(
        &self,
        req: Request<proto::ListProvidersRequest>,
    ) -> Result<Response<proto::ListProvidersResponse>, Status> {
        Err(not_yet(&req, "the OAuth provider catalogue"))
    }
}
