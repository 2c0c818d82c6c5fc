//! Health over REST, on the product spec's paths and JSON shapes: the dashboard, the workspace
//! status, one integration's health, a check now, and the history.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::integrations::parse_id;
use super::{Ctx, RestState};
use crate::domain::{HealthState, Integration, IntegrationStatus};
use crate::error::{Error, FieldViolation};
use crate::service::health::CheckRow;

pub fn routes() -> Router<RestState> {
    Router::new()
        .route("/api/v1/integrations/health-dashboard", get(dashboard))
        .route("/api/v1/integrations/status", get(status))
        .route("/api/v1/integrations/{id}/health", get(one))
        .route("/api/v1/integrations/{id}/health/check", post(check_now))
        .route("/api/v1/integrations/{id}/health/history", get(history))
}

fn check_json(c: &CheckRow) -> Value {
    json!({
        "integration_id": c.integration_id.to_string(),
        "platform": c.platform.as_str(),
        "state": c.state.as_str(),
        "healthy": c.healthy,
        "reason": c.reason.as_deref().unwrap_or(""),
        "message": c.message,
        "latency_ms": c.latency_ms,
        "source": c.source.as_str(),
        "checked_at": c.checked_at,
    })
}

/// The seed's `IntegrationHealthCheck`, from stored state, plus our state machine's fields.
fn integration_health_json(i: &Integration) -> Value {
    let healthy = i.health_state == HealthState::Healthy;
    json!({
        "integration_id": i.id.to_string(),
        "platform": i.platform.as_str(),
        "status": i.status.as_str(),
        "is_healthy": healthy,
        "last_checked": i.last_check_at,
        "error_message": if healthy || i.health_message.is_empty() { Value::Null } else { Value::from(i.health_message.clone()) },
        "health_state": i.health_state.as_str(),
        "reason": i.health_reason.as_deref().unwrap_or(""),
        "next_check_at": i.next_check_at,
    })
}

async fn dashboard(ctx: Ctx, State(s): State<RestState>) -> Response {
    let result = s.health.dashboard(&ctx.caller).await.map(|d| {
        json!({
            "workspace_id": ctx.caller.workspace_id.to_string(),
            "summary": {
                "total_integrations": d.total,
                "healthy": d.healthy,
                "unhealthy": d.unhealthy,
                "success_rate": d.success_rate,
            },
            "status_breakdown": d.by_state.iter().map(|(st, n)| (st.as_str().to_owned(), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            "platform_health": d.by_platform.iter().map(|(p, total, healthy, unhealthy)| {
                (p.as_str().to_owned(), json!({"total": total, "healthy": healthy, "unhealthy": unhealthy}))
            }).collect::<serde_json::Map<_, _>>(),
            "recent_errors": d.recent_errors.iter().map(|c| json!({
                "integration_id": c.integration_id.to_string(),
                "platform": c.platform.as_str(),
                "error": c.message,
                "checked_at": c.checked_at,
            })).collect::<Vec<_>>(),
            "last_updated": d.as_of,
        })
    });
    ctx.answer(result)
}

/// The seed's workspace status: counts by status and each live integration's health.
async fn status(ctx: Ctx, State(s): State<RestState>) -> Response {
    let result = s.health.live(&ctx.caller).await.map(|rows| {
        let count = |st: IntegrationStatus| rows.iter().filter(|i| i.status == st).count();
        json!({
            "workspace_id": ctx.caller.workspace_id.to_string(),
            "total_integrations": rows.len(),
            "connected": count(IntegrationStatus::Connected),
            "error": count(IntegrationStatus::Error),
            "pending": count(IntegrationStatus::Pending),
            "needs_reauth": count(IntegrationStatus::NeedsReauth),
            "integrations": rows.iter().map(integration_health_json).collect::<Vec<_>>(),
        })
    });
    ctx.answer(result)
}

async fn one(ctx: Ctx, State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let result = async { s.health.get(&ctx.caller, parse_id(&id)?).await }.await;
    ctx.answer(result.map(|i| integration_health_json(&i)))
}

async fn check_now(ctx: Ctx, State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        s.health
            .check(&ctx.caller, id, s.operations.deadline(None))
            .await
    }
    .await;
    ctx.answer(result.map(|c| check_json(&c)))
}

async fn history(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let mut v = Vec::new();
        let page_size = match q.get("page_size").map(|s| s.parse::<i64>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                v.push(FieldViolation::new("page_size", "must be an integer"));
                0
            }
        };
        for k in q.keys() {
            if !matches!(k.as_str(), "page_size" | "page_token") {
                v.push(FieldViolation::new(
                    k.chars().take(64).collect::<String>(),
                    "is not a known query parameter",
                ));
            }
        }
        if !v.is_empty() {
            return Err(Error::invalid_fields(v));
        }
        let token = q.get("page_token").map(String::as_str).unwrap_or("");
        s.health.history(&ctx.caller, id, page_size, token).await
    }
    .await;
    ctx.answer(result.map(|(rows, next)| {
        json!({
            "checks": rows.iter().map(check_json).collect::<Vec<_>>(),
            "next_page_token": next,
        })
    }))
}
