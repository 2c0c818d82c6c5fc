//! Who may call, and what they may see: token verification on every transport, tenant
//! isolation for every RPC that names an integration, and roles.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use founderhouse_integrations::api::auth::Claims;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    self, connector_service_client::ConnectorServiceClient,
    health_service_client::HealthServiceClient,
    integration_service_client::IntegrationServiceClient,
    o_auth_service_client::OAuthServiceClient,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::helpers::{TestApp, authed, fireflies, http, reason, spawn_app};

// ---------------------------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------------------------

const ERROR_DOMAIN: &str = "integrations.founderhouse";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(workspace_id: &str, role: &str, exp: u64) -> Claims {
    Claims {
        sub: Uuid::new_v4().to_string(),
        workspace_id: workspace_id.to_owned(),
        role: role.to_owned(),
        exp,
        iat: Some(now()),
    }
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token encodes")
}

/// A token signed with the app's own secret.
fn signed_by_app(app: &TestApp, claims: &Claims) -> String {
    sign(claims, app.jwt_secret.expose())
}

/// A request carrying `authorization` exactly as given, or none.
fn with_authorization<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(value) = authorization {
        req.metadata_mut().insert(
            "authorization",
            value.parse().expect("authorization is ascii"),
        );
    }
    req
}

fn assert_rejected_status(status: &Status, message: &str, secret: Option<&str>, rpc: &str) {
    assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
    assert_eq!(reason(status), "UNAUTHENTICATED", "{rpc}");
    assert_eq!(status.message(), message, "{rpc}");
    let info = status
        .get_details_error_info()
        .expect("ErrorInfo is attached");
    assert_eq!(info.domain, ERROR_DOMAIN, "{rpc}");
    if let Some(secret) = secret {
        assert!(
            !status.message().contains(secret),
            "{rpc}: the message echoes the token"
        );
        let details = String::from_utf8_lossy(status.details());
        assert!(
            !details.contains(secret),
            "{rpc}: the details echo the token"
        );
    }
}

/// `authorization` (None: no header) is refused with `message` by ListIntegrations and
/// GetIntegration over gRPC and by `GET /api/v1/integrations` over REST, without echoing `secret`.
async fn assert_unauthenticated_everywhere(
    app: &TestApp,
    authorization: Option<&str>,
    message: &str,
    secret: Option<&str>,
) {
    let mut client = app.integrations().await;

    let list = client
        .list_integrations(with_authorization(
            proto::ListIntegrationsRequest::default(),
            authorization,
        ))
        .await
        .expect_err("ListIntegrations must be refused");
    assert_rejected_status(&list, message, secret, "ListIntegrations");

    let get = client
        .get_integration(with_authorization(
            proto::GetIntegrationRequest {
                name: Uuid::new_v4().to_string(),
            },
            authorization,
        ))
        .await
        .expect_err("GetIntegration must be refused");
    assert_rejected_status(&get, message, secret, "GetIntegration");

    let mut req = http().get(app.rest_url("/api/v1/integrations"));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let resp = req.send().await.expect("REST answers");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    let text = resp.text().await.expect("body");
    if let Some(secret) = secret {
        assert!(!text.contains(secret), "the REST body echoes the token");
    }
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    let error = &body["error"];
    assert_eq!(error["code"], 401);
    assert_eq!(error["status"], "UNAUTHENTICATED");
    assert_eq!(error["reason"], "UNAUTHENTICATED");
    assert_eq!(error["message"], message);
    assert_eq!(error["domain"], ERROR_DOMAIN);
    assert_eq!(error["field_violations"], json!([]));
    assert_eq!(error["request_id"], rid.as_str());
    assert_eq!(body["detail"], message);
}

/// Every RPC that names one integration.
#[derive(Clone, Copy, Debug)]
enum Rpc {
    Get,
    Update,
    Disconnect,
    Test,
    Refresh,
    Revoke,
    CheckIntegration,
    ListHealthChecks,
    Invoke,
    Proxy,
    Download,
}

const INTEGRATION_RPCS: [Rpc; 11] = [
    Rpc::Get,
    Rpc::Update,
    Rpc::Disconnect,
    Rpc::Test,
    Rpc::Refresh,
    Rpc::Revoke,
    Rpc::CheckIntegration,
    Rpc::ListHealthChecks,
    Rpc::Invoke,
    Rpc::Proxy,
    Rpc::Download,
];

