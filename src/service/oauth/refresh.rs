//! Refresh: RefreshIntegration, the single flight every caller of one integration shares, and
//! the background refresh of tokens about to expire.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};

use super::{CLAIM_LEASE, OAuth, expiry};
use crate::domain::{
    Caller, Integration, IntegrationId, IntegrationStatus, Platform, ProviderId, Secret,
};
use crate::error::{Error, ErrorKind, Reason};
use crate::oauth::client::{self, OAuthError};
use crate::oauth::slack;
use crate::service::Sweep;
use crate::store;

/// A refresh failure every waiter of one flight receives: the error without its cause (which
/// is not Clone, and is logged once inside the flight instead).
#[derive(Clone, Debug)]
pub(super) struct Failure {
    kind: ErrorKind,
    reason: Reason,
    message: String,
    retry_after: Option<Duration>,
    metadata: Vec<(&'static str, String)>,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        let mut e = Error::new(f.kind, f.reason, f.message);
        if let Some(after) = f.retry_after {
            e = e.with_retry_after(after);
        }
        f.metadata
            .into_iter()
            .fold(e, |e, (key, value)| e.with_metadata(key, value))
    }
}

impl From<&Error> for Failure {
    fn from(e: &Error) -> Self {
        Failure {
            kind: e.kind(),
            reason: e.reason(),
            message: e.message().to_owned(),
            retry_after: e.retry_after(),
            metadata: e.metadata().to_vec(),
        }
    }
}

pub(super) type Flight = Shared<BoxFuture<'static, Result<(), Failure>>>;

