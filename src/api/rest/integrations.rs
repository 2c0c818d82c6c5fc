//! `/api/v1/integrations`: the product spec's paths, over the same use cases as gRPC.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Ctx, RestState, json_object};
use crate::domain::{Integration, IntegrationId, IntegrationStatus, Platform, TokenRevocation};
use crate::error::{Error, FieldViolation};
use crate::service::integrations::{ConnectInput, ListInput, UpdateFieldNames, UpdateInput};

pub fn routes() -> Router<RestState> {
    Router::new()
        .route("/api/v1/integrations/connect", post(connect))
        .route("/api/v1/integrations", get(list))
        .route(
            "/api/v1/integrations/{id}",
            get(get_one).patch(update).delete(disconnect),
        )
}

pub fn integration_json(i: &Integration) -> Value {
    json!({
        "id": i.id.to_string(),
        "name": i.resource_name(),
        "workspace_id": i.workspace_id.to_string(),
        "platform": i.platform.as_str(),
        "connection_type": i.connection_type.as_str(),
        "status": i.status.as_str(),
        "status_reason": i.status_reason,
        "display_name": i.display_name,
        "metadata": i.metadata,
        "provider_account_id": i.provider_account_id,
        "credential_fields": i.credential_fields,
        "scopes": i.scopes,
        "health_state": i.health_state.as_str(),
        "credential_expires_at": i.credential_expires_at,
        "last_checked_at": i.last_check_at,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
    })
}

/// A disconnected or revoked integration and what happened to each token upstream.
pub fn disconnected_json(i: &Integration, revocations: &[TokenRevocation]) -> Value {
    json!({
        "integration": integration_json(i),
        "revocations": revocations.iter().map(revocation_json).collect::<Vec<_>>(),
    })
}

pub fn revocation_json(r: &TokenRevocation) -> Value {
    json!({
        "token_type": r.token_type,
        "revoked_upstream": r.revoked_upstream,
        "reason": r.reason.map_or("", |r| r.as_str()),
        "message": r.message,
    })
}

pub fn parse_id(raw: &str) -> Result<IntegrationId, Error> {
    uuid::Uuid::parse_str(raw)
        .map(IntegrationId)
        .map_err(|_| Error::invalid_field("id", "is not a valid integration id"))
}

fn string_field(obj: &mut Map<String, Value>, name: &str, v: &mut Vec<FieldViolation>) -> String {
    match obj.remove(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => {
            v.push(FieldViolation::new(name, "must be a string"));
            String::new()
        }
    }
}

fn object_field(
    obj: &mut Map<String, Value>,
    name: &str,
    v: &mut Vec<FieldViolation>,
) -> Option<Map<String, Value>> {
    match obj.remove(name) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            v.push(FieldViolation::new(name, "must be an object"));
            None
        }
    }
}

fn reject_unknown(obj: &Map<String, Value>, v: &mut Vec<FieldViolation>) {
    for k in obj.keys() {
        let shown: String = k.chars().take(64).collect();
        v.push(FieldViolation::new(shown, "is not a known field"));
    }
}

async fn connect(
    ctx: Ctx,
    State(s): State<RestState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let input = json_object(body).and_then(ConnectInput::try_from);
    let input = match input {
        Ok(i) => i,
        Err(e) => return ctx.error(e),
    };
    match s.integrations.connect(&ctx.caller, &ctx.rid, input).await {
        Ok(i) => (StatusCode::CREATED, Json(integration_json(&i))).into_response(),
        Err(e) => ctx.error(e),
    }
}

async fn list(
    ctx: Ctx,
    State(s): State<RestState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let input = ListInput::try_from(&q);
    let input = match input {
        Ok(i) => i,
        Err(e) => return ctx.error(e),
    };
    match s.integrations.list(&ctx.caller, input).await {
        Ok((rows, next)) => Json(json!({
            "integrations": rows.iter().map(integration_json).collect::<Vec<_>>(),
            "next_page_token": next,
        }))
        .into_response(),
        Err(e) => ctx.error(e),
    }
}

async fn get_one(ctx: Ctx, State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let result = async { s.integrations.get(&ctx.caller, parse_id(&id)?).await }.await;
    ctx.answer(result.map(|i| integration_json(&i)))
}

