//! Limits at the edge: slow and idle clients are disconnected, connections beyond a listener's
//! cap wait while open ones are served, the OAuth entry points are rate limited, `/metrics` can
//! have its own listener and reflection can be turned off.

use std::time::Duration;

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto;
use founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use uuid::Uuid;

use crate::helpers::{TestApp, authed, http, reason, spawn_app_with};

/// Longer than anything here should take; reaching it means the server held on.
const NO_HANG: Duration = Duration::from_secs(8);

/// Whether the peer closes the connection within `within` (reading and discarding whatever it
/// sends first, such as a 408).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// One HTTP/1.1 GET on a kept-alive raw connection: the status code, or None when no complete
/// answer came within `within`.
async fn get(stream: &mut TcpStream, path: &str, within: Duration) -> Option<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if got.len() >= end + 4 + length {
            return text.split_whitespace().nth(1)?.parse().ok();
        }
    }
}

#[tokio::test]
async fn a_rest_client_that_sends_half_a_request_line_is_disconnected_after_the_header_timeout() {
    // Arrange
    let app = spawn_app_with(|c| c.network.header_timeout = Duration::from_millis(500)).await;
    let mut slow = TcpStream::connect(app.http_addr).await.unwrap();

    // Act
    slow.write_all(b"GET /heal").await.unwrap();
    let started = Instant::now();

    // Assert
    assert!(
        closed_within(&mut slow, NO_HANG).await,
        "a client stalled mid-request-line must be disconnected"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    // The server is fine for everyone else.
    let ok = http().get(app.rest_url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_is_disconnected_on_both_ports() {
    // Arrange: before the first byte neither HTTP/1.1 nor HTTP/2 has started, so only the
    // listener's own timeout can end these.
    let app = spawn_app_with(|c| {
        c.network.header_timeout = Duration::from_millis(500);
        c.network.idle_timeout = Duration::from_secs(60);
    })
    .await;

    // Act
    let mut grpc = TcpStream::connect(app.grpc_addr).await.unwrap();
    let mut rest = TcpStream::connect(app.http_addr).await.unwrap();

    // Assert
    assert!(closed_within(&mut grpc, NO_HANG).await, "gRPC port");
    assert!(closed_within(&mut rest, NO_HANG).await, "REST port");
    app.stop().await;
}

#[tokio::test]
async fn a_silent_rest_connection_is_closed_after_the_idle_timeout() {
    // Arrange: the header timeout is long, so only the idle timeout can close it.
    let app = spawn_app_with(|c| {
        c.network.header_timeout = Duration::from_secs(60);
        c.network.idle_timeout = Duration::from_millis(500);
        c.limits.request_timeout = Duration::from_millis(500);
    })
    .await;

    // Act: connect and say nothing.
    let mut silent = TcpStream::connect(app.http_addr).await.unwrap();

    // Assert
    assert!(
        closed_within(&mut silent, NO_HANG).await,
        "a connection without a byte must be closed"
    );
    app.stop().await;
}

#[tokio::test]
async fn rest_connections_beyond_the_cap_wait_while_readiness_answers_on_an_open_one() {
    // Arrange: a cap of two; one connection in use, one stalled.
    let app = spawn_app_with(|c| {
        c.network.http_max_connections = 2;
        c.network.header_timeout = Duration::from_secs(60);
        c.network.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut kept = TcpStream::connect(app.http_addr).await.unwrap();
    assert_eq!(get(&mut kept, "/readyz", NO_HANG).await, Some(200));
    let stalled = TcpStream::connect(app.http_addr).await.unwrap();

    // Act: a third connection asks for /healthz.
    let mut third = TcpStream::connect(app.http_addr).await.unwrap();
    let waiting = get(&mut third, "/healthz", Duration::from_millis(700)).await;

    // Assert: it is not served while the cap is reached; the open connection still is.
    assert_eq!(
        waiting, None,
        "a connection beyond the cap must not be served"
    );
    assert_eq!(get(&mut kept, "/readyz", NO_HANG).await, Some(200));
    // Once a connection closes, the waiting one is accepted and answered.
    drop(stalled);
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + NO_HANG;
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, third.read(&mut buf))
            .await
            .expect("the waiting connection is served once there is room")
            .unwrap();
        assert!(n > 0, "closed instead of answered");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    app.stop().await;
}

async fn grpc_channel(app: &TestApp) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{}", app.grpc_addr))
        .expect("valid uri")
        .connect()
        .await
}

/// A ListIntegrations over a new connection, if it answers within `within`.
async fn list_on_new_connection(app: &TestApp, token: &str, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let channel = grpc_channel(app).await.ok()?;
        proto::integration_service_client::IntegrationServiceClient::new(channel)
            .list_integrations(authed(proto::ListIntegrationsRequest::default(), token))
            .await
            .ok()
    })
    .await
    .ok()
    .flatten()
    .is_some()
}

#[tokio::test]
async fn grpc_connections_beyond_the_cap_wait_until_one_closes() {
    // Arrange
    let app = spawn_app_with(|c| c.network.grpc_max_connections = 1).await;
    let token = app.token(Role::Viewer);
    let first = grpc_channel(&app).await.unwrap();
    let mut client = proto::integration_service_client::IntegrationServiceClient::new(first);
    client
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .expect("the first connection is served");

    // Act + Assert: a second connection is not served while the first is open...
    assert!(
        !list_on_new_connection(&app, &token, Duration::from_millis(700)).await,
        "a connection beyond the cap must not be served"
    );
    client
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .expect("the open connection still is");

    // ...and is once it closes.
    drop(client);
    let deadline = Instant::now() + NO_HANG;
    while !list_on_new_connection(&app, &token, Duration::from_secs(1)).await {
        assert!(
            Instant::now() < deadline,
            "a new connection is served once the first closed"
        );
    }
    app.stop().await;
}

fn start(platform: proto::Platform) -> proto::StartAuthorizationRequest {
    proto::StartAuthorizationRequest {
        platform: platform as i32,
        return_to: String::new(),
    }
}

/// The answer is RESOURCE_EXHAUSTED `RATE_LIMITED` with a whole-second `retry-after`.
fn assert_rate_limited_grpc(result: Result<impl std::fmt::Debug, tonic::Status>) {
    let status = result.expect_err("must be rate limited");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), "RATE_LIMITED");
    let after: u64 = status
        .metadata()
        .get("retry-after")
        .expect("retry-after metadata")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "{after}");
}

