//! OAuth use cases: start an authorization, finish it at the callback, refresh tokens (single
//! flight per integration in a replica, a row lock across replicas), and revoke upstream.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use reqwest::Url;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::ProviderId;
use crate::domain::Secret;
use crate::domain::{
    Caller, Integration, IntegrationId, IntegrationStatus, Platform, RequestId, Role,
    TokenRevocation, UserId, WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};
use crate::oauth::catalogue::{Catalogue, Revocation};
use crate::oauth::client::{self, OAuthError, Revoked, TokenSet};
use crate::oauth::{OAuthSettings, pkce};
use crate::secrets::{KeyRing, SealContext};
use crate::store::{self, integrations::NewIntegration};

/// How long a replica's background loop holds a claimed integration.
const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// What StartAuthorization answers.
pub struct Started {
    pub authorization_url: String,
    /// Also inside the URL; handed to the frontend as the product spec's REST answer has it.
    pub state: Secret<String>,
    pub expires_at: chrono::DateTime<Utc>,
    pub platform: Platform,
}

/// Query parameters of the provider's redirect to our callback.
#[derive(Default)]
pub struct CallbackParams {
    pub code: Option<Secret<String>>,
    pub state: Option<Secret<String>>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

/// A refresh failure every waiter of one flight receives.
#[derive(Clone, Debug)]
struct Failure {
    kind: ErrorKind,
    reason: Reason,
    message: String,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        Error::new(f.kind, f.reason, f.message)
    }
}

impl From<&Error> for Failure {
    fn from(e: &Error) -> Self {
        Failure {
            kind: e.kind(),
            reason: e.reason(),
            message: e.message().to_owned(),
        }
    }
}

type Flight = Shared<BoxFuture<'static, Result<(), Failure>>>;

struct Inner {
    db: PgPool,
    keyring: Arc<KeyRing>,
    catalogue: Catalogue,
    http: reqwest::Client,
    settings: OAuthSettings,
    public_url: Url,
    frontend_url: Url,
    allowed_origins: Vec<String>,
    /// Refreshes under way, by integration and the credential version their callers saw: a
    /// caller that saw newer tokens than a flight started from gets a flight of its own.
    inflight: Mutex<HashMap<(IntegrationId, Option<i64>), Flight>>,
}

#[derive(Clone)]
pub struct OAuth {
    inner: Arc<Inner>,
}

impl OAuth {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: PgPool,
        keyring: Arc<KeyRing>,
        catalogue: Catalogue,
        http: reqwest::Client,
        settings: OAuthSettings,
        public_url: Url,
        frontend_url: Url,
        allowed_origins: Vec<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                keyring,
                catalogue,
                http,
                settings,
                public_url,
                frontend_url,
                allowed_origins,
                inflight: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    /// `{FH_PUBLIC_URL}/api/v1/oauth/{platform}/callback`, never built from a request's Host.
    fn redirect_uri(&self, platform: Platform) -> String {
        let base = self.inner.public_url.as_str().trim_end_matches('/');
        format!("{base}/api/v1/oauth/{platform}/callback")
    }

    fn default_return(&self) -> Url {
        let mut url = self.inner.frontend_url.clone();
        if url.path() == "/" || url.path().is_empty() {
            url.set_path("/integrations");
        }
        url
    }

