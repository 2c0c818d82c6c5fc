//! Revocation on RevokeIntegration, REST revoke and DisconnectIntegration: each provider's way
//! (RFC 7009, Notion's JSON, Slack's auth.revoke and its shared bot token, nothing for
//! Microsoft), retries on 503, and local credentials destroyed whatever the provider said.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::oauth::ClientAuth;
use founderhouse_integrations::proto::{
    DisconnectIntegrationRequest, IntegrationStatus, RefreshIntegrationRequest,
    RevokeIntegrationRequest, TokenRevocation,
};
use serde_json::Value;
use tonic::Code;

use super::{
    Fake, Flavour, Options, Revoked, connect_as, connect_ok, get, oauth_client, rig, rig_with,
    status_of,
};
use crate::helpers::{TestApp, authed, http};

async fn revoke(app: &TestApp, name: &str) -> Result<Vec<TokenRevocation>, tonic::Status> {
    let response = oauth_client(app)
        .await
        .revoke_integration(authed(
            RevokeIntegrationRequest {
                name: name.to_owned(),
            },
            &app.token(Role::Admin),
        ))
        .await?
        .into_inner();
    let i = response.integration.expect("the integration is returned");
    assert_eq!(status_of(&i), IntegrationStatus::Revoked);
    assert!(i.credential_fields.is_empty(), "{i:?}");
    Ok(response.revocations)
}

async fn disconnect(app: &TestApp, name: &str, token: &str) -> Vec<TokenRevocation> {
    let response = app
        .integrations()
        .await
        .disconnect_integration(authed(
            DisconnectIntegrationRequest {
                name: name.to_owned(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("DisconnectIntegration: {s:?}"))
        .into_inner();
    let i = response.integration.expect("the integration is returned");
    assert_eq!(status_of(&i), IntegrationStatus::Revoked);
    response.revocations
}

/// The credentials are gone here: the integration says revoked with no credential fields, no
/// sealed row is left, and a refresh fails without reaching the provider.
async fn assert_destroyed(app: &TestApp, fake: &Fake, id: &str) {
    let i = get(app, id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Revoked, "{i:?}");
    assert!(i.credential_fields.is_empty(), "{i:?}");
    let pool = app.pool().await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credentials WHERE integration_id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows, 0, "sealed credentials are left behind");
    let refreshes = fake.refreshes();
    let refreshed = oauth_client(app)
        .await
        .refresh_integration(authed(
            RefreshIntegrationRequest {
                name: id.to_owned(),
            },
            &app.token(Role::Admin),
        ))
        .await;
    assert!(refreshed.is_err(), "a revoked integration refreshed");
    assert_eq!(fake.refreshes(), refreshes);
}

#[track_caller]
fn assert_all_revoked_upstream(revocations: &[TokenRevocation]) {
    assert!(!revocations.is_empty(), "nothing reported");
    for r in revocations {
        assert!(r.revoked_upstream, "not revoked upstream: {r:?}");
        assert_eq!(r.reason, "", "{r:?}");
    }
}

fn by_type<'a>(revocations: &'a [TokenRevocation], token_type: &str) -> &'a TokenRevocation {
    revocations
        .iter()
        .find(|r| r.token_type == token_type)
        .unwrap_or_else(|| panic!("no {token_type} in {revocations:?}"))
}