async fn assert_rate_limited_rest(resp: reqwest::Response) {
    assert_eq!(resp.status(), 429);
    let after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "{after}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "RATE_LIMITED");
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
}

fn not_limited<T>(result: &Result<T, tonic::Status>) -> bool {
    !matches!(result, Err(s) if s.code() == Code::ResourceExhausted)
}

#[tokio::test]
async fn start_authorization_is_rate_limited_per_workspace_across_both_transports() {
    // Arrange: two a minute.
    let app = spawn_app_with(|c| c.network.rate_limits.start_authorization = 2).await;
    let token = app.token(Role::Member);
    let mut oauth = OAuthServiceClient::new(app.channel().await);

    // Act: two calls, whatever they answer, spend the budget.
    for _ in 0..2 {
        let r = oauth
            .start_authorization(authed(start(proto::Platform::Zoom), &token))
            .await;
        assert!(not_limited(&r), "{r:?}");
    }

    // Assert: the third is refused on REST and on gRPC...
    let rest = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_rate_limited_rest(rest).await;
    assert_rate_limited_grpc(
        oauth
            .start_authorization(authed(start(proto::Platform::Zoom), &token))
            .await,
    );
    // ...while another workspace has its own budget.
    let other = app.token_for(Uuid::new_v4(), Role::Member);
    let r = oauth
        .start_authorization(authed(start(proto::Platform::Zoom), &other))
        .await;
    assert!(not_limited(&r), "{r:?}");
    app.stop().await;
}

