//! Outermost layer of both transports: request id, tracing span, request metrics.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use prost::Message;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::domain::RequestId;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Every gRPC method path we serve, from the descriptor sets: metric labels come only from it.
static GRPC_METHODS: LazyLock<Arc<HashSet<String>>> = LazyLock::new(|| {
    let mut methods: HashSet<String> = [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for encoded in [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                for method in service.method {
                    methods.insert(format!(
                        "/{package}.{}/{}",
                        service.name.as_deref().unwrap_or_default(),
                        method.name.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
    }
    Arc::new(methods)
});

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

/// Copies axum's matched route into the response, where `Observe` labels metrics with it. Added
/// as a route layer, so only matched routes carry it.
pub async fn expose_matched_path(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
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

/// Keeps metric label sets bounded whatever callers send: gRPC methods we serve, REST route
/// templates, and one label for everything else.
fn method_label(transport: &str, path: &str, matched: Option<&MatchedPath>) -> String {
    let known = match transport {
        "grpc" => GRPC_METHODS.contains(path).then(|| path.to_owned()),
        _ => matched.map(|m| m.as_str().to_owned()),
    };
    known.unwrap_or_else(|| "unmatched".to_owned())
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
                let method = method_label(transport, &path, resp.extensions().get::<MatchedPath>());
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
    fn only_served_grpc_methods_get_their_own_label() {
        let get = "/founderhouse.integrations.v1.IntegrationService/GetIntegration";
        assert_eq!(method_label("grpc", get, None), get);
        let check = "/grpc.health.v1.Health/Check";
        assert_eq!(method_label("grpc", check, None), check);
        let made_up = "/founderhouse.integrations.v1.IntegrationService/Made";
        assert_eq!(method_label("grpc", made_up, None), "unmatched");
        assert_eq!(method_label("rest", "/random", None), "unmatched");
    }
}
