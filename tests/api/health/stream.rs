//! WatchHealthEvents: snapshot then deltas, resume by seq with no gap or duplicate, delivery
//! across replicas, retention, lagging subscribers, a lost listener connection, and shutdown.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::{HealthState, IntegrationId, Role};
use founderhouse_integrations::proto::{self, HealthState as S, WatchHealthEventsRequest};
use founderhouse_integrations::store;
use tonic::Code;

use super::{check, connect_other, from, next, quiet, rig, rig_with, state, watch};
use crate::connectors::fake::Scripted;
use crate::helpers::reason;

fn id_of(name: &str) -> IntegrationId {
    IntegrationId(name.rsplit('/').next().unwrap().parse().unwrap())
}

/// Commits `n` transitions of `name` in one transaction, alternating HEALTHY and DEGRADED,
/// through the store's own transition code. Returns the last seq.
async fn burst(app: &crate::helpers::TestApp, name: &str, n: usize) -> i64 {
    let pool = app.pool().await;
    let mut tx = pool.begin().await.unwrap();
    let mut last = 0;
    for i in 0..n {
        let to = if i % 2 == 0 {
            HealthState::Healthy
        } else {
            HealthState::Degraded
        };
        let e = store::health::transition(&mut tx, id_of(name), to, "", "burst", true, false)
            .await
            .unwrap()
            .unwrap();
        last = e.seq;
    }
    tx.commit().await.unwrap();
    last
}