#[tokio::test]
async fn refresh_integration_is_rate_limited_per_workspace() {
    // Arrange
    let app = spawn_app_with(|c| c.network.rate_limits.refresh = 2).await;
    let token = app.token(Role::Member);
    let mut oauth = OAuthServiceClient::new(app.channel().await);
    let refresh = || proto::RefreshIntegrationRequest {
        name: format!(
            "workspaces/{}/integrations/{}",
            app.workspace,
            Uuid::new_v4()
        ),
    };

    // Act
    for _ in 0..2 {
        let r = oauth.refresh_integration(authed(refresh(), &token)).await;
        assert!(not_limited(&r), "{r:?}");
    }

    // Assert
    assert_rate_limited_grpc(oauth.refresh_integration(authed(refresh(), &token)).await);
    let rest = http()
        .post(app.rest_url("/api/v1/oauth/zoom/refresh"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"integration_id": Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_rate_limited_rest(rest).await;
    // A caller without a valid token is refused by auth, not counted or limited.
    let anonymous = oauth
        .refresh_integration(tonic::Request::new(refresh()))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn the_oauth_callback_is_rate_limited_per_client_address() {
    // Arrange
    let app = spawn_app_with(|c| c.network.rate_limits.callback = 2).await;
    let url = app.rest_url("/api/v1/oauth/zoom/callback?state=forged&code=stolen");

    // Act: two callbacks are answered as usual (a redirect with the error).
    for _ in 0..2 {
        let resp = http().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
    }

    // Assert
    assert_rate_limited_rest(http().get(&url).send().await.unwrap()).await;
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own_and_leave_the_rest_port() {
    // Arrange
    let app = spawn_app_with(|c| {
        c.network.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_addr = app.metrics_addr.expect("a metrics listener");

    // Act
    let own = http()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    let on_rest = http().get(app.rest_url("/metrics")).send().await.unwrap();

    // Assert
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("fh_db_pool_connections"));
    assert_eq!(on_rest.status(), 404);
    let elsewhere = http()
        .get(format!("http://{metrics_addr}/api/v1/integrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        404,
        "the metrics port serves metrics only"
    );
    app.stop().await;
}

#[tokio::test]
async fn reflection_can_be_turned_off() {
    // Arrange
    let app = spawn_app_with(|c| c.network.reflection = false).await;
    let mut client = ServerReflectionClient::new(app.channel().await);
    let outbound = tokio_stream::iter([tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }]);

    // Act
    let answer = client.server_reflection_info(outbound).await;

    // Assert
    let status = answer.expect_err("reflection is off");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn complete_authorization_is_rate_limited_per_workspace_so_handles_cannot_be_guessed() {
    // Arrange: two starts a minute, so two redemptions too.
    let app = spawn_app_with(|c| c.network.rate_limits.start_authorization = 2).await;
    let token = app.token(Role::Member);
    let mut oauth = OAuthServiceClient::new(app.channel().await);
    let guess = || proto::CompleteAuthorizationRequest {
        handle: Uuid::new_v4().simple().to_string(),
    };

    // Act: two guesses, answered NOT_FOUND, spend the budget.
    for _ in 0..2 {
        let r = oauth.complete_authorization(authed(guess(), &token)).await;
        assert!(not_limited(&r), "{r:?}");
    }

    // Assert: the third is refused on gRPC and REST, and starting still has its own budget.
    assert_rate_limited_grpc(oauth.complete_authorization(authed(guess(), &token)).await);
    let rest = http()
        .post(app.rest_url("/api/v1/oauth/zoom/complete"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"handle": "guess"}))
        .send()
        .await
        .unwrap();
    assert_rate_limited_rest(rest).await;
    let r = oauth
        .start_authorization(authed(start(proto::Platform::Zoom), &token))
        .await;
    assert!(not_limited(&r), "{r:?}");
    app.stop().await;
}
