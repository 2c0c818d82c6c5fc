//! Tokens signed by an identity provider: RS256 and ES256 keys published at a JWKS URL, fetched
//! once and cached, refetched at a limited rate, with issuer and audience checks, a clean
//! UNAVAILABLE when the key set cannot be fetched, and keys not trusted forever while it cannot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use founderhouse_integrations::api::auth::Claims;
use founderhouse_integrations::proto;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::helpers::{TestApp, authed, fireflies, http, reason, spawn_app_with};

// ---------------------------------------------------------------------------------------------
// Fixture keys
// ---------------------------------------------------------------------------------------------
//
// TEST-ONLY FIXTURES, generated once for this test file with the openssl CLI:
//   openssl genrsa -out rsa1.pem 2048; openssl rsa -in rsa1.pem -outform DER -traditional
//   openssl genrsa -out rsa2.pem 2048; (same conversion)
//   openssl ecparam -name prime256v1 -genkey -noout -out ec1.pem
//   openssl pkcs8 -topk8 -nocrypt -in ec1.pem -outform DER
// They protect nothing and must never be used outside these tests. The public JWK parts were
// computed from the same keys with `openssl rsa -modulus` / `openssl ec -pubout` (base64url,
// no padding).

/// RSA 2048 private key, PKCS#1 DER, base64: published in the JWKS as kid "rsa-1".
const RSA1_PKCS1_DER_B64: &str = "MIIEowIBAAKCAQEAv6niYZP1kRGMeD0Pc23kig+Fa/9M7uDzagD4j7Fbq6Iqn/HrsD9HMOn0qnbpPvAdjBeI4oGFzoZ4rD07EsFGu447FIvkVIWuD2gUcp33FStngRaF1qTKklZVXolgFQc8+YXhzw4O5VGb8UVLD9Zyai7K5TaWLU5FpaemeVEcGsM37Hjt/1fAx3intQwgLfeCIhgpfojwARA22pNeyqSmcKwyqFVjw3SO8Eragat5DW1BdAPwb87fJY5rFlELX3baLkJddQCb0Z1eb5ai+Uag6MwzfpLjfONIEjrmZUPHtXa8YUx6yVmYwxCZGe9S5988xj/K0m73GZD2xvidteuxBQIDAQABAoIBAAMMmaUyM3y7/oYveMnQZ/lSm7/d49sWe8/BkOmjLhFkUnDaRc4AhNyASO5Ee+TFXr+KwAZmfmiMhLNjp/4nLb3U2oVXYCDJi2G6pvSgt3NksplbXikEsEpZko6M1M/+i9e4tMVUmUh/Z/QTxVsoOC0Ot2CkBlLnxRjj8Wtu00Ujs5yTu+Jl+NWTc/pviF5kVRqnhhaUpmHlyC7xvpEcpTE7cG8mqQRSzNV75iQKNWTJ3l5MWXyv4coLK5Z9klQ+rRLpb+D3ZDXj8C7t7D/enA51LGdmYjHheMk8LWBlu4Azy99kveA86mDVo1jq/2QOiDWHRPwib4f430Q6J0BGGKMCgYEA5lPRQUgfc64yMitTc4M6Bd2HnNaQS1cMSLwE2eM6PKB0Ks8TaSq8c86ipEC4jBNmbR56lrMSSQu26fXb+JHw4DsjnZOD6ETpIZ7tRIf2+SrR8rQY7q/KOJwHlaDJqqH0E6jlZjaPUdZXBjD4WuoIE0ev+tGc0ME3En7k9Xx7CyMCgYEA1QbUojaP/GUyOYQE1jcQUVIkgmNtb9QVV8gu2PIPymykSTmj3nhIs7YOy5YCaQ7DHMJyGG9SWQ1q3DbHZ8QjqyplkPAri53svnPKR1N6kivrImW4lAPYX/rUp2LaJAmHTkQdvbai10mZ8YxMNuvrDgzi/cP3bf4JlHW/W6eLibcCgYEAuLTGvp9j+ZTcVDdCeQPnaAS7WB8JICHyi/Gbwk/ix/O0tQ/S9Sd8cTJoY2gzlsGIBkHG9Ustgr6ONRkhCjme/XLvoNJHmeCJRJj6lVajzDV2oDelNuRqOvOFcYy7rMarwYhUTp+6V1qX9zMWN3Iuf6ehjHbEVvRbgc2ZNvRYiBkCgYBU8DNKNn00wtjCzBvtmej8s8bw4loZU7Pq21uqjuGy8ZyTwdLP+p/qX/YIQNjXMNalGfbKPWDVNx9bjM/3VOJv9iinIMwMEDz8N0j5JZTiwXYwseRlyB63LlkqIKUf51i24TwGj9LgCm3CPRGKeIixgnvjeQaoKbmCI2zYS7a8gwKBgBJ5xR6ZmA/iGp4p2PzzE/6wT+4sW9BczGztpBwYugxwGiG0zYgItpAZFpwtmAIXUF6e/1PzvbrjwABu3fjNvVBaEWpX6Pmqopki3KUzHYN2JavADuug3oIBmunN3/irht7x+cyV3LToFpQ7soXoj5PqJkNGR5Q+nGOd9thEYxUw";
/// Public modulus of RSA1 (base64url).
const RSA1_N: &str = "v6niYZP1kRGMeD0Pc23kig-Fa_9M7uDzagD4j7Fbq6Iqn_HrsD9HMOn0qnbpPvAdjBeI4oGFzoZ4rD07EsFGu447FIvkVIWuD2gUcp33FStngRaF1qTKklZVXolgFQc8-YXhzw4O5VGb8UVLD9Zyai7K5TaWLU5FpaemeVEcGsM37Hjt_1fAx3intQwgLfeCIhgpfojwARA22pNeyqSmcKwyqFVjw3SO8Eragat5DW1BdAPwb87fJY5rFlELX3baLkJddQCb0Z1eb5ai-Uag6MwzfpLjfONIEjrmZUPHtXa8YUx6yVmYwxCZGe9S5988xj_K0m73GZD2xvidteuxBQ";
/// Public exponent 65537 (base64url).
const RSA_E: &str = "AQAB";

