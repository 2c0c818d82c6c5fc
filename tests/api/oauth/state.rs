//! The callback's defences: single-use, expiring, provider-bound states; the issuer check;
//! provider denials. Every answer is a 303 to the frontend with a handle or a reason, and the
//! callback never reaches the token endpoint; exchange failures surface at completion.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::ListIntegrationsRequest;

use super::{
    FRONTEND_LANDING, Fake, Flavour, NO_HANG, Options, at_provider, callback_raw, complete,
    connect, connect_as, follow_and_complete, follow_to_app, query, rig, rig_with, start,
};
use crate::helpers::{TestApp, authed, reason};

const ISSUER: &str = "https://issuer.fake.test";

async fn integration_count(app: &TestApp) -> usize {
    app.integrations()
        .await
        .list_integrations(authed(
            ListIntegrationsRequest::default(),
            &app.token(Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .integrations
        .len()
}

/// Moves every state's expiry into the past, as ten minutes of waiting would.
async fn expire_every_state(app: &TestApp) {
    let pool = app.pool().await;
    sqlx::query("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Start (as the member `token`) and consent: the provider's redirect back to us, not yet
/// followed.
async fn consented_as(app: &TestApp, fake: &Fake, token: &str) -> reqwest::Url {
    let started = start(app, fake.flavour, "", token).await.unwrap();
    at_provider(&started.authorization_url).await
}

/// Start as a fresh member and consent.
async fn consented(app: &TestApp, fake: &Fake) -> reqwest::Url {
    consented_as(app, fake, &app.token(Role::Member)).await
}

/// A 43-character base64url string that no StartAuthorization issued.
fn forged_state() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[tokio::test]
async fn a_replayed_state_is_state_reused_and_the_token_endpoint_is_called_once() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    let redirect = consented_as(&app, &fake, &member).await;

    let first = follow_and_complete(&app, &redirect, &member).await;
    let replay = follow_to_app(&app, &redirect).await;

    first.assert_success(Flavour::Zoom);
    replay.assert_error("state_reused", Flavour::Zoom);
    assert_eq!(fake.exchanges(), 1, "the replay never reached the provider");
    assert_eq!(fake.token_calls(), 1);
    assert_eq!(integration_count(&app).await, 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn concurrent_replays_of_one_callback_hand_out_exactly_one_handle() {
    let (app, fake) = rig(Flavour::Google).await;
    let member = app.token(Role::Member);
    let redirect = consented_as(&app, &fake, &member).await;

    let landings = futures::future::join_all((0..10).map(|_| follow_to_app(&app, &redirect))).await;

    let handles: Vec<_> = landings
        .iter()
        .filter(|l| l.param("oauth_handle").is_some())
        .collect();
    assert_eq!(handles.len(), 1, "{landings:#?}");
    for l in landings
        .iter()
        .filter(|l| l.param("oauth_handle").is_none())
    {
        l.assert_error("state_reused", Flavour::Google);
    }
    assert_eq!(fake.exchanges(), 0, "the callback never exchanges");
    let handle = handles[0].assert_handle(Flavour::Google);
    complete(&app, &handle, &member).await.expect("completes");
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(integration_count(&app).await, 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn an_expired_state_is_state_expired_and_the_provider_is_not_called() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let started = start(&app, Flavour::Zoom, "", &app.token(Role::Member))
        .await
        .unwrap();
    let redirect = at_provider(&started.authorization_url).await;

    expire_every_state(&app).await;
    let landing = follow_to_app(&app, &redirect).await;

    landing.assert_error("state_expired", Flavour::Zoom);
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_callback_on_another_platforms_path_is_platform_mismatch_without_an_exchange() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let redirect = consented(&app, &fake).await;

    let q = redirect.query().expect("code and state");
    let landing = callback_raw(&app, &format!("/api/v1/oauth/slack/callback?{q}")).await;

    assert_eq!(landing.base(), FRONTEND_LANDING);
    assert_eq!(
        landing.param("error").as_deref(),
        Some("platform_mismatch"),
        "{}",
        landing.raw
    );
    assert_eq!(landing.param("success"), None);
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn gmail_and_outlook_states_are_not_interchangeable() {
    let google = Fake::start(Flavour::Google).await;
    let microsoft = Fake::start(Flavour::Microsoft).await;
    let app = crate::helpers::spawn_app_with(|c| {
        google.configure(c);
        microsoft.configure(c);
    })
    .await;
    let redirect = consented(&app, &google).await;

    let q = redirect.query().expect("code and state");
    let landing = callback_raw(&app, &format!("/api/v1/oauth/outlook/callback?{q}")).await;

    assert_eq!(
        landing.param("error").as_deref(),
        Some("platform_mismatch"),
        "{}",
        landing.raw
    );
    assert_eq!(google.exchanges() + microsoft.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_forged_state_is_invalid_state_without_an_exchange() {
    let (app, fake) = rig(Flavour::Zoom).await;
    // A real code from the provider, with a state we never issued.
    let redirect = consented(&app, &fake).await;
    let code = query(&redirect)["code"].clone();

    for state in [forged_state(), "short".to_owned(), "x".repeat(5_000)] {
        let landing = callback_raw(
            &app,
            &format!("/api/v1/oauth/zoom/callback?code={code}&state={state}"),
        )
        .await;
        landing.assert_error("invalid_state", Flavour::Zoom);
    }
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_callback_without_a_state_is_invalid_state() {
    let (app, fake) = rig(Flavour::Zoom).await;

    for query in ["?code=some-code", "?code=some-code&state=", ""] {
        let landing = callback_raw(&app, &format!("/api/v1/oauth/zoom/callback{query}")).await;
        landing.assert_error("invalid_state", Flavour::Zoom);
    }
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_iss_other_than_the_configured_issuer_is_issuer_mismatch_without_an_exchange() {
    let options = Options {
        issuer: Some(ISSUER.to_owned()),
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Zoom, options, |_| {}).await;
    fake.send_iss("https://mix-up.attacker.example");

    let landing = connect(&app, &fake).await;

    landing.assert_error("issuer_mismatch", Flavour::Zoom);
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_configured_issuer_in_iss_is_accepted() {
    let options = Options {
        issuer: Some(ISSUER.to_owned()),
        ..Options::default()
    };
    let (app, fake) = rig_with(Flavour::Zoom, options, |_| {}).await;
    fake.send_iss(ISSUER);

    let landing = connect(&app, &fake).await;

    landing.assert_success(Flavour::Zoom);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn the_user_denying_consent_is_access_denied_without_an_exchange() {
    let (app, fake) = rig(Flavour::Discord).await;
    fake.deny(Some("access_denied"));

    let landing = connect(&app, &fake).await;

    landing.assert_error("access_denied", Flavour::Discord);
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn standard_provider_errors_pass_through_and_others_become_provider_error() {
    let (app, fake) = rig(Flavour::Google).await;

    for (sent, shown) in [
        ("invalid_scope", "invalid_scope"),
        ("server_error", "server_error"),
        ("temporarily_unavailable", "temporarily_unavailable"),
        ("<script>alert(1)</script>", "provider_error"),
        ("something_proprietary", "provider_error"),
    ] {
        fake.deny(Some(sent));
        let landing = connect(&app, &fake).await;
        landing.assert_error(shown, Flavour::Google);
    }
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn return_to_is_honoured_on_failure_too() {
    let (app, fake) = rig(Flavour::Zoom).await;
    fake.deny(Some("access_denied"));
    let return_to = "http://localhost:3000/onboarding/connect";

    let landing = connect_as(&app, &fake, &app.token(Role::Member), return_to).await;

    assert_eq!(landing.base(), return_to);
    landing.assert_error_anywhere("access_denied", Flavour::Zoom);
    app.stop().await;
}

#[tokio::test]
async fn a_callback_with_a_state_but_no_code_is_missing_code() {
    let (app, fake) = rig(Flavour::Zoom).await;
    fake.drop_code();

    let landing = connect(&app, &fake).await;

    landing.assert_error("missing_code", Flavour::Zoom);
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn slack_answering_ok_false_is_provider_rejected_at_completion_and_creates_nothing() {
    let (app, fake) = rig(Flavour::Slack).await;
    fake.reject_exchanges(true);

    let landing = connect(&app, &fake).await;

    landing.assert_handle(Flavour::Slack);
    let status = landing.completion_error();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), "PROVIDER_REJECTED");
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(integration_count(&app).await, 0);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_code_the_provider_rejects_is_provider_rejected_at_completion_and_creates_nothing() {
    let (app, fake) = rig(Flavour::Notion).await;
    fake.reject_exchanges(true);

    let landing = connect(&app, &fake).await;

    landing.assert_handle(Flavour::Notion);
    let status = landing.completion_error();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), "PROVIDER_REJECTED");
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(integration_count(&app).await, 0);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn a_state_and_handle_used_by_a_failed_exchange_cannot_be_replayed() {
    let (app, fake) = rig(Flavour::Zoom).await;
    fake.reject_exchanges(true);
    let member = app.token(Role::Member);
    let redirect = consented_as(&app, &fake, &member).await;

    let failed = follow_and_complete(&app, &redirect, &member).await;
    fake.reject_exchanges(false);
    let replay = follow_to_app(&app, &redirect).await;
    let handle = failed.assert_handle(Flavour::Zoom);
    let again = complete(&app, &handle, &member).await.expect_err("spent");

    assert_eq!(reason(failed.completion_error()), "PROVIDER_REJECTED");
    replay.assert_error("state_reused", Flavour::Zoom);
    assert_eq!(reason(&again), "HANDLE_REUSED");
    assert_eq!(fake.exchanges(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_failing_token_endpoint_is_provider_unavailable_at_completion() {
    let (app, fake) = rig(Flavour::Zoom).await;

    for status in [500, 502, 503] {
        fake.fail_token_endpoint(Some(status));
        let landing = connect(&app, &fake).await;
        landing.assert_handle(Flavour::Zoom);
        let error = landing.completion_error();
        assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
        assert_eq!(reason(error), "PROVIDER_UNAVAILABLE");
    }
    assert_eq!(integration_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_in_time_is_provider_unavailable_at_completion() {
    let (app, fake) = rig_with(Flavour::Google, Options::default(), |c| {
        c.oauth.provider_timeout = Duration::from_millis(300);
    })
    .await;
    fake.slow_token_endpoint(Duration::from_secs(5));

    let began = Instant::now();
    let landing = connect(&app, &fake).await;

    assert_eq!(reason(landing.completion_error()), "PROVIDER_UNAVAILABLE");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "the completion waited {:?} for a provider that does not answer",
        began.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_callback_answers_garbage_with_a_redirect_never_an_error_page() {
    let (app, fake) = rig(Flavour::Zoom).await;

    for path_and_query in [
        "/api/v1/oauth/zoom/callback?error=access_denied",
        "/api/v1/oauth/zoom/callback?code=a&code=b&state=c&state=d",
        "/api/v1/oauth/zoom/callback?state=%ff%fe&code=%00",
        "/api/v1/oauth/zoom/callback?error=&error_description=%3Cb%3E",
        "/api/v1/oauth/zoom/callback?code=x&state=y&iss=https%3A%2F%2Fevil.example",
        "/api/v1/oauth/myspace/callback?code=x&state=y",
    ] {
        let landing = tokio::time::timeout(NO_HANG, callback_raw(&app, path_and_query))
            .await
            .expect("the callback answers");
        assert!(
            landing.param("error").is_some_and(|e| !e.is_empty()),
            "{path_and_query}: {}",
            landing.raw
        );
        assert_eq!(landing.param("success"), None, "{}", landing.raw);
        assert_eq!(landing.base(), FRONTEND_LANDING, "{path_and_query}");
    }
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_or_expired_state_still_lands_on_its_return_to() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let return_to = "http://localhost:3000/settings";
    let token = app.token(Role::Member);
    let used = start(&app, Flavour::Zoom, return_to, &token).await.unwrap();
    let used = at_provider(&used.authorization_url).await;
    let stale = start(&app, Flavour::Zoom, return_to, &token).await.unwrap();
    let stale = at_provider(&stale.authorization_url).await;

    follow_and_complete(&app, &used, &token)
        .await
        .assert_success(Flavour::Zoom);
    let replay = follow_to_app(&app, &used).await;
    expire_every_state(&app).await;
    let expired = follow_to_app(&app, &stale).await;

    assert_eq!(replay.base(), return_to);
    replay.assert_error_anywhere("state_reused", Flavour::Zoom);
    assert_eq!(expired.base(), return_to);
    expired.assert_error_anywhere("state_expired", Flavour::Zoom);
    assert_eq!(fake.exchanges(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_iss_is_ignored_when_no_issuer_is_configured_and_googles_own_is_accepted() {
    let zoom = Fake::start(Flavour::Zoom).await;
    let google = Fake::start(Flavour::Google).await;
    let app = crate::helpers::spawn_app_with(|c| {
        zoom.configure(c);
        google.configure(c);
    })
    .await;
    zoom.send_iss("https://whatever.example");
    google.send_iss("https://accounts.google.com");

    connect(&app, &zoom).await.assert_success(Flavour::Zoom);
    connect(&app, &google).await.assert_success(Flavour::Google);

    zoom.assert_clean();
    google.assert_clean();
    app.stop().await;
}
