//! No OAuth secret anywhere: every log line at TRACE, every answer and error, and every
//! Location the browser is sent to over a full connect / refresh / fail / revoke cycle are
//! searched for the client secret, codes, states, PKCE verifiers, access, refresh and id tokens.
//! (nextest runs each test in its own process, so each installs its own capturing subscriber.)

use base64::Engine as _;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    GetIntegrationRequest, RefreshIntegrationRequest, RevokeIntegrationRequest,
    StartAuthorizationRequest,
};

use super::{
    Fake, Flavour, Landing, Options, at_provider, callback_raw, follow_and_complete, follow_to_app,
    oauth_client,
};
use crate::helpers::{TestApp, authed, http, spawn_app_with};
use crate::leaks::{capture_logs, logs};

/// Everything the client side saw, by where it saw it.
#[derive(Default)]
struct Seen {
    /// Answers that may contain the state they issue (StartAuthorization, REST authorize).
    starts: Vec<String>,
    /// Everything else: answers, errors, Locations.
    others: Vec<String>,
}

impl Seen {
    fn grpc<T: std::fmt::Debug>(&mut self, r: Result<tonic::Response<T>, tonic::Status>) {
        match r {
            Ok(response) => self.others.push(format!("{response:?}")),
            Err(status) => self.status(&status),
        }
    }

    fn status(&mut self, status: &tonic::Status) {
        self.others.push(format!("{status:?}"));
        self.others.push(status.message().to_owned());
        self.others
            .push(String::from_utf8_lossy(status.details()).into_owned());
        self.others.push(format!("{:?}", status.metadata()));
    }

    fn landing(&mut self, landing: &Landing) {
        self.others.push(landing.raw.clone());
    }

    async fn rest(&mut self, response: reqwest::Response) -> serde_json::Value {
        self.others.push(format!("{:?}", response.headers()));
        let body = response.text().await.expect("body");
        self.others.push(body.clone());
        serde_json::from_str(&body).unwrap_or_default()
    }
}

struct Secrets(Vec<(String, String)>);

impl Secrets {
    /// The fake's secrets, the Basic credentials, the app's JWT secret and keys, and the
    /// signatures of the callers' JWTs.
    fn collect(jwt_secret: &str, keys: &str, fake: &Fake, tokens: &[&str]) -> Self {
        let mut all = fake.secrets();
        all.push((
            "Basic client credentials".to_owned(),
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", fake.client_id, fake.client_secret)),
        ));
        all.push(("JWT secret".to_owned(), jwt_secret.to_owned()));
        for entry in keys.split(',') {
            let key = entry.split_once(':').expect("<id>:<base64>").1;
            all.push(("encryption key".to_owned(), key.to_owned()));
        }
        for t in tokens {
            let signature = t.rsplit('.').next().expect("a JWT");
            all.push(("caller JWT signature".to_owned(), signature.to_owned()));
        }
        Self(all)
    }

    fn assert_absent(&self, place: &str, text: &str, allow_states: bool) {
        for (what, value) in &self.0 {
            if allow_states && what == "state" {
                continue;
            }
            if let Some(at) = text.find(value.as_str()) {
                let from = text.floor_char_boundary(at.saturating_sub(160));
                let to = text.ceil_char_boundary((at + value.len() + 40).min(text.len()));
                panic!("the {what} appears in {place}: …{}…", &text[from..to]);
            }
        }
    }
}

async fn browser_connect(app: &TestApp, fake: &Fake, token: &str, seen: &mut Seen) -> Landing {
    let started = oauth_client(app)
        .await
        .start_authorization(authed(
            StartAuthorizationRequest {
                platform: fake.flavour.platform() as i32,
                return_to: String::new(),
            },
            token,
        ))
        .await
        .expect("starts");
    seen.starts.push(format!("{started:?}"));
    let redirect = at_provider(&started.into_inner().authorization_url).await;
    let landing = follow_and_complete(app, &redirect, token).await;
    seen.landing(&landing);
    if let Some(completed) = &landing.completed {
        match completed {
            Ok(done) => seen.others.push(format!("{done:?}")),
            Err(status) => seen.status(status),
        }
        // Redeem it again: the refusal must not echo anything either.
        let handle = landing.param("oauth_handle").expect("a handle landing");
        seen.grpc(
            oauth_client(app)
                .await
                .complete_authorization(authed(
                    founderhouse_integrations::proto::CompleteAuthorizationRequest { handle },
                    token,
                ))
                .await,
        );
    }
    // Replay it too: the refusal must not echo anything either.
    let replay = follow_to_app(app, &redirect).await;
    seen.landing(&replay);
    landing
}

