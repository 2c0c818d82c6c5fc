//! Caller auth for `/mcp`: the same bearer JWT check as every endpoint (`Authenticator`), with
//! the MCP discovery challenge on 401 (`WWW-Authenticate: Bearer resource_metadata=...`), and
//! the RFC 9728 protected-resource metadata it points at.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Value, json};

use crate::api::auth::Authenticator;
use crate::domain::RequestId;
use crate::error::ErrorKind;

/// What the middleware and the metadata document need.
pub struct Discovery {
    pub auth: Arc<Authenticator>,
    /// `{FH_PUBLIC_URL}/mcp`: the resource tokens are for.
    pub resource: String,
    /// Where the metadata document is served, for the challenge.
    pub metadata_url: String,
    /// `FH_JWT_ISSUER`, when configured.
    pub issuer: Option<String>,
}

impl Discovery {
    /// The RFC 9728 document.
    pub fn metadata(&self) -> Value {
        let mut doc = json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
            "resource_name": "FounderHouse Integrations",
        });
        if let Some(iss) = &self.issuer {
            doc["authorization_servers"] = json!([iss]);
        }
        doc
    }

    /// RFC 6750 3 and the MCP authorization spec: the scheme, where to discover how to get a
    /// token, and `invalid_token` when one was sent and refused.
    fn challenge(&self, token_sent: bool) -> Option<HeaderValue> {
        let mut value = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        if token_sent {
            value.push_str(", error=\"invalid_token\"");
        }
        HeaderValue::from_str(&value).ok()
    }
}

/// Verifies the bearer token and puts the `Caller` into the request (rmcp hands the request's
/// parts to the handler); otherwise answers the REST error with the MCP challenge.
pub async fn require_caller(
    State(discovery): State<Arc<Discovery>>,
    mut req: Request,
    next: Next,
) -> Response {
    match discovery.auth.authenticate(req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(err) => {
            let rid = req
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_default();
            let mut resp = crate::api::error::to_response(&err, &rid);
            if err.kind() == ErrorKind::Unauthenticated
                && let Some(v) =
                    discovery.challenge(req.headers().contains_key(header::AUTHORIZATION))
            {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
    }
}

/// rmcp answers a body that is not a JSON-RPC message with a 415 in plain text; the spec's
/// answer is a JSON-RPC parse error (code -32700, no id) with 400. serde's message is not
/// echoed: it may quote the input.
pub async fn parse_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() != http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    if !bytes.starts_with(b"fail to deserialize") {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    (
        http::StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32700, "message": "parse error: the body is not a JSON-RPC message"},
        })),
    )
        .into_response()
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn metadata(State(discovery): State<Arc<Discovery>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        axum::Json(discovery.metadata()),
    )
        .into_response()
}