/// A second RSA 2048 private key, PKCS#1 DER, base64: published nowhere.
const RSA2_PKCS1_DER_B64: &str = "MIIEowIBAAKCAQEAmBbjo3qJo8c72cy23X2C+UzXuLnI3LjiwnpwhkVfrkv2wTXk4PIicOAiodz0fstU0UUwLvSN7pzSN0WqrOT+478Mdn4U0PN5L/NegU5vHIYtBIUEAkph8Kml5HKvzSg4Rt47bGOFJe0lmPqGfmJyCW7BAEd3i1aHCH9cKgNXuK6RBmpHjoakrlz20APIrQNpzM6UQ/ARJZu8E94thVWYAqTeYioFOnFZPWfQP7/zNaUFxGOTfE7UmDqgbqfEHr6ErVHYC+AX0vu62CEVpNZNaZXTSesIJqv9vzckH6phyifpFFNmQaVXUy/VSkbe0g/9SzLf/s0zLaC5yFYz8Av6yQIDAQABAoIBAAw+UiQFHNMiRPytwLjdk5ogfVXsdYbjRrSePl8TcvY+kkY6jErZjeaP/JRoNlyGCjVwlZuUv1+f9ez81EESjDxm/bNaR1sM2/V9aN8NoonleUvzA1VwidLhwq48gfozjILpUqz76VTvctvjqx5ogW1Qolk0kk3qxiMWfE5mMifL8gXpCedHdm1MnP1s08aOHhMUEkVtFXpTTeKCzYxq2TLU9ZSSwhrW6aVTGrsMX5pdS7omwYPblEFC7JY1ZOs+eIH54sTvxo7UyEUpDvVnad4cnaAu2XRkcMDjf+wDsqB9yM7VQZwzH7QF/AR9fUEcso7WH78WR0p6GYCZssmoJsMCgYEAyFM6De0S+TebFldSWv6HoBXFl8y7VRzE2p11vSSx3J00FcaAREcRH0FZXRGc7mmyeT7IKv3I1i3q1C+gaGcvX0R/1dUupHzvKGUuuaM839gk/Gbj4I1si2VeTfCZYyBXmXDR/0ZFUFIMXbMMeldcng89vP76yzpify21BLsqB9cCgYEAwlvHbqi8n1Yp/EHWpN/QAGxkL0T91+QmeQRxOAHWpLHhkFHTqTXFV2LdZf+v38MQhhATpgYuc919JmuGf7bo0iNjjt3YWaViVPDMv4mArydtNoDb11JP5aRj+lU5WeCud8UMS1/Y2s0B62R257is1l+AAYQkrtaSO0gfWZk7Pl8CgYBHQELv3RjYh4yj358tOkbnC5diLLGczkS+NS9BfSG+BDQYYqgQoO5YHZg5YCBfND0Enu33TJj4hRB3NBFr0PeqfOSzG8YhP0aZKZP69zKZs3lERRxcLDElS4LFWgRUm5ZMvzISB95zeRto4FxZz2Tj2yvsYwy06ClMbudprWB/tQKBgQCbvvo4deT49g4dBBFh+6vtuu4pZurXpw8haOrlS6vaPGUZxkiLzvf9h88M3nDsKZ9DHvzvzQJKfNG+COo1y7gUNKGiKaomZD5A/NnGHwTM1xZQV8BTcrVtu2cWgla77C1C8tdgS0U2SJPiMpaKJ9Xwz4R/MopGxNFXyfq9TOpJlwKBgAobudb4iyNBDai6A8jGqV8qrBp6ztKh0ysCyBy51pZLeYDlWFxcae1/rRgBbyOT8/EExhEx2d62RgpIHcuyR+vqkcP1zA0fs30CNFaPVdrHNfVNkWHRRKzHzthI54+PvAPP/sfiqXlg/WwVBidIalJ9oyiQIhV4oOtIilnKf3xp";

