//! `/api/v1/oauth/{platform}/...`: the browser flow's REST side, on the product spec's paths.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::integrations::{disconnected_json, integration_json};
use super::{Ctx, RestState, RidOnly, json_object};
use crate::domain::Secret;
use crate::domain::{IntegrationId, Platform};
use crate::error::Error;
use crate::service::oauth::CallbackParams;

pub fn routes() -> Router<RestState> {
    Router::new()
        .route("/api/v1/oauth/{platform}/authorize", post(authorize))
        .route("/api/v1/oauth/{platform}/complete", post(complete))
        .route("/api/v1/oauth/{platform}/refresh", post(refresh))
        .route("/api/v1/oauth/{platform}/revoke", delete(revoke))
        // Public (see auth::is_public): the state is the callback's credential.
        .route("/api/v1/oauth/{platform}/callback", get(callback))
}

fn platform_of(raw: &str) -> Result<Platform, Error> {
    Platform::parse(raw).ok_or_else(|| Error::invalid_field("platform", "is not a known platform"))
}

async fn authorize(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(platform): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let result = async {
        let platform = platform_of(&platform)?;
        let mut obj = json_object(body)?;
        let return_to = match obj.remove("return_to") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(_) => return Err(Error::invalid_field("return_to", "must be a string")),
        };
        if let Some(k) = obj.keys().next() {
            return Err(Error::invalid_field(
                k.chars().take(64).collect::<String>(),
                "is not a known field",
            ));
        }
        s.oauth.start(&ctx.caller, Some(platform), &return_to).await
    }
    .await;
    match result {
        Ok(started) => Json(json!({
            "authorization_url": started.authorization_url,
            "state": started.state.expose(),
            "platform": started.platform.as_str(),
            "state_expire_time": started.expires_at,
        }))
        .into_response(),
        Err(e) => ctx.error(e),
    }
}

/// The signed-in user redeems the callback's `oauth_handle`: `{"handle": ...}`.
async fn complete(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(platform): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let result = async {
        let platform = platform_of(&platform)?;
        let mut obj = json_object(body)?;
        let handle = match obj.remove("handle") {
            Some(Value::String(h)) => Secret::new(h),
            None | Some(Value::Null) => return Err(Error::invalid_field("handle", "is required")),
            Some(_) => return Err(Error::invalid_field("handle", "must be a string")),
        };
        if let Some(k) = obj.keys().next() {
            return Err(Error::invalid_field(
                k.chars().take(64).collect::<String>(),
                "is not a known field",
            ));
        }
        s.oauth
            .complete(&ctx.caller, Some(platform), &handle, &ctx.rid)
            .await
    }
    .await;
    ctx.answer(result.map(|done| {
        json!({
            "integration": integration_json(&done.integration),
            "warning": done.warning,
        })
    }))
}

/// Where the provider sends the browser. Always a 303 to the frontend.
async fn callback(
    rid: RidOnly,
    State(s): State<RestState>,
    Path(platform): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut params = CallbackParams::default();
    if let Some(q) = query
        && let Ok(mut parsing) = reqwest::Url::parse("http://callback.invalid/")
    {
        parsing.set_query(Some(&q));
        for (k, v) in parsing.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "code" => params.code = Some(Secret::new(v)),
                "state" => params.state = Some(Secret::new(v)),
                "error" => params.error = Some(v),
                "iss" => params.iss = Some(v),
                _ => {}
            }
        }
    }
    let location = s.oauth.callback(&platform, params, &rid.0).await;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location.as_str()) {
        headers.insert(header::LOCATION, v);
    }
    // The provider's URL held the code and state: do not pass it on as a referrer, or cache.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `?integration_id=` of refresh and revoke, checked against the path's platform.
async fn target(
    s: &RestState,
    ctx: &Ctx,
    platform: &str,
    q: &HashMap<String, String>,
) -> Result<IntegrationId, Error> {
    let platform = platform_of(platform)?;
    let raw = q
        .get("integration_id")
        .map(String::as_str)
        .unwrap_or_default();
    if raw.is_empty() {
        return Err(Error::invalid_field("integration_id", "is required"));
    }
    let id = uuid::Uuid::parse_str(raw)
        .map(IntegrationId)
        .map_err(|_| Error::invalid_field("integration_id", "is not a valid integration id"))?;
    let integration = s.integrations.get(&ctx.caller, id).await?;
    if integration.platform != platform {
        return Err(Error::invalid_field(
            "platform",
            "does not match the integration's platform",
        ));
    }
    Ok(id)
}

async fn refresh(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(platform): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let id = target(&s, &ctx, &platform, &q).await?;
        s.oauth.refresh_now(&ctx.caller, id).await
    }
    .await;
    ctx.answer(result.map(|i| integration_json(&i)))
}

async fn revoke(
    ctx: Ctx,
    State(s): State<RestState>,
    Path(platform): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let id = target(&s, &ctx, &platform, &q).await?;
        s.integrations.disconnect(&ctx.caller, &ctx.rid, id).await
    }
    .await;
    ctx.answer(result.map(|(i, revocations)| disconnected_json(&i, &revocations)))
}
