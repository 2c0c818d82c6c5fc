//! No secret anywhere: every log event at TRACE level, and every answer of a full cycle over gRPC
//! and REST, are searched for the credentials, tokens and keys the cycle used.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::proto::{
    ConnectIntegrationRequest, DisconnectIntegrationRequest, GetIntegrationRequest, Integration,
    ListIntegrationsRequest, Platform, UpdateIntegrationRequest,
};
use serde_json::{Value, json};
use tonic_types::StatusExt;
use tracing::Level;
use tracing_subscriber::util::SubscriberInitExt;
use uuid::Uuid;

use crate::helpers::{TestApp, authed, spawn_app};

/// Everything logged in this process, at every level, from every crate.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per process (nextest runs each test in its own).
pub(crate) fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        // `try_init` is `tracing::subscriber::set_global_default` plus the bridge that turns
        // `log` records (rustls, for one) into events, so those are captured too.
        subscriber.try_init().expect("the only subscriber");
        buffer
    })
    .clone()
}

pub(crate) fn logs() -> String {
    let buffer = capture_logs();
    let bytes = buffer.lock().expect("log buffer");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Named secrets that must appear nowhere.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        self.0.push((what.to_owned(), value.to_owned()));
    }

    /// A JWT, and its signature on its own.
    fn add_jwt(&mut self, what: &str, jwt: &str) {
        self.add(what, jwt);
        let signature = jwt.rsplit('.').next().expect("a JWT has a signature");
        self.add(&format!("{what} signature"), signature);
    }

    /// The app's JWT secret and the key material of its encryption keys.
    fn of_app(app: &TestApp) -> Self {
        let mut s = Self::default();
        s.add("JWT secret", app.jwt_secret.expose());
        for entry in app.keys.split(',') {
            let key = entry.split_once(':').expect("<id>:<base64>").1;
            s.add("encryption key", key);
        }
        s
    }

    fn assert_absent(&self, place: &str, text: &str) {
        for (what, value) in &self.0 {
            if let Some(at) = text.find(value.as_str()) {
                let from = text.floor_char_boundary(at.saturating_sub(120));
                let to = text.ceil_char_boundary((at + value.len() + 40).min(text.len()));
                panic!("the {what} appears in {place}: …{}…", &text[from..to]);
            }
        }
    }
}

/// Everything the client received.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn grpc<T: std::fmt::Debug>(
        &mut self,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, tonic::Status> {
        match result {
            Ok(response) => {
                self.0.push(format!("{response:?}"));
                Ok(response.into_inner())
            }
            Err(status) => {
                self.0.push(format!("{status:?}"));
                self.0.push(status.message().to_owned());
                self.0
                    .push(String::from_utf8_lossy(status.details()).into_owned());
                self.0.push(format!("{:?}", status.get_error_details()));
                self.0.push(format!("{:?}", status.metadata()));
                Err(status)
            }
        }
    }

    async fn rest(&mut self, response: reqwest::Response) -> (reqwest::StatusCode, Value) {
        let status = response.status();
        self.0.push(format!("{:?}", response.headers()));
        let body = response.text().await.expect("body");
        self.0.push(body.clone());
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status, json)
    }
}

fn request(
    platform: Platform,
    credentials: &[(&str, &str)],
    account: &str,
) -> ConnectIntegrationRequest {
    ConnectIntegrationRequest {
        platform: platform as i32,
        credentials: credentials
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        display_name: String::new(),
        metadata: None,
        provider_account_id: account.to_owned(),
    }
}

fn distinctive(label: &str) -> String {
    format!("{label}-{}", Uuid::new_v4().simple())
}

fn twilio_sid() -> String {
    format!("AC{}", Uuid::new_v4().simple())
}

/// A token for the app's workspace signed with a secret the app does not know.
fn forged_token(app: &TestApp) -> (String, String) {
    let secret = distinctive("forged-secret");
    let token = mint_token(
        &Secret::new(secret.clone()),
        Uuid::new_v4(),
        app.workspace,
        Role::Owner,
        Duration::from_secs(600),
    )
    .expect("token mints");
    (token, secret)
}

