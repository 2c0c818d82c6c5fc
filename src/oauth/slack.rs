//! Slack's OAuth quirks, as pure functions: its `ok:false` envelope, its bot and user tokens,
//! and which of them a disconnect may revoke.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::Secret;

/// The error code of an answer in Slack's envelope, `None` when it says `ok:true`.
pub(super) fn error_code(answer: &Map<String, Value>) -> Option<String> {
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(
        answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("not_ok")
            .to_owned(),
    )
}

/// A grant with user scopes only has no top-level token: its user token is then the
/// connection's access token (moved, so it is not stored twice).
pub(super) fn hoist_user_token(answer: &mut Map<String, Value>) {
    let has_bot = answer
        .get("access_token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if has_bot {
        return;
    }
    if let Some(Value::Object(user)) = answer.get_mut("authed_user")
        && let Some(token) = user.remove("access_token")
    {
        answer.insert("access_token".to_owned(), token);
    }
}

/// `auth.revoke` codes that mean the token is already dead: the goal is met.
pub fn already_revoked(code: &str) -> bool {
    matches!(code, "invalid_auth" | "token_revoked" | "account_inactive")
}

/// A refresh with the user's refresh token answers in the bot's field names; these are the
/// names the user's tokens are stored under.
pub fn as_user_fields(
    fields: Vec<(&'static str, Secret<String>)>,
) -> Vec<(&'static str, Secret<String>)> {
    fields
        .into_iter()
        .map(|(field, value)| {
            let renamed = match field {
                "access_token" => "user_token",
                "refresh_token" => "user_refresh_token",
                other => other,
            };
            (renamed, value)
        })
        .collect()
}

/// What a Slack disconnect revokes. The bot token is shared by every connection of a Slack
/// team, so whether it may go is the caller's question (is another live connection left).
#[derive(Debug, Default)]
pub struct RevocationTargets<'a> {
    /// The user's token: always this connection's alone.
    pub user: Option<&'a Secret<String>>,
    /// The team's bot token.
    pub bot: Option<&'a Secret<String>>,
}

/// Classifies stored credentials: `user_token` is the user token; `access_token` is a bot
/// token when it looks like one (`xoxb-`) or a user token sits beside it, and otherwise the
/// user token of a user-scopes-only grant.
pub fn revocation_targets(creds: &BTreeMap<String, Secret<String>>) -> RevocationTargets<'_> {
    let user = creds.get("user_token");
    let access = creds.get("access_token");
    let bot = access.filter(|t| t.expose().starts_with("xoxb-") || user.is_some());
    RevocationTargets {
        user: user.or(access.filter(|_| bot.is_none())),
        bot,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::new((*v).to_owned())))
            .collect()
    }

    fn exposed(t: Option<&Secret<String>>) -> Option<&str> {
        t.map(|s| s.expose().as_str())
    }

    #[test]
    fn a_bot_token_and_a_user_token_are_both_revocation_targets() {
        let c = creds(&[("access_token", "xoxb-1"), ("user_token", "xoxp-1")]);
        let t = revocation_targets(&c);
        assert_eq!(exposed(t.user), Some("xoxp-1"));
        assert_eq!(exposed(t.bot), Some("xoxb-1"));
    }

    #[test]
    fn a_rotated_bot_token_beside_a_user_token_is_still_the_bot_token() {
        let c = creds(&[
            ("access_token", "xoxe.xoxb-1"),
            ("user_token", "xoxe.xoxp-1"),
        ]);
        let t = revocation_targets(&c);
        assert_eq!(exposed(t.user), Some("xoxe.xoxp-1"));
        assert_eq!(exposed(t.bot), Some("xoxe.xoxb-1"));
    }

    #[test]
    fn an_access_token_alone_that_is_no_bot_token_is_the_user_token() {
        let c = creds(&[("access_token", "xoxp-1")]);
        let t = revocation_targets(&c);
        assert_eq!(exposed(t.user), Some("xoxp-1"));
        assert!(t.bot.is_none());
        let c = creds(&[("access_token", "xoxb-1")]);
        let t = revocation_targets(&c);
        assert!(t.user.is_none());
        assert_eq!(exposed(t.bot), Some("xoxb-1"));
        assert!(revocation_targets(&BTreeMap::new()).user.is_none());
    }

    #[test]
    fn a_user_only_grant_has_its_user_token_as_access_token() {
        let mut o = json!({"ok": true, "authed_user": {"id": "U1", "access_token": "xoxp-1"}})
            .as_object()
            .cloned()
            .unwrap();
        hoist_user_token(&mut o);
        assert_eq!(o["access_token"], "xoxp-1");
        assert!(o["authed_user"].get("access_token").is_none());
    }

    #[test]
    fn user_refresh_results_are_renamed_to_user_fields() {
        let f = as_user_fields(vec![
            ("access_token", Secret::new("a".into())),
            ("refresh_token", Secret::new("r".into())),
        ]);
        let names: Vec<_> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["user_token", "user_refresh_token"]);
        assert!(already_revoked("token_revoked") && !already_revoked("ratelimited"));
    }
}
