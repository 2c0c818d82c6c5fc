//! Which provider account a connection is (issue 10, items 5 and 7): the identity call names
//! the account where the token response does not, so one member's reconnect cannot take over
//! another's integration; a grant nobody can name is an integration of its own; a pasted Slack
//! token's team is Slack's word, not the caller's, and only connections of the same bot keep
//! a bot token alive.

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    ConnectIntegrationRequest, DisconnectIntegrationRequest, IntegrationStatus, Platform,
};
use tonic::Code;

use super::{Flavour, connect_as, get, rig, status_of};
use crate::helpers::{TestApp, authed, violated_fields};

/// Connects through the whole OAuth flow as a new user of the app's workspace with `role`.
async fn connect_by(app: &TestApp, fake: &super::Fake, role: Role) -> String {
    connect_as(app, fake, &app.token(role), "")
        .await
        .assert_success(fake.flavour)
}

#[tokio::test]
async fn a_members_connection_never_replaces_an_admins_when_the_provider_names_both_users() {
    for flavour in [
        Flavour::Zoom,
        Flavour::Discord,
        Flavour::Monday,
        Flavour::Loom,
    ] {
        let (app, fake) = rig(flavour).await;
        fake.sign_in_as("admin-at-provider");
        let admins = connect_by(&app, &fake, Role::Admin).await;
        let admin_token = fake.grant(0).access_token;
        fake.sign_in_as("member-at-provider");

        let members = connect_by(&app, &fake, Role::Member).await;

        assert_ne!(admins, members, "{flavour:?}: the member took over");
        let viewer = app.token(Role::Viewer);
        let a = get(&app, &admins, &viewer).await;
        let m = get(&app, &members, &viewer).await;
        assert_eq!(a.provider_account_id, "admin-at-provider", "{flavour:?}");
        assert_eq!(m.provider_account_id, "member-at-provider", "{flavour:?}");
        assert_eq!(status_of(&a), IntegrationStatus::Connected);
        assert!(!fake.grant(0).revoked, "{flavour:?}");
        assert_eq!(fake.grant(0).access_token, admin_token);

        // The same user connecting again is a reconnect of their own integration.
        fake.sign_in_as("admin-at-provider");
        let again = connect_by(&app, &fake, Role::Admin).await;
        assert_eq!(
            again, admins,
            "{flavour:?}: a reconnect is the same integration"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_grant_whose_account_nobody_can_name_becomes_an_integration_of_its_own() {
    // Zoom's identity call failing, and a custom provider with no identity call at all.
    for flavour in [Flavour::Zoom, Flavour::Custom] {
        let (app, fake) = rig(flavour).await;
        fake.fail_identity(Some(500));

        let first = connect_by(&app, &fake, Role::Admin).await;
        let second = connect_by(&app, &fake, Role::Member).await;

        assert_ne!(
            first, second,
            "{flavour:?}: an unnamed grant matched another"
        );
        let viewer = app.token(Role::Viewer);
        for id in [&first, &second] {
            let i = get(&app, id, &viewer).await;
            assert_eq!(i.provider_account_id, "", "{flavour:?}");
            assert_eq!(status_of(&i), IntegrationStatus::Connected);
        }
        assert!(!fake.grant(0).revoked);
        assert!(!fake.grant(1).revoked);
        app.stop().await;
    }
}

async fn paste_slack(
    app: &TestApp,
    token: &str,
    access_token: &str,
    team_id: Option<&str>,
) -> Result<founderhouse_integrations::proto::Integration, tonic::Status> {
    let mut credentials =
        std::collections::HashMap::from([("access_token".to_owned(), access_token.to_owned())]);
    if let Some(team) = team_id {
        credentials.insert("team_id".to_owned(), team.to_owned());
    }
    app.integrations()
        .await
        .connect_integration(authed(
            ConnectIntegrationRequest {
                platform: Platform::Slack as i32,
                credentials,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().integration.expect("an integration"))
}

#[tokio::test]
async fn a_pasted_slack_tokens_team_is_the_one_slack_names() {
    let (app, fake) = rig(Flavour::Slack).await;
    connect_by(&app, &fake, Role::Admin).await;
    let user_token = fake.grant(0).user_token.expect("a user token");
    let outsider = app.token_for(uuid::Uuid::new_v4(), Role::Admin);

    let claimed = paste_slack(&app, &outsider, &user_token, Some("T999"))
        .await
        .unwrap_err();
    assert_eq!(claimed.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&claimed), vec!["credentials.team_id"]);

    let forged = paste_slack(&app, &outsider, "xoxb-forged-0000", Some("T123"))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&forged), vec!["credentials.access_token"]);

    let pasted = paste_slack(&app, &outsider, &user_token, None)
        .await
        .expect("a real token of the team connects");
    assert_eq!(
        pasted.provider_account_id, "T123",
        "auth.test names the team"
    );
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_pasted_token_of_the_team_does_not_keep_the_bot_token_alive() {
    let (app, fake) = rig(Flavour::Slack).await;
    let installed = connect_by(&app, &fake, Role::Admin).await;
    let user_token = fake.grant(0).user_token.expect("a user token");
    let outsider = app.token_for(uuid::Uuid::new_v4(), Role::Admin);
    paste_slack(&app, &outsider, &user_token, Some("T123"))
        .await
        .expect("a real token of the team connects");

    let response = app
        .integrations()
        .await
        .disconnect_integration(authed(
            DisconnectIntegrationRequest {
                name: installed.clone(),
            },
            &app.token(Role::Admin),
        ))
        .await
        .expect("disconnects")
        .into_inner();

    let bot = response
        .revocations
        .iter()
        .find(|r| r.token_type == "bot_token")
        .expect("a bot token entry");
    assert!(
        bot.revoked_upstream,
        "a pasted user token holds no bot token: {bot:?}"
    );
    assert!(fake.slack_bot_revoked("T123"));
    app.stop().await;
}

#[tokio::test]
async fn a_shared_bot_token_answer_discloses_no_other_tenants_count() {
    let (app, fake) = rig(Flavour::Slack).await;
    let first = connect_by(&app, &fake, Role::Admin).await;
    let other = uuid::Uuid::new_v4();
    connect_as(&app, &fake, &app.token_for(other, Role::Admin), "")
        .await
        .assert_success(Flavour::Slack);

    let response = app
        .integrations()
        .await
        .disconnect_integration(authed(
            DisconnectIntegrationRequest { name: first },
            &app.token(Role::Admin),
        ))
        .await
        .expect("disconnects")
        .into_inner();

    let bot = response
        .revocations
        .iter()
        .find(|r| r.token_type == "bot_token")
        .expect("a bot token entry");
    assert!(!bot.revoked_upstream);
    assert_eq!(bot.reason, "SHARED_BOT_TOKEN");
    assert!(
        !bot.message.chars().any(|c| c.is_ascii_digit()),
        "no count of other tenants' connections: {}",
        bot.message
    );
    app.stop().await;
}

#[tokio::test]
async fn another_users_slack_reconnect_revokes_the_user_token_it_replaces() {
    let (app, fake) = rig(Flavour::Slack).await;
    let first = connect_by(&app, &fake, Role::Admin).await;

    let second = connect_by(&app, &fake, Role::Member).await;

    assert_eq!(first, second, "one connection per Slack team and workspace");
    assert!(
        fake.grant(0).user_revoked,
        "the replaced user token is nobody's now"
    );
    assert!(!fake.grant(1).user_revoked);
    assert!(
        !fake.slack_bot_revoked("T123"),
        "the bot token is the installation's"
    );
    fake.assert_clean();
    app.stop().await;
}
