//! Refresh: on demand over gRPC and REST, in the background ahead of expiry, and never losing a
//! rotated refresh token: one provider call for any number of concurrent refreshes on any
//! number of replicas, callers that give up mid-refresh, and a lock holder that dies.
//! The fake detects reuse of a rotated refresh token, so any race fails these tests.

use std::time::{Duration, Instant};

use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient;
use founderhouse_integrations::proto::{Integration, IntegrationStatus, RefreshIntegrationRequest};
use serde_json::Value;
use sqlx::Connection;
use tonic::Code;
use tonic::transport::Channel;

use super::{
    Fake, Flavour, NO_HANG, Options, connect_as, connect_ok, fast_refresh_loop, get, names,
    oauth_client, rig, rig_with, secs_from_now, set, spawn_replica, status_of,
};
use crate::helpers::{TestApp, authed, http, reason, spawn_app_with};

fn refresh_request(name: &str, token: &str) -> tonic::Request<RefreshIntegrationRequest> {
    authed(
        RefreshIntegrationRequest {
            name: name.to_owned(),
        },
        token,
    )
}

async fn refresh_with(
    client: &mut OAuthServiceClient<Channel>,
    name: &str,
    token: &str,
) -> Result<Integration, tonic::Status> {
    client
        .refresh_integration(refresh_request(name, token))
        .await
        .map(|r| r.into_inner().integration.expect("an integration"))
}

async fn refresh(app: &TestApp, name: &str) -> Result<Integration, tonic::Status> {
    refresh_with(&mut oauth_client(app).await, name, &app.token(Role::Admin)).await
}

/// Seconds until the integration's access token expires.
fn expires_in(i: &Integration) -> i64 {
    secs_from_now(
        i.credential_expire_time
            .as_ref()
            .unwrap_or_else(|| panic!("no credential expiry: {i:?}")),
    )
}

