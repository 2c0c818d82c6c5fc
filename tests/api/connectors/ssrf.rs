//! SSRF: tenant- and provider-chosen URLs reach only public addresses. A ZeroDB base URL whose
//! name resolves to loopback, and a download redirected to an internal address, are refused
//! before any connection; `FH_CONNECTOR_ALLOW_PRIVATE_HOSTS` opts out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use founderhouse_integrations::domain::{Platform, Role};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::Code;

use super::fake::Scripted;
use super::fakes::zerodb::{self, KEY};
use super::fakes::zerovoice::{self, BASE, RECORDING, SID, TOKEN};
use super::{Rig, Setup};
use crate::helpers::reason;

/// A name that is not `localhost` yet resolves, without any network, only to loopback: one that
/// /etc/hosts maps to 127.0.0.1 (usually this machine's own hostname). The host-string check
/// knows only `localhost`, so this name tests the resolver.
async fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts is readable");
    for line in hosts.lines() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        if words.next() != Some("127.0.0.1") {
            continue;
        }
        for name in words {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("localhost") || lower.ends_with(".localhost") {
                continue;
            }
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
                .await
                .map(Iterator::collect)
                .unwrap_or_default();
            if !resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback()) {
                return name.to_owned();
            }
        }
    }
    panic!(
        "no name besides localhost maps to 127.0.0.1 in /etc/hosts; add one \
         (`127.0.0.1 ssrf-test`) to run the SSRF tests"
    );
}

/// A loopback port that counts the connections it accepts.
struct Tripwire {
    port: u16,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Tripwire {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // Counted before the socket closes, so before the client can see a failure.
                counted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A ZeroDB integration whose `base_url` names the fake by `host`.
async fn zerodb_rig(host: &str, allow_private_hosts: bool) -> Rig {
    let fake = zerodb::start().await;
    let base = format!("http://{host}:{}/v1", fake.addr.port());
    Rig::start_with(
        fake,
        Setup {
            platform: Platform::Zerodb,
            base_path: None,
            credentials: vec![("api_key", KEY.to_owned()), ("base_url", base)],
        },
        |c| c.connectors.allow_private_hosts = allow_private_hosts,
    )
    .await
}

fn assert_not_allowed(status: &tonic::Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), "BASE_URL_NOT_ALLOWED", "{status:?}");
}

#[tokio::test]
async fn a_zerodb_base_url_whose_name_resolves_to_loopback_is_refused_before_any_request() {
    let name = loopback_name().await;
    let rig = zerodb_rig(&name, false).await;

    let invoked = rig
        .invoke("zerodb.list_collections", json!({}))
        .await
        .unwrap_err();
    let proxied = rig
        .proxy_as(Role::Member, "GET", "/collections", &[], None)
        .await
        .unwrap_err();

    assert_not_allowed(&invoked);
    assert_not_allowed(&proxied);
    assert!(
        !invoked.message().contains(&name),
        "names no host: {invoked:?}"
    );
    assert_eq!(rig.fake.count(), 0, "the internal service heard nothing");
    rig.stop().await;
}

#[tokio::test]
async fn allowing_private_hosts_lets_the_same_name_reach_a_self_hosted_zerodb() {
    let name = loopback_name().await;
    let rig = zerodb_rig(&name, true).await;

    rig.invoke("zerodb.list_collections", json!({}))
        .await
        .unwrap();
    rig.proxy_as(Role::Member, "GET", "/collections", &[], None)
        .await
        .unwrap();

    assert_eq!(rig.fake.count(), 2);
    rig.stop().await;
}

/// ZeroVoice on its configured (trusted) base URL, private hosts not allowed.
async fn zerovoice_rig() -> Rig {
    Rig::start_with(
        zerovoice::start().await,
        Setup {
            platform: Platform::Zerovoice,
            base_path: Some(BASE),
            credentials: vec![
                ("account_sid", SID.to_owned()),
                ("auth_token", TOKEN.to_owned()),
            ],
        },
        |c| c.connectors.allow_private_hosts = false,
    )
    .await
}

#[tokio::test]
async fn a_download_redirected_to_an_internal_address_is_refused_without_connecting() {
    let rig = zerovoice_rig().await;
    let internal = Tripwire::start().await;
    let name = loopback_name().await;
    let port = internal.port;

    for target in [
        format!("https://127.0.0.1:{port}/media.wav"),
        format!("https://[::ffff:127.0.0.1]:{port}/media.wav"),
        format!("https://{name}:{port}/media.wav"),
    ] {
        rig.fake
            .then(Scripted::status(302, "").header("location", target.clone()));

        let err = rig
            .download(
                "zerovoice.download_recording",
                json!({"recording_sid": RECORDING, "format": "wav"}),
            )
            .await
            .unwrap_err();

        assert_not_allowed(&err);
        assert_eq!(internal.hits(), 0, "{target} was connected to");
    }
    assert_eq!(rig.fake.count(), 3, "the provider itself is trusted");
    rig.stop().await;
}

#[tokio::test]
async fn the_configured_base_url_stays_trusted_on_loopback() {
    let rig = zerovoice_rig().await;

    let messages = rig
        .download(
            "zerovoice.download_recording",
            json!({"recording_sid": RECORDING, "format": "wav"}),
        )
        .await
        .unwrap();

    assert!(!messages.is_empty());
    assert_eq!(
        rig.fake.count(),
        2,
        "the recording and its same-origin media"
    );
    rig.stop().await;
}