#[tokio::test]
async fn a_stream_starts_with_a_snapshot_then_sends_each_change() {
    let rig = rig().await;
    let viewer = rig.app.token(Role::Viewer);
    let mut stream = watch(rig.app.channel().await, &viewer, from(0))
        .await
        .unwrap();

    let snap = next(&mut stream).await;
    check(&rig, Role::Member).await.unwrap();
    let change = next(&mut stream).await;
    let other = connect_other(&rig.app, "second").await;
    let connected = next(&mut stream).await;

    assert!(snap.snapshot);
    assert_eq!(snap.integration, rig.integration);
    assert_eq!(state(&snap), S::Unknown);
    assert_eq!(snap.platform, proto::Platform::Fireflies as i32);
    assert!(!change.snapshot);
    assert!(change.seq > snap.seq);
    assert_eq!(change.integration, rig.integration);
    assert_eq!(change.previous_state, S::Unknown as i32);
    assert_eq!(state(&change), S::Healthy);
    assert!(change.time.is_some());
    assert_eq!(connected.integration, other);
    assert_eq!(connected.reason, "CONNECTED");
    assert!(connected.seq > change.seq);
    rig.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_snapshot_and_the_changes() {
    let rig = rig().await;
    let other = connect_other(&rig.app, "second").await;
    let mut by_name = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        WatchHealthEventsRequest {
            integrations: vec![other.clone()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut by_state = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        WatchHealthEventsRequest {
            states: vec![S::NeedsReauth as i32],
            platforms: vec![proto::Platform::Fireflies as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let snap = next(&mut by_name).await;
    check(&rig, Role::Member).await.unwrap();
    super::check_named(&rig, &other, Role::Member)
        .await
        .unwrap();
    let change = next(&mut by_name).await;
    let reauth = next(&mut by_state).await;

    assert_eq!(
        (snap.integration.as_str(), snap.snapshot),
        (other.as_str(), true)
    );
    assert_eq!(change.integration, other);
    assert_eq!(state(&change), S::NeedsReauth);
    assert_eq!(
        reauth.integration, other,
        "the healthy one was filtered out"
    );
    assert!(quiet(&mut by_state, Duration::from_millis(300)).await);

    let bad = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        WatchHealthEventsRequest {
            states: vec![99],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let negative = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(-1),
    )
    .await
    .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
    rig.stop().await;
}

#[tokio::test]
async fn a_stream_never_carries_another_workspaces_event() {
    let rig = rig().await;
    let outsider = rig.app.token_for(uuid::Uuid::new_v4(), Role::Admin);
    let mut theirs = watch(rig.app.channel().await, &outsider, from(0))
        .await
        .unwrap();

    check(&rig, Role::Member).await.unwrap();
    burst(&rig.app, &rig.integration, 10).await;

    assert!(
        quiet(&mut theirs, Duration::from_millis(500)).await,
        "no snapshot of, and no change to, another workspace's integration"
    );
    rig.stop().await;
}

#[tokio::test]
async fn resuming_by_seq_replays_then_goes_live_with_no_gap_and_no_duplicate() {
    let rig = rig().await;
    let viewer = rig.app.token(Role::Viewer);
    let pool = rig.app.pool().await;
    let start: i64 = sqlx::query_scalar("SELECT max(seq) FROM health_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    // A writer commits transitions while the stream resumes and switches to live.
    let writer = {
        let name = rig.integration.clone();
        let db = rig.app.db_url.clone();
        tokio::spawn(async move {
            let pool = sqlx::PgPool::connect(&db).await.unwrap();
            let mut last = 0;
            for i in 0..60 {
                let to = if i % 2 == 0 {
                    HealthState::Healthy
                } else {
                    HealthState::Degraded
                };
                let mut tx = pool.begin().await.unwrap();
                last = store::health::transition(&mut tx, id_of(&name), to, "", "w", true, false)
                    .await
                    .unwrap()
                    .unwrap()
                    .seq;
                tx.commit().await.unwrap();
            }
            last
        })
    };
    // Let some land first, so the resume has something to replay.
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM health_events WHERE seq > $1")
        .bind(start)
        .fetch_one(&pool)
        .await
        .unwrap()
        < 10
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut stream = watch(rig.app.channel().await, &viewer, from(start))
        .await
        .unwrap();
    let last = writer.await.unwrap();
    let mut got = Vec::new();
    while got.last().is_none_or(|s| *s < last) {
        let e = next(&mut stream).await;
        assert!(!e.snapshot);
        got.push(e.seq);
    }

    let expected: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM health_events WHERE seq > $1 ORDER BY seq")
            .bind(start)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(got, expected, "every event once, in order");
    assert!(quiet(&mut stream, Duration::from_millis(200)).await);
    rig.stop().await;
}

#[tokio::test]
async fn a_change_committed_on_replica_a_reaches_a_stream_on_replica_b() {
    let rig = rig().await;
    let b = crate::oauth::spawn_replica(&rig.app, |c| {
        c.connectors.policy = crate::connectors::fast_policy();
    })
    .await;
    let mut on_b = watch(b.channel().await, &rig.app.token(Role::Viewer), from(0))
        .await
        .unwrap();
    let snap = next(&mut on_b).await;

    // Replica A (the rig's app) runs the check.
    rig.fake.then(Scripted::status(503, "{}"));
    check(&rig, Role::Member).await.unwrap();
    let e = next(&mut on_b).await;

    assert!(snap.snapshot);
    assert_eq!(e.integration, rig.integration);
    assert_eq!(state(&e), S::Degraded);
    assert_eq!(e.reason, "PROVIDER_UNAVAILABLE");
    b.stop().await;
    rig.stop().await;
}

#[tokio::test]
async fn a_resume_point_older_than_the_retained_events_is_out_of_range() {
    let rig = rig_with(|c| c.health.event_retention = Duration::from_millis(500)).await;
    let first = burst(&rig.app, &rig.integration, 3).await;
    let pool = rig.app.pool().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while sqlx::query_scalar::<_, i64>("SELECT pruned_through FROM health_event_retention")
        .fetch_one(&pool)
        .await
        .unwrap()
        < first
    {
        assert!(Instant::now() < deadline, "retention prunes old events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let err = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(1),
    )
    .await
    .unwrap_err();
    let fresh = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(0),
    )
    .await;

    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(reason(&err), "EVENTS_EXPIRED");
    assert!(fresh.is_ok(), "a snapshot is always possible");
    let ahead = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(first + 1000),
    )
    .await
    .unwrap_err();
    assert_eq!(ahead.code(), Code::InvalidArgument);
    rig.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_lags_behind_the_buffer_catches_up_from_the_table() {
    let rig = rig_with(|c| c.health.stream_buffer = 2).await;
    let mut stream = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(0),
    )
    .await
    .unwrap();
    let snap = next(&mut stream).await;

    // 300 events committed at once overrun a 2-event buffer.
    let last = burst(&rig.app, &rig.integration, 300).await;
    let mut got = Vec::new();
    while got.last().is_none_or(|s| *s < last) {
        got.push(next(&mut stream).await.seq);
    }

    let expected: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM health_events WHERE seq > $1 ORDER BY seq")
            .bind(snap.seq)
            .fetch_all(&rig.app.pool().await)
            .await
            .unwrap();
    assert_eq!(got.len(), 300);
    assert_eq!(got, expected, "nothing lost, nothing twice, in order");
    let metrics = crate::helpers::http()
        .get(rig.app.rest_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fh_health_stream_lagged_total"),
        "the stream did lag: {metrics}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_listener_survives_a_cut_database_connection_without_losing_an_event() {
    let rig = rig().await;
    let mut stream = watch(
        rig.app.channel().await,
        &rig.app.token(Role::Viewer),
        from(0),
    )
    .await
    .unwrap();
    let snap = next(&mut stream).await;
    let pool = rig.app.pool().await;

    // Cut the listener's connection, as a PostgreSQL restart or a proxy would, and commit
    // events right away, while it is down or reconnecting.
    let cut: Vec<i32> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid)::int FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let last = burst(&rig.app, &rig.integration, 5).await;
    let mut got = Vec::new();
    while got.last().is_none_or(|s| *s < last) {
        got.push(next(&mut stream).await.seq);
    }
    // And the listener is live again afterwards (the burst left it HEALTHY).
    rig.fake.then(Scripted::status(401, "{}"));
    check(&rig, Role::Member).await.unwrap();
    let after = next(&mut stream).await;

    assert_eq!(cut, [1], "the listener's connection was cut");
    let expected: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM health_events WHERE seq > $1 AND seq <= $2 ORDER BY seq",
    )
    .bind(snap.seq)
    .bind(last)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(got, expected);
    assert!(after.seq > last);
    rig.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_promptly_with_unavailable() {
    let rig = rig().await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut s = watch(
            rig.app.channel().await,
            &rig.app.token(Role::Viewer),
            from(0),
        )
        .await
        .unwrap();
        next(&mut s).await;
        streams.push(s);
    }

    let started = Instant::now();
    let app = rig.app;
    let stopping = tokio::spawn(app.stop());
    for s in &mut streams {
        let end = tokio::time::timeout(Duration::from_secs(2), s.message())
            .await
            .expect("the stream ends promptly");
        let status = end.expect_err("an error, not a clean end");
        assert_eq!(status.code(), Code::Unavailable);
    }
    stopping.await.unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