fn assert_nothing_leaked(secrets: &Secrets, seen: &Seen) {
    let logs = logs();
    assert!(logs.contains("integration connected"), "the capture works");
    assert!(
        logs.contains("integration disconnected"),
        "the capture works"
    );
    assert!(logs.contains("TRACE"), "every level is captured");
    secrets.assert_absent("the logs", &logs);
    for (n, answer) in seen.0.iter().enumerate() {
        secrets.assert_absent(&format!("answer #{n}"), answer);
    }
}

#[tokio::test]
async fn a_full_grpc_cycle_leaks_no_secret_into_logs_or_answers() {
    capture_logs();
    let app = spawn_app().await;
    let mut secrets = Secrets::of_app(&app);
    let mut seen = Seen::default();
    let mut client = app.integrations().await;
    let token = app.token(Role::Admin);
    secrets.add_jwt("admin token", &token);

    let ff_key = distinctive("ff-grpc-key");
    let zv_token = distinctive("zv-grpc-token");
    let zdb_key = distinctive("zdb-grpc-key");
    let bad_sid_token = distinctive("zv-grpc-rejected-token");
    secrets.add("fireflies api key", &ff_key);
    secrets.add("zerovoice auth token", &zv_token);
    secrets.add("zerodb api key", &zdb_key);
    secrets.add("rejected auth token", &bad_sid_token);

    let fireflies = request(Platform::Fireflies, &[("api_key", &ff_key)], "grpc-ff");
    let connects = [
        fireflies.clone(),
        request(
            Platform::Zerovoice,
            &[("account_sid", &twilio_sid()), ("auth_token", &zv_token)],
            "",
        ),
        request(
            Platform::Zerodb,
            &[
                ("api_key", &zdb_key),
                ("base_url", "https://grpc.zerodb.example.com"),
            ],
            "",
        ),
    ];
    let mut connected: Vec<Integration> = Vec::new();
    for req in connects {
        let response = seen
            .grpc(client.connect_integration(authed(req, &token)).await)
            .expect("connects");
        connected.push(response.integration.expect("integration returned"));
    }

    let listed = seen
        .grpc(
            client
                .list_integrations(authed(ListIntegrationsRequest::default(), &token))
                .await,
        )
        .expect("lists");
    assert_eq!(listed.integrations.len(), 3);
    for i in &connected {
        seen.grpc(
            client
                .get_integration(authed(
                    GetIntegrationRequest {
                        name: i.name.clone(),
                    },
                    &token,
                ))
                .await,
        )
        .expect("gets");
    }
    let update = UpdateIntegrationRequest {
        integration: Some(Integration {
            name: connected[0].name.clone(),
            display_name: "Renamed over gRPC".to_owned(),
            metadata: Some(prost_types::Struct {
                fields: [(
                    "team".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue("growth".to_owned())),
                    },
                )]
                .into(),
            }),
            ..Integration::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".to_owned(), "metadata".to_owned()],
        }),
    };
    let updated = seen
        .grpc(client.update_integration(authed(update, &token)).await)
        .expect("updates")
        .integration
        .expect("integration returned");
    assert_eq!(updated.display_name, "Renamed over gRPC");

    let bad_sid = request(
        Platform::Zerovoice,
        &[("account_sid", "AC123"), ("auth_token", &bad_sid_token)],
        "",
    );
    let status = seen
        .grpc(client.connect_integration(authed(bad_sid, &token)).await)
        .expect_err("a bad SID is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = seen
        .grpc(client.connect_integration(authed(fireflies, &token)).await)
        .expect_err("a duplicate is refused");
    assert_eq!(status.code(), tonic::Code::AlreadyExists);

    let (forged, forged_secret) = forged_token(&app);
    secrets.add_jwt("forged token", &forged);
    secrets.add("forged token's secret", &forged_secret);
    let status = seen
        .grpc(
            client
                .list_integrations(authed(ListIntegrationsRequest::default(), &forged))
                .await,
        )
        .expect_err("a forged token is refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    for i in &connected {
        seen.grpc(
            client
                .disconnect_integration(authed(
                    DisconnectIntegrationRequest {
                        name: i.name.clone(),
                    },
                    &token,
                ))
                .await,
        )
        .expect("disconnects");
    }

    app.stop().await;
    assert_nothing_leaked(&secrets, &seen);
}