/// Waits until GetIntegration shows an access token valid for more than `secs`.
async fn wait_for_expiry_beyond(app: &TestApp, id: &str, secs: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let i = get(app, id, &app.token(Role::Viewer)).await;
        if i.credential_expire_time.is_some() && expires_in(&i) > secs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the refreshed token was never stored: {i:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times the `token_refresh` job of this test process has run (replicas of one test
/// share the count), read from `/metrics`.
async fn refresh_runs(app: &TestApp) -> u64 {
    let text = http()
        .get(app.rest_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("fh_job_runs_total{") && l.contains("job=\"token_refresh\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until the background refresh has run `n` more times: whatever it would do, it has
/// had the chance to.
async fn wait_for_refresh_runs(app: &TestApp, n: u64) {
    let target = refresh_runs(app).await + n;
    let deadline = Instant::now() + NO_HANG;
    while refresh_runs(app).await < target {
        assert!(Instant::now() < deadline, "the refresh job stopped running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a session of the app's database is blocked on a lock.
async fn wait_for_a_lock_waiter(app: &TestApp) {
    let pool = app.pool().await;
    let deadline = Instant::now() + NO_HANG;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nobody waited for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
}

/// The stored credential version of an integration: it moves with every stored refresh.
async fn credential_version(app: &TestApp, id: &str) -> i64 {
    let pool = app.pool().await;
    let v = sqlx::query_scalar("SELECT credential_version FROM integrations WHERE id = $1")
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    v
}

/// Waits until a refresh of the integration has been stored after version `seen`.
async fn wait_for_version_beyond(app: &TestApp, id: &str, seen: i64) {
    let deadline = Instant::now() + NO_HANG;
    while credential_version(app, id).await <= seen {
        assert!(Instant::now() < deadline, "no refresh was stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn refreshing_on_demand_over_grpc_rotates_the_refresh_token_and_returns_the_integration() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    let original = fake.grant(0).refresh_token.expect("a refresh token");
    fake.expires_in(None, Some(7_200));

    let first = refresh(&app, &connected.name).await.expect("refreshes");
    let rotated = fake
        .grant(0)
        .refresh_token
        .expect("a rotated refresh token");
    let second = refresh(&app, &connected.id).await.expect("refreshes again");

    assert_eq!(first.id, connected.id);
    assert_eq!(status_of(&first), IntegrationStatus::Connected);
    assert!(
        (7_000..=7_205).contains(&expires_in(&first)),
        "the new expiry is stored: {}",
        expires_in(&first)
    );
    assert_eq!(
        set(&first.credential_fields),
        names(&["access_token", "refresh_token"])
    );
    assert_eq!(status_of(&second), IntegrationStatus::Connected);
    assert_eq!(
        fake.refreshes(),
        2,
        "refresh means now, whatever the expiry"
    );
    assert_eq!(
        fake.refresh_tokens_presented(),
        vec![original, rotated],
        "the second refresh used the rotated refresh token"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn refresh_requests_right_after_a_refresh_reuse_its_tokens_within_the_reuse_window() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.oauth.refresh_reuse_window = Duration::from_secs(30);
    })
    .await;
    let connected = connect_ok(&app, &fake).await;

    let first = refresh(&app, &connected.id).await.expect("refreshes");
    let second = refresh(&app, &connected.id)
        .await
        .expect("answers from the fresh tokens");

    assert_eq!(
        fake.refreshes(),
        1,
        "a burst of 401-driven refreshes costs one provider call"
    );
    assert_eq!(
        first.update_time, second.update_time,
        "nothing changed the second time"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn refreshing_over_rest_returns_the_integration() {
    let (app, fake) = rig(Flavour::Discord).await;
    let connected = connect_ok(&app, &fake).await;

    let response = http()
        .post(app.rest_url(&format!(
            "/api/v1/oauth/discord/refresh?integration_id={}",
            connected.id
        )))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], connected.id.as_str(), "{body}");
    assert_eq!(body["status"], "connected", "{body}");
    assert_eq!(fake.refreshes(), 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn every_rotating_provider_refreshes_with_its_own_client_auth_and_body_format() {
    for flavour in [
        Flavour::Zoom,
        Flavour::Discord,
        Flavour::Microsoft,
        Flavour::Notion,
        Flavour::Loom,
        Flavour::Custom,
    ] {
        let (app, fake) = rig(flavour).await;
        let connected = connect_ok(&app, &fake).await;

        for round in 0..3 {
            refresh(&app, &connected.id)
                .await
                .unwrap_or_else(|s| panic!("{flavour:?} refresh #{round}: {s:?}"));
        }

        assert_eq!(fake.refreshes(), 3, "{flavour:?}");
        fake.assert_clean();
        app.stop().await;
    }
}

#[tokio::test]
async fn a_custom_provider_with_body_client_auth_refreshes_with_body_client_auth() {
    let options = Options {
        client_auth: Some(founderhouse_integrations::oauth::ClientAuth::Post),
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Custom, options, |_| {}).await;
    let connected = connect_ok(&app, &fake).await;

    refresh(&app, &connected.id).await.expect("refreshes");

    assert_eq!(fake.refreshes(), 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn google_keeps_the_old_refresh_token_when_the_refresh_response_has_none() {
    let (app, fake) = rig(Flavour::Google).await;
    let connected = connect_ok(&app, &fake).await;
    let original = fake.grant(0).refresh_token.expect("a refresh token");

    let first = refresh(&app, &connected.id).await.expect("refreshes");
    let second = refresh(&app, &connected.id).await.expect("refreshes again");

    assert_eq!(
        fake.refresh_tokens_presented(),
        vec![original.clone(), original]
    );
    for i in [&first, &second] {
        assert_eq!(
            set(&i.credential_fields),
            names(&["access_token", "refresh_token"]),
            "the refresh token is kept"
        );
        assert_eq!(status_of(i), IntegrationStatus::Connected);
    }
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn slack_with_rotation_refreshes_and_keeps_refreshing() {
    let options = Options {
        slack_rotation: true,
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Slack, options, |_| {}).await;
    let connected = connect_ok(&app, &fake).await;

    let first = refresh(&app, &connected.id).await.expect("refreshes");
    let calls = fake.refreshes();
    let second = refresh(&app, &connected.id).await.expect("refreshes again");

    assert!(calls >= 1);
    assert_eq!(fake.refreshes(), 2 * calls);
    for i in [&first, &second] {
        assert_eq!(
            set(&i.credential_fields),
            names(&[
                "access_token",
                "user_token",
                "refresh_token",
                "user_refresh_token"
            ])
        );
        assert!(i.credential_expire_time.is_some());
    }
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn invalid_grant_marks_the_integration_needs_reauth_and_stops_calling_the_provider() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.revoke_all_grants();

    let status = refresh(&app, &connected.id).await.unwrap_err();
    let again = refresh(&app, &connected.id).await.unwrap_err();

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "REFRESH_TOKEN_REVOKED");
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::NeedsReauth);
    assert_eq!(i.status_reason, "REFRESH_TOKEN_REVOKED");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(fake.refreshes(), 1, "no retry storm against a dead grant");
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_background_refresh_that_gets_invalid_grant_marks_needs_reauth_once_and_stops() {
    let (app, fake) = rig_with(Flavour::Discord, Options::default(), |c| {
        fast_refresh_loop(c, Duration::from_secs(300), Duration::from_millis(100));
    })
    .await;
    fake.expires_in(Some(60), None);
    fake.refuse_refreshes(true);

    let connected = connect_ok(&app, &fake).await;
    fake.wait_until("the loop tried to refresh", NO_HANG, |f| f.refreshes() >= 1)
        .await;
    let deadline = Instant::now() + NO_HANG;
    loop {
        let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
        if status_of(&i) == IntegrationStatus::NeedsReauth {
            assert_eq!(i.status_reason, "REFRESH_TOKEN_REVOKED");
            break;
        }
        assert!(Instant::now() < deadline, "never marked: {i:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_refresh_runs(&app, 3).await;

    assert_eq!(
        fake.refreshes(),
        1,
        "the loop stopped refreshing a dead grant"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_provider_outage_during_refresh_is_unavailable_and_leaves_the_integration_connected() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.fail_token_endpoint(Some(503));

    let status = refresh(&app, &connected.id).await.unwrap_err();

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "PROVIDER_UNAVAILABLE");
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    assert_eq!(
        set(&i.credential_fields),
        names(&["access_token", "refresh_token"])
    );
    fake.fail_token_endpoint(None);
    refresh(&app, &connected.id)
        .await
        .expect("refreshes once the provider is back");
    assert_eq!(fake.refreshes(), 2);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_unavailable_and_leaves_it_connected() {
    let (app, fake) = rig_with(Flavour::Google, Options::default(), |c| {
        c.oauth.provider_timeout = Duration::from_millis(300);
    })
    .await;
    let connected = connect_ok(&app, &fake).await;
    fake.slow_token_endpoint(Duration::from_secs(5));

    let began = Instant::now();
    let status = refresh(&app, &connected.id).await.unwrap_err();

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "PROVIDER_UNAVAILABLE");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    app.stop().await;
}

#[tokio::test]
async fn slack_and_monday_have_nothing_to_refresh_and_never_expire() {
    let slack = Fake::start(Flavour::Slack).await;
    let monday = Fake::start(Flavour::Monday).await;
    let app = spawn_app_with(|c| {
        slack.configure(c);
        monday.configure(c);
        // A loop that would refresh anything expiring within a day, ten times a second.
        fast_refresh_loop(c, Duration::from_secs(86_400), Duration::from_millis(100));
    })
    .await;

    for fake in [&slack, &monday] {
        let connected = connect_ok(&app, fake).await;
        let status = refresh(&app, &connected.id).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{:?}",
            fake.flavour
        );
        assert_eq!(
            reason(&status),
            "REFRESH_NOT_SUPPORTED",
            "{:?}",
            fake.flavour
        );
        let response = http()
            .post(app.rest_url(&format!(
                "/api/v1/oauth/{}/refresh?integration_id={}",
                fake.flavour.platform_name(),
                connected.id
            )))
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["reason"], "REFRESH_NOT_SUPPORTED");
    }
    wait_for_refresh_runs(&app, 3).await;

    for fake in [&slack, &monday] {
        assert_eq!(fake.refreshes(), 0, "{:?}", fake.flavour);
        fake.assert_clean();
    }
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
    for i in &listed {
        assert_eq!(status_of(i), IntegrationStatus::Connected, "{i:?}");
        assert_eq!(i.status_reason, "");
        assert_eq!(i.credential_expire_time, None, "never marked as expiring");
    }
    app.stop().await;
}

#[tokio::test]
async fn refreshing_another_workspaces_integration_is_not_found() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;

    let other = app.token_for(uuid::Uuid::new_v4(), Role::Owner);
    let status = refresh_with(&mut oauth_client(&app).await, &connected.id, &other)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(fake.refreshes(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_background_loop_refreshes_a_token_about_to_expire_without_any_call() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        fast_refresh_loop(c, Duration::from_secs(120), Duration::from_millis(200));
    })
    .await;
    fake.expires_in(Some(60), Some(3_600));

    let connected = connect_ok(&app, &fake).await;
    fake.wait_until("the loop refreshed", NO_HANG, |f| f.refreshes() >= 1)
        .await;
    wait_for_expiry_beyond(&app, &connected.id, 3_000, NO_HANG).await;
    wait_for_refresh_runs(&app, 3).await;

    assert_eq!(fake.refreshes(), 1, "a fresh token is not refreshed again");
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    refresh(&app, &connected.id)
        .await
        .expect("the rotated token was stored");
    assert_eq!(
        fake.refreshes(),
        2,
        "the later refresh reached the provider"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn the_background_loops_of_two_replicas_refresh_a_due_token_exactly_once() {
    let fake = Fake::start(Flavour::Zoom).await;
    let tweak = |c: &mut Config| {
        fake.configure(c);
        fast_refresh_loop(c, Duration::from_secs(120), Duration::from_millis(100));
    };
    let app = spawn_app_with(&tweak).await;
    let replica = spawn_replica(&app, &tweak).await;
    fake.expires_in(Some(60), Some(3_600));
    // A slow provider widens any window in which both replicas could claim the same token.
    fake.slow_token_endpoint(Duration::from_millis(300));

    let connected = connect_ok(&app, &fake).await;
    wait_for_expiry_beyond(&app, &connected.id, 3_000, NO_HANG).await;
    wait_for_refresh_runs(&app, 6).await;

    assert_eq!(fake.refreshes(), 1);
    fake.assert_clean();
    replica.stop().await;
    app.stop().await;
}

/// `n` refreshes of one integration at once, spread over `channels`; all must succeed.
async fn refresh_concurrently(app: &TestApp, channels: &[Channel], id: &str, n: usize) {
    let token = app.token(Role::Service);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let calls = (0..n).map(|k| {
        let mut client = OAuthServiceClient::new(channels[k % channels.len()].clone());
        let (token, id, barrier) = (token.clone(), id.to_owned(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            refresh_with(&mut client, &id, &token).await
        })
    });
    let results = tokio::time::timeout(NO_HANG, futures::future::join_all(calls))
        .await
        .expect("concurrent refreshes finish");
    for (k, r) in results.into_iter().enumerate() {
        let i = r
            .expect("task")
            .unwrap_or_else(|s| panic!("concurrent refresh #{k} failed: {s:?}"));
        assert_eq!(status_of(&i), IntegrationStatus::Connected);
    }
}

#[tokio::test]
async fn fifty_concurrent_refreshes_in_one_replica_call_the_provider_once() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.slow_token_endpoint(Duration::from_millis(500));

    refresh_concurrently(&app, &[app.channel().await], &connected.id, 50).await;

    assert_eq!(fake.refreshes(), 1, "exactly one provider call");
    fake.slow_token_endpoint(Duration::ZERO);
    refresh(&app, &connected.id)
        .await
        .expect("the token the fifty share works");
    assert_eq!(fake.refreshes(), 2);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_refreshes_across_two_replicas_call_the_provider_once() {
    let fake = Fake::start(Flavour::Zoom).await;
    let tweak = |c: &mut Config| fake.configure(c);
    let app = spawn_app_with(&tweak).await;
    let replica = spawn_replica(&app, &tweak).await;
    let connected = connect_ok(&app, &fake).await;
    fake.slow_token_endpoint(Duration::from_millis(500));

    let channels = [app.channel().await, replica.channel().await];
    refresh_concurrently(&app, &channels, &connected.id, 50).await;

    assert_eq!(fake.refreshes(), 1, "exactly one provider call");
    fake.slow_token_endpoint(Duration::ZERO);
    let mut on_replica = OAuthServiceClient::new(replica.channel().await);
    refresh_with(&mut on_replica, &connected.id, &app.token(Role::Admin))
        .await
        .expect("the new token works from the other replica");
    refresh(&app, &connected.id)
        .await
        .expect("and from the first");
    assert_eq!(fake.refreshes(), 3);
    fake.assert_clean();
    replica.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_grpc_caller_that_gives_up_mid_refresh_loses_no_rotated_token() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.expires_in(None, Some(7_200));
    fake.slow_token_endpoint(Duration::from_millis(500));
    let mut client = oauth_client(&app).await;
    let token = app.token(Role::Admin);

    tokio::select! {
        r = refresh_with(&mut client, &connected.id, &token) => {
            panic!("the refresh finished before the slow provider answered: {r:?}")
        }
        () = fake.wait_until("the provider received the refresh", NO_HANG, |f| f.refreshes() == 1) => {}
    }
    // The caller is gone; the provider has already rotated the refresh token.

    wait_for_expiry_beyond(&app, &connected.id, 7_000, NO_HANG).await;
    fake.slow_token_endpoint(Duration::ZERO);
    refresh(&app, &connected.id)
        .await
        .expect("a later refresh uses the rotated token");
    assert_eq!(fake.refreshes(), 2);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_rest_caller_that_disconnects_mid_refresh_loses_no_rotated_token() {
    let (app, fake) = rig(Flavour::Notion).await;
    let connected = connect_ok(&app, &fake).await;
    let before = fake.grant(0).refresh_token;
    let version = credential_version(&app, &connected.id).await;
    fake.slow_token_endpoint(Duration::from_millis(500));
    let url = app.rest_url(&format!(
        "/api/v1/oauth/notion/refresh?integration_id={}",
        connected.id
    ));

    tokio::select! {
        r = http().post(&url).bearer_auth(app.token(Role::Admin)).send() => {
            panic!("the refresh finished before the slow provider answered: {r:?}")
        }
        () = fake.wait_until("the provider received the refresh", NO_HANG, |f| f.refreshes() == 1) => {}
    }
    assert_ne!(fake.grant(0).refresh_token, before, "the provider rotated");
    // The abandoned refresh still stores what the provider rotated.
    wait_for_version_beyond(&app, &connected.id, version).await;

    fake.slow_token_endpoint(Duration::ZERO);
    refresh(&app, &connected.id)
        .await
        .expect("a later refresh uses the rotated token");
    assert_eq!(fake.refreshes(), 2);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_grpc_deadline_shorter_than_the_provider_loses_no_rotated_token() {
    // Zoom's first token lasts an hour, so a stored 2-hour expiry proves the refresh landed.
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.expires_in(None, Some(7_200));
    // The deadline leaves ample time to reach the provider and strikes long before it answers.
    fake.slow_token_endpoint(Duration::from_millis(2_500));

    let mut request = refresh_request(&connected.id, &app.token(Role::Admin));
    request.set_timeout(Duration::from_millis(1_000));
    let mut client = oauth_client(&app).await;
    let (status, ()) = tokio::join!(
        async { client.refresh_integration(request).await.unwrap_err() },
        fake.wait_until("the provider received the refresh", NO_HANG, |f| {
            f.refreshes() == 1
        }),
    );
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert_eq!(
        fake.refreshes(),
        1,
        "the provider was called before the deadline"
    );

    // The abandoned refresh finishes and stores the rotated tokens.
    wait_for_expiry_beyond(&app, &connected.id, 7_000, NO_HANG).await;
    fake.slow_token_endpoint(Duration::ZERO);
    refresh(&app, &connected.id)
        .await
        .expect("a later refresh uses the rotated refresh token");
    assert_eq!(
        fake.refreshes(),
        2,
        "the later refresh reached the provider"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_replica_that_dies_holding_the_refresh_lock_blocks_nobody_for_long() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    let id = uuid::Uuid::parse_str(&connected.id).unwrap();

    // The "replica": a transaction holding the integration's row lock on its own connection.
    let mut holder = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    let locked: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM integrations WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut holder)
            .await
            .unwrap();
    assert_eq!(locked, Some(id));

    let mut client = oauth_client(&app).await;
    let token = app.token(Role::Admin);
    let name = connected.id.clone();
    let refreshing = tokio::spawn(async move { refresh_with(&mut client, &name, &token).await });
    wait_for_a_lock_waiter(&app).await;
    assert!(
        fake.refreshes() <= 1,
        "the provider was called {} times while the lock was held",
        fake.refreshes()
    );

    // The replica dies: its connection closes without a commit or rollback.
    drop(holder);
    let died = Instant::now();
    let result = tokio::time::timeout(NO_HANG, refreshing)
        .await
        .expect("the refresh finishes")
        .expect("task");

    let i = result.expect("the refresh succeeds once the lock is gone");
    assert!(
        died.elapsed() < Duration::from_secs(5),
        "the refresh took {:?} after the lock holder died",
        died.elapsed()
    );
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    assert_eq!(fake.refreshes(), 1);
    refresh(&app, &connected.id)
        .await
        .expect("the rotated token was stored");
    assert_eq!(
        fake.refreshes(),
        2,
        "the later refresh reached the provider"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn refresh_names_the_bad_field_and_api_key_integrations_do_not_refresh() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.token(Role::Admin);

    for name in ["", "not-an-id", "workspaces/x/integrations/y"] {
        let status = refresh_with(&mut oauth_client(&app).await, name, &admin)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name:?}");
        assert_eq!(
            crate::helpers::violated_fields(&status),
            vec!["name"],
            "{name:?}"
        );
    }
    for query in ["", "?integration_id=", "?integration_id=nope"] {
        let response = http()
            .post(app.rest_url(&format!("/api/v1/oauth/zoom/refresh{query}")))
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
    let fireflies = app
        .integrations()
        .await
        .connect_integration(authed(crate::helpers::fireflies("acct"), &admin))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    let status = refresh(&app, &fireflies.id).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "REFRESH_NOT_SUPPORTED");
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_the_provider_refuses_tells_the_caller_the_providers_error_code() {
    use tonic_types::StatusExt;

    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    // A 400 with an error other than invalid_grant: refused, but the grant is not dead.
    fake.fail_token_endpoint(Some(400));

    let status = refresh(&app, &connected.id).await.unwrap_err();

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "PROVIDER_REJECTED");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(
        info.metadata.get("provider_code").map(String::as_str),
        Some("temporarily_unavailable"),
        "the flight keeps the metadata: {info:?}"
    );
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(status_of(&i), IntegrationStatus::Connected);
    fake.fail_token_endpoint(None);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_replica_that_dies_holding_the_refresh_lease_blocks_nobody_past_its_expiry() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let connected = connect_ok(&app, &fake).await;
    fake.expires_in(None, Some(7_200));
    // The "replica" committed its lease and died before it called the provider.
    let pool = app.pool().await;
    sqlx::query(
        "UPDATE integrations SET refresh_lease_holder = gen_random_uuid(),
             refresh_lease_until = now() + interval '2 seconds'
         WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(&connected.id).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let began = Instant::now();

    let mut client = oauth_client(&app).await;
    let (token, name) = (app.token(Role::Admin), connected.id.clone());
    let mut refreshing =
        tokio::spawn(async move { refresh_with(&mut client, &name, &token).await });
    // While the lease holds, the waiter calls nobody and waits on no lock.
    let mut every = tokio::time::interval(Duration::from_millis(20));
    let result = loop {
        tokio::select! {
            r = &mut refreshing => break r.expect("task"),
            _ = every.tick() => {}
        }
        let lock_waiters: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(lock_waiters, 0, "a refresh waits on a row lock");
        assert!(began.elapsed() < NO_HANG, "the refresh never finished");
    };
    pool.close().await;

    let i = result.expect("the refresh succeeds once the lease has run out");
    assert!(
        began.elapsed() >= Duration::from_millis(1_500),
        "the refresh did not wait for the lease: {:?}",
        began.elapsed()
    );
    assert!(expires_in(&i) > 7_000, "the new tokens are stored: {i:?}");
    assert_eq!(fake.refreshes(), 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn twenty_refreshes_waiting_on_a_slow_token_endpoint_leave_other_tenants_answering() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.pool.max_connections = 8;
        // Every refresh waits its turn for a provider slot (five turns of 6 s), and its caller
        // waits for it.
        c.oauth.refresh_lock_timeout = Duration::from_secs(90);
        c.limits.request_timeout = Duration::from_secs(90);
    })
    .await;
    let mut targets = Vec::new();
    for _ in 0..20 {
        let workspace = uuid::Uuid::new_v4();
        let landing = connect_as(&app, &fake, &app.token_for(workspace, Role::Member), "").await;
        targets.push((workspace, landing.assert_success(fake.flavour)));
    }
    fake.slow_token_endpoint(Duration::from_secs(6));
    let channel = app.channel().await;
    let refreshes: Vec<_> = targets
        .iter()
        .map(|(workspace, id)| {
            let mut client = OAuthServiceClient::new(channel.clone());
            let (token, id) = (app.token_for(*workspace, Role::Admin), id.clone());
            tokio::spawn(async move { refresh_with(&mut client, &id, &token).await })
        })
        .collect();
    fake.wait_until("refreshes reached the provider", NO_HANG, |f| {
        f.refreshes() >= 1
    })
    .await;

    // For most of the provider's 6 s, another tenant lists its integrations.
    let other = app.token_for(uuid::Uuid::new_v4(), Role::Viewer);
    let mut integrations = app.integrations().await;
    let window = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while window.elapsed() < Duration::from_secs(4) {
        every.tick().await;
        let began = Instant::now();
        integrations
            .list_integrations(authed(
                founderhouse_integrations::proto::ListIntegrationsRequest::default(),
                &other,
            ))
            .await
            .expect("another tenant is served while refreshes wait on the provider");
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "ListIntegrations took {:?}",
            began.elapsed()
        );
        assert!(
            fake.refreshes() <= 4,
            "{} provider calls at once: more than half the pool",
            fake.refreshes()
        );
    }

    let results = tokio::time::timeout(
        Duration::from_secs(90),
        futures::future::join_all(refreshes),
    )
    .await
    .expect("every refresh finishes");
    for (k, r) in results.into_iter().enumerate() {
        let i = r
            .expect("task")
            .unwrap_or_else(|s| panic!("refresh #{k} failed: {s:?}"));
        assert_eq!(status_of(&i), IntegrationStatus::Connected);
    }
    assert_eq!(fake.refreshes(), 20, "one provider call per integration");
    fake.assert_clean();
    app.stop().await;
}