impl OAuth {
    /// Refreshes an integration's tokens now (RefreshIntegration), whatever their expiry.
    pub async fn refresh_now(
        &self,
        caller: &Caller,
        id: IntegrationId,
    ) -> Result<Integration, Error> {
        caller.require_member()?;
        let current = store::integrations::get(&self.inner.db, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)?;
        if ProviderId::for_platform(current.platform).is_none() {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::RefreshNotSupported,
                format!(
                    "{} uses API keys, which do not refresh",
                    current.platform.title()
                ),
            ));
        }
        self.refresh(id, Some(current.credential_version)).await?;
        store::integrations::get(&self.inner.db, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)
    }

    /// Refreshes one integration. Callers in this replica that saw the same tokens share one
    /// flight; across replicas the row lock serializes, and whoever finds the version moved past
    /// `seen_version` (or a refresh within the reuse window) returns without calling the
    /// provider. The flight runs in its own task, so a caller that gives up loses nothing: the
    /// rotated tokens are stored anyway.
    pub async fn refresh(&self, id: IntegrationId, seen_version: Option<i64>) -> Result<(), Error> {
        let flight = {
            let mut map = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let key = (id, seen_version);
            match map.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let this = self.clone();
                    // The task removes its own entry; it cannot run before we insert it because
                    // removal takes the lock we hold.
                    let task = tokio::spawn(async move {
                        let result = this.refresh_locked(id, seen_version).await.map_err(|e| {
                            // Waiters get the error without its cause: log the cause here, once.
                            if let Some(cause) = e.cause() {
                                tracing::warn!(integration_id = %id, reason = %e.reason(), cause = %format!("{cause:#}"), "token refresh failed");
                            }
                            Failure::from(&e)
                        });
                        this.inner
                            .inflight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&key);
                        result
                    });
                    let flight = async move {
                        task.await.unwrap_or_else(|e| {
                            tracing::error!(integration_id = %id, error = %e, "token refresh task failed");
                            Err(Failure::from(&Error::internal(e)))
                        })
                    }
                    .boxed()
                    .shared();
                    map.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await.map_err(Error::from)
    }

    async fn refresh_locked(
        &self,
        id: IntegrationId,
        seen_version: Option<i64>,
    ) -> Result<(), Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = store::integrations::lock_for_refresh(
            &mut tx,
            id,
            self.inner.settings.refresh_lock_timeout,
        )
        .await?
        .ok_or_else(Error::integration_not_found)?;
        match IntegrationStatus::parse(&row.status) {
            Some(IntegrationStatus::Connected) => {}
            Some(IntegrationStatus::NeedsReauth) => {
                return Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    Reason::RefreshTokenRevoked,
                    "the provider revoked the grant; reconnect the integration",
                ));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    Reason::IntegrationRevoked,
                    "the integration was disconnected",
                ));
            }
        }
        if seen_version.is_some_and(|v| v != row.credential_version)
            || row.refreshed_secs_ago.is_some_and(|s| {
                (0.0..self.inner.settings.refresh_reuse_window.as_secs_f64()).contains(&s)
            })
        {
            // Someone refreshed while we waited: their tokens are ours.
            tx.commit().await?;
            return Ok(());
        }
        let platform = Platform::parse(&row.platform).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("unexpected platform {:?}", row.platform))
        })?;
        let not_supported = || {
            Error::new(
                ErrorKind::FailedPrecondition,
                Reason::RefreshNotSupported,
                format!(
                    "{} issued no refresh token: its token does not expire, or reconnecting is the only way",
                    platform.title()
                ),
            )
        };
        let provider_id = ProviderId::for_platform(platform).ok_or_else(not_supported)?;
        let creds = store::credentials::open_all(&mut *tx, &self.inner.keyring, id).await?;
        let refresh_token = creds.get("refresh_token").ok_or_else(not_supported)?;
        let p = self.inner.catalogue.get(provider_id)?;
        let timeout = self.inner.settings.provider_timeout;
        let mut tokens =
            match client::refresh(&self.inner.http, p, timeout, refresh_token.expose()).await {
                Ok(t) => t,
                Err(e) => return self.refresh_failed(tx, id, platform, e).await,
            };
        // Slack under rotation: the user token has its own refresh token.
        if let Some(user_refresh) = creds.get("user_refresh_token") {
            match client::refresh(&self.inner.http, p, timeout, user_refresh.expose()).await {
                Ok(user) => tokens.fields.extend(slack::as_user_fields(user.fields)),
                // The bot token is what matters; a dead user token only loses search.
                Err(e) => {
                    tracing::warn!(integration_id = %id, error = ?e, "slack user token refresh failed")
                }
            }
        }
        let expires_at = expiry(tokens.expires_in);
        // A response without a refresh token keeps the old one (put only replaces given fields).
        let fields: BTreeMap<&str, Secret<String>> = tokens.fields.into_iter().collect();
        store::credentials::put(&mut tx, &self.inner.keyring, id, &fields, expires_at).await?;
        store::integrations::record_refresh(&mut tx, id, expires_at, &tokens.scopes).await?;
        tx.commit().await?;
        tracing::info!(integration_id = %id, provider = %provider_id, "tokens refreshed");
        Ok(())
    }

    async fn refresh_failed(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        id: IntegrationId,
        platform: Platform,
        e: OAuthError,
    ) -> Result<(), Error> {
        if e.is_invalid_grant() {
            store::integrations::mark_needs_reauth(&mut tx, id, Reason::RefreshTokenRevoked)
                .await?;
            tx.commit().await?;
            tracing::warn!(integration_id = %id, %platform, "refresh token revoked: integration needs reauthorization");
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::RefreshTokenRevoked,
                format!(
                    "{} revoked the grant; reconnect the integration",
                    platform.title()
                ),
            ));
        }
        tx.rollback().await?;
        tracing::warn!(integration_id = %id, %platform, error = ?e, "token refresh failed");
        Err(match e {
            OAuthError::Unavailable { .. } => Error::new(
                ErrorKind::Unavailable,
                Reason::ProviderUnavailable,
                format!(
                    "{} is unavailable; the refresh will be retried",
                    platform.title()
                ),
            ),
            OAuthError::Rejected { code } => Error::new(
                ErrorKind::FailedPrecondition,
                Reason::ProviderRejected,
                format!("{} rejected the refresh", platform.title()),
            )
            .with_metadata("provider_code", code),
            OAuthError::Malformed { why } => Error::new(
                ErrorKind::Unavailable,
                Reason::ProviderUnavailable,
                format!("{}: {why}", platform.title()),
            ),
        })
    }

    /// The refresh-ahead job: refreshes tokens due within `refresh_ahead`. Each replica claims
    /// rows with SKIP LOCKED, so every integration is refreshed by one replica. A row's failure
    /// (logged inside its flight) backs that row off and never stops the others.
    pub async fn refresh_due(&self) -> Result<Sweep, Error> {
        let due = store::integrations::claim_due_refreshes(
            &self.inner.db,
            self.inner.settings.refresh_ahead,
            self.inner.settings.refresh_keepalive,
            CLAIM_LEASE,
            100,
        )
        .await?;
        let refreshed = futures::stream::iter(due)
            .map(|(id, version, failures)| async move {
                let result = self.refresh(id, Some(version)).await;
                if let Err(e) = &result
                    && backs_off(e)
                {
                    self.back_off(id, failures).await;
                }
                result.is_ok()
            })
            .buffer_unordered(8)
            .collect::<Vec<bool>>()
            .await;
        let done = refreshed.iter().filter(|ok| **ok).count();
        Ok(Sweep {
            done,
            failed: refreshed.len() - done,
        })
    }

    /// Schedules the next background attempt of a row whose refresh failed for now.
    async fn back_off(&self, id: IntegrationId, failures: i32) {
        // Full jitter on an exponential base: 30 s, 1 min, 2 min ... capped at 1 h.
        let base = 30.0 * 2f64.powi(failures.clamp(0, 7));
        let backoff =
            Duration::from_secs_f64(base.min(3600.0) * (0.5 + rand::random::<f64>() / 2.0));
        if let Err(e) =
            store::integrations::record_refresh_failure(&self.inner.db, id, backoff).await
        {
            // The claim lease runs out instead, so the row is retried a little sooner.
            tracing::warn!(integration_id = %id, reason = %e.reason(), cause = ?e.cause().map(|c| format!("{c:#}")), "could not record a refresh failure");
        }
    }
}

/// Failures worth another background attempt later; a revoked grant waits for a person.
fn backs_off(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Unavailable | ErrorKind::FailedPrecondition
    ) && e.reason() != Reason::RefreshTokenRevoked
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Failure;
    use crate::error::{Error, ErrorKind, Reason};

    #[test]
    fn a_failure_keeps_everything_but_the_cause() {
        let e = Error::new(
            ErrorKind::FailedPrecondition,
            Reason::ProviderRejected,
            "zoom rejected the refresh",
        )
        .with_metadata("provider_code", "invalid_client")
        .with_retry_after(Duration::from_secs(3))
        .with_cause(anyhow::anyhow!("logged, not shared"));

        let shared = Error::from(Failure::from(&e));

        assert_eq!(shared.kind(), e.kind());
        assert_eq!(shared.reason(), e.reason());
        assert_eq!(shared.message(), e.message());
        assert_eq!(shared.metadata(), e.metadata());
        assert_eq!(shared.retry_after(), Some(Duration::from_secs(3)));
        assert!(shared.cause().is_none());
    }
}
