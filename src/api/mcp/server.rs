//! The MCP server handler: `tools/list` for the caller, `tools/call` through the same use cases
//! as gRPC (`Operations::invoke`, `Health::check`), failures as tool errors carrying the
//! ErrorInfo reason and field violations, and metrics per tool.

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use super::tools::{self, Catalogue, Named, OperationTool};
use crate::domain::{
    Caller, Integration, IntegrationId, Platform, RequestId, parse_integration_name,
};
use crate::error::Error;
use crate::service::Health;
use crate::service::operations::{InvokeInput, Operations};

/// How long a client may reuse a `tools/list` answer: connecting a platform shows up within it.
const TOOLS_TTL_MS: u64 = 60_000;

/// One handler per request (rmcp's stateless mode): cheap clones of the shared services.
#[derive(Clone)]
pub struct Gateway {
    pub catalogue: Arc<Catalogue>,
    pub operations: Operations,
    pub health: Health,
}

/// Who is calling, from the request the auth middleware let through.
fn caller_of(cx: &RequestContext<RoleServer>) -> Result<(Caller, RequestId), McpError> {
    let parts = cx.extensions.get::<http::request::Parts>();
    let caller = parts.and_then(|p| p.extensions.get::<Caller>()).cloned();
    let rid = parts
        .and_then(|p| p.extensions.get::<RequestId>())
        .cloned()
        .unwrap_or_default();
    // The middleware refuses requests without a caller, so this is a wiring bug: fail closed.
    caller
        .map(|c| (c, rid))
        .ok_or_else(|| McpError::internal_error("no authenticated caller", None))
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "founderhouse-integrations",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Tools act on the platforms this workspace has connected, as the workspace. Call \
                 list_integrations to see them; pass `integration` when a platform has more than \
                 one. Failed calls answer isError with a reason and, for bad arguments, the field.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let (caller, rid) = caller_of(&cx)?;
        let live = self
            .health
            .live(&caller)
            .await
            .map_err(|e| protocol_error(&e, &rid))?;
        let all = self.catalogue.for_caller(&caller, &live);
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let (page, next) = tools::page(all, cursor).map_err(|e| protocol_error(&e, &rid))?;
        let mut result = ListToolsResult::with_all_items(page)
            .with_ttl_ms(TOOLS_TTL_MS)
            .with_cache_scope(CacheScope::Private);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let (caller, rid) = caller_of(&cx)?;
        let Some(named) = self.catalogue.named(&request.name) else {
            // An unknown tool is protocol misuse (the spec's -32602), not a tool failure.
            let shown: String = request.name.chars().take(64).collect();
            metrics::counter!("fh_mcp_tool_calls_total", "tool" => "unknown", "result" => "UNKNOWN_TOOL")
                .increment(1);
            return Err(McpError::invalid_params(
                format!("unknown tool {shown:?}; tools/list names them"),
                None,
            ));
        };
        let label = request.name.to_string();
        let started = Instant::now();
        let args = request.arguments.unwrap_or_default();
        let outcome = match named {
            Named::Operation(t) => self.invoke(&caller, t, args).await,
            Named::ListIntegrations => self.list_integrations(&caller, args).await,
            Named::CheckIntegration => self.check_integration(&caller, args).await,
        };
        let elapsed = started.elapsed();
        let result = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.reason().as_str(),
        };
        metrics::counter!("fh_mcp_tool_calls_total", "tool" => label.clone(), "result" => result)
            .increment(1);
        metrics::histogram!("fh_mcp_tool_call_duration_seconds", "tool" => label.clone())
            .record(elapsed.as_secs_f64());
        // Debug, like every transport's per-request line: an info line per call cost a tenth of
        // a tool call's throughput (benches/mcp.rs). The metrics above count every call.
        tracing::debug!(request_id = %rid, tool = %label, result, latency_us = elapsed.as_micros() as u64, "tool call");
        Ok(match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => CallToolResult::structured_error(tool_error(&e, &rid)),
        }
        .into())
    }
}

impl Gateway {
    /// An operation through `Operations::invoke`: the same role check, schema validation,
    /// HTTP core, refresh on 401, health signal and audit as gRPC `Invoke`.
    async fn invoke(
        &self,
        caller: &Caller,
        t: &OperationTool,
        mut args: Map<String, Value>,
    ) -> Result<Value, Error> {
        let chosen = take_string(&mut args, "integration")?;
        let page_token = if t.pages {
            take_string(&mut args, "page_token")?.unwrap_or_default()
        } else {
            String::new()
        };
        let integration = self.resolve(caller, chosen, Some(t.platform)).await?;
        let deadline = self.operations.deadline(None);
        let out = self
            .operations
            .invoke(
                caller,
                InvokeInput {
                    integration,
                    operation: t.operation.clone(),
                    params: args,
                    page_token,
                },
                deadline,
            )
            .await?;
        Ok(json!({"data": out.data, "next_page_token": out.next_page_token}))
    }

