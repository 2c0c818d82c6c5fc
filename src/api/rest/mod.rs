//! REST gateway: probes, metrics, the OpenAPI document and the product's `/api/v1` endpoints.

mod health;
mod integrations;
mod oauth;
mod openapi;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};

use crate::domain::{Caller, RequestId};
use crate::error::{Error, Reason};
use crate::service::{Integrations, System};

/// Largest REST request body we read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct RestState {
    pub integrations: Integrations,
    pub oauth: crate::service::oauth::OAuth,
    pub health: crate::service::Health,
    pub operations: crate::service::operations::Operations,
    pub system: System,
    pub metrics: PrometheusHandle,
    /// False once shutdown starts, so load balancers stop sending traffic.
    pub accepting: Arc<AtomicBool>,
}

/// The routes. Auth runs after routing (as a route layer) so that metrics see the matched
/// route of rejected requests too, and unknown paths are a plain 404. `/metrics` is among them
/// unless it has a listener of its own (`metrics_router`). `mcp` (`/mcp` and its metadata)
/// brings its own auth, which answers with MCP's discovery challenge.
pub fn router(
    state: RestState,
    auth: super::auth::AuthLayer,
    with_metrics: bool,
    mcp: Router<RestState>,
) -> Router {
    let base = Router::new();
    let base = if with_metrics {
        base.route("/metrics", get(metrics))
    } else {
        base
    };
    base.route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/api/v1/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
        .merge(integrations::routes())
        .merge(health::routes())
        .merge(oauth::routes())
        .route_layer(auth)
        .route_layer(axum::middleware::from_fn(
            super::observe::expose_matched_path,
        ))
        .merge(mcp)
        .fallback(|ctx: RidOnly| async move {
            ctx.error(Error::new(
                crate::error::ErrorKind::NotFound,
                Reason::RouteNotFound,
                "no such endpoint",
            ))
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`FH_METRICS_ADDR`); anything else is a 404.
pub fn metrics_router(state: RestState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<RestState>) -> Response {
    if !s.accepting.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if s.system.ready().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database not ready").into_response()
    }
}

async fn metrics(State(s): State<RestState>) -> Response {
    s.health.observe_gauges().await;
    let (open, idle) = s.system.pool_connections();
    metrics::gauge!("fh_db_pool_connections").set(f64::from(open));
    metrics::gauge!("fh_db_pool_idle_connections").set(idle as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// The authenticated caller and request id of a REST request.
pub struct Ctx {
    pub caller: Caller,
    pub rid: RequestId,
}

impl Ctx {
    pub fn error(&self, err: Error) -> Response {
        super::error::to_response(&err, &self.rid)
    }

    /// 200 with the JSON body, or the error in the REST form.
    pub fn answer(&self, result: Result<Value, Error>) -> Response {
        match result {
            Ok(body) => Json(body).into_response(),
            Err(e) => self.error(e),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let rid = parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default();
        // The auth layer has already rejected requests without a valid token; fail closed.
        match parts.extensions.get::<Caller>().cloned() {
            Some(caller) => Ok(Self { caller, rid }),
            None => Err(super::error::to_response(
                &Error::unauthenticated("missing bearer token"),
                &rid,
            )),
        }
    }
}

/// Only the request id, for unauthenticated endpoints.
pub struct RidOnly(pub RequestId);

impl RidOnly {
    pub fn error(&self, err: Error) -> Response {
        super::error::to_response(&err, &self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RidOnly {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<RequestId>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

/// Parses a request body as a JSON object. Errors name the problem, never echo the input
/// (a body may hold credentials).
pub fn json_object(
    body: Result<bytes::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Map<String, Value>, Error> {
    let bytes = body.map_err(|_| {
        Error::invalid_field("body", format!("must be at most {MAX_BODY_BYTES} bytes"))
    })?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::invalid_field("body", "must be a JSON object")),
        Err(e) => Err(Error::invalid_field(
            "body",
            format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}