#[tokio::test]
async fn revoking_zoom_revokes_the_access_token_with_basic_auth_and_destroys_credentials() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.name).await.expect("revokes");

    assert_all_revoked_upstream(&revocations);
    assert!(
        fake.revocations()
            .iter()
            .any(|c| c.revoked == Revoked::Access && c.status == 200),
        "Zoom revokes with the access token: {:?}",
        fake.revocations()
    );
    assert!(fake.grant(0).revoked, "the grant is dead at Zoom");
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn disconnecting_discord_revokes_upstream_with_client_auth() {
    let (app, fake) = rig(Flavour::Discord).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = disconnect(&app, &connected.id, &app.token(Role::Owner)).await;

    assert_all_revoked_upstream(&revocations);
    assert!(fake.grant(0).revoked);
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoking_gmail_over_rest_revokes_at_google() {
    let (app, fake) = rig(Flavour::Google).await;
    let connected = connect_ok(&app, &fake).await;

    let response = http()
        .delete(app.rest_url(&format!(
            "/api/v1/oauth/gmail/revoke?integration_id={}",
            connected.id
        )))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let revocations = body["revocations"].as_array().expect("revocations");
    assert!(!revocations.is_empty(), "{body}");
    for r in revocations {
        assert_eq!(r["revoked_upstream"], true, "{body}");
    }
    assert!(fake.grant(0).revoked);
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoking_notion_sends_basic_auth_and_a_json_body() {
    let (app, fake) = rig(Flavour::Notion).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert_all_revoked_upstream(&revocations);
    assert!(fake.grant(0).revoked);
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoking_monday_sends_client_credentials_in_the_body() {
    let (app, fake) = rig(Flavour::Monday).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert_all_revoked_upstream(&revocations);
    assert!(fake.grant(0).revoked);
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoking_a_custom_provider_uses_its_revoke_url_and_client_auth() {
    for client_auth in [None, Some(ClientAuth::Post)] {
        let options = Options {
            client_auth,
            ..Options::default()
        };
        let (app, fake) = rig_with(Flavour::Custom, options, |_| {}).await;
        let connected = connect_ok(&app, &fake).await;

        let revocations = revoke(&app, &connected.id).await.expect("revokes");

        assert_all_revoked_upstream(&revocations);
        assert!(fake.grant(0).revoked, "{client_auth:?}");
        assert_destroyed(&app, &fake, &connected.id).await;
        fake.assert_clean();
        app.stop().await;
    }
}

#[tokio::test]
async fn a_custom_provider_without_a_revoke_url_says_so_and_destroys_credentials() {
    let options = Options {
        revoke_url: false,
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Custom, options, |_| {}).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert!(!revocations.is_empty());
    for r in &revocations {
        assert!(!r.revoked_upstream, "{r:?}");
        assert!(!r.reason.is_empty(), "{r:?}");
    }
    assert_eq!(fake.revoke_attempts(), 0);
    assert_destroyed(&app, &fake, &connected.id).await;
    app.stop().await;
}

#[tokio::test]
async fn microsoft_has_no_revocation_so_nothing_is_called_and_the_answer_says_so() {
    let (app, fake) = rig(Flavour::Microsoft).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert!(!revocations.is_empty());
    for r in &revocations {
        assert!(!r.revoked_upstream, "{r:?}");
        assert_eq!(r.reason, "PROVIDER_HAS_NO_REVOCATION", "{r:?}");
    }
    assert_eq!(fake.revoke_attempts(), 0);
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoking_the_only_slack_connection_of_a_team_revokes_user_and_bot_tokens() {
    let (app, fake) = rig(Flavour::Slack).await;
    let connected = connect_ok(&app, &fake).await;

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert!(
        by_type(&revocations, "user_token").revoked_upstream,
        "{revocations:?}"
    );
    assert!(
        by_type(&revocations, "bot_token").revoked_upstream,
        "{revocations:?}"
    );
    assert!(fake.grant(0).user_revoked);
    assert!(fake.slack_bot_revoked("T123"));
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_slack_bot_token_shared_with_another_workspace_is_revoked_only_with_the_last_connection()
{
    let (app, fake) = rig(Flavour::Slack).await;
    let other_workspace = uuid::Uuid::new_v4();
    let first = connect_as(&app, &fake, &app.token(Role::Admin), "").await;
    let second = connect_as(
        &app,
        &fake,
        &app.token_for(other_workspace, Role::Admin),
        "",
    )
    .await;
    let first_id = first.assert_success(Flavour::Slack);
    let second_id = second.assert_success(Flavour::Slack);
    let (a, b) = (fake.grant(0), fake.grant(1));
    assert_eq!(a.access_token, b.access_token, "one bot token for the team");
    assert_ne!(a.user_token, b.user_token);

    let revocations = revoke(&app, &first_id).await.expect("revokes the first");

    assert!(
        by_type(&revocations, "user_token").revoked_upstream,
        "{revocations:?}"
    );
    let bot = by_type(&revocations, "bot_token");
    assert!(!bot.revoked_upstream, "{bot:?}");
    assert_eq!(bot.reason, "SHARED_BOT_TOKEN");
    assert!(fake.grant(0).user_revoked);
    assert!(
        !fake.slack_bot_revoked("T123"),
        "the other workspace still uses the bot"
    );
    assert!(!fake.grant(1).user_revoked);
    assert_destroyed(&app, &fake, &first_id).await;

    let revocations = disconnect(
        &app,
        &second_id,
        &app.token_for(other_workspace, Role::Admin),
    )
    .await;

    assert!(
        by_type(&revocations, "user_token").revoked_upstream,
        "{revocations:?}"
    );
    assert!(
        by_type(&revocations, "bot_token").revoked_upstream,
        "{revocations:?}"
    );
    assert!(fake.grant(1).user_revoked);
    assert!(fake.slack_bot_revoked("T123"));
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_revocation_endpoint_answering_503_is_retried_then_reported_and_credentials_still_go() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.fail_revocation(Some(503));

    let began = Instant::now();
    let revocations = revoke(&app, &connected.id).await.expect("revokes locally");

    assert!(
        began.elapsed() < Duration::from_secs(10),
        "quick retries, took {:?}",
        began.elapsed()
    );
    assert!(!revocations.is_empty());
    for r in &revocations {
        assert!(!r.revoked_upstream, "{r:?}");
        assert_eq!(r.reason, "PROVIDER_UNAVAILABLE", "{r:?}");
    }
    assert!(
        fake.revoke_attempts() >= 2,
        "503 is retried: {} attempts",
        fake.revoke_attempts()
    );
    assert!(!fake.grant(0).revoked, "the fake really revoked nothing");
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_revocation_the_provider_could_not_take_is_retried_in_the_background_until_it_is() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.oauth.revocation_retry_base = Duration::from_millis(100);
        c.oauth.refresh_interval = Duration::from_millis(100);
    })
    .await;
    let connected = connect_ok(&app, &fake).await;
    fake.fail_revocation(Some(503));
    let revocations = revoke(&app, &connected.id).await.expect("revokes locally");
    assert!(
        revocations
            .iter()
            .all(|r| r.message.contains("retried in the background")),
        "{revocations:?}"
    );
    let pool = app.pool().await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_revocations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 1);

    fake.fail_revocation(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fake.grant(0).revoked {
        assert!(
            Instant::now() < deadline,
            "the queued revocation never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_revocations")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the done revocation stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_destroyed(&app, &fake, &connected.id).await;
    fake.assert_clean();
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_token_the_provider_no_longer_knows_counts_as_revoked() {
    let (app, fake) = rig(Flavour::Google).await;
    let connected = connect_ok(&app, &fake).await;
    fake.revoke_all_grants();

    let revocations = revoke(&app, &connected.id).await.expect("revokes");

    assert_all_revoked_upstream(&revocations);
    assert_destroyed(&app, &fake, &connected.id).await;
    app.stop().await;
}

#[tokio::test]
async fn members_and_viewers_cannot_revoke() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;

    for role in [Role::Member, Role::Viewer] {
        let status = oauth_client(&app)
            .await
            .revoke_integration(authed(
                RevokeIntegrationRequest {
                    name: connected.id.clone(),
                },
                &app.token(role),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{role:?}");
        let response = http()
            .delete(app.rest_url(&format!(
                "/api/v1/oauth/zoom/revoke?integration_id={}",
                connected.id
            )))
            .bearer_auth(app.token(role))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{role:?}");
    }

    assert_eq!(fake.revoke_attempts(), 0);
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    app.stop().await;
}

#[tokio::test]
async fn revoking_another_workspaces_integration_is_not_found() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;

    let status = oauth_client(&app)
        .await
        .revoke_integration(authed(
            RevokeIntegrationRequest {
                name: connected.id.clone(),
            },
            &app.token_for(uuid::Uuid::new_v4(), Role::Owner),
        ))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(fake.revoke_attempts(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_integration_can_be_connected_again() {
    let (app, fake) = rig(Flavour::Notion).await;
    let connected = connect_ok(&app, &fake).await;
    revoke(&app, &connected.id).await.expect("revokes");

    let again = connect_ok(&app, &fake).await;

    assert_eq!(status_of(&again), IntegrationStatus::Connected);
    assert!(!again.credential_fields.is_empty());
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn revoke_names_the_bad_field() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.token(Role::Admin);

    for name in ["", "not-an-id"] {
        let status = oauth_client(&app)
            .await
            .revoke_integration(authed(
                RevokeIntegrationRequest {
                    name: name.to_owned(),
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name:?}");
        assert_eq!(
            crate::helpers::violated_fields(&status),
            vec!["name"],
            "{name:?}"
        );
    }
    for query in ["", "?integration_id=nope"] {
        let response = http()
            .delete(app.rest_url(&format!("/api/v1/oauth/zoom/revoke{query}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query:?}");
        let body: Value = response.json().await.unwrap();
        let fields: Vec<&str> = body["error"]["field_violations"]
            .as_array()
            .map(|v| v.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(fields, vec!["integration_id"], "{query:?}: {body}");
    }
    app.stop().await;
}