/// EC P-256 private key, PKCS#8 DER, base64: published in the JWKS as kid "ec-1".
const EC1_PKCS8_DER_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJbk3GbA/1w5iBAXd8YcmgPlIAgjR+J4uA+lZX1LtGW2hRANCAAQ16ijN1MQrHylqGi6y+epuInwCvgXPBpsA/33Y80HtBXAhwHLatIBIDS20LEZPhdfmyNfGl7DHuseS17JalqSX";
/// Public point of EC1 (base64url).
const EC1_X: &str = "NeoozdTEKx8pahousvnqbiJ8Ar4FzwabAP992PNB7QU";
const EC1_Y: &str = "cCHActq0gEgNLbQsRk-F1-bI18aXsMe6x5LXslqWpJc";

const ERROR_DOMAIN: &str = "integrations.founderhouse";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "founderhouse";
/// Longer than any single request here may take; a request that exceeds it is a hang.
const NO_HANG: Duration = Duration::from_secs(8);

fn der(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).expect("fixture base64 decodes")
}

fn rsa1() -> EncodingKey {
    EncodingKey::from_rsa_der(&der(RSA1_PKCS1_DER_B64))
}

fn rsa2() -> EncodingKey {
    EncodingKey::from_rsa_der(&der(RSA2_PKCS1_DER_B64))
}

fn ec1() -> EncodingKey {
    EncodingKey::from_ec_der(&der(EC1_PKCS8_DER_B64))
}

