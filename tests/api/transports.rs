//! The ways in: native gRPC with reflection and standard health, grpc-web (binary and text)
//! over HTTP/1.1 with CORS, and the REST gateway's probes, metrics, OpenAPI and request ids.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto;
use prost::Message as _;
use serde_json::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_reflection::pb::v1alpha;

use crate::helpers::{TestApp, authed, fireflies, http, spawn_app};

// ---------------------------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------------------------

const OUR_SERVICES: [&str; 4] = [
    "founderhouse.integrations.v1.IntegrationService",
    "founderhouse.integrations.v1.OAuthService",
    "founderhouse.integrations.v1.ConnectorService",
    "founderhouse.integrations.v1.HealthService",
];
const STANDARD_HEALTH: &str = "grpc.health.v1.Health";
const LIST_PATH: &str = "/founderhouse.integrations.v1.IntegrationService/ListIntegrations";
const FRONTEND: &str = "http://localhost:3000";

/// One v1 reflection exchange: a stream of one request, the first answer.
async fn reflect_v1(app: &TestApp, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(app.channel().await);
    let outbound = tokio_stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection answers without a token")
        .into_inner();
    let ServerReflectionResponse {
        message_response, ..
    } = inbound
        .message()
        .await
        .expect("reflection stream ok")
        .expect("one response");
    message_response.expect("a message response")
}

async fn connect(app: &TestApp, account: &str, token: &str) -> proto::Integration {
    app.integrations()
        .await
        .connect_integration(authed(fireflies(account), token))
        .await
        .expect("connects")
        .into_inner()
        .integration
        .expect("integration in response")
}

/// A client that speaks HTTP/1.1 only, as browsers' grpc-web transports do.
fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A grpc-web data frame: flag 0, big-endian length, the message.
fn frame(message: &impl prost::Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0x00);
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A parsed grpc-web response.
struct GrpcWebReply {
    http_status: u16,
    headers: reqwest::header::HeaderMap,
    messages: Vec<Vec<u8>>,
    trailers: Vec<(String, String)>,
}

impl GrpcWebReply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn trailer(&self, name: &str) -> Option<String> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// `grpc-status` from the headers (trailers-only answers) or the trailer frame.
    fn grpc_status(&self) -> Option<String> {
        self.header("grpc-status")
            .or_else(|| self.trailer("grpc-status"))
    }
}