    async fn list_integrations(
        &self,
        caller: &Caller,
        args: Map<String, Value>,
    ) -> Result<Value, Error> {
        no_arguments(&args)?;
        let live = self.health.live(caller).await?;
        let items: Vec<Value> = live.iter().map(integration_json).collect();
        Ok(json!({"data": items, "next_page_token": ""}))
    }

    /// The health issue's recorded check (`Health::check`, members and up).
    async fn check_integration(
        &self,
        caller: &Caller,
        mut args: Map<String, Value>,
    ) -> Result<Value, Error> {
        let chosen = take_string(&mut args, "integration")?;
        no_arguments(&args)?;
        let id = self.resolve(caller, chosen, None).await?;
        let deadline = self.operations.deadline(None);
        let check = self.health.check(caller, id, deadline).await?;
        Ok(json!({
            "data": {
                "integration": id.to_string(),
                "platform": check.platform.as_str(),
                "healthy": check.healthy,
                "state": check.state.as_str(),
                "reason": check.reason,
                "message": check.message,
                "latency_ms": check.latency_ms,
                "checked_at": check.checked_at.to_rfc3339(),
            },
            "next_page_token": "",
        }))
    }

    /// The integration named (in the caller's workspace, else NOT_FOUND), or the workspace's
    /// only live one of the platform; several are INVALID_ARGUMENT naming them.
    async fn resolve(
        &self,
        caller: &Caller,
        chosen: Option<String>,
        platform: Option<Platform>,
    ) -> Result<IntegrationId, Error> {
        if let Some(name) = chosen {
            return parse_integration_name("integration", &name, caller.workspace_id);
        }
        let live = self.health.live(caller).await?;
        let choices: Vec<&Integration> = live
            .iter()
            .filter(|i| platform.is_none_or(|p| i.platform == p))
            .collect();
        let what = platform.map_or("live".to_owned(), |p| format!("live {}", p.title()));
        match choices.as_slice() {
            [one] => Ok(one.id),
            [] => Err(Error::invalid_field(
                "integration",
                format!("is required: the workspace has no {what} integration; connect one first"),
            )),
            many => Err(Error::invalid_field(
                "integration",
                format!(
                    "is required: the workspace has {} {what} integrations; pass one of {}",
                    many.len(),
                    tools::describe(many)
                ),
            )),
        }
    }
}

fn integration_json(i: &Integration) -> Value {
    json!({
        "name": i.resource_name(),
        "id": i.id.to_string(),
        "platform": i.platform.as_str(),
        "display_name": i.display_name,
        "status": i.status.as_str(),
        "health_state": i.health_state.as_str(),
    })
}

/// Removes `field` from the arguments: absent or null is None, a string is it, else invalid.
fn take_string(
    args: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Error> {
    match args.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid_field(field, "must be a string")),
    }
}

fn no_arguments(args: &Map<String, Value>) -> Result<(), Error> {
    match args.keys().next() {
        None => Ok(()),
        Some(k) => {
            let shown: String = k.chars().take(64).collect();
            Err(Error::invalid_field(
                shown,
                "is not an argument of this tool",
            ))
        }
    }
}

/// The REST error body's `error` object (reason, message, field violations, request id), with
/// fields named as the tool's arguments are (`channel`, not the use case's `params.channel`).
fn tool_error(err: &Error, rid: &RequestId) -> Value {
    let mut body = crate::api::error::to_body(err, rid);
    let mut error = body
        .get_mut("error")
        .map(Value::take)
        .unwrap_or_else(|| json!({}));
    if let Some(Value::Array(violations)) = error.get_mut("field_violations") {
        for v in violations {
            if let Some(Value::String(field)) = v.get_mut("field")
                && let Some(rest) = field.strip_prefix("params.")
            {
                *field = rest.to_owned();
            }
        }
    }
    if let Some(after) = err.retry_after() {
        error["retry_after_seconds"] = json!(after.as_secs().max(1));
    }
    json!({ "error": error })
}

/// A failure of `tools/list` itself (the database is down, a bad cursor): a JSON-RPC error.
fn protocol_error(err: &Error, rid: &RequestId) -> McpError {
    let body = tool_error(err, rid);
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("internal error")
        .to_owned();
    match err.kind() {
        crate::error::ErrorKind::InvalidArgument => McpError::invalid_params(message, Some(body)),
        _ => McpError::internal_error(message, Some(body)),
    }
}
