//! Revocation: revoke an integration's tokens at the provider when it is disconnected, queue
//! what the provider could not take, and retry the queue in the background.

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use super::{CLAIM_LEASE, OAuth};
use crate::domain::{Integration, ProviderId, Secret, TokenRevocation};
use crate::error::{Error, Reason};
use crate::oauth::Provider;
use crate::oauth::catalogue::Revocation;
use crate::oauth::client::{self, Revoked};
use crate::oauth::slack;
use crate::secrets::{KeyringError, SealContext};
use crate::service::Sweep;
use crate::store;

impl OAuth {
    /// Revokes an OAuth integration's tokens at the provider. Never fails: what could not be
    /// revoked is reported with a reason, and the caller destroys the local copies regardless.
    pub async fn revoke_upstream(
        &self,
        integration: &Integration,
        creds: &BTreeMap<String, Secret<String>>,
    ) -> Vec<TokenRevocation> {
        let entry =
            |token_type: &str, revoked: bool, reason: Reason, message: String| TokenRevocation {
                token_type: token_type.to_owned(),
                revoked_upstream: revoked,
                reason: Some(reason),
                message,
            };
        let title = integration.platform.title();
        let Some(id) = ProviderId::for_platform(integration.platform) else {
            return Vec::new();
        };
        let p = match self.inner.catalogue.get(id) {
            Ok(p) => p,
            Err(_) => {
                return creds
                    .keys()
                    .map(|f| entry(f, false, Reason::ProviderNotConfigured, format!("{title} OAuth is not configured here, so nothing could be revoked upstream")))
                    .collect();
            }
        };
        match p.revocation {
            Revocation::Unsupported => creds
                .keys()
                .map(|f| {
                    entry(
                        f,
                        false,
                        Reason::ProviderHasNoRevocation,
                        format!(
                            "{title} has no per-token revocation; the token was destroyed here"
                        ),
                    )
                })
                .collect(),
            Revocation::Slack => {
                let mut out = Vec::new();
                let slack::RevocationTargets { user, bot } = slack::revocation_targets(creds);
                if let Some(u) = user {
                    out.push(
                        self.revoke_token(
                            integration,
                            p,
                            "user_token",
                            Method::Slack,
                            u,
                            "access_token",
                        )
                        .await,
                    );
                }
                if let Some(b) = bot {
                    // How many others share it is other tenants' business: the answer says
                    // only whether it stays valid.
                    let others = store::integrations::count_sharing_bot_token(
                        &self.inner.db,
                        integration.id,
                    )
                    .await;
                    match others {
                        Ok(Some(0)) => out.push(self.revoke_token(integration, p, "bot_token", Method::Slack, b, "access_token").await),
                        Ok(Some(_)) => out.push(entry("bot_token", false, Reason::SharedBotToken, "the Slack bot token is shared with other connections of this Slack app installation; it stays valid until the last one disconnects".to_owned())),
                        Ok(None) | Err(_) => out.push(entry("bot_token", false, Reason::SharedBotToken, "could not tell whether other connections share the Slack bot token, so it was left valid".to_owned())),
                    }
                }
                out
            }
            Revocation::Rfc7009 { access_first } => {
                let (field, hint) = match (access_first, creds.contains_key("refresh_token")) {
                    (false, true) => ("refresh_token", "refresh_token"),
                    _ => ("access_token", "access_token"),
                };
                let Some(token) = creds.get(field) else {
                    return Vec::new();
                };
                let result = self
                    .revoke_token(integration, p, field, Method::Rfc7009, token, hint)
                    .await;
                // Revoking the grant invalidates its other tokens too.
                let mut out = vec![result.clone()];
                for other in creds.keys().filter(|f| f.as_str() != field) {
                    out.push(TokenRevocation {
                        token_type: other.clone(),
                        ..result.clone()
                    });
                }
                out
            }
        }
    }

    /// Revokes the Slack user token a reconnect by another user of the team replaced.
    pub(super) async fn revoke_replaced_slack_user_token(
        &self,
        integration: &Integration,
        p: &Provider,
        token: &Secret<String>,
    ) -> TokenRevocation {
        self.revoke_token(
            integration,
            p,
            "user_token",
            Method::Slack,
            token,
            "access_token",
        )
        .await
    }

    /// Revokes one token; when the provider is unavailable, queues a sealed copy that the
    /// revocation-retry job retries, and says so.
    async fn revoke_token(
        &self,
        integration: &Integration,
        p: &Provider,
        token_type: &'static str,
        method: Method,
        token: &Secret<String>,
        hint: &'static str,
    ) -> TokenRevocation {
        let title = integration.platform.title();
        let entry = |reason: Option<Reason>, message: String| TokenRevocation {
            token_type: token_type.to_owned(),
            revoked_upstream: reason.is_none(),
            reason,
            message,
        };
        match self.call_revocation(p, method, token.expose(), hint).await {
            Revoked::Yes => entry(None, format!("revoked at {title}")),
            Revoked::Rejected { code } => entry(
                Some(Reason::ProviderRejected),
                format!("{title} refused the revocation ({code}); the token was destroyed here"),
            ),
            Revoked::Unavailable => {
                let queued = self
                    .queue_revocation(integration, p, method, token, hint)
                    .await;
                let later = match queued {
                    Ok(()) => "; the revocation will be retried in the background",
                    Err(e) => {
                        tracing::warn!(integration_id = %integration.id, reason = e.reason().as_str(), "could not queue a revocation retry");
                        ""
                    }
                };
                entry(
                    Some(Reason::ProviderUnavailable),
                    format!("{title} did not answer; the token was destroyed here{later}"),
                )
            }
        }
    }

