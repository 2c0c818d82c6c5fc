//! CompleteAuthorization: the user who started a flow redeems the callback's one-time handle;
//! only then is the code exchanged and the grant stored (RFC 9700 section 4.7).

use std::collections::BTreeMap;

use serde_json::json;

use super::{OAuth, expiry};
use crate::domain::{
    Caller, ConnectionType, Integration, IntegrationId, Platform, ProviderId, RequestId, Secret,
    UserId, WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};
use crate::oauth::client::{self, OAuthError, TokenSet};
use crate::oauth::{pkce, slack};
use crate::store::{self, integrations::NewIntegration, oauth_handles::HandleRow};

/// What CompleteAuthorization answers.
pub struct Completed {
    pub integration: Integration,
    /// `scope_missing` when the provider granted no refresh token where one is needed.
    pub warning: Option<&'static str>,
}

/// A redeemed handle: the opened code and what the exchange needs of its state.
struct Claimed {
    row: HandleRow,
    code: Secret<String>,
    verifier: Option<Secret<String>>,
}

impl OAuth {
    /// Redeems `handle` for the caller, who must be the user (and workspace) that started the
    /// flow. The handle is claimed in a short committed transaction, the provider is called with
    /// none open, and the grant is written after: a handle is exchanged at most once, however
    /// many callers race for it.
    pub async fn complete(
        &self,
        caller: &Caller,
        path_platform: Option<Platform>,
        handle: &Secret<String>,
        rid: &RequestId,
    ) -> Result<Completed, Error> {
        caller.require_member()?;
        let raw = handle.expose();
        if raw.is_empty() {
            return Err(Error::invalid_field("handle", "is required"));
        }
        if raw.len() > 512 {
            return Err(handle_not_found());
        }
        let claimed = self
            .claim(caller, path_platform, &pkce::state_hash(raw), rid)
            .await?;
        let state = &claimed.row.state;
        let id = ProviderId::parse(&state.provider).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("unknown provider in an oauth state"))
        })?;
        let platform = id.platform();
        let p = self.inner.catalogue.get(id)?;
        let tokens = client::exchange(
            &self.inner.http,
            p,
            self.inner.settings.provider_timeout,
            claimed.code.expose(),
            &state.redirect_uri,
            claimed.verifier.as_ref().map(|v| v.expose().as_str()),
        )
        .await
        .map_err(|e| {
            tracing::info!(request_id = %rid, provider = %state.provider, error = ?e, "oauth code exchange failed");
            exchange_error(platform, e)
        })?;
        let mut tokens = tokens;
        if tokens.account_id.is_none() {
            tokens.account_id = self.identify(caller, platform, &tokens, rid).await;
        }
        let scope_missing = p.needs_refresh_token && !tokens.has("refresh_token");
        let mut tx = self.inner.db.begin().await?;
        let stored = self
            .store_grant(&mut tx, caller, platform, tokens, scope_missing, rid)
            .await?;
        tx.commit().await?;
        let integration_id = stored.id;
        tracing::info!(request_id = %rid, integration_id = %integration_id, provider = %state.provider, "oauth connection finished");
        let integration =
            store::integrations::get(&self.inner.db, caller.workspace_id, integration_id)
                .await?
                .ok_or_else(Error::integration_not_found)?;
        if let Some(old) = stored.replaced {
            // Revoked (or queued) after the commit: the new grant is already in place.
            let r = self
                .revoke_replaced_slack_user_token(&integration, p, &old)
                .await;
            tracing::info!(request_id = %rid, integration_id = %integration_id, revoked = r.revoked_upstream, reason = r.reason.map(Reason::as_str), "the slack user token a reconnect replaced was revoked");
        }
        Ok(Completed {
            integration,
            warning: scope_missing.then_some("scope_missing"),
        })
    }

    /// Checks and uses up the handle in one short transaction, then opens its code and the
    /// state's verifier. A caller other than the flow's user leaves the handle as it was, so a
    /// stolen handle cannot spend the real user's.
    async fn claim(
        &self,
        caller: &Caller,
        path_platform: Option<Platform>,
        hash: &[u8],
        rid: &RequestId,
    ) -> Result<Claimed, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = store::oauth_handles::get_for_update(&mut tx, hash)
            .await?
            .ok_or_else(handle_not_found)?;
        let state = &row.state;
        if UserId(state.user_id) != caller.user_id
            || WorkspaceId(state.workspace_id) != caller.workspace_id
        {
            tracing::warn!(request_id = %rid, state_id = %state.id, user_id = %caller.user_id.0, workspace_id = %caller.workspace_id.0, "an oauth handle was presented by a user other than the one who started the flow");
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                Reason::AuthorizationStartedByAnotherUser,
                "this authorization was started by another user; only they can complete it",
            ));
        }
        if path_platform.is_some_and(|p| p.as_str() != state.platform) {
            return Err(Error::invalid_field(
                "platform",
                "does not match the platform of the authorization",
            ));
        }
        if row.consumed {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::HandleReused,
                "this authorization handle was already used; start the connection again",
            ));
        }
        if row.expired {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::HandleExpired,
                "this authorization handle expired; start the connection again",
            ));
        }
        store::oauth_handles::consume(&mut tx, hash).await?;
        tx.commit().await?;
        let keyring = &self.inner.keyring;
        // The handle is used up either way: a value that does not open (key removed, row
        // tampered with) ends this flow cleanly.
        let unopenable =
            |e| Error::internal(anyhow::Error::new(e).context("a sealed value of an oauth handle"));
        let code = row
            .code()
            .and_then(|c| {
                c.map(|c| keyring.open_string(&row.code_context(), &c))
                    .transpose()
            })
            .map_err(unopenable)?
            .ok_or_else(|| {
                Error::internal(anyhow::anyhow!("an unused oauth handle without code"))
            })?;
        let verifier = state
            .verifier()
            .and_then(|v| {
                v.map(|v| keyring.open_string(&state.verifier_context(), &v))
                    .transpose()
            })
            .map_err(unopenable)?;
        Ok(Claimed {
            row,
            code,
            verifier,
        })
    }

    /// Who a grant whose token response names no account acts as, from the platform's
    /// identity call (Zoom `users/me`, Discord `users/@me`, Monday `me`, ...). None when the
    /// provider will not say: the grant then becomes an integration of its own, so it can never
    /// replace another user's (an empty account would match every other empty one).
    async fn identify(
        &self,
        caller: &Caller,
        platform: Platform,
        tokens: &TokenSet,
        rid: &RequestId,
    ) -> Option<String> {
        let fields = tokens.fields.iter().map(|(k, v)| (*k, v.clone())).collect();
        match self
            .inner
            .identifier
            .identify(
                caller.workspace_id,
                platform,
                ConnectionType::Oauth,
                &fields,
            )
            .await
        {
            Ok(identity) => identity.account,
            Err(e) => {
                tracing::warn!(request_id = %rid, platform = %platform, reason = e.reason().as_str(), error = %e, "could not tell which provider account a new grant acts as; it becomes a new integration");
                None
            }
        }
    }

    async fn store_grant(
        &self,
        tx: &mut sqlx::PgConnection,
        caller: &Caller,
        platform: Platform,
        tokens: TokenSet,
        scope_missing: bool,
        rid: &RequestId,
    ) -> Result<Stored, Error> {
        let account = tokens.account_id.clone().unwrap_or_default();
        let expires_at = expiry(tokens.expires_in);
        store::workspaces::ensure(&mut *tx, caller.workspace_id).await?;
        let new_id = IntegrationId::new();
        let id = store::integrations::upsert_oauth(
            &mut *tx,
            &NewIntegration {
                id: new_id,
                workspace_id: caller.workspace_id,
                platform,
                display_name: platform.title(),
                metadata: &tokens.metadata,
                provider_account_id: &account,
                scopes: &tokens.scopes,
                credential_expires_at: expires_at,
                created_by: caller.user_id,
                bot_user_id: tokens.bot_user_id.as_deref(),
            },
            scope_missing.then_some(Reason::ScopeMissing),
        )
        .await?;
        let fields: BTreeMap<&str, Secret<String>> = tokens.fields.into_iter().collect();
        let replaced = if id != new_id && platform == Platform::Slack {
            self.replaced_slack_user_token(&mut *tx, id, &fields).await
        } else {
            None
        };
        // A reconnect replaces every token of the old grant.
        store::credentials::delete_all(&mut *tx, id).await?;
        store::credentials::put(&mut *tx, &self.inner.keyring, id, &fields, expires_at).await?;
        let names: Vec<&str> = fields.keys().copied().collect();
        store::audit::record(
            &mut *tx,
            caller,
            Some(id),
            if id == new_id { "integration.connected" } else { "integration.reconnected" },
            json!({"platform": platform.as_str(), "via": "oauth", "credential_fields": names, "scope_missing": scope_missing}),
            rid,
        )
        .await?;
        Ok(Stored { id, replaced })
    }

    /// The user token a Slack reconnect replaces, when another user of the team reconnected
    /// (the team is the account, so the integration is the same): that user's token would stay
    /// live at Slack with nobody holding it. Only user tokens: they are each user's own, while
    /// the bot token is the installation's. Other providers issue one grant per user and app,
    /// so revoking a same-account reconnect's old tokens would revoke the new ones too.
    async fn replaced_slack_user_token(
        &self,
        tx: &mut sqlx::PgConnection,
        id: IntegrationId,
        new: &BTreeMap<&str, Secret<String>>,
    ) -> Option<Secret<String>> {
        let old = match store::credentials::open_all(&mut *tx, &self.inner.keyring, id).await {
            Ok(old) => old,
            Err(e) => {
                tracing::warn!(integration_id = %id, reason = e.reason().as_str(), "could not open the tokens a reconnect replaces; they are not revoked");
                return None;
            }
        };
        let new: BTreeMap<String, Secret<String>> = new
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let old_user = slack::revocation_targets(&old).user?;
        let new_user = slack::revocation_targets(&new).user;
        (new_user.map(|t| t.expose()) != Some(old_user.expose())).then(|| old_user.clone())
    }
}

/// What storing a grant did.
struct Stored {
    id: IntegrationId,
    /// A token of the old grant that the new one replaced and nobody holds any more.
    replaced: Option<Secret<String>>,
}

fn handle_not_found() -> Error {
    Error::new(
        ErrorKind::NotFound,
        Reason::HandleNotFound,
        "no such authorization handle; start the connection again",
    )
}

/// The exchange's failure as the caller sees it; the handle is spent, so each says to start
/// again.
fn exchange_error(platform: Platform, e: OAuthError) -> Error {
    match e {
        OAuthError::Unavailable { .. } => Error::new(
            ErrorKind::Unavailable,
            Reason::ProviderUnavailable,
            format!(
                "{} is unavailable; start the connection again later",
                platform.title()
            ),
        ),
        OAuthError::Rejected { code } => Error::new(
            ErrorKind::FailedPrecondition,
            Reason::ProviderRejected,
            format!(
                "{} rejected the authorization code; start the connection again",
                platform.title()
            ),
        )
        .with_metadata("provider_code", code),
        OAuthError::Malformed { why } => Error::new(
            ErrorKind::Unavailable,
            Reason::ProviderBadResponse,
            format!("{}: {why}", platform.title()),
        ),
    }
}