    /// Accepts `return_to` only under an allowed frontend origin (no open redirect).
    fn check_return_to(&self, return_to: &str) -> Result<Option<Url>, Error> {
        let return_to = return_to.trim();
        if return_to.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::invalid_field(
                "return_to",
                "must be a URL under an allowed frontend origin",
            )
        };
        if return_to.len() > 2048 {
            return Err(bad());
        }
        let url = Url::parse(return_to).map_err(|_| bad())?;
        let origin = url.origin().ascii_serialization();
        let allowed = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && self
                .inner
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin);
        if allowed { Ok(Some(url)) } else { Err(bad()) }
    }

    pub async fn start(
        &self,
        caller: &Caller,
        platform: Option<Platform>,
        return_to: &str,
    ) -> Result<Started, Error> {
        caller.require_member()?;
        let platform = platform.ok_or_else(|| Error::invalid_field("platform", "is required"))?;
        let id = ProviderId::for_platform(platform).ok_or_else(|| {
            Error::invalid_field(
                "platform",
                format!("{platform} connects with an API key, not OAuth"),
            )
        })?;
        let return_to = self.check_return_to(return_to)?;
        let p = self.inner.catalogue.get(id)?;

        let state = pkce::random_token();
        let verifier = p.pkce.then(pkce::random_token);
        let state_id = Uuid::new_v4();
        let sealed = verifier
            .as_ref()
            .map(|v| {
                self.inner.keyring.seal(
                    &SealContext {
                        integration_id: state_id,
                        field: "pkce_verifier",
                    },
                    v.expose().as_bytes(),
                )
            })
            .transpose()
            .map_err(Error::internal)?;
        let redirect_uri = self.redirect_uri(platform);
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.inner.settings.state_ttl)
                .unwrap_or(chrono::Duration::minutes(10));

        let mut url = p.authorize_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", state.expose());
            if !p.scopes.is_empty() {
                q.append_pair("scope", &p.scopes.join(p.scope_separator));
            }
            if id == ProviderId::Slack {
                // Search needs a user token, which only `user_scope` grants.
                q.append_pair("user_scope", "search:read");
            }
            if let Some(v) = &verifier {
                q.append_pair("code_challenge", &pkce::challenge(v.expose()))
                    .append_pair("code_challenge_method", "S256");
            }
            for (k, v) in p.extra {
                q.append_pair(k, v);
            }
        }
        store::oauth_states::insert(
            &self.inner.db,
            &store::oauth_states::NewState {
                id: state_id,
                hash: &pkce::state_hash(state.expose()),
                workspace_id: caller.workspace_id,
                user_id: caller.user_id,
                user_role: caller.role.as_str(),
                provider: id.as_str(),
                platform: platform.as_str(),
                verifier: sealed.as_ref(),
                return_to: return_to.as_ref().map(Url::as_str),
                redirect_uri: &redirect_uri,
                expires_at,
            },
        )
        .await?;
        Ok(Started {
            authorization_url: url.into(),
            state,
            expires_at,
            platform,
        })
    }

    /// Finishes an authorization and answers where the browser goes: the frontend, with
    /// `success=true&platform=&integration_id=` or `error=<reason>&platform=`. Never an error
    /// page; never a token, code or state in the URL.
    pub async fn callback(
        &self,
        path_platform: &str,
        params: CallbackParams,
        rid: &RequestId,
    ) -> Url {
        let platform =
            Platform::parse(path_platform).filter(|p| ProviderId::for_platform(*p).is_some());
        let shown_platform = platform.map_or("unknown", Platform::as_str);
        let fail = |base: Url, reason: &str| {
            let mut url = base;
            url.query_pairs_mut()
                .append_pair("error", reason)
                .append_pair("platform", shown_platform);
            url
        };
        let Some(state) = params
            .state
            .as_ref()
            .filter(|s| !s.expose().is_empty() && s.expose().len() <= 512)
        else {
            return fail(self.default_return(), "invalid_state");
        };
        match self.finish(platform, state, &params, rid).await {
            Ok((base, id, warning)) => {
                let mut url = base;
                url.query_pairs_mut()
                    .append_pair("success", "true")
                    .append_pair("platform", shown_platform)
                    .append_pair("integration_id", &id.to_string());
                if let Some(w) = warning {
                    url.query_pairs_mut().append_pair("warning", w);
                }
                url
            }
            Err((base, reason)) => fail(base.unwrap_or_else(|| self.default_return()), reason),
        }
    }

    /// The callback's work; errors carry where to send the browser and a reason code.
    async fn finish(
        &self,
        platform: Option<Platform>,
        state: &Secret<String>,
        params: &CallbackParams,
        rid: &RequestId,
    ) -> Result<(Url, IntegrationId, Option<&'static str>), (Option<Url>, &'static str)> {
        let hash = pkce::state_hash(state.expose());
        let db_err = |e: Error| {
            tracing::warn!(request_id = %rid, reason = e.reason().as_str(), cause = ?e.cause().map(|c| format!("{c:#}")), "oauth callback failed");
            (None, "server_error")
        };
        let mut tx = self.inner.db.begin().await.map_err(|e| db_err(e.into()))?;
        let row = store::oauth_states::get_for_update(&mut tx, &hash)
            .await
            .map_err(db_err)?
            .ok_or((None, "invalid_state"))?;
        let base = row
            .return_to
            .as_deref()
            .and_then(|r| Url::parse(r).ok())
            .unwrap_or_else(|| self.default_return());
        let fail = |reason| (Some(base.clone()), reason);
        if row.consumed {
            return Err(fail("state_reused"));
        }
        // Every outcome from here uses the state up.
        store::oauth_states::consume(&mut tx, &hash)
            .await
            .map_err(db_err)?;
        let outcome = self.exchange_in(&mut tx, platform, &row, params, rid).await;
        tx.commit().await.map_err(|e| db_err(e.into()))?;
        match outcome {
            Ok((id, warning)) => {
                tracing::info!(request_id = %rid, integration_id = %id, provider = %row.provider, "oauth connection finished");
                Ok((base, id, warning))
            }
            Err(reason) => {
                tracing::info!(request_id = %rid, provider = %row.provider, reason, "oauth connection failed");
                Err(fail(reason))
            }
        }
    }

    async fn exchange_in(
        &self,
        tx: &mut sqlx::PgConnection,
        platform: Option<Platform>,
        row: &store::oauth_states::StateRow,
        params: &CallbackParams,
        rid: &RequestId,
    ) -> Result<(IntegrationId, Option<&'static str>), &'static str> {
        if row.expired {
            return Err("state_expired");
        }
        let id = ProviderId::parse(&row.provider).ok_or("invalid_state")?;
        // Mix-up defence: the provider that redirected must be the one the flow started with.
        if platform.map(Platform::as_str) != Some(row.platform.as_str()) {
            return Err("platform_mismatch");
        }
        let platform = id.platform();
        if let Some(error) = &params.error {
            return Err(match error.as_str() {
                "access_denied" => "access_denied",
                "invalid_scope" => "invalid_scope",
                "server_error" => "server_error",
                "temporarily_unavailable" => "temporarily_unavailable",
                "unauthorized_client" => "unauthorized_client",
                "consent_required" => "consent_required",
                "login_required" => "login_required",
                "interaction_required" => "interaction_required",
                _ => "provider_error",
            });
        }
        let p = self
            .inner
            .catalogue
            .get(id)
            .map_err(|_| "provider_not_configured")?;
        if let (Some(iss), Some(expected)) = (&params.iss, &p.issuer)
            && iss != expected
        {
            return Err("issuer_mismatch");
        }
        let code = params
            .code
            .as_ref()
            .filter(|c| !c.expose().is_empty())
            .ok_or("missing_code")?;
        let verifier = match row.verifier() {
            Ok(Some(sealed)) => Some(
                self.inner
                    .keyring
                    .open_string(
                        &SealContext {
                            integration_id: row.id,
                            field: "pkce_verifier",
                        },
                        &sealed,
                    )
                    .map_err(|_| "server_error")?,
            ),
            Ok(None) => None,
            Err(_) => return Err("server_error"),
        };
        let tokens = client::exchange(
            &self.inner.http,
            p,
            self.inner.settings.provider_timeout,
            code.expose(),
            &row.redirect_uri,
            verifier.as_ref().map(|v| v.expose().as_str()),
        )
        .await
        .map_err(|e| match e {
            OAuthError::Unavailable { .. } => "provider_unavailable",
            OAuthError::Rejected { .. } | OAuthError::Malformed { .. } => "exchange_failed",
        })?;
        let scope_missing = p.needs_refresh_token && !tokens.has("refresh_token");
        let caller = Caller {
            user_id: UserId(row.user_id),
            workspace_id: WorkspaceId(row.workspace_id),
            role: row.user_role.parse().unwrap_or(Role::Member),
        };
        let integration = self
            .store_grant(tx, &caller, platform, tokens, scope_missing, rid)
            .await
            .map_err(|e| {
                tracing::warn!(request_id = %rid, reason = e.reason().as_str(), cause = ?e.cause().map(|c| format!("{c:#}")), "storing an oauth grant failed");
                "server_error"
            })?;
        Ok((integration, scope_missing.then_some("scope_missing")))
    }

    async fn store_grant(
        &self,
        tx: &mut sqlx::PgConnection,
        caller: &Caller,
        platform: Platform,
        tokens: TokenSet,
        scope_missing: bool,
        rid: &RequestId,
    ) -> Result<IntegrationId, Error> {
        let account = tokens.account_id.clone().unwrap_or_default();
        let expires_at = expiry(tokens.expires_in);
        store::workspaces::ensure(tx, caller.workspace_id).await?;
        let new_id = IntegrationId::new();
        let id = store::integrations::upsert_oauth(
            tx,
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
            },
            scope_missing.then_some(Reason::ScopeMissing),
        )
        .await?;
        // A reconnect replaces every token of the old grant.
        store::credentials::delete_all(tx, id).await?;
        let fields: BTreeMap<&str, Secret<String>> = tokens.fields.into_iter().collect();
        store::credentials::put(tx, &self.inner.keyring, id, &fields, expires_at).await?;
        let names: Vec<&str> = fields.keys().copied().collect();
        store::audit::record(
            tx,
            caller,
            Some(id),
            if id == new_id { "integration.connected" } else { "integration.reconnected" },
            json!({"platform": platform.as_str(), "via": "oauth", "credential_fields": names, "scope_missing": scope_missing}),
            rid,
        )
        .await?;
        Ok(id)
    }

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
                        let result = this
                            .refresh_locked(id, seen_version)
                            .await
                            .map_err(|e| Failure::from(&e));
                        this.inner
                            .inflight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&key);
                        result
                    });
                    let flight = async move {
                        task.await.unwrap_or_else(|_| {
                            Err(Failure {
                                kind: ErrorKind::Internal,
                                reason: Reason::Internal,
                                message: "internal error".into(),
                            })
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
        let lock_ms = self.inner.settings.refresh_lock_timeout.as_millis().max(1);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{lock_ms}ms'"
        )))
        .execute(&mut *tx)
        .await?;
        let row = store::integrations::lock_for_refresh(&mut tx, id)
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
                Ok(user) => {
                    for (field, value) in user.fields {
                        let renamed = match field {
                            "access_token" => "user_token",
                            "refresh_token" => "user_refresh_token",
                            other => other,
                        };
                        tokens.fields.push((renamed, value));
                    }
                }
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

    /// Refreshes tokens due within `refresh_ahead`, forever, until `shutdown`. Each replica
    /// claims rows with SKIP LOCKED, so every integration is refreshed by one replica.
    pub async fn run_refresh_loop(self, shutdown: CancellationToken) {
        let every = self
            .inner
            .settings
            .refresh_interval
            .max(Duration::from_millis(50));
        loop {
            // Jitter spreads replicas that started together.
            let jitter = every.mul_f64(rand::random::<f64>() * 0.2);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every + jitter) => {}
            }
            if let Err(e) = self.refresh_due().await {
                tracing::warn!(reason = e.reason().as_str(), cause = ?e.cause().map(|c| format!("{c:#}")), "refresh sweep failed");
            }
        }
    }

    async fn refresh_due(&self) -> Result<(), Error> {
        let due = store::integrations::claim_due_refreshes(
            &self.inner.db,
            self.inner.settings.refresh_ahead,
            CLAIM_LEASE,
            100,
        )
        .await?;
        let results = futures::stream::iter(due)
            .map(|(id, version, failures)| async move {
                (id, failures, self.refresh(id, Some(version)).await)
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for (id, failures, result) in results {
            if let Err(e) = result
                && matches!(
                    e.kind(),
                    ErrorKind::Unavailable | ErrorKind::FailedPrecondition
                )
                && e.reason() != Reason::RefreshTokenRevoked
            {
                // Full jitter on an exponential base: 30 s, 1 min, 2 min ... capped at 1 h.
                let base = 30.0 * 2f64.powi(failures.clamp(0, 7));
                let backoff =
                    Duration::from_secs_f64(base.min(3600.0) * (0.5 + rand::random::<f64>() / 2.0));
                store::integrations::record_refresh_failure(&self.inner.db, id, backoff).await?;
            }
        }
        self.retry_revocations().await?;
        store::oauth_states::delete_stale(&self.inner.db).await?;
        Ok(())
    }

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
                let user = creds.get("user_token");
                let bot = creds
                    .get("access_token")
                    .filter(|t| t.expose().starts_with("xoxb-") || user.is_some());
                if let Some(u) =
                    user.or_else(|| creds.get("access_token").filter(|_| bot.is_none()))
                {
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
                    let others = store::integrations::count_live_for_account(
                        &self.inner.db,
                        integration.platform,
                        &integration.provider_account_id,
                        integration.id,
                    )
                    .await;
                    match others {
                        Ok(0) => out.push(self.revoke_token(integration, p, "bot_token", Method::Slack, b, "access_token").await),
                        Ok(n) => out.push(entry("bot_token", false, Reason::SharedBotToken, format!("the Slack bot token is shared with {n} other connection(s) of this Slack team; it stays valid until the last one disconnects"))),
                        Err(_) => out.push(entry("bot_token", false, Reason::SharedBotToken, "could not tell whether other connections share the bot token, so it was left valid".to_owned())),
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
    /// Revokes one token; when the provider is unavailable, queues a sealed copy that the
    /// refresh loop retries, and says so.
    async fn revoke_token(
        &self,
        integration: &Integration,
        p: &crate::oauth::Provider,
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
        p: &crate::oauth::Provider,
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
        p: &crate::oauth::Provider,
        method: Method,
        token: &Secret<String>,
        hint: &str,
    ) -> Result<(), Error> {
        let id = Uuid::new_v4();
        let sealed = self
            .inner
            .keyring
            .seal(
                &SealContext {
                    integration_id: id,
                    field: REVOCATION_FIELD,
                },
                token.expose().as_bytes(),
            )
            .map_err(Error::internal)?;
        store::revocations::insert(
            &self.inner.db,
            &store::revocations::NewPending {
                id,
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

    /// Retries queued revocations that are due. Gives up (and forgets the token) after
    /// `REVOCATION_MAX_ATTEMPTS`, about a day of backing off.
    async fn retry_revocations(&self) -> Result<(), Error> {
        let due = store::revocations::claim_due(&self.inner.db, CLAIM_LEASE, 20).await?;
        for pending in due {
            let provider = ProviderId::parse(&pending.provider)
                .and_then(|id| self.inner.catalogue.get(id).ok());
            let method = Method::parse(&pending.method);
            let (Some(p), Some(method)) = (provider, method) else {
                tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, "dropping a queued revocation: its provider is no longer configured");
                store::revocations::delete(&self.inner.db, pending.id).await?;
                continue;
            };
            let token = pending.sealed().and_then(|sealed| {
                self.inner
                    .keyring
                    .open_string(
                        &SealContext {
                            integration_id: pending.id,
                            field: REVOCATION_FIELD,
                        },
                        &sealed,
                    )
                    .map_err(Error::internal)
            })?;
            match self
                .call_revocation(p, method, token.expose(), &pending.token_type_hint)
                .await
            {
                Revoked::Yes => {
                    tracing::info!(integration_id = %pending.integration_id, provider = %pending.provider, "queued revocation done");
                    store::revocations::delete(&self.inner.db, pending.id).await?;
                }
                Revoked::Rejected { code } => {
                    tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, code, "queued revocation refused");
                    store::revocations::delete(&self.inner.db, pending.id).await?;
                }
                Revoked::Unavailable if pending.attempts + 1 >= REVOCATION_MAX_ATTEMPTS => {
                    tracing::warn!(integration_id = %pending.integration_id, provider = %pending.provider, "giving up a queued revocation after repeated outages");
                    store::revocations::delete(&self.inner.db, pending.id).await?;
                }
                Revoked::Unavailable => {
                    let base = self.inner.settings.revocation_retry_base.as_secs_f64()
                        * 2f64.powi(pending.attempts.clamp(0, 10));
                    let wait = Duration::from_secs_f64(
                        base.min(6.0 * 3600.0) * (0.5 + rand::random::<f64>() / 2.0),
                    );
                    store::revocations::retry_later(&self.inner.db, pending.id, wait).await?;
                }
            }
        }
        Ok(())
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

/// AAD field of a token sealed for a revocation retry.
const REVOCATION_FIELD: &str = "pending_revocation";
const REVOCATION_MAX_ATTEMPTS: i32 = 12;

fn expiry(expires_in: Option<u64>) -> Option<chrono::DateTime<Utc>> {
    expires_in.map(|s| Utc::now() + chrono::Duration::seconds(s.min(10 * 365 * 24 * 3600) as i64))
}
