//! CompleteAuthorization (issue 10, item 2): the callback only hands the browser a one-time
//! handle; the user and workspace that started the flow redeem it with their own token, and
//! only then is the code exchanged, once, with no database transaction open.

use std::time::Duration;

use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::domain::Role;
use serde_json::json;
use uuid::Uuid;

use super::{
    FRONTEND_LANDING, Flavour, NO_HANG, Options, at_provider, complete, complete_rest,
    follow_to_app, rig, rig_with, start,
};
use crate::helpers::{TestApp, authed, reason, violated_fields};

/// A token of `user` in `workspace`, so that one person can make several calls.
fn token_of(app: &TestApp, user: Uuid, workspace: Uuid, role: Role) -> String {
    mint_token(
        &app.jwt_secret,
        user,
        workspace,
        role,
        Duration::from_secs(600),
    )
    .expect("token mints")
}

/// Start as `token`, consent, and come back to the callback: the handle it hands out.
async fn handle_for(app: &TestApp, fake: &super::Fake, token: &str) -> String {
    let started = start(app, fake.flavour, "", token).await.expect("starts");
    let redirect = at_provider(&started.authorization_url).await;
    let landing = follow_to_app(app, &redirect).await;
    assert_eq!(landing.base(), FRONTEND_LANDING, "{}", landing.raw);
    landing.assert_handle(fake.flavour)
}