/// The identity provider's published key set: RSA1 as "rsa-1" and EC1 as "ec-1".
fn key_set() -> Value {
    json!({
        "keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": RSA1_N, "e": RSA_E},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": EC1_X, "y": EC1_Y},
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// A local JWKS endpoint
// ---------------------------------------------------------------------------------------------

const JWKS_PATH: &str = "/.well-known/jwks.json";

struct JwksState {
    hits: AtomicUsize,
    /// The status the endpoint answers with; 200 serves the key set.
    status: AtomicU16,
    /// The JSON served with 200; None serves an HTML page instead.
    body: Option<Value>,
}

/// A JWKS endpoint on 127.0.0.1 that counts its requests; stopped when dropped.
struct JwksServer {
    url: String,
    state: Arc<JwksState>,
    task: JoinHandle<()>,
}

impl JwksServer {
    /// Serves the key set with `status`.
    async fn start(status: StatusCode) -> Self {
        Self::start_with(status, Some(key_set())).await
    }

    async fn start_with(status: StatusCode, body: Option<Value>) -> Self {
        let state = Arc::new(JwksState {
            hits: AtomicUsize::new(0),
            status: AtomicU16::new(status.as_u16()),
            body,
        });
        let router = axum::Router::new()
            .route(JWKS_PATH, axum::routing::get(serve_jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("JWKS listener binds");
        let addr = listener.local_addr().expect("JWKS address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{addr}{JWKS_PATH}"),
            state,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn answer_with(&self, status: StatusCode) {
        self.state.status.store(status.as_u16(), Ordering::SeqCst);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(state.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match (status, &state.body) {
        (StatusCode::OK, Some(keys)) => axum::Json(keys.clone()).into_response(),
        (StatusCode::OK, None) => "<html>please log in</html>".into_response(),
        _ => (status, "identity provider is having a bad day").into_response(),
    }
}

/// A URL nothing listens on: a port that was bound, then released.
async fn unreachable_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr: SocketAddr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}{JWKS_PATH}")
}

/// The app trusting only the JWKS at `url` (no HS256 secret), with optional iss/aud checks.
async fn spawn_jwks_app(url: &str, issuer: Option<&str>, audience: Option<&str>) -> TestApp {
    let url = url.to_owned();
    let issuer = issuer.map(str::to_owned);
    let audience = audience.map(str::to_owned);
    spawn_app_with(move |c| {
        c.jwks_url = Some(url);
        c.jwt_secret = None;
        c.jwt_issuer = issuer;
        c.jwt_audience = audience;
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Tokens and calls
// ---------------------------------------------------------------------------------------------

fn claims(workspace: Uuid, role: &str) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: Uuid::new_v4().to_string(),
        workspace_id: workspace.to_string(),
        role: role.to_owned(),
        exp: now + 600,
        iat: Some(now),
    }
}

/// The same claims as JSON, to add or drop `iss` and `aud`.
fn claims_json(workspace: Uuid) -> serde_json::Map<String, Value> {
    match serde_json::to_value(claims(workspace, "admin")).expect("claims serialize") {
        Value::Object(map) => map,
        other => panic!("claims serialize to an object, not {other}"),
    }
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &impl Serialize) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("token encodes")
}

fn rs256(kid: &str, workspace: Uuid) -> String {
    sign(
        Algorithm::RS256,
        Some(kid),
        &rsa1(),
        &claims(workspace, "admin"),
    )
}

fn es256(kid: &str, workspace: Uuid) -> String {
    sign(
        Algorithm::ES256,
        Some(kid),
        &ec1(),
        &claims(workspace, "admin"),
    )
}

async fn grpc_list(app: &TestApp, token: &str) -> Result<Vec<proto::Integration>, tonic::Status> {
    let mut client = app.integrations().await;
    tokio::time::timeout(
        NO_HANG,
        client.list_integrations(authed(proto::ListIntegrationsRequest::default(), token)),
    )
    .await
    .expect("ListIntegrations answers without hanging")
    .map(|r| r.into_inner().integrations)
}

/// `GET /api/v1/integrations` with `token`: the status and the raw body.
async fn rest_list(app: &TestApp, token: &str) -> (u16, String) {
    let resp = tokio::time::timeout(
        NO_HANG,
        http()
            .get(app.rest_url("/api/v1/integrations"))
            .bearer_auth(token)
            .send(),
    )
    .await
    .expect("REST answers without hanging")
    .expect("REST answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// `token` is refused with Unauthenticated and exactly `message` over gRPC and with 401 over
/// REST, and neither answer echoes the token.
async fn assert_unauthenticated(app: &TestApp, token: &str, message: &str) {
    let status = match grpc_list(app, token).await {
        Ok(listed) => {
            panic!("ListIntegrations must be refused ({message:?}) but listed {listed:?}")
        }
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "{message}: {status:?}"
    );
    assert_eq!(reason(&status), "UNAUTHENTICATED", "{message}");
    assert_eq!(status.message(), message);
    assert!(!status.message().contains(token));
    assert!(!String::from_utf8_lossy(status.details()).contains(token));

    let (code, text) = rest_list(app, token).await;
    assert_eq!(code, 401, "{message}: {text}");
    assert!(!text.contains(token), "the REST body echoes the token");
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["reason"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["message"], message);
    assert_eq!(body["detail"], message);
}

/// `token` is accepted by both transports, and both list exactly `expected` (integration ids).
async fn assert_accepted(app: &TestApp, token: &str, expected: &[&str]) {
    let over_grpc = grpc_list(app, token).await.expect("ListIntegrations is OK");
    assert_eq!(
        over_grpc.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        expected
    );
    let (code, text) = rest_list(app, token).await;
    assert_eq!(code, 200, "{text}");
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    let ids: Vec<&str> = body["integrations"]
        .as_array()
        .expect("integrations array")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, expected);
}

/// A JWKS-signed admin token connects an integration in its own workspace (the claims reached the
/// service), and both transports then list exactly it.
async fn assert_token_works_end_to_end(app: &TestApp, token: &str, workspace: Uuid) {
    let created = app
        .integrations()
        .await
        .connect_integration(authed(fireflies("acme"), token))
        .await
        .expect("ConnectIntegration is OK")
        .into_inner()
        .integration
        .expect("integration in response");
    assert_eq!(
        created.name,
        format!("workspaces/{workspace}/integrations/{}", created.id)
    );

    assert_accepted(app, token, &[created.id.as_str()]).await;
    let (_, text) = rest_list(app, token).await;
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(
        body["integrations"][0]["workspace_id"],
        workspace.to_string()
    );
}

/// The JWKS could not be fetched: Unavailable / 503 with reason JWKS_UNAVAILABLE, promptly, and
/// nothing of the token in the answer.
async fn assert_jwks_unavailable(app: &TestApp, token: &str) {
    let status = grpc_list(app, token)
        .await
        .expect_err("ListIntegrations must fail");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "JWKS_UNAVAILABLE");
    assert_eq!(status.message(), "cannot fetch signing keys");
    let info = status
        .get_details_error_info()
        .expect("ErrorInfo is attached");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert!(!status.message().contains(token));
    assert!(!String::from_utf8_lossy(status.details()).contains(token));

    let (code, text) = rest_list(app, token).await;
    assert_eq!(code, 503, "{text}");
    assert!(!text.contains(token), "the REST body echoes the token");
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(body["error"]["code"], 503);
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
    assert_eq!(body["error"]["reason"], "JWKS_UNAVAILABLE");
    assert_eq!(body["error"]["message"], "cannot fetch signing keys");
    assert_eq!(body["error"]["domain"], ERROR_DOMAIN);
    assert_eq!(body["detail"], "cannot fetch signing keys");
}

// ---------------------------------------------------------------------------------------------
// Accepted tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_rs256_token_whose_kid_is_in_the_jwks_is_accepted_on_both_transports() {
    // Arrange
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let workspace = Uuid::new_v4();
    let token = rs256("rsa-1", workspace);

    // Act + Assert
    assert_accepted(&app, &token, &[]).await;
    assert_token_works_end_to_end(&app, &token, workspace).await;
    assert_eq!(jwks.hits(), 1);

    app.stop().await;
}

#[tokio::test]
async fn an_es256_token_whose_kid_is_in_the_jwks_is_accepted_on_both_transports() {
    // Arrange
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let workspace = Uuid::new_v4();
    let token = es256("ec-1", workspace);

    // Act + Assert
    assert_accepted(&app, &token, &[]).await;
    assert_token_works_end_to_end(&app, &token, workspace).await;
    assert_eq!(jwks.hits(), 1);

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Refused tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_whose_kid_is_not_in_the_jwks_is_unauthenticated() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    let token = rs256("rsa-unknown", Uuid::new_v4());
    assert_unauthenticated(&app, &token, "token key id not recognised").await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_signed_with_another_rsa_key_under_a_listed_kid_is_unauthenticated() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    let forged = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa2(),
        &claims(Uuid::new_v4(), "admin"),
    );
    assert_unauthenticated(&app, &forged, "token signature invalid").await;

    app.stop().await;
}

#[tokio::test]
async fn an_hs256_token_is_unauthenticated_when_no_hs256_secret_is_configured() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    // Signed with the secret the helpers generated (the app was told to forget it).
    let token = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(app.jwt_secret.expose().as_bytes()),
        &claims(app.workspace, "admin"),
    );
    assert_unauthenticated(&app, &token, "HS256 tokens are not accepted").await;
    // HS256 is refused before any key lookup.
    assert_eq!(jwks.hits(), 0);

    app.stop().await;
}

#[tokio::test]
async fn a_token_naming_a_jwks_key_of_the_other_algorithm_or_no_kid_is_unauthenticated() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let workspace = Uuid::new_v4();

    // ES256 under the RSA key's kid, RS256 under the EC key's kid.
    assert_unauthenticated(
        &app,
        &es256("rsa-1", workspace),
        "token key id not recognised",
    )
    .await;
    assert_unauthenticated(
        &app,
        &rs256("ec-1", workspace),
        "token key id not recognised",
    )
    .await;
    let no_kid = sign(Algorithm::RS256, None, &rsa1(), &claims(workspace, "admin"));
    assert_unauthenticated(&app, &no_kid, "token has no key id").await;

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Caching and refetch limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_jwks_is_fetched_once_and_cached_across_many_requests_with_known_kids() {
    // Arrange
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let workspace = Uuid::new_v4();
    let rsa = rs256("rsa-1", workspace);
    let ec = es256("ec-1", workspace);
    let channel = app.channel().await;

    // Act: a cold burst of 20 concurrent calls, then 10 sequential calls per transport.
    let burst = (0..20).map(|i| {
        let mut client =
            proto::integration_service_client::IntegrationServiceClient::new(channel.clone());
        let token = if i % 2 == 0 { rsa.clone() } else { ec.clone() };
        async move {
            client
                .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
                .await
        }
    });
    let results = tokio::time::timeout(NO_HANG, futures::future::join_all(burst))
        .await
        .expect("the burst answers without hanging");
    for r in results {
        assert_eq!(
            r.expect("ListIntegrations is OK").into_inner().integrations,
            []
        );
    }
    for i in 0..10 {
        let token = if i % 2 == 0 { &rsa } else { &ec };
        assert_accepted(&app, token, &[]).await;
    }

    // Assert
    assert_eq!(jwks.hits(), 1);

    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_unknown_kids_refetches_the_jwks_at_most_once() {
    // Arrange
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let workspace = Uuid::new_v4();
    let channel = app.channel().await;

    // Act: 50 concurrent calls, each with a different kid nobody published, on a cold cache.
    let burst = (0..50).map(|i| {
        let mut client =
            proto::integration_service_client::IntegrationServiceClient::new(channel.clone());
        let token = rs256(&format!("forged-{i}"), workspace);
        async move {
            client
                .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
                .await
        }
    });
    let results = tokio::time::timeout(NO_HANG, futures::future::join_all(burst))
        .await
        .expect("the burst answers without hanging");

    // Assert
    assert_eq!(results.len(), 50);
    for r in results {
        let status = r.expect_err("an unknown kid must be refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), "token key id not recognised");
    }
    let after_burst = jwks.hits();
    assert!(
        (1..=2).contains(&after_burst),
        "50 unknown kids caused {after_burst} JWKS fetches"
    );
    // A second burst right after is answered from the cache: no fetch at all.
    for i in 0..10 {
        let token = es256(&format!("forged-again-{i}"), workspace);
        assert_unauthenticated(&app, &token, "token key id not recognised").await;
    }
    assert_eq!(jwks.hits(), after_burst);
    // And a known kid still works without another fetch.
    assert_accepted(&app, &rs256("rsa-1", workspace), &[]).await;
    assert_eq!(jwks.hits(), after_burst);

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Issuer and audience
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_with_the_configured_issuer_and_audience_is_accepted() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, Some(ISSUER), Some(AUDIENCE)).await;
    let workspace = Uuid::new_v4();

    let mut single = claims_json(workspace);
    single.insert("iss".to_owned(), json!(ISSUER));
    single.insert("aud".to_owned(), json!(AUDIENCE));
    assert_accepted(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), &rsa1(), &single),
        &[],
    )
    .await;

    // An audience array that includes ours is accepted too (RFC 7519 4.1.3).
    let mut several = claims_json(workspace);
    several.insert("iss".to_owned(), json!(ISSUER));
    several.insert("aud".to_owned(), json!(["another-service", AUDIENCE]));
    assert_accepted(
        &app,
        &sign(Algorithm::ES256, Some("ec-1"), &ec1(), &several),
        &[],
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_with_the_wrong_issuer_or_audience_is_unauthenticated() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, Some(ISSUER), Some(AUDIENCE)).await;
    let workspace = Uuid::new_v4();

    let mut wrong_iss = claims_json(workspace);
    wrong_iss.insert("iss".to_owned(), json!("https://evil.test"));
    wrong_iss.insert("aud".to_owned(), json!(AUDIENCE));
    assert_unauthenticated(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), &rsa1(), &wrong_iss),
        "token issuer not accepted",
    )
    .await;

    let mut wrong_aud = claims_json(workspace);
    wrong_aud.insert("iss".to_owned(), json!(ISSUER));
    wrong_aud.insert("aud".to_owned(), json!("another-service"));
    assert_unauthenticated(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), &rsa1(), &wrong_aud),
        "token audience not accepted",
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_without_aud_is_unauthenticated_when_an_audience_is_configured() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, Some(ISSUER), Some(AUDIENCE)).await;

    let mut no_aud = claims_json(Uuid::new_v4());
    no_aud.insert("iss".to_owned(), json!(ISSUER));
    assert_unauthenticated(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), &rsa1(), &no_aud),
        "token lacks a required claim",
    )
    .await;

    app.stop().await;
}