async fn update(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let mut obj = json_object(body)?;
        let mut v = Vec::new();
        let display_name = match obj.remove("display_name") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                v.push(FieldViolation::new("display_name", "must be a string"));
                None
            }
        };
        let metadata_patch = object_field(&mut obj, "metadata", &mut v);
        reject_unknown(&obj, &mut v);
        if !v.is_empty() {
            return Err(Error::invalid_fields(v));
        }
        s.integrations
            .update(
                &ctx.caller,
                &ctx.rid,
                id,
                UpdateInput {
                    display_name,
                    metadata_patch,
                    names: UPDATE_FIELDS,
                },
            )
            .await
    }
    .await;
    ctx.answer(result.map(|i| integration_json(&i)))
}

async fn disconnect(ctx: Ctx, State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let result = async {
        s.integrations
            .disconnect(&ctx.caller, &ctx.rid, parse_id(&id)?)
            .await
    }
    .await;
    ctx.answer(result.map(|(i, revocations)| disconnected_json(&i, &revocations)))
}

/// How the update's fields are named in a REST body.
const UPDATE_FIELDS: UpdateFieldNames = UpdateFieldNames {
    display_name: "display_name",
    metadata: "metadata",
    selection: "body",
};

/// The body of `POST /api/v1/integrations/connect`.
impl TryFrom<Map<String, Value>> for ConnectInput {
    type Error = Error;

    fn try_from(mut obj: Map<String, Value>) -> Result<Self, Error> {
        let mut v = Vec::new();
        let platform_raw = string_field(&mut obj, "platform", &mut v);
        let platform = if platform_raw.is_empty() {
            None
        } else {
            let p = Platform::parse(&platform_raw);
            if p.is_none() {
                v.push(FieldViolation::new("platform", "is not a known platform"));
            }
            p
        };
        let mut credentials = HashMap::new();
        for (k, val) in object_field(&mut obj, "credentials", &mut v).unwrap_or_default() {
            match val {
                Value::String(s) => {
                    credentials.insert(k, s);
                }
                _ => v.push(FieldViolation::new(
                    format!("credentials.{}", k.chars().take(64).collect::<String>()),
                    "must be a string",
                )),
            }
        }
        let display_name = string_field(&mut obj, "display_name", &mut v);
        let metadata = object_field(&mut obj, "metadata", &mut v);
        let provider_account_id = string_field(&mut obj, "provider_account_id", &mut v);
        // Accepted for the seed frontend, which sends it; it carries no meaning here.
        obj.remove("connection_type");
        reject_unknown(&obj, &mut v);
        if !v.is_empty() {
            return Err(Error::invalid_fields(v));
        }
        Ok(ConnectInput {
            platform,
            credentials,
            display_name,
            metadata,
            provider_account_id,
        })
    }
}

/// The query of `GET /api/v1/integrations`.
impl TryFrom<&HashMap<String, String>> for ListInput {
    type Error = Error;

    fn try_from(q: &HashMap<String, String>) -> Result<Self, Error> {
        let mut v = Vec::new();
        let page_size = match q.get("page_size").map(|s| s.parse::<i64>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                v.push(FieldViolation::new("page_size", "must be an integer"));
                0
            }
        };
        let platform = q.get("platform").filter(|p| !p.is_empty()).and_then(|p| {
            let parsed = Platform::parse(p);
            if parsed.is_none() {
                v.push(FieldViolation::new("platform", "is not a known platform"));
            }
            parsed
        });
        let status = q.get("status").filter(|p| !p.is_empty()).and_then(|p| {
            let parsed = IntegrationStatus::parse(p);
            if parsed.is_none() {
                v.push(FieldViolation::new("status", "is not a known status"));
            }
            parsed
        });
        for k in q.keys() {
            if !matches!(
                k.as_str(),
                "page_size" | "page_token" | "platform" | "status"
            ) {
                v.push(FieldViolation::new(
                    k.chars().take(64).collect::<String>(),
                    "is not a known query parameter",
                ));
            }
        }
        if !v.is_empty() {
            return Err(Error::invalid_fields(v));
        }
        Ok(ListInput {
            page_size,
            page_token: q.get("page_token").cloned().unwrap_or_default(),
            platform,
            status,
        })
    }
}
