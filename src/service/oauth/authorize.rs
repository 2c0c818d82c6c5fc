//! Authorization: start a flow (state, PKCE, the provider's URL) and take the provider's
//! redirect at the callback, which hands the code over as a one-time handle; plus the cleanup
//! of spent states.

use chrono::Utc;
use reqwest::Url;
use uuid::Uuid;

use super::OAuth;
use crate::domain::{Caller, Platform, ProviderId, RequestId, Secret, WorkspaceId};
use crate::error::Error;
use crate::oauth::{self, pkce};
use crate::secrets::SealContext;
use crate::store;

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

/// Why a callback failed, as the frontend reads it from `error=` (the README's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackError {
    AccessDenied,
    InvalidState,
    StateExpired,
    StateReused,
    PlatformMismatch,
    IssuerMismatch,
    MissingCode,
    ProviderNotConfigured,
    ServerError,
    // Provider errors (RFC 6749 and OpenID Connect) passed through as they came.
    InvalidScope,
    TemporarilyUnavailable,
    UnauthorizedClient,
    ConsentRequired,
    LoginRequired,
    InteractionRequired,
    /// Any other error the provider redirected with.
    ProviderError,
}

impl CallbackError {
    /// Our own reasons, as the README lists them (the provider passthroughs are not listed).
    pub const OWN: &'static [CallbackError] = &[
        CallbackError::AccessDenied,
        CallbackError::InvalidState,
        CallbackError::StateExpired,
        CallbackError::StateReused,
        CallbackError::PlatformMismatch,
        CallbackError::IssuerMismatch,
        CallbackError::MissingCode,
        CallbackError::ProviderNotConfigured,
        CallbackError::ServerError,
    ];

    /// The `error=` value of the redirect.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackError::AccessDenied => "access_denied",
            CallbackError::InvalidState => "invalid_state",
            CallbackError::StateExpired => "state_expired",
            CallbackError::StateReused => "state_reused",
            CallbackError::PlatformMismatch => "platform_mismatch",
            CallbackError::IssuerMismatch => "issuer_mismatch",
            CallbackError::MissingCode => "missing_code",
            CallbackError::ProviderNotConfigured => "provider_not_configured",
            CallbackError::ServerError => "server_error",
            CallbackError::InvalidScope => "invalid_scope",
            CallbackError::TemporarilyUnavailable => "temporarily_unavailable",
            CallbackError::UnauthorizedClient => "unauthorized_client",
            CallbackError::ConsentRequired => "consent_required",
            CallbackError::LoginRequired => "login_required",
            CallbackError::InteractionRequired => "interaction_required",
            CallbackError::ProviderError => "provider_error",
        }
    }

    /// The provider's own `error=`: known codes pass through, anything else (which could echo
    /// whatever the provider put there) becomes `provider_error`.
    fn from_provider(error: &str) -> Self {
        match error {
            "access_denied" => CallbackError::AccessDenied,
            "invalid_scope" => CallbackError::InvalidScope,
            "server_error" => CallbackError::ServerError,
            "temporarily_unavailable" => CallbackError::TemporarilyUnavailable,
            "unauthorized_client" => CallbackError::UnauthorizedClient,
            "consent_required" => CallbackError::ConsentRequired,
            "login_required" => CallbackError::LoginRequired,
            "interaction_required" => CallbackError::InteractionRequired,
            _ => CallbackError::ProviderError,
        }
    }
}

