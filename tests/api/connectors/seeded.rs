//! Rigs for OAuth platforms: the integration is seeded as the OAuth callback would store it
//! (`helpers::seed_oauth_integration`), so connector tests need no browser flow.

use std::time::Duration;

use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Platform;

use super::fake::Fake;
use super::{Rig, fast_policy};
use crate::helpers::{seed_oauth_integration, spawn_app_with};

/// What an OAuth integration is seeded with.
pub struct Seed<'a> {
    pub platform: Platform,
    /// Path of the base URL on the fake.
    pub base_path: &'a str,
    /// The stored credential fields (`access_token`, `refresh_token`).
    pub tokens: &'a [(&'a str, &'a str)],
    /// When the access token expires, from now; `Some(ZERO)` is already due for refresh.
    pub expires_in: Option<Duration>,
}

impl Rig {
    /// The app pointed at `fake`, with one OAuth integration seeded in the caller's workspace.
    pub async fn start_seeded(fake: Fake, seed: Seed<'_>, tweak: impl FnOnce(&mut Config)) -> Self {
        let base = fake.url(seed.base_path);
        let app = spawn_app_with(|c| {
            c.connectors.policy = fast_policy();
            c.connectors
                .base_urls
                .set(seed.platform, &base)
                .expect("a valid base URL");
            tweak(c);
        })
        .await;
        let channel = app.channel().await;
        let id = seed_oauth_integration(
            &app,
            seed.platform,
            "seeded-account",
            seed.tokens,
            seed.expires_in,
        )
        .await;
        Self {
            app,
            fake,
            integration: id.to_string(),
            channel,
        }
    }
}
