//! No credential value anywhere: every log line at TRACE, and every answer of a connector cycle
//! (successes, provider errors that echo the key, 401s, proxy answers, downloads, tests).

use founderhouse_integrations::domain::Role;
use serde_json::json;

use super::fake::Scripted;
use super::fakes::{fireflies, zerovoice};
use crate::leaks::{capture_logs, logs};

/// Everything the client received, as text.
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    fn keep<T: std::fmt::Debug>(&mut self, r: &Result<T, tonic::Status>) {
        match r {
            Ok(v) => self.0.push(format!("{v:?}")),
            Err(s) => {
                self.0.push(format!("{s:?}"));
                self.0
                    .push(String::from_utf8_lossy(s.details()).into_owned());
                self.0.push(format!("{:?}", s.metadata()));
            }
        }
    }
}

fn assert_absent(secrets: &[(&str, String)], place: &str, text: &str) {
    for (what, value) in secrets {
        assert!(
            !text.contains(value.as_str()),
            "the {what} appears in {place}"
        );
    }
}

#[tokio::test]
async fn a_connector_cycle_leaks_no_credential_into_logs_or_answers() {
    capture_logs();
    let mut answers = Answers::default();
    let secrets = [
        ("fireflies key", fireflies::KEY.to_owned()),
        ("twilio auth token", zerovoice::TOKEN.to_owned()),
        ("twilio basic header", zerovoice::basic()),
    ];

    let ff = super::fireflies::rig().await;
    answers.keep(&ff.invoke("fireflies.list_transcripts", json!({})).await);
    answers.keep(
        &ff.invoke("fireflies.get_transcript", json!({"id": "missing"}))
            .await,
    );
    ff.fake.then(Scripted::status(
        400,
        json!({"message": format!("key {} is not allowed here", fireflies::KEY)}).to_string(),
    ));
    answers.keep(
        &ff.invoke("fireflies.get_summary", json!({"id": "t1"}))
            .await,
    );
    ff.fake
        .then(Scripted::status(401, r#"{"message": "bad key"}"#));
    answers.keep(
        &ff.invoke("fireflies.get_summary", json!({"id": "t1"}))
            .await,
    );
    ff.fake.then(Scripted::status(
        403,
        json!({"echo": fireflies::KEY, "authorization": format!("Bearer {}", fireflies::KEY)})
            .to_string(),
    ));
    answers.keep(
        &ff.proxy_as(
            Role::Admin,
            "POST",
            "/graphql",
            &[],
            Some(json!({"query": "{ user { name } }"})),
        )
        .await,
    );
    answers.keep(
        &ff.invoke(
            "fireflies.graphql_query",
            json!({"query": "mutation { x }", "variables": {"a": 1}}),
        )
        .await,
    );
    answers.keep(&ff.test_as(Role::Admin).await);
    ff.stop().await;

    let zv = super::zerovoice::rig().await;
    answers.keep(
        &zv.invoke(
            "zerovoice.send_sms",
            json!({"to": "+15005550001", "from": "+14155550199", "body": "x"}),
        )
        .await,
    );
    answers.keep(
        &zv.invoke("zerovoice.list_messages", json!({"page_size": 1}))
            .await,
    );
    answers.keep(
        &zv.download(
            "zerovoice.download_recording",
            json!({"recording_sid": zerovoice::RECORDING, "format": "wav"}),
        )
        .await
        .map(|m| m.len()),
    );
    answers.keep(&zv.test_as(Role::Member).await);
    zv.stop().await;

    let logs = logs();
    assert!(
        logs.contains("running a write operation"),
        "the capture works"
    );
    assert!(
        logs.contains("provider rejected the credentials"),
        "the capture works"
    );
    assert!(logs.contains("TRACE"), "every level is captured");
    assert_absent(&secrets, "the logs", &logs);
    for (n, answer) in answers.0.iter().enumerate() {
        assert_absent(&secrets, &format!("answer #{n}"), answer);
    }
    assert!(
        answers.0.iter().any(|a| a.contains("[redacted]")),
        "echoed keys were scrubbed, not dropped"
    );
}
