//! A browser connect for every provider: StartAuthorization (gRPC or REST), consent at the
//! provider, the callback, and what GetIntegration shows afterwards. Also the authorization
//! URL's shape, the state's storage, ListProviders and the not-configured answer.

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::oauth::{ClientAuth, ProviderSettings};
use founderhouse_integrations::proto::{
    Integration, IntegrationStatus, ListProvidersRequest, Platform, StartAuthorizationRequest,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

use super::{
    FRONTEND_LANDING, Fake, Flavour, Options, PUBLIC_URL, at_provider, connect, connect_as,
    connect_ok, follow_and_complete, get, names, oauth_client, query, rig, rig_with, scope_set,
    secs_from_now, set, start, status_of,
};
use crate::helpers::{authed, http, reason, spawn_app, spawn_app_with, violated_fields};

/// What a connected integration must show.
struct Expected<'a> {
    fields: &'a [&'a str],
    account: String,
    /// `expires_in` the provider gave; None means the credential must have no expiry.
    expires_in: Option<i64>,
}

#[track_caller]
fn assert_connected(i: &Integration, fake: &Fake, app_workspace: uuid::Uuid, want: Expected<'_>) {
    assert_eq!(i.platform, fake.flavour.platform() as i32, "platform");
    assert_eq!(status_of(i), IntegrationStatus::Connected, "status: {i:?}");
    assert_eq!(i.status_reason, "", "status_reason");
    assert_eq!(
        i.name,
        format!("workspaces/{app_workspace}/integrations/{}", i.id),
        "the integration belongs to the workspace that started the flow"
    );
    assert_eq!(
        set(&i.credential_fields),
        names(want.fields),
        "credential_fields of {:?}",
        fake.flavour
    );
    assert_eq!(i.provider_account_id, want.account, "provider_account_id");
    match want.expires_in {
        Some(expires_in) => {
            let at = i
                .credential_expire_time
                .as_ref()
                .unwrap_or_else(|| panic!("{:?} gave expires_in; no expiry stored", fake.flavour));
            let left = secs_from_now(at);
            assert!(
                (expires_in - 120..=expires_in + 5).contains(&left),
                "credential expires in {left}s, the provider said {expires_in}s"
            );
        }
        None => assert_eq!(
            i.credential_expire_time, None,
            "{:?} gave no expires_in: no expiry may be invented",
            fake.flavour
        ),
    }
}

/// The scopes stored are the scopes the provider granted.
#[track_caller]
fn assert_granted_scopes(i: &Integration, fake: &Fake) {
    let granted = scope_set(&fake.last_granted_scope().expect("the fake granted scopes"));
    assert!(!granted.is_empty());
    assert_eq!(set(&i.scopes), granted, "scopes of {:?}", fake.flavour);
}

/// The authorization request the provider saw.
fn authorization(fake: &Fake) -> std::collections::BTreeMap<String, String> {
    let all = fake.authorizations();
    assert_eq!(all.len(), 1, "one authorization request");
    all.into_iter().next().expect("one")
}

#[track_caller]
fn assert_pkce(q: &std::collections::BTreeMap<String, String>, expected: bool) {
    if expected {
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
        assert_eq!(q.get("code_challenge").map(String::len), Some(43));
    } else {
        assert_eq!(q.get("code_challenge"), None, "no PKCE for this provider");
        assert_eq!(q.get("code_challenge_method"), None);
    }
}

#[track_caller]
fn assert_common_authorization(q: &std::collections::BTreeMap<String, String>, fake: &Fake) {
    if fake.flavour != Flavour::Monday {
        assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    }
    assert_eq!(q.get("client_id"), Some(&fake.client_id));
    assert_eq!(q.get("redirect_uri"), Some(&fake.redirect_uri()));
    assert_eq!(q.get("state").map(String::len), Some(43));
}

