//! Refresh: RefreshIntegration, the single flight every caller of one integration shares, the
//! committed lease that makes it one provider call across replicas, and the background refresh
//! of tokens about to expire.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{CLAIM_LEASE, OAuth, expiry};
use crate::domain::{
    Caller, Integration, IntegrationId, IntegrationStatus, Platform, ProviderId, Secret,
    WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};
use crate::oauth::client::{self, OAuthError, TokenSet};
use crate::oauth::slack;
use crate::service::Sweep;
use crate::store;

/// A waiter for another refresh's commit looks again this soon, backing off to `POLL_MAX`.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(200);
/// How much longer a refresh lease lasts than the provider calls it covers.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Refreshes of one replica talking to providers at once: half the pool, so that their claims
/// and writes never take every connection (the provider calls themselves hold none).
pub(super) fn slots(db: &PgPool) -> Semaphore {
    Semaphore::new((db.options().get_max_connections() as usize / 2).max(1))
}

/// Why a leased refresh got no tokens: the provider's answer, or a failure here.
enum NoTokens {
    Provider(OAuthError),
    Here(Error),
}

/// Whether a refresh may run: a connected integration that no disconnect has begun on.
fn refreshable(state: &store::refresh::RefreshState) -> Result<(), Error> {
    let revoked = || {
        Error::new(
            ErrorKind::FailedPrecondition,
            Reason::IntegrationRevoked,
            "the integration was disconnected",
        )
    };
    match IntegrationStatus::parse(&state.status) {
        Some(IntegrationStatus::Connected) if state.disconnecting => Err(revoked()),
        Some(IntegrationStatus::Connected) => Ok(()),
        Some(IntegrationStatus::NeedsReauth) => Err(Error::new(
            ErrorKind::FailedPrecondition,
            Reason::RefreshTokenRevoked,
            "the provider revoked the grant; reconnect the integration",
        )),
        _ => Err(revoked()),
    }
}

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
    /// flight; across replicas the committed refresh lease serializes, and whoever finds the
    /// version moved past `seen_version` (or a refresh within the reuse window) returns without
    /// calling the provider. The flight runs in its own task, so a caller that gives up loses nothing: the
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
                        let result = this.refresh_leased(id, seen_version).await.map_err(|e| {
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

    /// One refresh under the committed lease: look at the row without locking it; when nobody
    /// holds the lease, take a provider slot and claim it in a short transaction; call the
    /// provider with no transaction open; store with a compare-and-set. When someone else (this
    /// or another replica) holds it, wait for their commit by polling, holding no connection,
    /// for at most `refresh_lock_timeout`.
    async fn refresh_leased(
        &self,
        id: IntegrationId,
        seen_version: Option<i64>,
    ) -> Result<(), Error> {
        let settings = &self.inner.settings;
        let deadline = Instant::now() + settings.refresh_lock_timeout;
        let mut seen = seen_version;
        let mut pause = POLL_FIRST;
        loop {
            let state = store::refresh::refresh_state(&self.inner.db, id)
                .await?
                .ok_or_else(Error::integration_not_found)?;
            refreshable(&state)?;
            let seen_now = *seen.get_or_insert(state.credential_version);
            let reused = state
                .refreshed_secs_ago
                .is_some_and(|s| (0.0..settings.refresh_reuse_window.as_secs_f64()).contains(&s));
            if state.credential_version != seen_now || reused {
                // Someone refreshed while we waited, or just before: their tokens are ours.
                return Ok(());
            }
            if !state.leased {
                let _slot = tokio::time::timeout_at(deadline, self.inner.refresh_slots.acquire())
                    .await
                    .map_err(|_| store::refresh::refresh_in_progress())?
                    .map_err(Error::internal)?;
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                let claimed = store::refresh::claim_refresh(
                    &self.inner.db,
                    id,
                    seen_now,
                    settings.refresh_reuse_window,
                    self.lease_length(),
                    wait,
                )
                .await?;
                if let Some(lease) = claimed {
                    let platform = Platform::parse(&state.platform).ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("unexpected platform {:?}", state.platform))
                    })?;
                    let workspace = WorkspaceId(state.workspace_id);
                    let result = self.refresh_holding(id, workspace, platform, lease).await;
                    if result.is_err() {
                        // A no-op when the lease was already given back or taken over.
                        self.give_back(id, lease).await;
                    }
                    return result;
                }
                // Someone claimed it between our look and our claim: look again.
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(store::refresh::refresh_in_progress());
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// How long a claimed lease lasts: longer than the provider calls it covers (their deadline
    /// is enforced), so it never runs out under a live holder; a dead one frees it by then.
    pub(super) fn lease_length(&self) -> Duration {
        self.provider_deadline() + LEASE_MARGIN
    }

    /// The deadline of every provider call one refresh makes (Slack makes two).
    fn provider_deadline(&self) -> Duration {
        self.inner.settings.provider_timeout * 2 + Duration::from_secs(1)
    }

    /// Gives a lease back, best effort: if this fails, the lease runs out by itself.
    pub(crate) async fn give_back(&self, id: IntegrationId, lease: store::refresh::Lease) {
        if let Err(e) = store::refresh::release_lease(&self.inner.db, id, lease).await {
            tracing::warn!(integration_id = %id, reason = %e.reason(), "could not give back a refresh lease; it runs out by itself");
        }
    }

    /// Holding the lease: call the provider (no transaction open), then store the tokens.
    async fn refresh_holding(
        &self,
        id: IntegrationId,
        workspace: WorkspaceId,
        platform: Platform,
        lease: store::refresh::Lease,
    ) -> Result<(), Error> {
        let deadline = self.provider_deadline();
        let tokens =
            match tokio::time::timeout(deadline, self.call_token_endpoint(id, platform)).await {
                Ok(Ok(tokens)) => tokens,
                Ok(Err(NoTokens::Here(e))) => return Err(e),
                Ok(Err(NoTokens::Provider(e))) => {
                    return self.refresh_failed(id, platform, lease, e).await;
                }
                Err(_) => {
                    let e = OAuthError::Unavailable {
                        why: "the token endpoint did not answer in time".to_owned(),
                    };
                    return self.refresh_failed(id, platform, lease, e).await;
                }
            };
        let expires_at = expiry(tokens.expires_in);
        // A response without a refresh token keeps the old one (put only replaces given fields).
        let fields: BTreeMap<&str, Secret<String>> = tokens.fields.into_iter().collect();
        let mut tx = self.inner.db.begin().await?;
        if store::refresh::record_refresh(&mut tx, id, lease, expires_at, &tokens.scopes).await? {
            store::credentials::put(&mut tx, &self.inner.keyring, id, &fields, expires_at).await?;
            tx.commit().await?;
            tracing::info!(integration_id = %id, %platform, "tokens refreshed");
            return Ok(());
        }
        tx.rollback().await?;
        self.give_back(id, lease).await;
        self.orphaned(id, workspace, fields).await
    }

    /// The refresh token(s) of the integration, read after the claim (so they are the newest),
    /// presented to the provider.
    async fn call_token_endpoint(
        &self,
        id: IntegrationId,
        platform: Platform,
    ) -> Result<TokenSet, NoTokens> {
        let not_supported = || {
            NoTokens::Here(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::RefreshNotSupported,
                format!(
                    "{} issued no refresh token: its token does not expire, or reconnecting is the only way",
                    platform.title()
                ),
            ))
        };
        let provider_id = ProviderId::for_platform(platform).ok_or_else(not_supported)?;
        let creds = store::credentials::open_all(&self.inner.db, &self.inner.keyring, id)
            .await
            .map_err(NoTokens::Here)?;
        let refresh_token = creds.get("refresh_token").ok_or_else(not_supported)?;
        let p = self
            .inner
            .catalogue
            .get(provider_id)
            .map_err(NoTokens::Here)?;
        let timeout = self.inner.settings.provider_timeout;
        let mut tokens = client::refresh(&self.inner.http, p, timeout, refresh_token.expose())
            .await
            .map_err(NoTokens::Provider)?;
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
        Ok(tokens)
    }

    /// Tokens the provider issued that may not be stored: the lease was lost. When the
    /// integration is being (or was) disconnected, no grant may outlive that, so they are
    /// revoked upstream (or queued for revocation); otherwise newer tokens were stored by
    /// someone else (a reconnect), which revoking these could kill, so they are dropped.
    async fn orphaned(
        &self,
        id: IntegrationId,
        workspace: WorkspaceId,
        fields: BTreeMap<&str, Secret<String>>,
    ) -> Result<(), Error> {
        let integration = store::integrations::get(&self.inner.db, workspace, id).await?;
        let disconnecting = store::refresh::refresh_state(&self.inner.db, id)
            .await?
            .is_none_or(|s| s.disconnecting || s.status == IntegrationStatus::Revoked.as_str());
        if !disconnecting {
            tracing::warn!(integration_id = %id, "a refresh lost its lease to newer tokens; the tokens it obtained were dropped");
            return Ok(());
        }
        let Some(integration) = integration else {
            tracing::warn!(integration_id = %id, "tokens refreshed for an integration that no longer exists could not be revoked");
            return Err(Error::integration_not_found());
        };
        let creds: BTreeMap<String, Secret<String>> = fields
            .into_iter()
            .map(|(field, value)| (field.to_owned(), value))
            .collect();
        let outcome = self.revoke_upstream(&integration, &creds).await;
        let revoked = outcome.iter().filter(|r| r.revoked_upstream).count();
        tracing::info!(integration_id = %id, revoked, tokens = outcome.len(), "tokens a refresh obtained during a disconnect were revoked or queued");
        Err(Error::new(
            ErrorKind::FailedPrecondition,
            Reason::IntegrationRevoked,
            "the integration was disconnected during the refresh; the tokens it obtained were revoked upstream or queued for revocation",
        ))
    }

    async fn refresh_failed(
        &self,
        id: IntegrationId,
        platform: Platform,
        lease: store::refresh::Lease,
        e: OAuthError,
    ) -> Result<(), Error> {
        if e.is_invalid_grant() {
            let mut tx = self.inner.db.begin().await?;
            let current = store::refresh::release_lease(&mut *tx, id, lease).await?;
            if current != Some(lease.version) {
                // The tokens were replaced meanwhile (a reconnect): the dead grant was not theirs.
                tx.commit().await?;
                return Ok(());
            }
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
        self.give_back(id, lease).await;
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

    /// Waits (holding no connection) until no refresh of the integration is in flight, then
    /// holds its lease so that none starts: what a disconnect does before it reads the
    /// credentials it revokes. A refresh in flight either stores its tokens first (and they
    /// are the ones revoked) or finds the lease gone and revokes them itself. None when the
    /// integration was revoked meanwhile (another disconnect finished first).
    pub(crate) async fn hold_for_disconnect(
        &self,
        id: IntegrationId,
    ) -> Result<Option<store::refresh::Lease>, Error> {
        // A live holder gives the lease back within its length; a dead one's runs out by then.
        let deadline = Instant::now() + self.lease_length() + POLL_MAX;
        let mut pause = POLL_FIRST;
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let lease = store::refresh::take_lease_for_disconnect(
                &self.inner.db,
                id,
                self.lease_length(),
                wait,
            )
            .await?;
            if lease.is_some() {
                return Ok(lease);
            }
            let revoked = store::refresh::refresh_state(&self.inner.db, id)
                .await?
                .is_none_or(|s| s.status == IntegrationStatus::Revoked.as_str());
            if revoked {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(store::refresh::refresh_in_progress());
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// The refresh-ahead job: refreshes tokens due within `refresh_ahead`. Each replica claims
    /// rows with SKIP LOCKED, so every integration is refreshed by one replica. A row's failure
    /// (logged inside its flight) backs that row off and never stops the others.
    pub async fn refresh_due(&self) -> Result<Sweep, Error> {
        let due = store::refresh::claim_due_refreshes(
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
        if let Err(e) = store::refresh::record_refresh_failure(&self.inner.db, id, backoff).await {
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
