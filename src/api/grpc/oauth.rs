//! `OAuthService` over gRPC: start and complete an authorization, refresh, revoke, list the
//! providers.

use tonic::{Request, Response, Status};

use super::{Ctx, convert};
use crate::domain::{ProviderId, Secret};
use crate::proto::{self, o_auth_service_server::OAuthService};
use crate::service::Integrations;
use crate::service::oauth::OAuth;

pub struct OAuthGrpc {
    pub integrations: Integrations,
    pub oauth: OAuth,
}

#[tonic::async_trait]
impl OAuthService for OAuthGrpc {
    async fn start_authorization(
        &self,
        req: Request<proto::StartAuthorizationRequest>,
    ) -> Result<Response<proto::StartAuthorizationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let r = req.into_inner();
        let platform =
            convert::platform_from_proto("platform", r.platform).map_err(|e| ctx.status(e))?;
        let started = self
            .oauth
            .start(&ctx.caller, platform, &r.return_to)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::StartAuthorizationResponse {
            authorization_url: started.authorization_url,
            state_expire_time: Some(convert::timestamp(started.expires_at)),
            state: started.state.expose().clone(),
            platform: convert::platform_to_proto(started.platform) as i32,
        }))
    }

    async fn complete_authorization(
        &self,
        req: Request<proto::CompleteAuthorizationRequest>,
    ) -> Result<Response<proto::CompleteAuthorizationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let handle = Secret::new(req.into_inner().handle);
        let done = self
            .oauth
            .complete(&ctx.caller, None, &handle, &ctx.rid)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::CompleteAuthorizationResponse {
            integration: Some(convert::integration(done.integration)),
            warning: done.warning.unwrap_or_default().to_owned(),
        }))
    }

    async fn refresh_integration(
        &self,
        req: Request<proto::RefreshIntegrationRequest>,
    ) -> Result<Response<proto::RefreshIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let id = ctx.integration(&req.get_ref().name)?;
        let i = self
            .oauth
            .refresh_now(&ctx.caller, id)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::RefreshIntegrationResponse {
            integration: Some(convert::integration(i)),
        }))
    }

    async fn revoke_integration(
        &self,
        req: Request<proto::RevokeIntegrationRequest>,
    ) -> Result<Response<proto::RevokeIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let id = ctx.integration(&req.get_ref().name)?;
        let (i, revocations) = self
            .integrations
            .disconnect(&ctx.caller, &ctx.rid, id)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::RevokeIntegrationResponse {
            integration: Some(convert::integration(i)),
            revocations: revocations.into_iter().map(convert::revocation).collect(),
        }))
    }

    async fn list_providers(
        &self,
        req: Request<proto::ListProvidersRequest>,
    ) -> Result<Response<proto::ListProvidersResponse>, Status> {
        Ctx::of(&req)?;
        let providers = self
            .oauth
            .catalogue()
            .listings()
            .iter()
            .map(|l| proto::OAuthProvider {
                id: l.id.as_str().to_owned(),
                platforms: vec![convert::platform_to_proto(ProviderId::platform(l.id)) as i32],
                configured: l.configured,
                scopes: l.scopes.clone(),
                pkce: l.pkce,
                supports_refresh: l.supports_refresh,
                supports_revocation: l.supports_revocation,
                note: l.note.to_owned(),
            })
            .collect();
        Ok(Response::new(proto::ListProvidersResponse { providers }))
    }
}