#[tokio::test]
async fn zoom_connects_through_the_browser_with_pkce_and_basic_client_auth() {
    let (app, fake) = rig(Flavour::Zoom).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert!(!q["scope"].contains(','), "space separated: {}", q["scope"]);
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(), // from the identity call
            expires_in: Some(3600),
        },
    );
    assert_granted_scopes(&i, &fake);
    assert_eq!(fake.exchanges(), 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn slack_connects_with_bot_and_user_tokens_that_never_expire() {
    let (app, fake) = rig(Flavour::Slack).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, false);
    assert!(
        !q["scope"].contains(' '),
        "Slack bot scopes are comma separated"
    );
    assert!(
        q.get("user_scope")
            .is_some_and(|s| s.split(',').any(|s| s == "search:read")),
        "user_scope asks for search:read: {q:?}"
    );
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "user_token"],
            account: "T123".to_owned(),
            expires_in: None,
        },
    );
    let bot_scopes = scope_set(&fake.last_granted_scope().expect("granted"));
    assert!(
        bot_scopes.is_subset(&set(&i.scopes)),
        "the granted bot scopes {bot_scopes:?} are stored: {:?}",
        i.scopes
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn slack_with_token_rotation_connects_with_expiring_tokens_and_both_refresh_tokens() {
    let options = Options {
        slack_rotation: true,
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Slack, options, |_| {}).await;

    let i = connect_ok(&app, &fake).await;

    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &[
                "access_token",
                "user_token",
                "refresh_token",
                "user_refresh_token",
            ],
            account: "T123".to_owned(),
            expires_in: Some(43_200),
        },
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn discord_connects_with_a_seven_day_token_and_a_refresh_token() {
    let (app, fake) = rig(Flavour::Discord).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(), // from the identity call
            expires_in: Some(604_800),
        },
    );
    assert_granted_scopes(&i, &fake);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn outlook_connects_through_microsoft_with_offline_access_and_names_the_tenant_and_object() {
    let (app, fake) = rig(Flavour::Microsoft).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert!(
        q["scope"].split(' ').any(|s| s == "offline_access"),
        "offline_access is requested: {}",
        q["scope"]
    );
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(),
            expires_in: Some(3600),
        },
    );
    assert!(fake.account().contains(':'), "tid:oid");
    assert_granted_scopes(&i, &fake);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn monday_connects_with_a_legacy_token_that_never_expires_and_cannot_refresh() {
    let (app, fake) = rig(Flavour::Monday).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, false);
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token"],
            account: fake.account(), // from the identity call
            expires_in: None,
        },
    );
    assert_granted_scopes(&i, &fake);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn notion_connects_with_basic_auth_a_json_body_and_owner_user() {
    let (app, fake) = rig(Flavour::Notion).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, false);
    assert_eq!(q.get("owner").map(String::as_str), Some("user"));
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(),
            expires_in: None,
        },
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn gmail_connects_through_google_with_offline_access_and_names_the_subject() {
    let (app, fake) = rig(Flavour::Google).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert_eq!(q.get("access_type").map(String::as_str), Some("offline"));
    assert_eq!(q.get("prompt").map(String::as_str), Some("consent"));
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(),
            expires_in: Some(3599),
        },
    );
    assert_granted_scopes(&i, &fake);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn loom_connects_through_its_configured_endpoints_with_pkce() {
    let (app, fake) = rig(Flavour::Loom).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: fake.account(), // from the identity call
            expires_in: Some(3600),
        },
    );
    assert_granted_scopes(&i, &fake);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_custom_provider_connects_with_pkce_basic_auth_and_its_configured_scopes() {
    let (app, fake) = rig(Flavour::Custom).await;

    let i = connect_ok(&app, &fake).await;

    let q = authorization(&fake);
    assert_common_authorization(&q, &fake);
    assert_pkce(&q, true);
    assert_eq!(q.get("scope").map(String::as_str), Some("read write"));
    assert_connected(
        &i,
        &fake,
        app.workspace,
        Expected {
            fields: &["access_token", "refresh_token"],
            account: String::new(),
            expires_in: Some(3600),
        },
    );
    assert_eq!(set(&i.scopes), names(&["read", "write"]));
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_custom_provider_without_pkce_and_with_body_client_auth_connects() {
    let options = Options {
        pkce: false,
        client_auth: Some(ClientAuth::Post),
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Custom, options, |_| {}).await;

    let i = connect_ok(&app, &fake).await;

    assert_pkce(&authorization(&fake), false);
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_connect_started_over_rest_finishes_like_one_started_over_grpc() {
    let (app, fake) = rig(Flavour::Microsoft).await;
    let token = app.token(Role::Member);

    let response = http()
        .post(app.rest_url("/api/v1/oauth/outlook/authorize"))
        .bearer_auth(&token)
        .json(&json!({"return_to": "http://localhost:3000/settings"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["platform"], "outlook");
    let url = body["authorization_url"]
        .as_str()
        .expect("authorization_url");
    let state = body["state"].as_str().expect("state");
    assert_eq!(state.len(), 43);
    assert_eq!(
        query(&reqwest::Url::parse(url).unwrap())
            .get("state")
            .map(String::as_str),
        Some(state)
    );
    assert!(body["state_expire_time"].is_string(), "{body}");

    let landing = follow_and_complete(&app, &at_provider(url).await, &token).await;

    assert_eq!(landing.base(), "http://localhost:3000/settings");
    let id = landing.assert_success(Flavour::Microsoft);
    let i = get(&app, &id, &token).await;
    assert_eq!(i.platform, Platform::Outlook as i32);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn rest_authorize_needs_no_body() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let token = app.token(Role::Member);

    let response = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["platform"], "zoom");
    let landing = follow_and_complete(
        &app,
        &at_provider(body["authorization_url"].as_str().unwrap()).await,
        &token,
    )
    .await;
    assert_eq!(landing.base(), FRONTEND_LANDING);
    landing.assert_success(Flavour::Zoom);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn the_authorization_states_expiry_is_the_configured_state_ttl() {
    let (app, _fake) = rig(Flavour::Zoom).await;

    let started = start(&app, Flavour::Zoom, "", &app.token(Role::Member))
        .await
        .unwrap();

    let left = secs_from_now(started.state_expire_time.as_ref().expect("an expiry"));
    assert!((590..=601).contains(&left), "state expires in {left}s");
    assert_eq!(started.platform, Platform::Zoom as i32);
    assert_eq!(started.state.len(), 43);
    let url = reqwest::Url::parse(&started.authorization_url).unwrap();
    assert_eq!(query(&url).get("state"), Some(&started.state));
    app.stop().await;
}

#[tokio::test]
async fn every_authorization_gets_a_fresh_state_and_pkce_challenge() {
    let (app, _fake) = rig(Flavour::Google).await;
    let token = app.token(Role::Member);

    let a = start(&app, Flavour::Google, "", &token).await.unwrap();
    let b = start(&app, Flavour::Google, "", &token).await.unwrap();

    assert_ne!(a.state, b.state);
    let qa = query(&reqwest::Url::parse(&a.authorization_url).unwrap());
    let qb = query(&reqwest::Url::parse(&b.authorization_url).unwrap());
    assert_ne!(qa["code_challenge"], qb["code_challenge"]);
    app.stop().await;
}

#[tokio::test]
async fn the_redirect_uri_comes_from_the_configured_public_url_never_the_host_header() {
    let fake = Fake::start(Flavour::Zoom).await;
    let app = spawn_app_with(|c| {
        fake.configure(c);
        c.public_url = "https://api.founderhouse.test/".parse().unwrap();
    })
    .await;

    let response = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .bearer_auth(app.token(Role::Member))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "host=evil.example;proto=https")
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let url = reqwest::Url::parse(body["authorization_url"].as_str().unwrap()).unwrap();
    assert_eq!(
        query(&url).get("redirect_uri").map(String::as_str),
        Some("https://api.founderhouse.test/api/v1/oauth/zoom/callback")
    );
    assert!(
        url.as_str()
            .starts_with(&format!("{}/authorize?", fake.url))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_state_is_stored_only_as_its_sha256() {
    let (app, _fake) = rig(Flavour::Zoom).await;

    let started = start(&app, Flavour::Zoom, "", &app.token(Role::Member))
        .await
        .unwrap();

    let pool = app.pool().await;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT state_hash FROM oauth_states")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        hashes,
        vec![Sha256::digest(started.state.as_bytes()).to_vec()]
    );
    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(s)::text FROM oauth_states s")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        !rows[0].contains(&started.state),
        "the raw state is stored: {}",
        rows[0]
    );
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_connection_lands_in_the_workspace_that_started_it_and_no_other() {
    let (app, fake) = rig(Flavour::Discord).await;

    let i = connect_ok(&app, &fake).await;

    let other = app.token_for(uuid::Uuid::new_v4(), Role::Owner);
    let status = app
        .integrations()
        .await
        .get_integration(authed(
            founderhouse_integrations::proto::GetIntegrationRequest { name: i.id.clone() },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn reconnecting_the_same_provider_account_updates_the_same_integration() {
    let (app, fake) = rig(Flavour::Google).await;

    let first = connect_ok(&app, &fake).await;
    let second = connect_ok(&app, &fake).await;
    fake.sign_in_as("another-google-subject");
    let third = connect_ok(&app, &fake).await;

    assert_eq!(second.id, first.id, "same account, same integration");
    assert_eq!(status_of(&second), IntegrationStatus::Connected);
    assert_ne!(third.id, first.id, "another account is another integration");
    assert_eq!(third.provider_account_id, "another-google-subject");
    let listed = app
        .integrations()
        .await
        .list_integrations(authed(
            founderhouse_integrations::proto::ListIntegrationsRequest::default(),
            &app.token(Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .integrations;
    assert_eq!(listed.len(), 2);
    assert_eq!(fake.exchanges(), 3);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn google_without_a_refresh_token_connects_with_a_scope_missing_warning() {
    let (app, fake) = rig(Flavour::Google).await;
    fake.omit_refresh_token();

    let landing = connect(&app, &fake).await;

    let id = landing.assert_success(Flavour::Google);
    assert_eq!(landing.warning(), "scope_missing");
    let i = get(&app, &id, &app.token(Role::Viewer)).await;
    assert_eq!(set(&i.credential_fields), names(&["access_token"]));
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn microsoft_without_a_refresh_token_connects_with_a_scope_missing_warning() {
    let (app, fake) = rig(Flavour::Microsoft).await;
    fake.omit_refresh_token();

    let landing = connect(&app, &fake).await;

    let id = landing.assert_success(Flavour::Microsoft);
    assert_eq!(landing.warning(), "scope_missing");
    let i = get(&app, &id, &app.token(Role::Viewer)).await;
    assert_eq!(set(&i.credential_fields), names(&["access_token"]));
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_successful_connect_carries_no_warning() {
    let (app, fake) = rig(Flavour::Google).await;

    let landing = connect(&app, &fake).await;

    landing.assert_success(Flavour::Google);
    assert_eq!(landing.warning(), "", "{}", landing.raw);
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_cannot_start_an_authorization() {
    let (app, fake) = rig(Flavour::Zoom).await;

    let status = start(&app, Flavour::Zoom, "", &app.token(Role::Viewer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let response = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .bearer_auth(app.token(Role::Viewer))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(fake.authorizations().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn starting_an_authorization_needs_a_token() {
    let (app, _fake) = rig(Flavour::Zoom).await;

    let status = oauth_client(&app)
        .await
        .start_authorization(StartAuthorizationRequest {
            platform: Platform::Zoom as i32,
            return_to: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let response = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn an_unconfigured_provider_is_failed_precondition_provider_not_configured() {
    let app = spawn_app_with(|c| {
        // A client id without a secret is not configured either.
        c.providers.insert(
            "google".into(),
            ProviderSettings {
                client_id: Some("only-an-id".into()),
                ..ProviderSettings::default()
            },
        );
    })
    .await;
    let token = app.token(Role::Admin);

    for flavour in [Flavour::Zoom, Flavour::Google, Flavour::Custom] {
        let status = start(&app, flavour, "", &token).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{flavour:?}");
        assert_eq!(reason(&status), "PROVIDER_NOT_CONFIGURED", "{flavour:?}");
    }
    let response = http()
        .post(app.rest_url("/api/v1/oauth/gmail/authorize"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "PROVIDER_NOT_CONFIGURED");
    app.stop().await;
}

#[tokio::test]
async fn authorizing_a_platform_without_oauth_is_invalid_argument_naming_platform() {
    let app = spawn_app().await;
    let token = app.token(Role::Admin);

    for platform in [Platform::Fireflies, Platform::Unspecified] {
        let status = oauth_client(&app)
            .await
            .start_authorization(authed(
                StartAuthorizationRequest {
                    platform: platform as i32,
                    return_to: String::new(),
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{platform:?}");
        assert_eq!(violated_fields(&status), vec!["platform"], "{platform:?}");
    }
    for path in ["fireflies", "myspace"] {
        let response = http()
            .post(app.rest_url(&format!("/api/v1/oauth/{path}/authorize")))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn list_providers_shows_all_nine_and_which_are_configured() {
    let zoom = Fake::start(Flavour::Zoom).await;
    let google = Fake::start(Flavour::Google).await;
    let app = spawn_app_with(|c| {
        zoom.configure(c);
        google.configure(c);
        c.providers.insert(
            "custom".into(),
            ProviderSettings {
                client_id: Some("custom-id".into()),
                client_secret: Some(Secret::new("custom-secret".into())),
                authorize_url: Some("https://idp.example/authorize".into()),
                token_url: Some("https://idp.example/token".into()),
                scopes: Some(vec!["read".into()]),
                pkce: Some(false),
                ..ProviderSettings::default()
            },
        );
    })
    .await;

    let providers = oauth_client(&app)
        .await
        .list_providers(authed(ListProvidersRequest {}, &app.token(Role::Viewer)))
        .await
        .unwrap()
        .into_inner()
        .providers;

    let ids: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "zoom",
            "slack",
            "discord",
            "microsoft",
            "monday",
            "notion",
            "google",
            "loom",
            "custom"
        ]
        .into_iter()
        .collect(),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 9);
    let by_id = |id: &str| providers.iter().find(|p| p.id == id).expect("listed");
    for p in &providers {
        let configured = matches!(p.id.as_str(), "zoom" | "google" | "custom");
        assert_eq!(p.configured, configured, "{}", p.id);
    }
    for (id, pkce) in [
        ("zoom", true),
        ("slack", false),
        ("discord", true),
        ("microsoft", true),
        ("monday", false),
        ("notion", false),
        ("google", true),
        ("loom", true),
        ("custom", false),
    ] {
        assert_eq!(by_id(id).pkce, pkce, "pkce of {id}");
    }
    assert_eq!(by_id("microsoft").platforms, vec![Platform::Outlook as i32]);
    assert_eq!(by_id("google").platforms, vec![Platform::Gmail as i32]);
    assert_eq!(by_id("zoom").platforms, vec![Platform::Zoom as i32]);
    assert!(!by_id("microsoft").supports_revocation);
    assert!(!by_id("monday").supports_refresh);
    assert!(by_id("zoom").supports_refresh && by_id("zoom").supports_revocation);
    assert!(!by_id("zoom").scopes.is_empty());
    assert_eq!(by_id("custom").scopes, vec!["read".to_owned()]);
    app.stop().await;
}

#[tokio::test]
async fn a_member_connects_and_return_to_is_honoured_on_success() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let return_to = "http://localhost:3000/settings/integrations?tab=oauth";

    let landing = connect_as(&app, &fake, &app.token(Role::Member), return_to).await;

    assert_eq!(
        landing.base(),
        "http://localhost:3000/settings/integrations"
    );
    landing.assert_success(Flavour::Zoom);
    assert_eq!(
        landing.param("tab").as_deref(),
        Some("oauth"),
        "{}",
        landing.raw
    );
    app.stop().await;
}

#[tokio::test]
async fn return_to_may_be_under_any_allowed_cors_origin() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.cors_origins
            .push("https://app.founderhouse.test".to_owned());
    })
    .await;

    let landing = connect_as(
        &app,
        &fake,
        &app.token(Role::Admin),
        "https://app.founderhouse.test/done",
    )
    .await;

    assert_eq!(landing.base(), "https://app.founderhouse.test/done");
    landing.assert_success(Flavour::Zoom);
    app.stop().await;
}

#[tokio::test]
async fn return_to_outside_the_allowed_origins_is_invalid_argument_naming_return_to() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let token = app.token(Role::Admin);

    for bad in [
        "https://evil.example/steal",
        "//evil.example/steal",
        "http://localhost:3000.evil.example/",
        "http://localhost:3001/integrations",
        "https://localhost:3000/integrations",
        "javascript:alert(1)",
        "not a url",
    ] {
        let status = start(&app, Flavour::Zoom, bad, &token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violated_fields(&status), vec!["return_to"], "{bad}");
    }
    let response = http()
        .post(app.rest_url("/api/v1/oauth/zoom/authorize"))
        .bearer_auth(&token)
        .json(&json!({"return_to": "https://evil.example/steal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["field_violations"]
        .as_array()
        .map(|v| v.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["return_to"], "{body}");
    assert!(fake.authorizations().is_empty());
    let pool = app.pool().await;
    let states: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_states")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(states, 0, "a refused start stores no state");
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_redirect_uri_names_the_path_platform_for_aliased_providers() {
    let outlook = Fake::start(Flavour::Microsoft).await;
    let gmail = Fake::start(Flavour::Google).await;
    let app = spawn_app_with(|c| {
        outlook.configure(c);
        gmail.configure(c);
    })
    .await;
    let token = app.token(Role::Member);

    for fake in [&outlook, &gmail] {
        let started = start(&app, fake.flavour, "", &token).await.unwrap();
        let q = query(&reqwest::Url::parse(&started.authorization_url).unwrap());
        assert_eq!(q["redirect_uri"], fake.redirect_uri());
        assert!(q["redirect_uri"].starts_with(PUBLIC_URL));
    }
    app.stop().await;
}
