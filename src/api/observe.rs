//! Outermost layer of both transports: request id, tracing span, request metrics.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::domain::RequestId;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Clone, Copy)]
pub struct ObserveLayer {
    transport: &'static str,
}

impl ObserveLayer {
    /// `transport` labels the metrics: "grpc" or "rest".
    pub fn new(transport: &'static str) -> Self {
        Self { transport }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            transport: self.transport,
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    transport: &'static str,
}

/// Keeps metric label sets bounded: ids become `{id}`, unknown routes one label.
fn method_label(transport: &str, path: &str, status: u16, grpc_status: Option<&str>) -> String {
    if status == 404 || grpc_status == Some("12") {
        return "unmatched".to_owned();
    }
    if transport == "grpc" {
        return path.to_owned();
    }
    path.split('/')
        .map(|seg| {
            if uuid::Uuid::parse_str(seg).is_ok() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Observe<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let transport = self.transport;
        let rid = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::from_header)
            .unwrap_or_default();
        req.extensions_mut().insert(rid.clone());
        // Only the path: query strings carry OAuth codes and states.
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", request_id = %rid, transport, path = %path);
        let start = Instant::now();
        Box::pin(
            async move {
                let mut resp = inner.call(req).await?;
                let status = resp.status().as_u16();
                let grpc_status = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok());
                let code = match (transport, grpc_status) {
                    ("grpc", Some(code)) => code.to_owned(),
                    // A gRPC response whose status comes in trailers: streaming or success.
                    ("grpc", None) => "0".to_owned(),
                    _ => status.to_string(),
                };
                let method = method_label(transport, &path, status, grpc_status);
                let elapsed = start.elapsed();
                metrics::counter!("fh_requests_total", "transport" => transport, "method" => method.clone(), "code" => code.clone())
                    .increment(1);
                metrics::histogram!("fh_request_duration_seconds", "transport" => transport, "method" => method)
                    .record(elapsed.as_secs_f64());
                tracing::debug!(code = %code, latency_us = elapsed.as_micros() as u64, "request finished");
                if let Ok(v) = HeaderValue::from_str(&rid.0) {
                    resp.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
                Ok(resp)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn rest_ids_are_folded_and_unknown_routes_share_one_label() {
        let p = "/api/v1/integrations/0190a5e4-7c1e-7000-8000-000000000000";
        assert_eq!(
            method_label("rest", p, 200, None),
            "/api/v1/integrations/{id}"
        );
        assert_eq!(method_label("rest", "/x/y/z", 404, None), "unmatched");
        assert_eq!(method_label("grpc", "/a.B/C", 200, Some("12")), "unmatched");
    }
}