/// The RPCs of a later release: they answer Unimplemented for the caller's own integration.
/// Calls `rpc` about `name` with `token`; only the outcome's status matters.
async fn call(channel: &Channel, rpc: Rpc, name: &str, token: &str) -> Result<(), Status> {
    let name = name.to_owned();
    match rpc {
        Rpc::Get => IntegrationServiceClient::new(channel.clone())
            .get_integration(authed(proto::GetIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::Update => IntegrationServiceClient::new(channel.clone())
            .update_integration(authed(
                proto::UpdateIntegrationRequest {
                    integration: Some(proto::Integration {
                        name,
                        display_name: "renamed by a stranger".to_owned(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".to_owned()],
                    }),
                },
                token,
            ))
            .await
            .map(drop),
        Rpc::Disconnect => IntegrationServiceClient::new(channel.clone())
            .disconnect_integration(authed(proto::DisconnectIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::Test => IntegrationServiceClient::new(channel.clone())
            .test_integration(authed(proto::TestIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::Refresh => OAuthServiceClient::new(channel.clone())
            .refresh_integration(authed(proto::RefreshIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::Revoke => OAuthServiceClient::new(channel.clone())
            .revoke_integration(authed(proto::RevokeIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::CheckIntegration => HealthServiceClient::new(channel.clone())
            .check_integration(authed(proto::CheckIntegrationRequest { name }, token))
            .await
            .map(drop),
        Rpc::ListHealthChecks => HealthServiceClient::new(channel.clone())
            .list_health_checks(authed(
                proto::ListHealthChecksRequest {
                    integration: name,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        Rpc::Invoke => ConnectorServiceClient::new(channel.clone())
            .invoke(authed(
                proto::InvokeRequest {
                    integration: name,
                    operation: "fireflies.list_transcripts".to_owned(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        Rpc::Proxy => ConnectorServiceClient::new(channel.clone())
            .proxy(authed(
                proto::ProxyRequest {
                    integration: name,
                    method: "GET".to_owned(),
                    path: "/graphql".to_owned(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        Rpc::Download => ConnectorServiceClient::new(channel.clone())
            .download(authed(
                proto::DownloadRequest {
                    integration: name,
                    // A real operation with valid params: the integration decides the answer.
                    operation: "zerovoice.download_recording".to_owned(),
                    params: Some(prost_types::Struct {
                        fields: [(
                            "recording_sid".to_owned(),
                            prost_types::Value {
                                kind: Some(prost_types::value::Kind::StringValue(
                                    "RE0123456789abcdef0123456789abcdef".to_owned(),
                                )),
                            },
                        )]
                        .into(),
                    }),
                },
                token,
            ))
            .await
            .map(drop),
    }
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

async fn get(app: &TestApp, name: &str, token: &str) -> proto::Integration {
    app.integrations()
        .await
        .get_integration(authed(
            proto::GetIntegrationRequest {
                name: name.to_owned(),
            },
            token,
        ))
        .await
        .expect("gets")
        .into_inner()
        .integration
        .expect("integration in response")
}

async fn list(app: &TestApp, token: &str) -> Vec<proto::Integration> {
    app.integrations()
        .await
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), token))
        .await
        .expect("lists")
        .into_inner()
        .integrations
}

/// The audit actions recorded for one integration, oldest first.
async fn audit_actions(app: &TestApp, id: &str) -> Vec<String> {
    let pool = app.pool().await;
    let actions = sqlx::query_scalar::<_, String>(
        "SELECT action FROM audit_events WHERE integration_id = $1 ORDER BY id",
    )
    .bind(Uuid::parse_str(id).expect("uuid id"))
    .fetch_all(&pool)
    .await
    .expect("audit query");
    pool.close().await;
    actions
}

async fn credential_rows(app: &TestApp, id: &str) -> i64 {
    let pool = app.pool().await;
    let n =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM credentials WHERE integration_id = $1")
            .bind(Uuid::parse_str(id).expect("uuid id"))
            .fetch_one(&pool)
            .await
            .expect("credentials query");
    pool.close().await;
    n
}

/// The `error` object of a REST JSON error body, after checking the HTTP status.
async fn rest_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("JSON error body");
    body["error"].clone()
}

// ---------------------------------------------------------------------------------------------
// 1. Every authentication failure is Unauthenticated / 401
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_authorization_header_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert
    assert_unauthenticated_everywhere(&app, None, "missing bearer token", None).await;

    app.stop().await;
}

#[tokio::test]
async fn a_non_bearer_authorization_scheme_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;
    let credentials = "dXNlcjpodW50ZXIy";

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Basic {credentials}")),
        "authorization must be a bearer token",
        Some(credentials),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_malformed_token_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some("Bearer not.a.jwt"),
        "malformed token",
        Some("not.a.jwt"),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_on_grpc_and_rest() {
    // Arrange: expired two minutes ago, well beyond the 30 s leeway.
    let app = spawn_app().await;
    let token = signed_by_app(
        &app,
        &claims(&app.workspace.to_string(), "admin", now() - 120),
    );

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token expired",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_still_accepted() {
    // Arrange: expired five seconds ago, inside the 30 s leeway.
    let app = spawn_app().await;
    let token = signed_by_app(
        &app,
        &claims(&app.workspace.to_string(), "viewer", now() - 5),
    );

    // Act
    let listed = app
        .integrations()
        .await
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await;

    // Assert
    assert!(listed.is_ok(), "{listed:?}");

    app.stop().await;
}

/// A token with exactly these claims (any JSON), signed with the app's secret.
fn signed_json_by_app(app: &TestApp, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(app.jwt_secret.expose().as_bytes()),
    )
    .expect("token encodes")
}

fn base_claims(app: &TestApp) -> Value {
    json!({
        "sub": Uuid::new_v4().to_string(),
        "workspace_id": app.workspace.to_string(),
        "role": "admin",
        "iat": now(),
        "exp": now() + 600,
    })
}

#[tokio::test]
async fn a_token_not_yet_valid_is_unauthenticated_on_grpc_and_rest() {
    // Arrange: usable only in ten minutes, well beyond the 30 s leeway.
    let app = spawn_app().await;
    let mut claims = base_claims(&app);
    claims["nbf"] = json!(now() + 600);
    let token = signed_json_by_app(&app, &claims);

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token not yet valid",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_without_iat_is_unauthenticated_because_its_lifetime_cannot_be_bounded() {
    let app = spawn_app().await;
    let mut claims = base_claims(&app);
    claims.as_object_mut().unwrap().remove("iat");
    let token = signed_json_by_app(&app, &claims);

    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token lacks a required claim",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_ten_year_token_is_unauthenticated_however_well_signed() {
    let app = spawn_app().await;
    let mut claims = base_claims(&app);
    claims["exp"] = json!(now() + 10 * 365 * 24 * 3600);
    let token = signed_json_by_app(&app, &claims);

    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token lifetime is longer than this service accepts",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_unauthenticated() {
    let app = spawn_app().await;
    let mut claims = base_claims(&app);
    claims["iat"] = json!(now() + 600);
    claims["exp"] = json!(now() + 1200);
    let token = signed_json_by_app(&app, &claims);

    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token issued in the future",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_within_the_lifetime_cap_and_its_nbf_is_accepted() {
    // Arrange: 23 hours long, valid since a minute ago.
    let app = spawn_app().await;
    let mut claims = base_claims(&app);
    claims["exp"] = json!(now() + 23 * 3600);
    claims["nbf"] = json!(now() - 60);
    let token = signed_json_by_app(&app, &claims);

    let listed = app
        .integrations()
        .await
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await;

    assert!(listed.is_ok(), "{listed:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;
    let token = sign(
        &claims(&app.workspace.to_string(), "owner", now() + 600),
        "someone-elses-secret",
    );

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token signature invalid",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated_on_grpc_and_rest() {
    // Arrange: a well-formed claim set that nobody signed.
    let app = spawn_app().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&claims(&app.workspace.to_string(), "owner", now() + 600))
            .expect("claims serialize"),
    );
    let token = format!("{header}.{body}.");

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "malformed token",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_with_an_unknown_role_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;
    let token = signed_by_app(
        &app,
        &claims(&app.workspace.to_string(), "superuser", now() + 600),
    );

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token role not recognised",
        Some(&token),
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_whose_workspace_is_not_a_uuid_is_unauthenticated_on_grpc_and_rest() {
    // Arrange
    let app = spawn_app().await;
    let token = signed_by_app(&app, &claims("acme-corp", "admin", now() + 600));

    // Act + Assert
    assert_unauthenticated_everywhere(
        &app,
        Some(&format!("Bearer {token}")),
        "token workspace_id must be a uuid",
        Some(&token),
    )
    .await;

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Tenants never see each other
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_workspaces_integration_is_not_found_by_every_rpc_by_id_and_by_name() {
    // Arrange: A connects; B is an admin of another workspace.
    let app = spawn_app().await;
    let a_token = app.token(Role::Admin);
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let theirs = connect(&app, "acme", &a_token).await;
    let full_name = format!("workspaces/{}/integrations/{}", app.workspace, theirs.id);
    assert_eq!(theirs.name, full_name);
    let channel = app.channel().await;

    for rpc in INTEGRATION_RPCS {
        for name in [theirs.id.as_str(), full_name.as_str()] {
            // Act
            let status = call(&channel, rpc, name, &b_token)
                .await
                .expect_err("a stranger's call must fail");

            // Assert
            assert_eq!(status.code(), Code::NotFound, "{rpc:?} {name}: {status:?}");
            assert_eq!(reason(&status), "INTEGRATION_NOT_FOUND", "{rpc:?} {name}");
            assert_eq!(status.message(), "integration not found", "{rpc:?} {name}");
        }
    }

    app.stop().await;
}

#[tokio::test]
async fn another_workspaces_integration_answers_exactly_like_one_that_does_not_exist() {
    // Arrange
    let app = spawn_app().await;
    let a_token = app.token(Role::Admin);
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let theirs = connect(&app, "acme", &a_token).await;
    let nobodys = Uuid::now_v7().to_string();
    let channel = app.channel().await;

    for rpc in INTEGRATION_RPCS {
        // Act
        let foreign = call(&channel, rpc, &theirs.id, &b_token)
            .await
            .expect_err("foreign");
        let missing = call(&channel, rpc, &nobodys, &b_token)
            .await
            .expect_err("missing");

        // Assert: no oracle for other tenants' ids.
        assert_eq!(foreign.code(), missing.code(), "{rpc:?}");
        assert_eq!(reason(&foreign), reason(&missing), "{rpc:?}");
        assert_eq!(foreign.message(), missing.message(), "{rpc:?}");
    }

    app.stop().await;
}

#[tokio::test]
async fn another_workspaces_integration_is_not_found_through_the_rest_mirrors() {
    // Arrange
    let app = spawn_app().await;
    let a_token = app.token(Role::Admin);
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let theirs = connect(&app, "acme", &a_token).await;
    let url = app.rest_url(&format!("/api/v1/integrations/{}", theirs.id));
    let client = http();

    // Act
    let got = client
        .get(&url)
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("GET");
    let patched = client
        .patch(&url)
        .bearer_auth(&b_token)
        .json(&json!({"display_name": "renamed by a stranger"}))
        .send()
        .await
        .expect("PATCH");
    let deleted = client
        .delete(&url)
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("DELETE");

    // Assert
    for (method, resp) in [("GET", got), ("PATCH", patched), ("DELETE", deleted)] {
        let error = rest_error(resp, 404).await;
        assert_eq!(error["reason"], "INTEGRATION_NOT_FOUND", "{method}");
        assert_eq!(error["status"], "NOT_FOUND", "{method}");
        assert_eq!(error["message"], "integration not found", "{method}");
    }

    app.stop().await;
}

#[tokio::test]
async fn listing_never_shows_another_workspaces_integrations() {
    // Arrange
    let app = spawn_app().await;
    let a_token = app.token(Role::Admin);
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let theirs = connect(&app, "acme", &a_token).await;

    // Act
    let over_grpc = list(&app, &b_token).await;
    let over_rest: Value = http()
        .get(app.rest_url("/api/v1/integrations"))
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("REST list")
        .json()
        .await
        .expect("JSON");

    // Assert
    assert_eq!(over_grpc, Vec::new());
    assert_eq!(
        over_rest,
        json!({"integrations": [], "next_page_token": ""})
    );
    // A still sees its own.
    let own = list(&app, &a_token).await;
    assert_eq!(
        own.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [theirs.id.as_str()]
    );

    app.stop().await;
}

#[tokio::test]
async fn a_strangers_attempts_leave_the_integration_unchanged() {
    // Arrange
    let app = spawn_app().await;
    let a_token = app.token(Role::Admin);
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let before = connect(&app, "acme", &a_token).await;
    let full_name = before.name.clone();
    let channel = app.channel().await;
    let url = app.rest_url(&format!("/api/v1/integrations/{}", before.id));

    // Act: every write a stranger could try, on both transports.
    for rpc in INTEGRATION_RPCS {
        for name in [before.id.as_str(), full_name.as_str()] {
            let _ = call(&channel, rpc, name, &b_token).await;
        }
    }
    let client = http();
    let _ = client
        .patch(&url)
        .bearer_auth(&b_token)
        .json(&json!({"display_name": "renamed by a stranger", "metadata": {"owned": true}}))
        .send()
        .await
        .expect("PATCH");
    let _ = client
        .delete(&url)
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("DELETE");

    // Assert
    let after = get(&app, &before.id, &a_token).await;
    assert_eq!(after.status, proto::IntegrationStatus::Connected as i32);
    assert_eq!(after.display_name, "Fireflies");
    assert_eq!(after, before);
    assert_eq!(
        audit_actions(&app, &before.id).await,
        ["integration.connected"]
    );
    assert_eq!(credential_rows(&app, &before.id).await, 1);

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Roles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_viewer_can_get_and_list_integrations() {
    // Arrange
    let app = spawn_app().await;
    let existing = connect(&app, "acme", &app.token(Role::Admin)).await;
    let viewer = app.token(Role::Viewer);

    // Act
    let got = get(&app, &existing.id, &viewer).await;
    let listed = list(&app, &viewer).await;
    let rest = http()
        .get(app.rest_url(&format!("/api/v1/integrations/{}", existing.id)))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("REST get");

    // Assert
    assert_eq!(got, existing);
    assert_eq!(listed, vec![existing.clone()]);
    assert_eq!(rest.status(), 200);
    let body: Value = rest.json().await.expect("JSON");
    assert_eq!(body["id"], existing.id.as_str());

    app.stop().await;
}

#[tokio::test]
async fn a_viewer_cannot_connect_update_or_disconnect_over_grpc() {
    // Arrange
    let app = spawn_app().await;
    let existing = connect(&app, "acme", &app.token(Role::Admin)).await;
    let viewer = app.token(Role::Viewer);
    let mut client = app.integrations().await;
    let channel = app.channel().await;

    // Act
    let connected = client
        .connect_integration(authed(fireflies("viewer-made"), &viewer))
        .await
        .expect_err("viewers cannot connect");
    let updated = call(&channel, Rpc::Update, &existing.id, &viewer)
        .await
        .expect_err("viewers cannot update");
    let disconnected = call(&channel, Rpc::Disconnect, &existing.id, &viewer)
        .await
        .expect_err("viewers cannot disconnect");

    // Assert
    for (what, status) in [
        ("connect", &connected),
        ("update", &updated),
        ("disconnect", &disconnected),
    ] {
        assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
        assert_eq!(reason(status), "PERMISSION_DENIED", "{what}");
    }
    assert_eq!(connected.message(), "viewers can only read");
    assert_eq!(updated.message(), "viewers can only read");
    assert_eq!(
        disconnected.message(),
        "only admins, owners and services may do this"
    );
    assert_eq!(list(&app, &viewer).await, vec![existing.clone()]);
    assert_eq!(
        audit_actions(&app, &existing.id).await,
        ["integration.connected"]
    );

    app.stop().await;
}

#[tokio::test]
async fn a_viewer_cannot_connect_update_or_disconnect_over_rest() {
    // Arrange
    let app = spawn_app().await;
    let existing = connect(&app, "acme", &app.token(Role::Admin)).await;
    let viewer = app.token(Role::Viewer);
    let client = http();
    let url = app.rest_url(&format!("/api/v1/integrations/{}", existing.id));

    // Act
    let connected = client
        .post(app.rest_url("/api/v1/integrations/connect"))
        .bearer_auth(&viewer)
        .json(&json!({"platform": "fireflies", "credentials": {"api_key": "ff-viewer"}}))
        .send()
        .await
        .expect("POST");
    let updated = client
        .patch(&url)
        .bearer_auth(&viewer)
        .json(&json!({"display_name": "renamed by a viewer"}))
        .send()
        .await
        .expect("PATCH");
    let deleted = client
        .delete(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("DELETE");

    // Assert
    for (what, resp) in [
        ("connect", connected),
        ("update", updated),
        ("disconnect", deleted),
    ] {
        let error = rest_error(resp, 403).await;
        assert_eq!(error["reason"], "PERMISSION_DENIED", "{what}");
        assert_eq!(error["status"], "PERMISSION_DENIED", "{what}");
    }
    assert_eq!(list(&app, &viewer).await, vec![existing.clone()]);
    assert_eq!(
        audit_actions(&app, &existing.id).await,
        ["integration.connected"]
    );

    app.stop().await;
}

#[tokio::test]
async fn a_member_can_connect_and_update_but_not_disconnect() {
    // Arrange
    let app = spawn_app().await;
    let member = app.token(Role::Member);
    let channel = app.channel().await;

    // Act
    let connected = connect(&app, "member-made", &member).await;
    let updated = IntegrationServiceClient::new(channel.clone())
        .update_integration(authed(
            proto::UpdateIntegrationRequest {
                integration: Some(proto::Integration {
                    name: connected.name.clone(),
                    display_name: "Team calls".to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
            },
            &member,
        ))
        .await
        .expect("members update")
        .into_inner()
        .integration
        .expect("integration");
    let disconnected = call(&channel, Rpc::Disconnect, &connected.id, &member)
        .await
        .expect_err("members cannot disconnect");
    let rest_deleted = http()
        .delete(app.rest_url(&format!("/api/v1/integrations/{}", connected.id)))
        .bearer_auth(&member)
        .send()
        .await
        .expect("DELETE");

    // Assert
    assert_eq!(connected.status, proto::IntegrationStatus::Connected as i32);
    assert_eq!(updated.display_name, "Team calls");
    assert_eq!(
        disconnected.code(),
        Code::PermissionDenied,
        "{disconnected:?}"
    );
    assert_eq!(reason(&disconnected), "PERMISSION_DENIED");
    let error = rest_error(rest_deleted, 403).await;
    assert_eq!(error["reason"], "PERMISSION_DENIED");
    let now = get(&app, &connected.id, &member).await;
    assert_eq!(now.status, proto::IntegrationStatus::Connected as i32);
    assert_eq!(now.credential_fields, ["api_key"]);
    assert_eq!(
        audit_actions(&app, &connected.id).await,
        ["integration.connected", "integration.updated"]
    );

    app.stop().await;
}

#[tokio::test]
async fn admins_owners_and_services_can_disconnect() {
    // Arrange
    let app = spawn_app().await;
    let channel = app.channel().await;

    for role in [Role::Admin, Role::Owner, Role::Service] {
        let token = app.token(role);
        let connected = connect(&app, role.as_str(), &token).await;

        // Act
        let resp = IntegrationServiceClient::new(channel.clone())
            .disconnect_integration(authed(
                proto::DisconnectIntegrationRequest {
                    name: connected.name.clone(),
                },
                &token,
            ))
            .await
            .unwrap_or_else(|s| panic!("{role:?} may disconnect: {s:?}"))
            .into_inner();

        // Assert
        let after = resp.integration.expect("integration");
        assert_eq!(
            after.status,
            proto::IntegrationStatus::Revoked as i32,
            "{role:?}"
        );
        assert_eq!(after.credential_fields, Vec::<String>::new(), "{role:?}");
        assert_eq!(resp.revocations.len(), 1, "{role:?}");
        assert_eq!(resp.revocations[0].token_type, "api_key", "{role:?}");
        assert!(!resp.revocations[0].revoked_upstream, "{role:?}");
        assert_eq!(
            resp.revocations[0].reason, "PROVIDER_HAS_NO_REVOCATION",
            "{role:?}"
        );
        assert_eq!(credential_rows(&app, &connected.id).await, 0, "{role:?}");
    }

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. The workspace comes from the token only
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_workspace_id_query_parameter_is_rejected_and_never_selects_another_workspace() {
    // Arrange
    let app = spawn_app().await;
    let theirs = connect(&app, "acme", &app.token(Role::Admin)).await;
    let b_token = app.token_for(Uuid::new_v4(), Role::Admin);
    let client = http();

    // Act
    let listed = client
        .get(app.rest_url(&format!(
            "/api/v1/integrations?workspace_id={}",
            app.workspace
        )))
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("list");
    let got = client
        .get(app.rest_url(&format!(
            "/api/v1/integrations/{}?workspace_id={}",
            theirs.id, app.workspace
        )))
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("get");

    // Assert
    assert_eq!(listed.status(), 400);
    let text = listed.text().await.expect("body");
    assert!(!text.contains(&theirs.id), "A's id leaked: {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["error"]["reason"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["field_violations"],
        json!([{"field": "workspace_id", "description": "is not a known query parameter"}])
    );
    let error = rest_error(got, 404).await;
    assert_eq!(error["reason"], "INTEGRATION_NOT_FOUND");

    app.stop().await;
}