/// How long a callback's handle may be redeemed.
const HANDLE_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// Whether `path` is `prefix` or below it, by whole segments (`/app` covers `/app/x`, never
/// `/application`). Both are parsed URL paths, so dot segments are already resolved.
fn under_path(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Logs a failure the browser only sees as `server_error`, with its cause (never a secret).
fn server_error(rid: &RequestId, what: &str, e: &Error) -> CallbackError {
    tracing::warn!(request_id = %rid, reason = e.reason().as_str(), cause = ?e.cause().map(|c| format!("{c:#}")), "{what}");
    CallbackError::ServerError
}

impl OAuth {
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

    /// Accepts `return_to` only under the origin and path of `FH_FRONTEND_URL` or of an entry
    /// of `FH_CORS_ORIGINS` (no open redirect, and no other application on a shared origin).
    fn check_return_to(&self, return_to: &str) -> Result<Option<Url>, Error> {
        let return_to = return_to.trim();
        if return_to.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::invalid_field(
                "return_to",
                "must be a URL under the frontend URL or an allowed origin and its path",
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
                .return_prefixes()
                .any(|(o, path)| o == origin && under_path(url.path(), &path));
        if allowed { Ok(Some(url)) } else { Err(bad()) }
    }

    /// The (origin, path) pairs a `return_to` may be under: the frontend URL and every CORS
    /// entry. The frontend's own origin among the CORS entries (configuration always adds it)
    /// stands for the frontend URL, so the frontend's path is not widened to its whole origin.
    fn return_prefixes(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let frontend = &self.inner.frontend_url;
        let frontend_origin = frontend.origin().ascii_serialization();
        let others = self
            .inner
            .allowed_origins
            .iter()
            .filter_map(|o| Url::parse(o.trim()).ok())
            .map(|u| (u.origin().ascii_serialization(), u.path().to_owned()))
            .filter(move |(o, _)| *o != frontend_origin);
        std::iter::once((
            frontend.origin().ascii_serialization(),
            frontend.path().to_owned(),
        ))
        .chain(others)
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
                    &SealContext::pkce_verifier(caller.workspace_id, state_id),
                    v.expose().as_bytes(),
                )
            })
            .transpose()
            .map_err(Error::internal)?;
        let redirect_uri = self.redirect_uri(platform);
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.inner.settings.state_ttl)
                .unwrap_or(chrono::Duration::minutes(10));

        let url = oauth::authorize_url(p, &redirect_uri, &state, verifier.as_ref())?;
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

    /// Takes the provider's redirect and answers where the browser goes: the frontend, with
    /// `oauth_handle=&platform=` (redeemed by [`OAuth::complete`]) or `error=<reason>&platform=`.
    /// Never an error page; never a token, code or state in the URL; never a provider call.
    pub async fn callback(
        &self,
        path_platform: &str,
        params: CallbackParams,
        rid: &RequestId,
    ) -> Url {
        let platform =
            Platform::parse(path_platform).filter(|p| ProviderId::for_platform(*p).is_some());
        let shown_platform = platform.map_or("unknown", Platform::as_str);
        let fail = |base: Url, reason: CallbackError| {
            let mut url = base;
            url.query_pairs_mut()
                .append_pair("error", reason.as_str())
                .append_pair("platform", shown_platform);
            url
        };
        let Some(state) = params
            .state
            .as_ref()
            .filter(|s| !s.expose().is_empty() && s.expose().len() <= 512)
        else {
            return fail(self.default_return(), CallbackError::InvalidState);
        };
        match self.finish(platform, state, &params, rid).await {
            Ok((base, handle)) => {
                let mut url = base;
                url.query_pairs_mut()
                    .append_pair("oauth_handle", handle.expose())
                    .append_pair("platform", shown_platform);
                url
            }
            Err((base, reason)) => fail(base.unwrap_or_else(|| self.default_return()), reason),
        }
    }

    /// The callback's work; errors carry where to send the browser and why.
    async fn finish(
        &self,
        platform: Option<Platform>,
        state: &Secret<String>,
        params: &CallbackParams,
        rid: &RequestId,
    ) -> Result<(Url, Secret<String>), (Option<Url>, CallbackError)> {
        let hash = pkce::state_hash(state.expose());
        let db_err = |e: Error| (None, server_error(rid, "oauth callback failed", &e));
        let mut tx = self.inner.db.begin().await.map_err(|e| db_err(e.into()))?;
        let row = store::oauth_states::get_for_update(&mut tx, &hash)
            .await
            .map_err(db_err)?
            .ok_or((None, CallbackError::InvalidState))?;
        let base = row
            .return_to
            .as_deref()
            .and_then(|r| Url::parse(r).ok())
            .unwrap_or_else(|| self.default_return());
        let fail = |reason| (Some(base.clone()), reason);
        if row.consumed {
            return Err(fail(CallbackError::StateReused));
        }
        // Every outcome from here uses the state up.
        store::oauth_states::consume(&mut tx, &hash)
            .await
            .map_err(db_err)?;
        let outcome = self.hand_over(&mut tx, platform, &row, params, rid).await;
        tx.commit().await.map_err(|e| db_err(e.into()))?;
        match outcome {
            Ok(handle) => {
                tracing::info!(request_id = %rid, state_id = %row.id, provider = %row.provider, "oauth callback handed over the code");
                Ok((base, handle))
            }
            Err(reason) => {
                tracing::info!(request_id = %rid, provider = %row.provider, reason = reason.as_str(), "oauth callback failed");
                Err(fail(reason))
            }
        }
    }

    /// Checks the callback against its state and hands the code over: sealed into a one-time
    /// handle row in the state's transaction. No provider is called here.
    async fn hand_over(
        &self,
        tx: &mut sqlx::PgConnection,
        platform: Option<Platform>,
        row: &store::oauth_states::StateRow,
        params: &CallbackParams,
        rid: &RequestId,
    ) -> Result<Secret<String>, CallbackError> {
        if row.expired {
            return Err(CallbackError::StateExpired);
        }
        let id = ProviderId::parse(&row.provider).ok_or(CallbackError::InvalidState)?;
        // Mix-up defence: the provider that redirected must be the one the flow started with.
        if platform.map(Platform::as_str) != Some(row.platform.as_str()) {
            return Err(CallbackError::PlatformMismatch);
        }
        if let Some(error) = &params.error {
            return Err(CallbackError::from_provider(error));
        }
        let p = self
            .inner
            .catalogue
            .get(id)
            .map_err(|_| CallbackError::ProviderNotConfigured)?;
        if let (Some(iss), Some(expected)) = (&params.iss, &p.issuer)
            && iss != expected
        {
            return Err(CallbackError::IssuerMismatch);
        }
        let code = params
            .code
            .as_ref()
            .filter(|c| !c.expose().is_empty() && c.expose().len() <= 4096)
            .ok_or(CallbackError::MissingCode)?;
        // A verifier that does not open (key removed, row tampered with or moved to another
        // workspace) ends this flow here, before a handle exists; the state is already used up.
        if let Err(e) = row.verifier().and_then(|sealed| {
            sealed
                .map(|s| self.inner.keyring.open_string(&row.verifier_context(), &s))
                .transpose()
        }) {
            tracing::warn!(request_id = %rid, state_id = %row.id, provider = %row.provider, error = %e, "the sealed pkce verifier of an oauth state does not open");
            return Err(CallbackError::ServerError);
        }
        let handle = pkce::random_token();
        let handle_id = Uuid::new_v4();
        let workspace_id = WorkspaceId(row.workspace_id);
        let sealed = self
            .inner
            .keyring
            .seal(
                &SealContext::oauth_code(workspace_id, handle_id),
                code.expose().as_bytes(),
            )
            .map_err(|e| server_error(rid, "sealing an oauth code failed", &Error::internal(e)))?;
        store::oauth_handles::insert(
            tx,
            &store::oauth_handles::NewHandle {
                id: handle_id,
                hash: &pkce::state_hash(handle.expose()),
                state_id: row.id,
                workspace_id,
                code: &sealed,
                expires_at: Utc::now() + HANDLE_TTL,
            },
        )
        .await
        .map_err(|e| server_error(rid, "storing an oauth handle failed", &e))?;
        Ok(handle)
    }

    /// The stale-state cleanup job: deletes handles and states long past expiry, returns how
    /// many rows.
    pub async fn delete_stale_states(&self) -> Result<u64, Error> {
        let handles = store::oauth_handles::delete_stale(&self.inner.db).await?;
        Ok(handles + store::oauth_states::delete_stale(&self.inner.db).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::CallbackError;

    #[test]
    fn every_own_callback_reason_is_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for e in CallbackError::OWN {
            assert!(
                readme.contains(&format!("`{}`", e.as_str())),
                "README does not list the callback reason {}",
                e.as_str()
            );
        }
    }

    #[test]
    fn a_path_prefix_covers_whole_segments_only() {
        use super::under_path;
        for (path, prefix) in [
            ("/x", "/"),
            ("/app", "/app"),
            ("/app/", "/app"),
            ("/app/x", "/app/"),
            ("/", ""),
        ] {
            assert!(under_path(path, prefix), "{path} under {prefix}");
        }
        for (path, prefix) in [
            ("/application", "/app"),
            ("/ap", "/app"),
            ("/", "/app"),
            ("/other/app", "/app"),
        ] {
            assert!(!under_path(path, prefix), "{path} not under {prefix}");
        }
    }

    #[test]
    fn known_provider_errors_pass_through_and_others_become_provider_error() {
        for known in [
            "access_denied",
            "invalid_scope",
            "login_required",
            "server_error",
        ] {
            assert_eq!(CallbackError::from_provider(known).as_str(), known);
        }
        for other in ["", "weird", "access_denied<script>"] {
            assert_eq!(
                CallbackError::from_provider(other),
                CallbackError::ProviderError
            );
        }
    }
}