/// Rows in one of our tables (a fixed name from these tests).
async fn count(app: &TestApp, table: &'static str) -> i64 {
    let pool = app.pool().await;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn the_callback_makes_no_provider_call_and_the_starting_user_completes() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);

    let handle = handle_for(&app, &fake, &member).await;

    assert_eq!(
        fake.token_calls(),
        0,
        "the callback never calls the provider"
    );
    assert_eq!(count(&app, "integrations").await, 0);
    let done = complete(&app, &handle, &member).await.expect("completes");
    let integration = done.integration.expect("an integration");
    assert_eq!(integration.platform, Flavour::Zoom.platform() as i32);
    assert_eq!(done.warning, "");
    assert_eq!(fake.exchanges(), 1);
    let pool = app.pool().await;
    let (consumed, code): (bool, Option<Vec<u8>>) =
        sqlx::query_as("SELECT consumed_at IS NOT NULL, code_ciphertext FROM oauth_handles")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(consumed && code.is_none(), "a redeemed code is not kept");
    pool.close().await;
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn another_user_of_the_workspace_is_permission_denied_and_nothing_is_written() {
    let (app, fake) = rig(Flavour::Google).await;
    let starter = token_of(&app, Uuid::new_v4(), app.workspace, Role::Member);
    let handle = handle_for(&app, &fake, &starter).await;

    for role in [Role::Member, Role::Admin, Role::Owner, Role::Service] {
        let other = token_of(&app, Uuid::new_v4(), app.workspace, role);
        let status = complete(&app, &handle, &other).await.expect_err("denied");
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{role:?}: {status:?}"
        );
        assert_eq!(reason(&status), "AUTHORIZATION_STARTED_BY_ANOTHER_USER");
    }

    assert_eq!(fake.exchanges(), 0);
    assert_eq!(count(&app, "integrations").await, 0);
    assert_eq!(count(&app, "credentials").await, 0);
    // The handle is not spent by the refusals: its own user still completes.
    complete(&app, &handle, &starter)
        .await
        .expect("the starter completes");
    assert_eq!(fake.exchanges(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_same_user_in_another_workspace_is_permission_denied_and_nothing_is_written() {
    let (app, fake) = rig(Flavour::Slack).await;
    let user = Uuid::new_v4();
    let starter = token_of(&app, user, app.workspace, Role::Admin);
    let handle = handle_for(&app, &fake, &starter).await;
    let elsewhere = token_of(&app, user, Uuid::new_v4(), Role::Owner);

    let status = complete(&app, &handle, &elsewhere)
        .await
        .expect_err("denied");
    let (rest, body) = complete_rest(&app, "slack", &handle, &elsewhere).await;

    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(reason(&status), "AUTHORIZATION_STARTED_BY_ANOTHER_USER");
    assert_eq!(rest, reqwest::StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["reason"],
        "AUTHORIZATION_STARTED_BY_ANOTHER_USER"
    );
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(count(&app, "integrations").await, 0);
    assert_eq!(
        count(&app, "workspaces").await,
        0,
        "no workspace row for the other tenant"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_redeemed_handle_is_handle_reused_and_never_exchanged_twice() {
    let (app, fake) = rig(Flavour::Notion).await;
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;
    complete(&app, &handle, &member).await.expect("completes");

    let again = complete(&app, &handle, &member).await.expect_err("reused");
    let (rest, body) = complete_rest(&app, "notion", &handle, &member).await;

    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    assert_eq!(reason(&again), "HANDLE_REUSED");
    assert_eq!(rest, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["reason"], "HANDLE_REUSED");
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(count(&app, "integrations").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_handle_is_handle_expired_and_the_provider_is_not_called() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;
    let pool = app.pool().await;
    sqlx::query("UPDATE oauth_handles SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let status = complete(&app, &handle, &member).await.expect_err("expired");

    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "HANDLE_EXPIRED");
    assert_eq!(fake.exchanges(), 0);
    assert_eq!(count(&app, "integrations").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_handle_lives_five_minutes() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let handle = handle_for(&app, &fake, &app.token(Role::Member)).await;
    assert!(!handle.is_empty());
    let pool = app.pool().await;
    let seconds: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - created_at)::float8 FROM oauth_handles",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!((295.0..=301.0).contains(&seconds), "{seconds}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_missing_handle_is_refused_without_a_provider_call() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    handle_for(&app, &fake, &member).await;

    let unknown = complete(&app, "no-such-handle-0123456789", &member)
        .await
        .expect_err("unknown");
    let huge = complete(&app, &"x".repeat(4096), &member)
        .await
        .expect_err("unknown");
    let empty = complete(&app, "", &member).await.expect_err("missing");
    let (missing, body) = {
        let response = crate::helpers::http()
            .post(app.rest_url("/api/v1/oauth/zoom/complete"))
            .bearer_auth(&member)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };

    for status in [&unknown, &huge] {
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert_eq!(reason(status), "HANDLE_NOT_FOUND");
    }
    assert_eq!(violated_fields(&empty), vec!["handle"]);
    assert_eq!(missing, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field_violations"][0]["field"], "handle");
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn completing_needs_a_token_and_a_member() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let user = Uuid::new_v4();
    let handle = handle_for(
        &app,
        &fake,
        &token_of(&app, user, app.workspace, Role::Member),
    )
    .await;

    let anonymous = super::oauth_client(&app)
        .await
        .complete_authorization(
            founderhouse_integrations::proto::CompleteAuthorizationRequest {
                handle: handle.clone(),
            },
        )
        .await
        .expect_err("no token");
    // The starter, demoted to viewer since, may no longer connect.
    let demoted = token_of(&app, user, app.workspace, Role::Viewer);
    let viewer = complete(&app, &handle, &demoted).await.expect_err("viewer");

    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    assert_eq!(viewer.code(), tonic::Code::PermissionDenied, "{viewer:?}");
    assert_eq!(fake.exchanges(), 0);
    app.stop().await;
}

#[tokio::test]
async fn rest_completes_on_the_handles_platform_only_and_returns_the_integration() {
    let (app, fake) = rig_with(Flavour::Google, Options::default(), |_| {}).await;
    fake.omit_refresh_token();
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;

    let (wrong, wrong_body) = complete_rest(&app, "outlook", &handle, &member).await;
    let (ok, body) = complete_rest(&app, "gmail", &handle, &member).await;

    assert_eq!(wrong, reqwest::StatusCode::BAD_REQUEST, "{wrong_body}");
    assert_eq!(
        wrong_body["error"]["field_violations"][0]["field"],
        "platform"
    );
    assert_eq!(ok, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["integration"]["platform"], "gmail");
    assert_eq!(body["integration"]["status"], "connected");
    assert_eq!(body["warning"], "scope_missing");
    assert_eq!(fake.exchanges(), 1);
    app.stop().await;
}

#[tokio::test]
async fn ten_concurrent_completes_of_one_handle_exchange_once() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;
    // A slow provider keeps the winner's exchange in flight while the others arrive.
    fake.slow_token_endpoint(Duration::from_millis(500));

    let answers = tokio::time::timeout(
        NO_HANG,
        futures::future::join_all((0..10).map(|_| complete(&app, &handle, &member))),
    )
    .await
    .expect("every complete answers");

    let ok = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(ok, 1, "{answers:#?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(reason(refused), "HANDLE_REUSED", "{refused:?}");
    }
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(count(&app, "integrations").await, 1);
    fake.assert_clean();
    app.stop().await;
}

#[tokio::test]
async fn the_exchange_runs_with_no_lock_on_the_handle_or_the_state() {
    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;
    fake.slow_token_endpoint(Duration::from_secs(3));
    let pool = app.pool().await;

    let completing = {
        let channel = app.channel().await;
        let (handle, member) = (handle.clone(), member.clone());
        tokio::spawn(async move {
            founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient::new(
                channel,
            )
            .complete_authorization(authed(
                founderhouse_integrations::proto::CompleteAuthorizationRequest { handle },
                &member,
            ))
            .await
        })
    };
    fake.wait_until("the exchange is at the provider", NO_HANG, |f| {
        f.exchanges() == 1
    })
    .await;
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE relation IN ('oauth_handles'::regclass, 'oauth_states'::regclass)
           AND pid <> pg_backend_pid()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let in_transaction: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND query ILIKE '%oauth_%' AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    assert_eq!(
        locks, 0,
        "the handle's claim committed before the provider call"
    );
    assert_eq!(in_transaction, 0);
    completing.await.unwrap().expect("completes");
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_handle_flow() {
    let (app, _fake) = rig(Flavour::Zoom).await;

    let doc: serde_json::Value = crate::helpers::http()
        .get(app.rest_url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let paths = &doc["paths"];
    let complete = &paths["/api/v1/oauth/{platform}/complete"]["post"];
    assert_eq!(
        complete["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["handle"])
    );
    assert!(complete["responses"]["403"].is_object(), "{complete}");
    let callback = &paths["/api/v1/oauth/{platform}/callback"]["get"];
    assert_eq!(callback["security"], json!([]));
    assert!(
        callback["description"]
            .as_str()
            .is_some_and(|d| d.contains("oauth_handle")),
        "{callback}"
    );
    for path in ["authorize", "refresh"] {
        assert!(paths[format!("/api/v1/oauth/{{platform}}/{path}")]["post"].is_object());
    }
    assert!(paths["/api/v1/oauth/{platform}/revoke"]["delete"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn keys_rewrap_moves_an_unredeemed_handles_code_and_it_still_completes() {
    use founderhouse_integrations::secrets::KeyRing;
    use founderhouse_integrations::service::system::{SealedTable, System};
    use founderhouse_integrations::store::Database;
    use founderhouse_integrations::store::db::PoolSettings;

    let (app, fake) = rig(Flavour::Zoom).await;
    let member = app.token(Role::Member);
    let handle = handle_for(&app, &fake, &member).await;
    let keys = format!("{},{}", app.keys, KeyRing::generate_entry());
    let ring = KeyRing::parse(&keys, None).expect("keys parse");
    let settings = PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
    };
    let system = System::new(
        Database::connect(&app.db_url, &settings).await.unwrap(),
        std::sync::Arc::new(ring),
    );

    let before = system.to_rewrap(SealedTable::OAuthHandles).await.unwrap();
    let report = system.rewrap(10, |_| {}).await.unwrap();
    let handles = report
        .tables
        .iter()
        .find(|t| t.table == SealedTable::OAuthHandles)
        .expect("oauth_handles is rewrapped");

    assert_eq!(before, 1);
    assert_eq!(
        (handles.rewrapped, handles.unopenable, handles.left),
        (1, 0, 0)
    );
    // A replica holding only the new key (the old one removed) still completes it.
    let new_only = keys.rsplit(',').next().expect("two entries").to_owned();
    let replica = super::spawn_replica(&app, |c| {
        fake.configure(c);
        c.keyring = KeyRing::parse(&new_only, None).expect("the new key parses");
    })
    .await;
    let done = founderhouse_integrations::proto::o_auth_service_client::OAuthServiceClient::new(
        replica.channel().await,
    )
    .complete_authorization(authed(
        founderhouse_integrations::proto::CompleteAuthorizationRequest { handle },
        &member,
    ))
    .await;
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(fake.exchanges(), 1);
    replica.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_cleanup_job_deletes_handles_an_hour_past_expiry_and_keeps_live_ones() {
    let (app, fake) = rig_with(Flavour::Zoom, Options::default(), |c| {
        c.oauth.refresh_interval = Duration::from_millis(100);
    })
    .await;
    let member = app.token(Role::Member);
    let old = handle_for(&app, &fake, &member).await;
    let live = handle_for(&app, &fake, &member).await;
    let pool = app.pool().await;
    sqlx::query(
        "UPDATE oauth_handles SET expires_at = now() - interval '61 minutes'
         WHERE handle_hash = sha256($1::bytea)",
    )
    .bind(old.as_bytes())
    .execute(&pool)
    .await
    .unwrap();

    let deadline = std::time::Instant::now() + NO_HANG;
    while count(&app, "oauth_handles").await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old handle was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let gone = complete(&app, &old, &member).await.expect_err("deleted");
    assert_eq!(reason(&gone), "HANDLE_NOT_FOUND");
    complete(&app, &live, &member)
        .await
        .expect("the live one completes");
    pool.close().await;
    app.stop().await;
}
