//! `IntegrationService` over gRPC: parse the request, call the use case, render the answer.

use tonic::{Request, Response, Status};

use super::{Ctx, convert, requested_timeout};
use crate::domain::{IntegrationId, WorkspaceId, parse_integration_name};
use crate::error::Error;
use crate::proto::{self, integration_service_server::IntegrationService};
use crate::service::Integrations;
use crate::service::integrations::{ConnectInput, ListInput, UpdateFieldNames, UpdateInput};
use crate::service::operations::Operations;

pub struct IntegrationsGrpc {
    pub integrations: Integrations,
    /// Runs connection tests.
    pub operations: Operations,
}

#[tonic::async_trait]
impl IntegrationService for IntegrationsGrpc {
    async fn connect_integration(
        &self,
        req: Request<proto::ConnectIntegrationRequest>,
    ) -> Result<Response<proto::ConnectIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let input = ConnectInput::try_from(req.into_inner()).map_err(|e| ctx.status(e))?;
        let i = self
            .integrations
            .connect(&ctx.caller, &ctx.rid, input)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::ConnectIntegrationResponse {
            integration: Some(convert::integration(i)),
        }))
    }

    async fn list_integrations(
        &self,
        req: Request<proto::ListIntegrationsRequest>,
    ) -> Result<Response<proto::ListIntegrationsResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let input = ListInput::try_from(req.into_inner()).map_err(|e| ctx.status(e))?;
        let (rows, next) = self
            .integrations
            .list(&ctx.caller, input)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::ListIntegrationsResponse {
            integrations: rows.into_iter().map(convert::integration).collect(),
            next_page_token: next,
        }))
    }

    async fn get_integration(
        &self,
        req: Request<proto::GetIntegrationRequest>,
    ) -> Result<Response<proto::GetIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let id = ctx.integration(&req.get_ref().name)?;
        let i = self
            .integrations
            .get(&ctx.caller, id)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::GetIntegrationResponse {
            integration: Some(convert::integration(i)),
        }))
    }

    async fn update_integration(
        &self,
        req: Request<proto::UpdateIntegrationRequest>,
    ) -> Result<Response<proto::UpdateIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let (id, input) =
            update_input(req.into_inner(), ctx.caller.workspace_id).map_err(|e| ctx.status(e))?;
        let i = self
            .integrations
            .update(&ctx.caller, &ctx.rid, id, input)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::UpdateIntegrationResponse {
            integration: Some(convert::integration(i)),
        }))
    }

    async fn disconnect_integration(
        &self,
        req: Request<proto::DisconnectIntegrationRequest>,
    ) -> Result<Response<proto::DisconnectIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let id = ctx.integration(&req.get_ref().name)?;
        let (i, revocations) = self
            .integrations
            .disconnect(&ctx.caller, &ctx.rid, id)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::DisconnectIntegrationResponse {
            integration: Some(convert::integration(i)),
            revocations: revocations.into_iter().map(convert::revocation).collect(),
        }))
    }

    async fn test_integration(
        &self,
        req: Request<proto::TestIntegrationRequest>,
    ) -> Result<Response<proto::TestIntegrationResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let id = ctx.integration(&req.get_ref().name)?;
        let t = self
            .operations
            .test(&ctx.caller, id, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::TestIntegrationResponse {
            healthy: t.healthy,
            state: convert::health_to_proto(t.state) as i32,
            reason: t.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            message: t.message,
            latency_ms: t.latency_ms,
        }))
    }
}

/// How the update's fields are named in a gRPC request.
const UPDATE_FIELDS: UpdateFieldNames = UpdateFieldNames {
    display_name: "integration.display_name",
    metadata: "integration.metadata",
    selection: "update_mask",
};

impl TryFrom<proto::ConnectIntegrationRequest> for ConnectInput {
    type Error = Error;

    fn try_from(r: proto::ConnectIntegrationRequest) -> Result<Self, Error> {
        Ok(ConnectInput {
            platform: convert::platform_from_proto("platform", r.platform)?,
            credentials: r.credentials,
            display_name: r.display_name,
            metadata: r
                .metadata
                .map(|m| convert::struct_to_json("metadata", m))
                .transpose()?,
            provider_account_id: r.provider_account_id,
        })
    }
}

impl TryFrom<proto::ListIntegrationsRequest> for ListInput {
    type Error = Error;

    fn try_from(r: proto::ListIntegrationsRequest) -> Result<Self, Error> {
        Ok(ListInput {
            page_size: i64::from(r.page_size),
            page_token: r.page_token,
            platform: convert::platform_from_proto("platform", r.platform)?,
            status: convert::status_from_proto("status", r.status)?,
        })
    }
}

/// The integration an update names (in the caller's workspace) and what the field mask selects.
/// AIP-134: an empty mask updates every field that is set.
fn update_input(
    r: proto::UpdateIntegrationRequest,
    workspace: WorkspaceId,
) -> Result<(IntegrationId, UpdateInput), Error> {
    let integration = r
        .integration
        .ok_or_else(|| Error::invalid_field("integration", "is required"))?;
    let id = parse_integration_name("integration.name", &integration.name, workspace)?;
    let paths: Vec<String> = r.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths
        .iter()
        .any(|p| !matches!(p.as_str(), "display_name" | "metadata"))
    {
        return Err(Error::invalid_field(
            "update_mask",
            "may name only display_name and metadata",
        ));
    }
    let wants = |f: &str, set: bool| {
        if paths.is_empty() {
            set
        } else {
            paths.iter().any(|p| p == f)
        }
    };
    let display_name = wants("display_name", !integration.display_name.is_empty())
        .then_some(integration.display_name);
    let metadata_patch = if wants("metadata", integration.metadata.is_some()) {
        Some(convert::struct_to_json(
            UPDATE_FIELDS.metadata,
            integration.metadata.unwrap_or_default(),
        )?)
    } else {
        None
    };
    Ok((
        id,
        UpdateInput {
            display_name,
            metadata_patch,
            names: UPDATE_FIELDS,
        },
    ))
}
