//! The sweep: new integrations probed soon after they connect, replicas sharing one database
//! without probing anything twice in an interval, a dead sweeper's lease taken over, and
//! retention of the history.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Platform;

use super::{connect_other, rig_with};
use crate::connectors::Rig;
use crate::connectors::fake::Scripted;
use crate::connectors::fakes::fireflies::PATH;

/// Replica settings that reach the rig's fake and sweep every `every`.
fn sweeping(rig: &Rig, every: Duration) -> impl FnOnce(&mut Config) + use<> {
    let base = rig.fake.url(PATH);
    move |c: &mut Config| {
        c.connectors.policy = crate::connectors::fast_policy();
        c.connectors
            .base_urls
            .set(Platform::Fireflies, &base)
            .expect("a valid base URL");
        c.health.sweep = true;
        c.health.check_interval = every;
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_new_integration_is_probed_soon_after_it_connects() {
    let rig = rig_with(|c| c.health.sweep = true).await;
    let pool = rig.app.pool().await;

    wait_for("the first probe", async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM health_checks WHERE source = 'probe'")
            .fetch_one(&pool)
            .await
            .unwrap()
            > 0
    })
    .await;

    let (state, next_in): (String, f64) = sqlx::query_as(
        "SELECT health_state, EXTRACT(EPOCH FROM next_check_at - now())::float8 FROM integrations",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(state, "healthy");
    assert!(
        next_in > 5.0 * 3600.0,
        "rescheduled at the 6 h interval, not in {next_in} s"
    );
    rig.stop().await;
}

#[tokio::test]
async fn two_replicas_share_the_sweep_and_never_probe_one_integration_twice_in_an_interval() {
    let rig = rig_with(|_| {}).await;
    for i in 0..24 {
        connect_other(&rig.app, &format!("account-{i}")).await;
    }
    let every = Duration::from_secs(2);
    let a = crate::oauth::spawn_replica(&rig.app, sweeping(&rig, every)).await;
    let b = crate::oauth::spawn_replica(&rig.app, sweeping(&rig, every)).await;
    let pool = rig.app.pool().await;

    // Two full intervals and a bit.
    wait_for("every integration probed twice", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT integration_id FROM health_checks
             GROUP BY integration_id HAVING count(*) >= 2) twice",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == 25
    })
    .await;
    a.stop().await;
    b.stop().await;

    let rows: Vec<(uuid::Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT integration_id, checked_at FROM health_checks ORDER BY integration_id, checked_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for pair in rows.windows(2) {
        if pair[0].0 == pair[1].0 {
            let gap = (pair[1].1 - pair[0].1).to_std().unwrap();
            assert!(
                gap >= every - Duration::from_millis(50),
                "integration {} probed twice within {gap:?}",
                pair[0].0
            );
        }
    }
    rig.stop().await;
}

/// Transitions are group-committed (several in one transaction): a first sweep of many on two
/// replicas still writes each integration's transition once, and a stream carries every one
/// in seq order, as the table has them.
#[tokio::test]
async fn a_burst_of_transitions_on_two_replicas_is_each_committed_and_streamed_once_in_order() {
    let rig = rig_with(|_| {}).await;
    for i in 0..40 {
        connect_other(&rig.app, &format!("account-{i}")).await;
    }
    let pool = rig.app.pool().await;
    let mut stream = super::watch(
        rig.app.channel().await,
        &rig.app
            .token(founderhouse_integrations::domain::Role::Viewer),
        super::from(0),
    )
    .await
    .unwrap();
    for _ in 0..41 {
        assert!(
            super::next(&mut stream).await.snapshot,
            "the snapshot first"
        );
    }
    let unknown: i64 =
        sqlx::query_scalar("SELECT count(*) FROM integrations WHERE health_state = 'unknown'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(unknown >= 40, "the new ones are unchecked");
    let every = Duration::from_secs(3600);
    let a = crate::oauth::spawn_replica(&rig.app, sweeping(&rig, every)).await;
    let b = crate::oauth::spawn_replica(&rig.app, sweeping(&rig, every)).await;

    let mut streamed = Vec::new();
    for _ in 0..unknown {
        let e = super::next(&mut stream).await;
        assert!(!e.snapshot);
        streamed.push((e.seq, e.integration));
    }
    a.stop().await;
    b.stop().await;

    assert!(
        streamed.windows(2).all(|w| w[0].0 < w[1].0),
        "in seq order: {streamed:?}"
    );
    let mut names: Vec<&String> = streamed.iter().map(|(_, n)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len() as i64,
        unknown,
        "each integration's transition once"
    );
    let table: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM health_events WHERE previous_state = 'unknown' AND state <> 'unknown'
         ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let seqs: Vec<i64> = streamed.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs, table,
        "the stream carries the table's events, no more"
    );
    assert!(
        super::quiet(&mut stream, Duration::from_millis(300)).await,
        "and nothing twice after them"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_claims_of_a_sweeper_killed_mid_probe_are_taken_over_when_their_lease_ends() {
    let rig = rig_with(|_| {}).await;
    let pool = rig.app.pool().await;
    // The provider hangs, so the first sweeper is certainly mid-probe when it dies.
    rig.fake
        .then(Scripted::status(200, "{}").delayed(Duration::from_secs(60)));
    let short = |c: &mut Config| {
        c.connectors.policy.default_deadline = Duration::from_secs(1);
    };
    let doomed = {
        let base = sweeping(&rig, Duration::from_secs(3600));
        crate::oauth::spawn_replica(&rig.app, move |c| {
            base(c);
            short(c);
        })
        .await
    };
    wait_for("the doomed sweeper's probe", async || rig.fake.count() > 0).await;
    doomed.kill().await;
    let claimed_until: DateTime<Utc> =
        sqlx::query_scalar("SELECT check_claimed_until FROM integrations")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        claimed_until > Utc::now(),
        "the dead sweeper's claim stands"
    );

    let heir = {
        let base = sweeping(&rig, Duration::from_secs(3600));
        crate::oauth::spawn_replica(&rig.app, move |c| {
            base(c);
            short(c);
        })
        .await
    };
    wait_for("the heir's probe", async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM health_checks")
            .fetch_one(&pool)
            .await
            .unwrap()
            > 0
    })
    .await;

    let checked_at: DateTime<Utc> = sqlx::query_scalar("SELECT checked_at FROM health_checks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        checked_at >= claimed_until,
        "taken over only once the lease ended ({checked_at} < {claimed_until})"
    );
    assert_eq!(rig.fake.count(), 2, "probed once by each sweeper");
    heir.stop().await;
    rig.stop().await;
}

#[tokio::test]
async fn history_past_its_retention_is_pruned() {
    let rig = rig_with(|c| c.health.history_retention = Duration::from_millis(300)).await;
    super::check(&rig, founderhouse_integrations::domain::Role::Member)
        .await
        .unwrap();
    let pool = rig.app.pool().await;

    wait_for("the history to be pruned", async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM health_checks")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    rig.stop().await;
}

/// Runs of the token refresh job so far, from `/metrics`.
async fn refresh_runs(app: &crate::helpers::TestApp) -> u64 {
    let text = crate::helpers::http()
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

#[tokio::test]
async fn a_grant_unused_for_the_keepalive_is_refreshed_before_a_providers_inactivity_cliff() {
    use crate::oauth::{Flavour, NO_HANG, Options};
    let (app, fake) = crate::oauth::rig_with(Flavour::Discord, Options::default(), |c| {
        crate::oauth::fast_refresh_loop(c, Duration::from_secs(300), Duration::from_millis(100));
        c.oauth.refresh_keepalive = Duration::from_secs(30 * 24 * 3600);
    })
    .await;
    // A day-long access token: never due by expiry in this test.
    fake.expires_in(Some(86_400), None);
    crate::oauth::connect_ok(&app, &fake).await;
    let runs = refresh_runs(&app).await;
    wait_for("three refresh runs", async || {
        refresh_runs(&app).await >= runs + 3
    })
    .await;
    assert_eq!(fake.refreshes(), 0, "a fresh grant is left alone");

    // Unused for 31 days, as far as the database knows.
    sqlx::query(
        "UPDATE integrations SET tokens_refreshed_at = now() - interval '31 days',
             created_at = now() - interval '31 days'",
    )
    .execute(&app.pool().await)
    .await
    .unwrap();

    fake.wait_until("the keep-alive refresh", NO_HANG, |f| f.refreshes() >= 1)
        .await;
    let refreshed_ago: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM now() - tokens_refreshed_at)::float8 FROM integrations",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert!(refreshed_ago < 60.0, "the grant is fresh again");
    let runs = refresh_runs(&app).await;
    wait_for("three more runs", async || {
        refresh_runs(&app).await >= runs + 3
    })
    .await;
    assert_eq!(fake.refreshes(), 1, "refreshed once, not on every run");
    app.stop().await;
}