    async fn call_revocation(
        &self,
        p: &Provider,
        method: Method,
        token: &str,
        hint: &str,
    ) -> Revoked {
        let timeout = self.inner.settings.provider_timeout;
        match method {
            Method::Rfc7009 => {
                client::revoke_rfc7009(&self.inner.http, p, timeout, token, hint).await
            }
            Method::Slack => client::revoke_slack(&self.inner.http, p, timeout, token).await,
        }
    }

    async fn queue_revocation(
        &self,
        integration: &Integration,
        p: &Provider,
        method: Method,
        token: &Secret<String>,
        hint: &str,
    ) -> Result<(), Error> {
        let id = Uuid::new_v4();
        let sealed = self
            .inner
            .keyring
            .seal(
                &SealContext::pending_revocation(integration.workspace_id, id),
                token.expose().as_bytes(),
            )
            .map_err(Error::internal)?;
        store::revocations::insert(
            &self.inner.db,
            &store::revocations::NewPending {
                id,
                workspace: integration.workspace_id,
                integration: integration.id,
                provider: p.id.as_str(),
                method: method.as_str(),
                hint,
                token: &sealed,
                first_retry_in: self.inner.settings.revocation_retry_base,
            },
        )
        .await
    }

    /// The revocation-retry job: retries queued revocations that are due. Gives up (and
    /// forgets the token) after `REVOCATION_MAX_ATTEMPTS`, about a day of backing off. A row
    /// that fails is logged and left to its lease, or dropped when it can never open; the
    /// others go on.
    pub async fn retry_revocations(&self) -> Result<Sweep, Error> {
        let due = store::revocations::claim_due(&self.inner.db, CLAIM_LEASE, 20).await?;
        let mut sweep = Sweep::default();
        for pending in due {
            let result = self.retry_revocation(&pending).await;
            if let Err(e) = &result {
                tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, reason = %e.reason(), cause = ?e.cause().map(|c| format!("{c:#}")), "queued revocation failed");
            }
            sweep.record(&result);
        }
        Ok(sweep)
    }

    async fn retry_revocation(&self, pending: &store::revocations::Pending) -> Result<(), Error> {
        let provider =
            ProviderId::parse(&pending.provider).and_then(|id| self.inner.catalogue.get(id).ok());
        let method = Method::parse(&pending.method);
        let (Some(p), Some(method)) = (provider, method) else {
            tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, "dropping a queued revocation: its provider is no longer configured");
            return store::revocations::delete(&self.inner.db, pending.id).await;
        };
        let opened = pending
            .sealed()
            .and_then(|sealed| self.inner.keyring.open_string(&pending.context(), &sealed));
        let token = match opened {
            Ok(token) => token,
            Err(e) => return Err(self.unopenable_revocation(pending, e).await),
        };
        match self
            .call_revocation(p, method, token.expose(), &pending.token_type_hint)
            .await
        {
            Revoked::Yes => {
                tracing::info!(integration_id = %pending.integration_id, provider = %pending.provider, "queued revocation done");
                store::revocations::delete(&self.inner.db, pending.id).await
            }
            Revoked::Rejected { code } => {
                tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, code, "queued revocation refused");
                store::revocations::delete(&self.inner.db, pending.id).await
            }
            Revoked::Unavailable if pending.attempts + 1 >= REVOCATION_MAX_ATTEMPTS => {
                tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, "giving up a queued revocation after repeated outages");
                store::revocations::delete(&self.inner.db, pending.id).await
            }
            Revoked::Unavailable => {
                store::revocations::retry_later(&self.inner.db, pending.id, self.backoff(pending))
                    .await
            }
        }
    }

    /// A queued token that does not open. A missing key may come back (an operator who removed
    /// it too early puts it back), so that backs off like an outage and is dropped when the
    /// attempts run out; anything else (tampered, moved to another row or workspace, columns
    /// that do not parse) can never open and is dropped at once. Either way the row is
    /// reported as failed, with what was decided.
    async fn unopenable_revocation(
        &self,
        pending: &store::revocations::Pending,
        e: KeyringError,
    ) -> Error {
        let key_may_return = matches!(e, KeyringError::UnknownKey(_));
        let (done, decision) = if key_may_return && pending.attempts + 1 < REVOCATION_MAX_ATTEMPTS {
            let wait = self.backoff(pending);
            let done = store::revocations::retry_later(&self.inner.db, pending.id, wait).await;
            (done, "retried later, in case its key comes back")
        } else {
            let done = store::revocations::delete(&self.inner.db, pending.id).await;
            (done, "dropped: it can never be sent")
        };
        match done {
            Ok(()) => Error::internal(anyhow::Error::new(e).context(format!(
                "queued revocation {} under key {} does not open; {decision}",
                pending.id, pending.key_id
            ))),
            Err(db) => db,
        }
    }

    /// Exponential backoff with jitter, capped at 6 hours.
    fn backoff(&self, pending: &store::revocations::Pending) -> Duration {
        let base = self.inner.settings.revocation_retry_base.as_secs_f64()
            * 2f64.powi(pending.attempts.clamp(0, 10));
        Duration::from_secs_f64(base.min(6.0 * 3600.0) * (0.5 + rand::random::<f64>() / 2.0))
    }
}

/// How a queued revocation is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Rfc7009,
    Slack,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Rfc7009 => "rfc7009",
            Method::Slack => "slack",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "rfc7009" => Some(Method::Rfc7009),
            "slack" => Some(Method::Slack),
            _ => None,
        }
    }
}

const REVOCATION_MAX_ATTEMPTS: i32 = 12;