#[tokio::test]
async fn a_full_rest_cycle_leaks_no_secret_into_logs_or_answers() {
    capture_logs();
    let app = spawn_app().await;
    let mut secrets = Secrets::of_app(&app);
    let mut seen = Seen::default();
    let http = crate::helpers::http();
    let token = app.token(Role::Admin);
    secrets.add_jwt("admin token", &token);

    let ff_key = distinctive("ff-rest-key");
    let zv_token = distinctive("zv-rest-token");
    let zdb_key = distinctive("zdb-rest-key");
    let bad_sid_token = distinctive("zv-rest-rejected-token");
    secrets.add("fireflies api key", &ff_key);
    secrets.add("zerovoice auth token", &zv_token);
    secrets.add("zerodb api key", &zdb_key);
    secrets.add("rejected auth token", &bad_sid_token);

    let connect_url = app.rest_url("/api/v1/integrations/connect");
    let fireflies = json!({
        "platform": "fireflies",
        "credentials": {"api_key": ff_key},
        "provider_account_id": "rest-ff",
    });
    let bodies = [
        fireflies.clone(),
        json!({
            "platform": "zerovoice",
            "credentials": {"account_sid": twilio_sid(), "auth_token": zv_token},
        }),
        json!({
            "platform": "zerodb",
            "credentials": {"api_key": zdb_key, "base_url": "https://rest.zerodb.example.com"},
        }),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        let (status, created) = seen
            .rest(
                http.post(&connect_url)
                    .bearer_auth(&token)
                    .json(body)
                    .send()
                    .await
                    .expect("connect responds"),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }

    let (status, listed) = seen
        .rest(
            http.get(app.rest_url("/api/v1/integrations"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("list responds"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(listed["integrations"].as_array().map(Vec::len), Some(3));
    for id in &ids {
        let (status, _) = seen
            .rest(
                http.get(app.rest_url(&format!("/api/v1/integrations/{id}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("get responds"),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK);
    }
    let (status, updated) = seen
        .rest(
            http.patch(app.rest_url(&format!("/api/v1/integrations/{}", ids[0])))
                .bearer_auth(&token)
                .json(&json!({"display_name": "Renamed over REST", "metadata": {"team": "growth"}}))
                .send()
                .await
                .expect("update responds"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(updated["display_name"], "Renamed over REST");

    let (status, _) = seen
        .rest(
            http.post(&connect_url)
                .bearer_auth(&token)
                .json(&json!({
                    "platform": "zerovoice",
                    "credentials": {"account_sid": "AC123", "auth_token": bad_sid_token},
                }))
                .send()
                .await
                .expect("connect responds"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    let (status, _) = seen
        .rest(
            http.post(&connect_url)
                .bearer_auth(&token)
                .json(&fireflies)
                .send()
                .await
                .expect("connect responds"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);

    let (forged, forged_secret) = forged_token(&app);
    secrets.add_jwt("forged token", &forged);
    secrets.add("forged token's secret", &forged_secret);
    let (status, _) = seen
        .rest(
            http.get(app.rest_url("/api/v1/integrations"))
                .bearer_auth(&forged)
                .send()
                .await
                .expect("list responds"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    for id in &ids {
        let (status, _) = seen
            .rest(
                http.delete(app.rest_url(&format!("/api/v1/integrations/{id}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("disconnect responds"),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK);
    }

    app.stop().await;
    assert_nothing_leaked(&secrets, &seen);
}
