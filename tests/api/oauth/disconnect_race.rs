//! Disconnect racing a refresh: no grant the service receives outlives a disconnect. The fake
//! rotates the tokens the moment the refresh reaches it and answers later, so a disconnect that
//! revoked the tokens it read first would leave the rotated grant alive upstream.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    DisconnectIntegrationRequest, Integration, IntegrationStatus, TokenRevocation,
};
use tokio::task::JoinHandle;
use tonic::Code;

use super::{Fake, Flavour, NO_HANG, Options, connect_ok, get, oauth_client, rig_with, status_of};
use crate::helpers::{TestApp, authed, reason};

/// A refresh of the integration, started now; it reaches the slow fake before this returns.
async fn refresh_in_flight(
    app: &TestApp,
    fake: &Fake,
    id: &str,
) -> JoinHandle<Result<Integration, tonic::Status>> {
    let mut client = oauth_client(app).await;
    let (token, name) = (app.token(Role::Admin), id.to_owned());
    let before = fake.refreshes();
    let refreshing = tokio::spawn(async move {
        client
            .refresh_integration(authed(
                founderhouse_integrations::proto::RefreshIntegrationRequest { name },
                &token,
            ))
            .await
            .map(|r| r.into_inner().integration.expect("an integration"))
    });
    fake.wait_until("the provider rotated the tokens", NO_HANG, |f| {
        f.refreshes() > before
    })
    .await;
    refreshing
}

async fn disconnect(app: &TestApp, id: &str) -> (Integration, Vec<TokenRevocation>) {
    let response = app
        .integrations()
        .await
        .disconnect_integration(authed(
            DisconnectIntegrationRequest {
                name: id.to_owned(),
            },
            &app.token(Role::Admin),
        ))
        .await
        .unwrap_or_else(|s| panic!("DisconnectIntegration: {s:?}"))
        .into_inner();
    (
        response.integration.expect("the integration"),
        response.revocations,
    )
}

/// The refresh either stored its tokens before the disconnect took over (and they were the ones
/// revoked), or learned that the integration was disconnected.
async fn assert_refresh_ended_cleanly(refreshing: JoinHandle<Result<Integration, tonic::Status>>) {
    let result = tokio::time::timeout(NO_HANG, refreshing)
        .await
        .expect("the refresh finishes")
        .expect("task");
    if let Err(status) = result {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), "INTEGRATION_REVOKED", "{status:?}");
    }
}

async fn queued_revocations(app: &TestApp) -> i64 {
    let pool = app.pool().await;
    let n = sqlx::query_scalar("SELECT count(*) FROM pending_revocations")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn a_disconnect_during_a_refresh_revokes_the_rotated_grant_and_says_so() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |_| {}).await;
    let connected = connect_ok(&app, &fake).await;
    fake.slow_token_endpoint(Duration::from_millis(1_500));
    let refreshing = refresh_in_flight(&app, &fake, &connected.id).await;

    let (after, revocations) = disconnect(&app, &connected.id).await;

    assert_eq!(status_of(&after), IntegrationStatus::Revoked);
    assert!(after.credential_fields.is_empty(), "{after:?}");
    assert!(!revocations.is_empty(), "nothing reported");
    for r in &revocations {
        assert!(r.revoked_upstream, "the answer says not revoked: {r:?}");
    }
    assert!(
        fake.grant(0).revoked,
        "the answer says revoked, yet the rotated grant is alive upstream"
    );
    assert_refresh_ended_cleanly(refreshing).await;
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(queued_revocations(&app).await, 0);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_disconnect_during_a_refresh_queues_the_rotated_token_when_the_provider_is_down_and_says_so()
 {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.oauth.revocation_retry_base = Duration::from_millis(100);
        c.oauth.refresh_interval = Duration::from_millis(100);
    })
    .await;
    let connected = connect_ok(&app, &fake).await;
    fake.slow_token_endpoint(Duration::from_millis(1_500));
    fake.fail_revocation(Some(503));
    let refreshing = refresh_in_flight(&app, &fake, &connected.id).await;

    let (after, revocations) = disconnect(&app, &connected.id).await;

    assert_eq!(status_of(&after), IntegrationStatus::Revoked);
    assert!(!revocations.is_empty(), "nothing reported");
    for r in &revocations {
        assert!(
            !r.revoked_upstream,
            "claims a revocation that failed: {r:?}"
        );
        assert_eq!(r.reason, "PROVIDER_UNAVAILABLE", "{r:?}");
        assert!(r.message.contains("retried in the background"), "{r:?}");
    }
    assert_refresh_ended_cleanly(refreshing).await;
    assert!(queued_revocations(&app).await >= 1);
    // The provider comes back: what was queued is the rotated grant's token.
    fake.fail_revocation(None);
    fake.wait_until(
        "the queued revocation killed the rotated grant",
        NO_HANG,
        |f| f.grant(0).revoked,
    )
    .await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_that_loses_its_lease_to_a_disconnect_revokes_the_tokens_it_obtained() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |_| {}).await;
    let connected = connect_ok(&app, &fake).await;
    // Zoom's first token lasts an hour: a stored 2-hour expiry would show a stored refresh.
    fake.expires_in(None, Some(7_200));
    fake.slow_token_endpoint(Duration::from_millis(1_500));
    let refreshing = refresh_in_flight(&app, &fake, &connected.id).await;

    // A disconnect on another replica that found the lease run out and took it over.
    let pool = app.pool().await;
    sqlx::query(
        "UPDATE integrations SET disconnecting_at = now(), refresh_lease_holder = gen_random_uuid(),
             refresh_lease_until = now() + interval '1 minute'
         WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(&connected.id).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let status = tokio::time::timeout(NO_HANG, refreshing)
        .await
        .expect("the refresh finishes")
        .expect("task")
        .expect_err("tokens for a disconnecting integration are not stored");

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "INTEGRATION_REVOKED");
    assert!(
        fake.grant(0).revoked,
        "the tokens the refresh obtained are alive upstream"
    );
    let i = get(&app, &connected.id, &app.token(Role::Viewer)).await;
    assert_eq!(
        i.credential_expire_time, connected.credential_expire_time,
        "the refresh stored nothing"
    );
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn no_refresh_starts_once_a_disconnect_has_begun() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |_| {}).await;
    let connected = connect_ok(&app, &fake).await;
    let pool = app.pool().await;
    sqlx::query("UPDATE integrations SET disconnecting_at = now() WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&connected.id).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let began = Instant::now();
    let status = oauth_client(&app)
        .await
        .refresh_integration(authed(
            founderhouse_integrations::proto::RefreshIntegrationRequest {
                name: connected.id.clone(),
            },
            &app.token(Role::Admin),
        ))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "INTEGRATION_REVOKED");
    assert!(began.elapsed() < Duration::from_secs(2), "it waited");
    assert_eq!(fake.refreshes(), 0);
    app.stop().await;
}
