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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::ProviderId;
    use crate::oauth::catalogue::Catalogue;
    use crate::oauth::{ProviderSettings, pkce};

    /// The URL `service::oauth_flow::start` wrote by hand before oauth2, kept as the reference.
    fn by_hand(p: &Provider, redirect_uri: &str, state: &str, verifier: Option<&str>) -> Url {
        let mut url = p.authorize_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state);
            if !p.scopes.is_empty() {
                q.append_pair("scope", &p.scopes.join(p.scope_separator));
            }
            if p.id == ProviderId::Slack {
                q.append_pair("user_scope", "search:read");
            }
            if let Some(v) = verifier {
                q.append_pair("code_challenge", &pkce::challenge(v))
                    .append_pair("code_challenge_method", "S256");
            }
            for (k, v) in p.extra {
                q.append_pair(k, v);
            }
        }
        url
    }

    fn params(url: &Url) -> BTreeMap<String, String> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn every_provider_gets_the_parameters_it_got_by_hand() {
        let mut settings = BTreeMap::new();
        for id in ProviderId::ALL {
            let custom = id == ProviderId::Custom;
            settings.insert(
                id.as_str().to_owned(),
                ProviderSettings {
                    client_id: Some(format!("{id}-client")),
                    client_secret: Some(Secret::new("secret".into())),
                    authorize_url: custom.then(|| "https://auth.test/a?tenant=t1".into()),
                    token_url: custom.then(|| "https://auth.test/t".into()),
                    scopes: custom.then(|| vec!["read".into(), "write".into()]),
                    ..Default::default()
                },
            );
        }
        let catalogue = Catalogue::new(&settings).unwrap();
        let redirect = "https://fh.test/api/v1/oauth/x/callback";
        for id in ProviderId::ALL {
            let p = catalogue.get(id).unwrap();
            let state = pkce::random_token();
            let verifier = p.pkce.then(pkce::random_token);
            let url = authorize_url(p, redirect, &state, verifier.as_ref()).unwrap();
            let want = by_hand(
                p,
                redirect,
                state.expose(),
                verifier.as_ref().map(|v| v.expose().as_str()),
            );
            assert_eq!(params(&url), params(&want), "{id}");
            assert_eq!(
                url.as_str().split('?').next(),
                want.as_str().split('?').next()
            );
            assert_eq!(
                params(&url).len(),
                url.query_pairs().count(),
                "{id}: no repeats"
            );
        }
    }
}
