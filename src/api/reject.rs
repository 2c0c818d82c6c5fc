//! Answers a request from inside a tower layer (auth, limits), in the transport's own form.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, header};
use http_body_util::{BodyExt, Limited};

use crate::domain::RequestId;
use crate::error::Error;

/// Which port a layer guards: the REST port always answers JSON; the gRPC port answers gRPC
/// statuses to gRPC (and translated grpc-web) requests and JSON to anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Rest,
}

impl Transport {
    pub fn wants_grpc(self, headers: &HeaderMap) -> bool {
        self == Transport::Grpc && is_grpc(headers)
    }
}

/// gRPC and grpc-web (after tonic-web has translated it) carry `application/grpc*`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// A layer's refusal of `req`: `err` in the transport's form, with the request's id, once what
/// is left of the body is read (and dropped), up to 64 KiB and for at most a second. Answering
/// before the body is read makes hyper close an HTTP/1.1 connection under a client still sending
/// it, which then sees a broken pipe instead of the answer (grpc-web from Node did, for most
/// unauthenticated streams).
pub async fn refuse<B, R>(req: Request<B>, err: &Error, transport: Transport) -> Response<R>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: RejectBody,
{
    let rid = req
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_default();
    let answer = R::reject(err, &rid, transport.wants_grpc(req.headers()));
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        Limited::new(req.into_body(), 64 * 1024).collect(),
    )
    .await;
    answer
}

/// Response bodies a layer can answer with: a gRPC status (trailers-only) or the REST JSON error.
pub trait RejectBody: Sized + Default {
    fn from_bytes(bytes: Bytes) -> Self;

    fn reject(err: &Error, rid: &RequestId, grpc: bool) -> Response<Self> {
        if grpc {
            super::error::to_status(err, rid).into_http()
        } else {
            super::error::to_json(err, rid).map(Self::from_bytes)
        }
    }
}

impl RejectBody for tonic::body::Body {
    fn from_bytes(bytes: Bytes) -> Self {
        tonic::body::Body::new(http_body_util::Full::new(bytes))
    }
}

impl RejectBody for axum::body::Body {
    fn from_bytes(bytes: Bytes) -> Self {
        axum::body::Body::from(bytes)
    }
}
