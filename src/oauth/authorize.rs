//! The authorization request (RFC 6749 4.1.1): the provider URL a browser is sent to, with the
//! provider's scopes, PKCE challenge (RFC 7636, S256) and extra parameters.

use std::borrow::Cow;

use oauth2::{
    AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use reqwest::Url;

use super::catalogue::Provider;
use crate::domain::Secret;
use crate::error::Error;

/// The URL that starts an authorization at `provider`: `response_type=code`, the client id,
/// `redirect_uri`, `state`, the scopes joined by the provider's separator, the S256 challenge
/// of `verifier` when the provider takes PKCE, Slack's `user_scope`, and the provider's extras.
pub fn authorize_url(
    provider: &Provider,
    redirect_uri: &str,
    state: &Secret<String>,
    verifier: Option<&Secret<String>>,
) -> Result<Url, Error> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| Error::internal(anyhow::anyhow!("the redirect uri is not a url: {e}")))?;
    let client = oauth2::basic::BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(provider.authorize_url.clone()));
    let state = state.expose().clone();
    let mut request = client
        .authorize_url(|| CsrfToken::new(state))
        .set_redirect_uri(Cow::Owned(redirect));
    if !provider.scopes.is_empty() {
        // One scope holding the joined list: oauth2 joins with spaces, Slack wants commas.
        request = request.add_scope(Scope::new(provider.scopes.join(provider.scope_separator)));
    }
    if let Some(v) = verifier {
        let verifier = PkceCodeVerifier::new(v.expose().clone());
        request =
            request.set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
    }
    if !provider.user_scopes.is_empty() {
        request = request.add_extra_param("user_scope", provider.user_scopes.join(","));
    }
    for (k, v) in provider.extra {
        request = request.add_extra_param(*k, *v);
    }
    Ok(request.url().0)
}
