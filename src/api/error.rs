//! THE table from domain error kinds to gRPC codes and HTTP statuses, and the two renderings.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::RequestId;
use crate::error::{Error, ErrorKind};

/// `google.rpc.ErrorInfo.domain` of every error we return.
pub const ERROR_DOMAIN: &str = "integrations.founderhouse";

/// One row per kind, no wildcard: adding a kind forces a decision for both transports.
pub fn codes(kind: ErrorKind) -> (Code, StatusCode) {
    match kind {
        ErrorKind::InvalidArgument => (Code::InvalidArgument, StatusCode::BAD_REQUEST),
        ErrorKind::Unauthenticated => (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
        ErrorKind::PermissionDenied => (Code::PermissionDenied, StatusCode::FORBIDDEN),
        ErrorKind::NotFound => (Code::NotFound, StatusCode::NOT_FOUND),
        ErrorKind::AlreadyExists => (Code::AlreadyExists, StatusCode::CONFLICT),
        ErrorKind::FailedPrecondition => (Code::FailedPrecondition, StatusCode::BAD_REQUEST),
        ErrorKind::Aborted => (Code::Aborted, StatusCode::CONFLICT),
        ErrorKind::ResourceExhausted => (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
        ErrorKind::Unavailable => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        ErrorKind::DeadlineExceeded => (Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
        ErrorKind::OutOfRange => (Code::OutOfRange, StatusCode::BAD_REQUEST),
        ErrorKind::Unimplemented => (Code::Unimplemented, StatusCode::NOT_IMPLEMENTED),
        // 499 is the de-facto "client closed request" status.
        ErrorKind::Cancelled => (
            Code::Cancelled,
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ),
        ErrorKind::Internal => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Logs the error once, with its cause when it has one. Causes never reach the caller.
fn log(err: &Error, rid: &RequestId) {
    match (err.kind(), err.cause()) {
        (ErrorKind::Internal, cause) => {
            tracing::error!(request_id = %rid, reason = err.reason().as_str(), cause = ?cause.map(|c| format!("{c:#}")), "internal error")
        }
        (_, Some(cause)) => {
            tracing::warn!(request_id = %rid, reason = err.reason().as_str(), cause = %format!("{cause:#}"), "{}", err.message())
        }
        (_, None) => {
            tracing::debug!(request_id = %rid, reason = err.reason().as_str(), "{}", err.message())
        }
    }
}

fn shown_message(err: &Error, rid: &RequestId) -> String {
    match err.kind() {
        ErrorKind::Internal => format!("internal error (request id {rid})"),
        _ => err.message().to_owned(),
    }
}

/// The gRPC rendering: code, message, and `google.rpc` details (ErrorInfo always; BadRequest,
/// RetryInfo and RequestInfo when they apply).
pub fn to_status(err: &Error, rid: &RequestId) -> tonic::Status {
    log(err, rid);
    let (code, _) = codes(err.kind());
    let mut details = ErrorDetails::new();
    let metadata: std::collections::HashMap<String, String> = err
        .metadata()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    details.set_error_info(err.reason().as_str(), ERROR_DOMAIN, metadata);
    for v in err.violations() {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    if let Some(after) = err.retry_after() {
        details.set_retry_info(Some(after));
    }
    details.set_request_info(rid.0.clone(), "");
    let mut status = tonic::Status::with_error_details(code, shown_message(err, rid), details);
    if let Some(after) = err.retry_after()
        && let Ok(v) = after.as_secs().max(1).to_string().parse()
    {
        status.metadata_mut().insert("retry-after", v);
    }
    status
}

/// The REST rendering: a JSON body in the shape of `google.rpc.Status` as Google's JSON APIs
/// return it, plus `detail` for the seed frontend, and `retry-after` when it applies.
pub fn to_response(err: &Error, rid: &RequestId) -> Response {
    to_json(err, rid)
        .map(axum::body::Body::from)
        .into_response()
}

/// The REST error as a plain HTTP response, for layers that answer before axum.
pub fn to_json(err: &Error, rid: &RequestId) -> http::Response<bytes::Bytes> {
    let (_, http) = codes(err.kind());
    let body = to_body(err, rid);
    let mut resp = http::Response::new(bytes::Bytes::from(body.to_string()));
    *resp.status_mut() = http;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(after) = err.retry_after()
        && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if err.kind() == ErrorKind::Unauthenticated {
        // RFC 9110 15.5.2 / RFC 6750 3: a 401 names the scheme it wants.
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The REST error body (also the MCP tool error's), logging the error once.
pub fn to_body(err: &Error, rid: &RequestId) -> serde_json::Value {
    log(err, rid);
    let (code, http) = codes(err.kind());
    let violations: Vec<_> = err
        .violations()
        .iter()
        .map(|v| json!({"field": v.field, "description": v.description}))
        .collect();
    let metadata: serde_json::Map<String, serde_json::Value> = err
        .metadata()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let message = shown_message(err, rid);
    json!({
        "error": {
            "code": http.as_u16(),
            "status": code_name(code),
            "reason": err.reason().as_str(),
            "message": message,
            "domain": ERROR_DOMAIN,
            "metadata": metadata,
            "field_violations": violations,
            "request_id": rid.0,
        },
        "detail": message,
    })
}

/// Canonical upper-case names, as in `google.rpc.Code`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