/// Splits a grpc-web body into data frames (flag 0x00) and the trailer frame (flag 0x80).
fn parse_frames(mut body: &[u8]) -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let (mut messages, mut trailers) = (Vec::new(), Vec::new());
    while !body.is_empty() {
        assert!(body.len() >= 5, "truncated frame header");
        let flag = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert!(body.len() >= 5 + len, "truncated frame");
        let payload = &body[5..5 + len];
        match flag {
            0x00 => messages.push(payload.to_vec()),
            0x80 => {
                let text = std::str::from_utf8(payload).expect("trailers are text");
                for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                    let (k, v) = line.split_once(':').expect("name:value");
                    trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            other => panic!("unexpected frame flag {other:#x}"),
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

/// Decodes a grpc-web-text body: base64 chunks, each padded on its own, concatenated.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert_eq!(clean.len() % 4, 0, "base64 body length");
    clean
        .chunks(4)
        .flat_map(|quad| STANDARD.decode(quad).expect("valid base64"))
        .collect()
}

/// POSTs one grpc-web call over HTTP/1.1. `text` selects `application/grpc-web-text`.
async fn grpc_web(
    app: &TestApp,
    path: &str,
    message: &impl prost::Message,
    token: Option<&str>,
    text: bool,
) -> GrpcWebReply {
    let framed = frame(message);
    let (content_type, body) = if text {
        (
            "application/grpc-web-text",
            STANDARD.encode(&framed).into_bytes(),
        )
    } else {
        ("application/grpc-web+proto", framed)
    };
    let mut req = http1()
        .post(format!("http://{}{}", app.grpc_addr, path))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(body);
    if text {
        req = req.header("accept", "application/grpc-web-text");
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("grpc-web answers");
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    let http_status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.bytes().await.expect("body");
    let bytes = if text {
        decode_text(&raw)
    } else {
        raw.to_vec()
    };
    let (messages, trailers) = parse_frames(&bytes);
    GrpcWebReply {
        http_status,
        headers,
        messages,
        trailers,
    }
}

fn ids(integrations: &[proto::Integration]) -> Vec<String> {
    integrations.iter().map(|i| i.id.clone()).collect()
}

async fn preflight(port_url: &str, origin: &str) -> reqwest::Response {
    http1()
        .request(reqwest::Method::OPTIONS, format!("{port_url}{LIST_PATH}"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web",
        )
        .send()
        .await
        .expect("preflight answers")
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// 1. Reflection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reflection_v1_lists_our_services_and_standard_health_without_a_token() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = reflect_v1(&app, MessageRequest::ListServices(String::new())).await;

    // Assert
    let MessageResponse::ListServicesResponse(list) = answer else {
        panic!("expected a service list, got {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in OUR_SERVICES.iter().chain([&STANDARD_HEALTH]) {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }

    app.stop().await;
}

#[tokio::test]
async fn reflection_v1alpha_lists_our_services_and_standard_health_without_a_token() {
    // Arrange
    let app = spawn_app().await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let outbound = tokio_stream::iter([v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    }]);

    // Act
    let answer = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection answers without a token")
        .into_inner()
        .message()
        .await
        .expect("stream ok")
        .expect("one response")
        .message_response
        .expect("a message response");

    // Assert
    let v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list) = answer
    else {
        panic!("expected a service list, got {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in OUR_SERVICES.iter().chain([&STANDARD_HEALTH]) {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }

    app.stop().await;
}

#[tokio::test]
async fn reflection_returns_the_file_that_declares_integration_service() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = reflect_v1(
        &app,
        MessageRequest::FileContainingSymbol(OUR_SERVICES[0].to_owned()),
    )
    .await;

    // Assert
    let MessageResponse::FileDescriptorResponse(files) = answer else {
        panic!("expected file descriptors, got {answer:?}");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).expect("descriptor"))
        .collect();
    let declaring = files
        .iter()
        .find(|f| f.name() == "founderhouse/integrations/v1/integrations.proto")
        .unwrap_or_else(|| {
            panic!(
                "integrations.proto missing from {:?}",
                files.iter().map(|f| f.name()).collect::<Vec<_>>()
            )
        });
    assert_eq!(declaring.package(), "founderhouse.integrations.v1");
    let service = declaring
        .service
        .iter()
        .find(|s| s.name() == "IntegrationService")
        .expect("IntegrationService is declared");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "ConnectIntegration",
            "ListIntegrations",
            "GetIntegration",
            "UpdateIntegration",
            "DisconnectIntegration",
            "TestIntegration",
        ]
    );

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Standard health
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn standard_health_reports_the_server_and_integration_service_serving_without_a_token() {
    // Arrange
    let app = spawn_app().await;
    let mut client = HealthClient::new(app.channel().await);

    for service in ["", OUR_SERVICES[0]] {
        // Act
        let status = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("{service:?}: {s:?}"))
            .into_inner()
            .status;

        // Assert
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. grpc-web over HTTP/1.1
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn grpc_web_over_http1_lists_integrations_connected_over_native_grpc() {
    // Arrange
    let app = spawn_app().await;
    let token = app.token(Role::Member);
    let connected = connect(&app, "acme", &token).await;

    // Act
    let reply = grpc_web(
        &app,
        LIST_PATH,
        &proto::ListIntegrationsRequest::default(),
        Some(&token),
        false,
    )
    .await;

    // Assert
    assert_eq!(reply.http_status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/grpc-web+proto")
    );
    assert_eq!(reply.trailer("grpc-status").as_deref(), Some("0"));
    assert_eq!(reply.messages.len(), 1);
    let listed = proto::ListIntegrationsResponse::decode(reply.messages[0].as_slice())
        .expect("ListIntegrationsResponse");
    assert_eq!(listed.integrations, vec![connected]);
    assert_eq!(listed.next_page_token, "");

    app.stop().await;
}

#[tokio::test]
async fn grpc_web_without_a_token_is_unauthenticated() {
    // Arrange
    let app = spawn_app().await;
    connect(&app, "acme", &app.token(Role::Admin)).await;

    // Act
    let reply = grpc_web(
        &app,
        LIST_PATH,
        &proto::ListIntegrationsRequest::default(),
        None,
        false,
    )
    .await;

    // Assert
    assert_eq!(reply.http_status, 200);
    assert_eq!(reply.grpc_status().as_deref(), Some("16"));
    let message = reply
        .header("grpc-message")
        .or_else(|| reply.trailer("grpc-message"))
        .unwrap_or_default();
    assert_eq!(message.replace("%20", " "), "missing bearer token");
    assert!(reply.messages.is_empty(), "no data may be sent");

    app.stop().await;
}

#[tokio::test]
async fn grpc_web_text_lists_integrations() {
    // Arrange
    let app = spawn_app().await;
    let token = app.token(Role::Viewer);
    let connected = connect(&app, "acme", &app.token(Role::Admin)).await;

    // Act
    let reply = grpc_web(
        &app,
        LIST_PATH,
        &proto::ListIntegrationsRequest::default(),
        Some(&token),
        true,
    )
    .await;

    // Assert
    assert_eq!(reply.http_status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/grpc-web-text+proto")
    );
    assert_eq!(reply.grpc_status().as_deref(), Some("0"));
    assert_eq!(reply.messages.len(), 1);
    let listed = proto::ListIntegrationsResponse::decode(reply.messages[0].as_slice())
        .expect("ListIntegrationsResponse");
    assert_eq!(ids(&listed.integrations), [connected.id]);

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. CORS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cors_preflight_from_the_frontend_origin_is_allowed_on_both_ports() {
    // Arrange
    let app = spawn_app().await;

    for port in [format!("http://{}", app.grpc_addr), app.rest_url("")] {
        // Act
        let resp = preflight(&port, FRONTEND).await;

        // Assert
        assert!(resp.status().is_success(), "{port}: {}", resp.status());
        assert_eq!(
            header(&resp, "access-control-allow-origin").as_deref(),
            Some(FRONTEND),
            "{port}"
        );
        let methods = header(&resp, "access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains("POST"), "{port}: methods {methods}");
        let allowed = header(&resp, "access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for wanted in ["authorization", "content-type", "x-grpc-web"] {
            assert!(
                allowed.contains(wanted),
                "{port}: {wanted} not in {allowed}"
            );
        }
    }

    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_from_an_unknown_origin_is_not_allowed_on_both_ports() {
    // Arrange
    let app = spawn_app().await;

    for port in [format!("http://{}", app.grpc_addr), app.rest_url("")] {
        // Act
        let resp = preflight(&port, "https://evil.example").await;

        // Assert: the CORS layer answered it, and did not allow the origin.
        let vary = header(&resp, "vary").unwrap_or_default();
        assert!(vary.contains("origin"), "{port}: vary {vary:?}");
        assert_eq!(header(&resp, "access-control-allow-origin"), None, "{port}");
    }

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. REST probes, metrics, OpenAPI, request ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn liveness_and_readiness_probes_answer_200_without_a_token() {
    // Arrange
    let app = spawn_app().await;
    let client = http();

    // Act
    let live = client
        .get(app.rest_url("/healthz"))
        .send()
        .await
        .expect("healthz");
    let ready = client
        .get(app.rest_url("/readyz"))
        .send()
        .await
        .expect("readyz");

    // Assert
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.expect("body"), "ok");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("body"), "ready");

    app.stop().await;
}

#[tokio::test]
async fn metrics_count_grpc_and_rest_requests_and_report_the_pool() {
    // Arrange: one call per transport.
    let app = spawn_app().await;
    let token = app.token(Role::Viewer);
    app.integrations()
        .await
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .expect("gRPC list");
    let rest = http()
        .get(app.rest_url("/api/v1/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("REST list");
    assert_eq!(rest.status(), 200);

    // Act
    let resp = http()
        .get(app.rest_url("/metrics"))
        .send()
        .await
        .expect("metrics");

    // Assert
    assert_eq!(resp.status(), 200);
    assert!(
        header(&resp, "content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "content-type"
    );
    let text = resp.text().await.expect("body");
    let series = |name: &str, labels: &[&str]| {
        text.lines().any(|l| {
            l.starts_with(&format!("{name}{{")) && labels.iter().all(|want| l.contains(want))
        })
    };
    assert!(
        series(
            "fh_requests_total",
            &[
                r#"transport="grpc""#,
                &format!(r#"method="{LIST_PATH}""#),
                r#"code="0""#
            ]
        ),
        "gRPC request series missing:\n{text}"
    );
    assert!(
        series(
            "fh_requests_total",
            &[
                r#"transport="rest""#,
                r#"method="/api/v1/integrations""#,
                r#"code="200""#
            ]
        ),
        "REST request series missing:\n{text}"
    );
    assert!(
        text.contains("# TYPE fh_request_duration_seconds histogram"),
        "histogram type missing:\n{text}"
    );
    assert!(
        series("fh_request_duration_seconds_bucket", &[r#"le="+Inf""#]),
        "histogram buckets missing:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("fh_db_pool_connections ")),
        "pool gauge missing:\n{text}"
    );

    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let resp = http()
        .get(app.rest_url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi");

    // Assert
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/json")
    );
    let doc: Value = resp.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/api/v1/integrations"]["get"].is_object(),
        "paths: {}",
        doc["paths"]
    );
    assert!(doc["paths"]["/api/v1/integrations/{id}"]["delete"].is_object());

    app.stop().await;
}

#[tokio::test]
async fn an_unknown_rest_path_is_404_route_not_found() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let resp = http()
        .get(app.rest_url("/api/v1/nothing-here"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .expect("answers");

    // Assert
    assert_eq!(resp.status(), 404);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["error"]["reason"], "ROUTE_NOT_FOUND");
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert_eq!(body["error"]["code"], 404);

    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    // Arrange
    let app = spawn_app().await;
    let client = http();
    let token = app.token(Role::Viewer);

    // Act
    let rest = [
        client.get(app.rest_url("/healthz")).send().await,
        client.get(app.rest_url("/metrics")).send().await,
        client
            .get(app.rest_url("/api/v1/integrations"))
            .send()
            .await,
        client
            .get(app.rest_url("/api/v1/integrations"))
            .bearer_auth(&token)
            .send()
            .await,
        client
            .get(app.rest_url("/api/v1/nothing-here"))
            .bearer_auth(&token)
            .send()
            .await,
    ];
    let mut grpc = app.integrations().await;
    let ok = grpc
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .expect("list");
    let refused = grpc
        .list_integrations(tonic::Request::new(
            proto::ListIntegrationsRequest::default(),
        ))
        .await
        .expect_err("no token");
    let web = grpc_web(
        &app,
        LIST_PATH,
        &proto::ListIntegrationsRequest::default(),
        Some(&token),
        false,
    )
    .await;

    // Assert
    for resp in rest {
        let resp = resp.expect("answers");
        let rid = header(&resp, "x-request-id").unwrap_or_default();
        assert!(!rid.is_empty(), "{} has no x-request-id", resp.url());
    }
    assert!(ok.metadata().get("x-request-id").is_some(), "gRPC ok");
    assert!(
        refused.metadata().get("x-request-id").is_some(),
        "gRPC error"
    );
    assert!(web.header("x-request-id").is_some(), "grpc-web");

    app.stop().await;
}

#[tokio::test]
async fn a_caller_supplied_request_id_is_echoed_back() {
    // Arrange
    let app = spawn_app().await;
    let token = app.token(Role::Viewer);

    // Act
    let rest_ok = http()
        .get(app.rest_url("/api/v1/integrations"))
        .bearer_auth(&token)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("REST");
    let rest_err = http()
        .get(app.rest_url("/api/v1/integrations"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("REST");
    let mut req = authed(proto::ListIntegrationsRequest::default(), &token);
    req.metadata_mut()
        .insert("x-request-id", "abc-123".parse().expect("ascii"));
    let grpc_ok = app
        .integrations()
        .await
        .list_integrations(req)
        .await
        .expect("gRPC");

    // Assert
    assert_eq!(header(&rest_ok, "x-request-id").as_deref(), Some("abc-123"));
    assert_eq!(
        header(&rest_err, "x-request-id").as_deref(),
        Some("abc-123")
    );
    let body: Value = rest_err.json().await.expect("JSON");
    assert_eq!(body["error"]["request_id"], "abc-123");
    assert_eq!(
        grpc_ok
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );

    app.stop().await;
}

#[tokio::test]
async fn an_unsafe_caller_supplied_request_id_is_replaced() {
    // Arrange
    let app = spawn_app().await;
    let unsafe_id = "abc 123\"; drop";

    // Act
    let resp = http()
        .get(app.rest_url("/healthz"))
        .header("x-request-id", unsafe_id)
        .send()
        .await
        .expect("REST");

    // Assert
    let rid = header(&resp, "x-request-id").expect("x-request-id");
    assert_ne!(rid, unsafe_id);
    assert!(
        !rid.is_empty() && rid.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{rid}"
    );

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. One workspace, three transports, one answer
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn native_grpc_grpc_web_and_rest_list_the_same_integrations() {
    // Arrange
    let app = spawn_app().await;
    let token = app.token(Role::Admin);
    let mut connected = Vec::new();
    for account in ["acme", "globex", "initech"] {
        connected.push(connect(&app, account, &token).await.id);
    }
    // Another workspace's row must not show up anywhere.
    connect(
        &app,
        "other",
        &app.token_for(uuid::Uuid::new_v4(), Role::Admin),
    )
    .await;

    // Act
    let native = app
        .integrations()
        .await
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .expect("native")
        .into_inner();
    let web = grpc_web(
        &app,
        LIST_PATH,
        &proto::ListIntegrationsRequest::default(),
        Some(&token),
        false,
    )
    .await;
    let rest: Value = http()
        .get(app.rest_url("/api/v1/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("REST")
        .json()
        .await
        .expect("JSON");

    // Assert
    assert_eq!(ids(&native.integrations), connected);
    assert_eq!(web.grpc_status().as_deref(), Some("0"));
    let web =
        proto::ListIntegrationsResponse::decode(web.messages[0].as_slice()).expect("grpc-web list");
    assert_eq!(web, native);
    let rest_ids: Vec<String> = rest["integrations"]
        .as_array()
        .expect("integrations array")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(rest_ids, connected);
    let rest_names: Vec<&str> = rest["integrations"]
        .as_array()
        .expect("integrations array")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    let native_names: Vec<&str> = native
        .integrations
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(rest_names, native_names);

    app.stop().await;
}