#[tokio::test]
async fn a_token_without_iss_is_unauthenticated_when_an_issuer_is_configured() {
    let jwks = JwksServer::start(StatusCode::OK).await;
    let app = spawn_jwks_app(&jwks.url, Some(ISSUER), Some(AUDIENCE)).await;

    let mut no_iss = claims_json(Uuid::new_v4());
    no_iss.insert("aud".to_owned(), json!(AUDIENCE));
    assert_unauthenticated(
        &app,
        &sign(Algorithm::ES256, Some("ec-1"), &ec1(), &no_iss),
        "token lacks a required claim",
    )
    .await;

    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// An unavailable JWKS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_jwks_answering_500_makes_requests_unavailable_not_internal() {
    let jwks = JwksServer::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    assert_jwks_unavailable(&app, &rs256("rsa-1", Uuid::new_v4())).await;
    assert_jwks_unavailable(&app, &es256("ec-1", Uuid::new_v4())).await;
    assert!(jwks.hits() >= 1);

    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_jwks_makes_requests_unavailable_not_internal() {
    let url = unreachable_url().await;
    let app = spawn_jwks_app(&url, None, None).await;

    assert_jwks_unavailable(&app, &rs256("rsa-1", Uuid::new_v4())).await;

    app.stop().await;
}

#[tokio::test]
async fn a_jwks_answering_200_with_a_body_that_is_not_a_key_set_makes_requests_unavailable() {
    let jwks = JwksServer::start_with(StatusCode::OK, None).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    assert_jwks_unavailable(&app, &rs256("rsa-1", Uuid::new_v4())).await;
    assert!(jwks.hits() >= 1);

    app.stop().await;
}

#[tokio::test]
async fn a_key_set_larger_than_the_cap_is_not_read_and_requests_are_unavailable() {
    // A valid key set, padded past the 256 KiB cap: read whole, it would be accepted.
    let mut padded = key_set();
    padded["padding"] = json!("x".repeat(300 * 1024));
    let jwks = JwksServer::start_with(StatusCode::OK, Some(padded)).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;

    assert_jwks_unavailable(&app, &rs256("rsa-1", Uuid::new_v4())).await;
    assert!(jwks.hits() >= 1);

    app.stop().await;
}

#[tokio::test]
async fn keys_are_refused_once_stale_while_the_jwks_keeps_failing_and_accepted_after_recovery() {
    // Arrange: keys trusted for at most 2 s after the last successful fetch.
    let jwks = JwksServer::start(StatusCode::OK).await;
    let url = jwks.url.clone();
    let app = spawn_app_with(move |c| {
        c.jwks_url = Some(url);
        c.jwt_secret = None;
        c.jwks_max_stale = Duration::from_secs(2);
    })
    .await;
    let token = rs256("rsa-1", Uuid::new_v4());
    assert_accepted(&app, &token, &[]).await;

    // Act: the identity provider fails from now on.
    jwks.answer_with(StatusCode::INTERNAL_SERVER_ERROR);

    // Assert: the old key stops being trusted (it would be for the whole 10 min cache
    // lifetime, and forever while fetches fail, without the bound).
    let mut c = app.integrations().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a stale key is still trusted while the JWKS fails"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_jwks_unavailable(&app, &token).await;

    // Once the JWKS answers again, the same token works.
    jwks.answer_with(StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still rejected after recovery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_accepted(&app, &token, &[]).await;
    app.stop().await;
}

#[tokio::test]
async fn requests_succeed_again_once_the_jwks_recovers() {
    let jwks = JwksServer::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let token = rs256("rsa-1", Uuid::new_v4());
    assert_jwks_unavailable(&app, &token).await;

    jwks.answer_with(StatusCode::OK);

    // After a failed fetch the next one waits a second, so poll until it has happened.
    let mut c = app.integrations().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c
        .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still rejected after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_accepted(&app, &token, &[]).await;

    app.stop().await;
}

#[tokio::test]
async fn an_outage_costs_at_most_one_fetch_a_second_however_many_requests_come() {
    let jwks = JwksServer::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let app = spawn_jwks_app(&jwks.url, None, None).await;
    let mut c = app.integrations().await;
    let started = std::time::Instant::now();
    for i in 0..40 {
        let token = rs256(
            if i % 2 == 0 { "rsa-1" } else { "forged-kid" },
            Uuid::new_v4(),
        );
        let err = c
            .list_integrations(authed(proto::ListIntegrationsRequest::default(), &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
    }
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        jwks.hits() <= seconds + 2,
        "{} fetches in {seconds} s",
        jwks.hits()
    );
    app.stop().await;
}