async fn full_cycle_leaks_nothing(flavour: Flavour, options: Options) {
    capture_logs();
    let fake = Fake::start_with(flavour, options).await;
    let app = spawn_app_with(|c| fake.configure(c)).await;
    let admin = app.token(Role::Admin);
    let member = app.token(Role::Member);
    let mut seen = Seen::default();
    let mut oauth = oauth_client(&app).await;
    let platform = flavour.platform_name();

    let refresh = |name: &str| {
        authed(
            RefreshIntegrationRequest {
                name: name.to_owned(),
            },
            &admin,
        )
    };

    // Connect over gRPC; the provider is down at the first refresh, then the grant is dead.
    let first = browser_connect(&app, &fake, &member, &mut seen).await;
    let id = first.assert_success(flavour);
    fake.fail_token_endpoint(Some(503));
    seen.grpc(oauth.refresh_integration(refresh(&id)).await);
    fake.fail_token_endpoint(None);
    fake.refuse_refreshes(true);
    seen.grpc(oauth.refresh_integration(refresh(&id)).await);
    seen.grpc(oauth.refresh_integration(refresh(&id)).await);
    fake.refuse_refreshes(false);

    // Reconnect over REST (with a return_to), and refresh over gRPC and REST.
    let response = http()
        .post(app.rest_url(&format!("/api/v1/oauth/{platform}/authorize")))
        .bearer_auth(&member)
        .json(&serde_json::json!({"return_to": "http://localhost:3000/x"}))
        .send()
        .await
        .unwrap();
    let mut start_answer = Seen::default();
    let rest_start = start_answer.rest(response).await;
    seen.starts.extend(start_answer.others);
    let redirect = at_provider(rest_start["authorization_url"].as_str().expect("url")).await;
    let second = follow_to_app(&app, &redirect).await;
    seen.landing(&second);
    let handle = second.param("oauth_handle").expect("a handle landing");
    let response = http()
        .post(app.rest_url(&format!("/api/v1/oauth/{platform}/complete")))
        .bearer_auth(&member)
        .json(&serde_json::json!({ "handle": handle }))
        .send()
        .await
        .unwrap();
    let completed = seen.rest(response).await;
    let second_id = completed["integration"]["id"]
        .as_str()
        .expect("the REST-started connect completes over REST")
        .to_owned();
    seen.grpc(oauth.refresh_integration(refresh(&second_id)).await);
    let response = http()
        .post(app.rest_url(&format!(
            "/api/v1/oauth/{platform}/refresh?integration_id={second_id}"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    seen.rest(response).await;
    seen.grpc(
        app.integrations()
            .await
            .get_integration(authed(
                GetIntegrationRequest {
                    name: second_id.clone(),
                },
                &admin,
            ))
            .await,
    );

    // Failures at the callback (a forged state) and at completion (a rejected code, an outage).
    let forged = callback_raw(
        &app,
        &format!("/api/v1/oauth/{platform}/callback?code=forged-code-1234&state=forged-state-1234"),
    )
    .await;
    seen.landing(&forged);
    fake.reject_exchanges(true);
    browser_connect(&app, &fake, &member, &mut seen).await;
    fake.reject_exchanges(false);
    fake.fail_token_endpoint(Some(503));
    browser_connect(&app, &fake, &member, &mut seen).await;
    fake.fail_token_endpoint(None);

    // Revoke over gRPC with the revocation endpoint down; connect again and revoke over REST.
    fake.fail_revocation(Some(503));
    seen.grpc(
        oauth
            .revoke_integration(authed(
                RevokeIntegrationRequest {
                    name: second_id.clone(),
                },
                &admin,
            ))
            .await,
    );
    fake.fail_revocation(None);
    let third = browser_connect(&app, &fake, &member, &mut seen).await;
    let third_id = third.assert_success(flavour);
    let response = http()
        .delete(app.rest_url(&format!(
            "/api/v1/oauth/{platform}/revoke?integration_id={third_id}"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    seen.rest(response).await;

    let (jwt_secret, keys) = (app.jwt_secret.expose().clone(), app.keys.clone());
    app.stop().await;

    assert!(
        fake.exchanges() >= 3,
        "the cycle reached the token endpoint"
    );
    assert!(
        fake.refreshes() >= 3,
        "the cycle refreshed, met an outage and a dead grant: {} calls; {:#?}",
        fake.refreshes(),
        seen.others
    );
    assert!(fake.revoke_attempts() >= 3, "the cycle revoked");
    let secrets = Secrets::collect(&jwt_secret, &keys, &fake, &[&admin, &member]);
    if flavour == Flavour::Zoom {
        assert!(
            secrets.0.iter().any(|(what, _)| what == "PKCE verifier"),
            "the verifiers are among the secrets searched for"
        );
    }
    let logs = logs();
    assert!(logs.contains("TRACE"), "every level is captured");
    secrets.assert_absent("the logs", &logs, false);
    for (n, answer) in seen.starts.iter().enumerate() {
        secrets.assert_absent(&format!("start answer #{n}"), answer, true);
    }
    for (n, answer) in seen.others.iter().enumerate() {
        secrets.assert_absent(&format!("answer or Location #{n}"), answer, false);
    }
}

#[tokio::test]
async fn a_full_zoom_cycle_leaks_no_secret_into_logs_answers_or_locations() {
    full_cycle_leaks_nothing(Flavour::Zoom, Options::default()).await;
}

#[tokio::test]
async fn a_full_slack_cycle_with_rotation_leaks_no_secret_into_logs_answers_or_locations() {
    let options = Options {
        slack_rotation: true,
        ..Options::default()
    };
    full_cycle_leaks_nothing(Flavour::Slack, options).await;
}

#[tokio::test]
async fn a_full_notion_cycle_leaks_no_secret_into_logs_answers_or_locations() {
    full_cycle_leaks_nothing(Flavour::Notion, Options::default()).await;
}
