//! A sealed row that does not open (its key removed, its bytes tampered with, or moved to another
//! workspace) is never fatal: the revocation retry job goes on past it, and a callback whose
//! state holds such a verifier ends with a clean error.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::RevokeIntegrationRequest;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::authed;
use crate::oauth::{
    Fake, Flavour, Options, at_provider, connect_ok, follow_to_app, oauth_client, rig, rig_with,
    start,
};

async fn pending(pool: &PgPool) -> Vec<(Uuid, i32)> {
    sqlx::query_as(
        "SELECT integration_id, attempts FROM pending_revocations ORDER BY integration_id",
    )
    .fetch_all(pool)
    .await
    .expect("pending revocations")
}

#[tokio::test]
async fn queued_revocations_that_do_not_open_are_dropped_or_backed_off_and_the_others_still_go() {
    // Retries are not due by themselves within the test; the test makes them due.
    let (app, fake) = rig_with(Flavour::Google, Options::default(), |c| {
        c.oauth.revocation_retry_base = Duration::from_secs(3600);
        c.oauth.refresh_interval = Duration::from_millis(100);
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..4 {
        fake.sign_in_as(&format!("sub-{n}"));
        ids.push(connect_ok(&app, &fake).await.id);
    }
    fake.fail_revocation(Some(503));
    for id in &ids {
        oauth_client(&app)
            .await
            .revoke_integration(authed(
                RevokeIntegrationRequest { name: id.clone() },
                &app.token(Role::Admin),
            ))
            .await
            .expect("revokes locally");
    }
    let pool = app.pool().await;
    let ids: Vec<Uuid> = ids.iter().map(|i| Uuid::parse_str(i).unwrap()).collect();
    assert_eq!(pending(&pool).await.len(), 4, "one queued per integration");

    // 0: tampered (never opens); 1: its key removed (may come back); 2: its key removed and its
    // attempts all but spent (12 in all); 3: intact. The bad ones are due first.
    let tamper = [
        "UPDATE pending_revocations
             SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)
         WHERE integration_id = $1",
        "UPDATE pending_revocations SET key_id = 'removed' WHERE integration_id = $1",
        "UPDATE pending_revocations SET key_id = 'removed', attempts = 11 WHERE integration_id = $1",
    ];
    for (sql, id) in tamper.into_iter().zip(&ids) {
        sqlx::query(sql)
            .bind(id)
            .execute(&pool)
            .await
            .expect("tampered");
    }
    fake.fail_revocation(None);
    sqlx::query(
        "UPDATE pending_revocations SET next_attempt_at = now() - interval '1 hour'
             + (CASE WHEN integration_id = $1 THEN interval '1 minute' ELSE interval '0' END)",
    )
    .bind(ids[3])
    .execute(&pool)
    .await
    .expect("made due");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pending(&pool).await;
        if fake.grant(3).revoked && left == [(ids[1], 1)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected only the removed-key row left with one attempt, and the intact one sent: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..3 {
        assert!(!fake.grant(n).revoked, "grant {n} was never sent");
    }
    fake.assert_clean();
    pool.close().await;
    app.stop().await;
}

/// Starts a connection and lets the fake consent; returns the redirect back to the callback.
async fn consented(app: &crate::helpers::TestApp, fake: &Fake) -> reqwest::Url {
    let started = start(app, fake.flavour, "", &app.token(Role::Member))
        .await
        .expect("starts");
    at_provider(&started.authorization_url).await
}

#[tokio::test]
async fn a_callback_whose_verifier_does_not_open_ends_with_server_error_and_never_calls_the_provider()
 {
    let (app, fake) = rig(Flavour::Google).await;
    let pool = app.pool().await;
    let elsewhere = Uuid::new_v4();
    let cases = [
        (
            "moved to another workspace",
            "UPDATE oauth_states SET workspace_id = $1 WHERE consumed_at IS NULL",
        ),
        (
            "under a removed key",
            "UPDATE oauth_states SET verifier_key_id = 'removed' WHERE consumed_at IS NULL AND $1::uuid IS NOT NULL",
        ),
    ];
    for (case, sql) in cases {
        let redirect = consented(&app, &fake).await;
        let changed = sqlx::query(sql)
            .bind(elsewhere)
            .execute(&pool)
            .await
            .expect("state changed");
        assert_eq!(changed.rows_affected(), 1, "{case}");
        let landing = follow_to_app(&app, &redirect).await;
        landing.assert_error("server_error", fake.flavour);
        assert_eq!(fake.exchanges(), 0, "{case}: the code was never exchanged");
    }
    let integrations: i64 = sqlx::query_scalar("SELECT count(*) FROM integrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(integrations, 0);

    // Nothing else is affected: the next connection goes through.
    connect_ok(&app, &fake).await;
    assert_eq!(fake.exchanges(), 1);
    fake.assert_clean();
    pool.close().await;
    app.stop().await;
}
