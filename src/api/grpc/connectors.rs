//! ConnectorService: thin translations onto `service::operations`.

use std::pin::Pin;

use futures::{Stream, StreamExt, stream};
use prost_types::Struct;
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use super::{Ctx, convert, requested_timeout};
use crate::domain::{WorkspaceId, parse_integration_name};
use crate::error::Error;
use crate::proto::{self, connector_service_server::ConnectorService};
use crate::service::operations::{InvokeInput, Operations, ProxyInput};

pub struct ConnectorsGrpc {
    pub operations: Operations,
}

fn params(field: &str, s: Option<Struct>) -> Result<Map<String, Value>, Error> {
    s.map(|s| convert::struct_to_json(field, s))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Operation data as a Struct: objects as they are, lists as `{"items": [...]}`, other values
/// as `{"value": ...}`, nothing as `{}`.
fn data_struct(data: Value) -> Struct {
    let map = match data {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        Value::Array(a) => Map::from_iter([("items".to_owned(), Value::Array(a))]),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    convert::struct_from_json(map)
}

#[tonic::async_trait]
impl ConnectorService for ConnectorsGrpc {
    type DownloadStream =
        Pin<Box<dyn Stream<Item = Result<proto::DownloadResponse, Status>> + Send>>;

    async fn list_operations(
        &self,
        req: Request<proto::ListOperationsRequest>,
    ) -> Result<Response<proto::ListOperationsResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let platform = convert::platform_from_proto("platform", req.get_ref().platform)
            .map_err(|e| ctx.status(e))?;
        let operations = self
            .operations
            .list(platform)
            .into_iter()
            .map(|op| proto::Operation {
                name: op.name.clone(),
                platform: convert::platform_to_proto(op.platform) as i32,
                description: op.description.to_owned(),
                params_schema: Some(data_struct(op.schema.to_json())),
                writes: op.writes,
            })
            .collect();
        Ok(Response::new(proto::ListOperationsResponse { operations }))
    }

    async fn invoke(
        &self,
        req: Request<proto::InvokeRequest>,
    ) -> Result<Response<proto::InvokeResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let r = req.into_inner();
        let input = invoke_input(r, ctx.caller.workspace_id).map_err(|e| ctx.status(e))?;
        let out = self
            .operations
            .invoke(&ctx.caller, input, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::InvokeResponse {
            data: Some(data_struct(out.data)),
            next_page_token: out.next_page_token,
        }))
    }

    async fn proxy(
        &self,
        req: Request<proto::ProxyRequest>,
    ) -> Result<Response<proto::ProxyResponse>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let r = req.into_inner();
        let input = proxy_input(r, ctx.caller.workspace_id).map_err(|e| ctx.status(e))?;
        let out = self
            .operations
            .proxy(&ctx.caller, input, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        Ok(Response::new(proto::ProxyResponse {
            status: i32::from(out.status),
            headers: out.headers.into_iter().collect(),
            body: Some(convert::struct_from_json(out.body)),
        }))
    }

    async fn download(
        &self,
        req: Request<proto::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let ctx = Ctx::of(&req)?;
        let deadline = self.operations.deadline(requested_timeout(&req));
        let r = req.into_inner();
        let (integration, params) =
            parse_integration_name("integration", &r.integration, ctx.caller.workspace_id)
                .and_then(|id| Ok((id, params("params", r.params)?)))
                .map_err(|e| ctx.status(e))?;
        let download = self
            .operations
            .download(&ctx.caller, integration, &r.operation, params, deadline)
            .await
            .map_err(|e| ctx.status(e))?;
        // The first message says what is coming; then the bytes, as the provider sends them,
        // pulled only as fast as the client reads (nothing is buffered whole).
        let head = proto::DownloadResponse {
            chunk: Vec::new(),
            content_type: download.content_type,
            total_bytes: download
                .total_bytes
                .and_then(|n| i64::try_from(n).ok())
                .unwrap_or(0),
        };
        let rid = ctx.rid.clone();
        let chunks = download.chunks.map(move |chunk| match chunk {
            Ok(bytes) => Ok(proto::DownloadResponse {
                chunk: bytes.to_vec(),
                content_type: String::new(),
                total_bytes: 0,
            }),
            Err(e) => Err(crate::api::error::to_status(&e, &rid)),
        });
        let out = stream::once(async move { Ok(head) }).chain(chunks);
        Ok(Response::new(Box::pin(out)))
    }
}

/// An Invoke request, its integration resolved in the caller's workspace.
fn invoke_input(r: proto::InvokeRequest, workspace: WorkspaceId) -> Result<InvokeInput, Error> {
    Ok(InvokeInput {
        integration: parse_integration_name("integration", &r.integration, workspace)?,
        operation: r.operation,
        params: params("params", r.params)?,
        page_token: r.page_token,
    })
}

/// A Proxy request, its integration resolved in the caller's workspace.
fn proxy_input(r: proto::ProxyRequest, workspace: WorkspaceId) -> Result<ProxyInput, Error> {
    Ok(ProxyInput {
        integration: parse_integration_name("integration", &r.integration, workspace)?,
        method: r.method,
        path: r.path,
        query: r.query,
        body: r
            .body
            .map(|b| convert::struct_to_json("body", b))
            .transpose()?,
    })
}
