//! Connector settings: each platform's base URL (`FH_<PLATFORM>_BASE_URL`) and the HTTP core's
//! policy (`FH_CONNECTOR_*`). Flattened into `config::Settings`, so they are flags and
//! environment variables like every other setting.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Url;

use super::transport::HttpPolicy;
use crate::domain::Platform;

/// Documented production base URLs. ZeroDB has none: its host is a credential field
/// (`FH_ZERODB_BASE_URL` is only the fallback for a credential without one).
pub const DEFAULT_BASE_URLS: &[(Platform, &str)] = &[
    (Platform::Zoom, "https://api.zoom.us/v2"),
    (Platform::Slack, "https://slack.com/api"),
    (Platform::Discord, "https://discord.com/api/v10"),
    (Platform::Outlook, "https://graph.microsoft.com/v1.0"),
    (Platform::Monday, "https://api.monday.com/v2"),
    (Platform::Gmail, "https://gmail.googleapis.com/gmail/v1"),
    (Platform::Notion, "https://api.notion.com/v1"),
    (Platform::Loom, "https://www.loom.com/api/v1"),
    (Platform::Fireflies, "https://api.fireflies.ai/graphql"),
    (Platform::Otter, "https://otter.ai/forward/api/v1"),
    (Platform::Granola, "https://public-api.granola.ai"),
    (Platform::Zerovoice, "https://api.twilio.com/2010-04-01"),
];

fn default_of(p: Platform) -> &'static str {
    DEFAULT_BASE_URLS
        .iter()
        .find(|(q, _)| *q == p)
        .map(|(_, u)| *u)
        .unwrap_or_default()
}

/// Connector flags and `FH_*` variables.
#[derive(Args, Debug, Clone)]
pub struct ConnectorSettings {
    /// Base URL of the Zoom API; point it at a proxy or a test server.
    #[arg(long, env = "FH_ZOOM_BASE_URL", default_value = default_of(Platform::Zoom), global = true)]
    pub zoom_base_url: String,
    /// Base URL of the Slack Web API; point it at a proxy or a test server.
    #[arg(long, env = "FH_SLACK_BASE_URL", default_value = default_of(Platform::Slack), global = true)]
    pub slack_base_url: String,
    /// Base URL of the Discord API; point it at a proxy or a test server.
    #[arg(long, env = "FH_DISCORD_BASE_URL", default_value = default_of(Platform::Discord), global = true)]
    pub discord_base_url: String,
    /// Base URL of the Microsoft Graph (Outlook); point it at a proxy or a test server.
    #[arg(long, env = "FH_OUTLOOK_BASE_URL", default_value = default_of(Platform::Outlook), global = true)]
    pub outlook_base_url: String,
    /// Base URL of the monday.com GraphQL API; point it at a proxy or a test server.
    #[arg(long, env = "FH_MONDAY_BASE_URL", default_value = default_of(Platform::Monday), global = true)]
    pub monday_base_url: String,
    /// Base URL of the Gmail API; point it at a proxy or a test server.
    #[arg(long, env = "FH_GMAIL_BASE_URL", default_value = default_of(Platform::Gmail), global = true)]
    pub gmail_base_url: String,
    /// Base URL of the Notion API; point it at a proxy or a test server.
    #[arg(long, env = "FH_NOTION_BASE_URL", default_value = default_of(Platform::Notion), global = true)]
    pub notion_base_url: String,
    /// Base URL of the Loom API (unverified: no public API documented); point it at a proxy or a test server.
    #[arg(long, env = "FH_LOOM_BASE_URL", default_value = default_of(Platform::Loom), global = true)]
    pub loom_base_url: String,
    /// Base URL of the Fireflies GraphQL API; point it at a proxy or a test server.
    #[arg(long, env = "FH_FIREFLIES_BASE_URL", default_value = default_of(Platform::Fireflies), global = true)]
    pub fireflies_base_url: String,
    /// Base URL of the Otter API (unverified: no public API documented); point it at a proxy or a test server.
    #[arg(long, env = "FH_OTTER_BASE_URL", default_value = default_of(Platform::Otter), global = true)]
    pub otter_base_url: String,
    /// Base URL of the Granola API (unverified surface); point it at a proxy or a test server.
    #[arg(long, env = "FH_GRANOLA_BASE_URL", default_value = default_of(Platform::Granola), global = true)]
    pub granola_base_url: String,
    /// ZeroDB's host comes from each integration's `base_url` credential; this is the fallback
    /// for a credential without one.
    #[arg(long, env = "FH_ZERODB_BASE_URL", global = true)]
    pub zerodb_base_url: Option<String>,
    /// Base URL of ZeroVoice, which speaks the Twilio REST API.
    #[arg(long, env = "FH_ZEROVOICE_BASE_URL", default_value = default_of(Platform::Zerovoice), global = true)]
    pub zerovoice_base_url: String,
    /// Deadline of a connector call when the caller sets no grpc-timeout, and the most it may
    /// set.
    #[arg(long, env = "FH_CONNECTOR_DEADLINE", default_value = "25s", value_parser = humantime::parse_duration, global = true)]
    pub connector_deadline: Duration,
    /// Attempts per idempotent provider call, the first included.
    #[arg(
        long,
        env = "FH_CONNECTOR_MAX_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub connector_max_attempts: u32,
    /// First backoff ceiling (full jitter, doubling per attempt).
    #[arg(long, env = "FH_CONNECTOR_BACKOFF_BASE", default_value = "200ms", value_parser = humantime::parse_duration, global = true)]
    pub connector_backoff_base: Duration,
    /// Largest wait between two attempts, whatever the attempt number.
    #[arg(long, env = "FH_CONNECTOR_BACKOFF_MAX", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub connector_backoff_max: Duration,
    /// Consecutive failures (network, timeout, 5xx) that open a platform's circuit.
    #[arg(
        long,
        env = "FH_CONNECTOR_BREAKER_THRESHOLD",
        default_value_t = 5,
        global = true
    )]
    pub connector_breaker_threshold: u32,
    /// How long an open circuit refuses calls before one probe.
    #[arg(long, env = "FH_CONNECTOR_BREAKER_COOLDOWN", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub connector_breaker_cooldown: Duration,
    /// Largest JSON answer read from a provider.
    #[arg(long, env = "FH_CONNECTOR_MAX_RESPONSE_BYTES", default_value_t = 10 * 1024 * 1024, global = true)]
    pub connector_max_response_bytes: usize,
    /// Let URLs the operator did not configure (a ZeroDB credential's base URL, download
    /// redirects) reach loopback, private and reserved addresses, e.g. a ZeroDB on the same host.
    /// Off by default: it would let members probe internal services.
    #[arg(
        long,
        env = "FH_CONNECTOR_ALLOW_PRIVATE_HOSTS",
        default_value_t = false,
        global = true
    )]
    pub connector_allow_private_hosts: bool,
    /// Total time a recording download may stream.
    #[arg(long, env = "FH_CONNECTOR_DOWNLOAD_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub connector_download_timeout: Duration,
}

/// Base URLs by platform, validated.
#[derive(Clone, Debug)]
pub struct BaseUrls(BTreeMap<Platform, Url>);

impl BaseUrls {
    pub fn get(&self, platform: Platform) -> Option<&Url> {
        self.0.get(&platform)
    }

    /// Points a platform somewhere else (tests, proxies, tenants).
    pub fn set(&mut self, platform: Platform, url: &str) -> anyhow::Result<()> {
        self.0.insert(platform, parse_base(platform, url)?);
        Ok(())
    }
}

impl Default for BaseUrls {
    fn default() -> Self {
        Self(
            DEFAULT_BASE_URLS
                .iter()
                .filter_map(|(p, u)| Some((*p, parse_base(*p, u).ok()?)))
                .collect(),
        )
    }
}

/// An http(s) URL without query, fragment or credentials; a trailing slash is dropped so
/// paths join the same way whatever was configured.
pub fn parse_base(platform: Platform, raw: &str) -> anyhow::Result<Url> {
    let mut url =
        Url::parse(raw.trim()).with_context(|| format!("the {platform} base URL is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        bail!("the {platform} base URL must be http(s) with a host and no query, fragment or user");
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

/// Connector configuration the app is built with.
#[derive(Clone, Debug, Default)]
pub struct ConnectorConfig {
    pub base_urls: BaseUrls,
    pub policy: HttpPolicy,
    /// Whether URLs the operator did not configure (a credential's base URL, a redirect) may
    /// reach loopback, private or reserved addresses. Off: a member could otherwise read
    /// internal services through us (`egress`).
    pub allow_private_hosts: bool,
}

impl ConnectorSettings {
    pub fn into_config(self) -> anyhow::Result<ConnectorConfig> {
        let mut base_urls = BaseUrls(BTreeMap::new());
        let pairs = [
            (Platform::Zoom, Some(self.zoom_base_url)),
            (Platform::Slack, Some(self.slack_base_url)),
            (Platform::Discord, Some(self.discord_base_url)),
            (Platform::Outlook, Some(self.outlook_base_url)),
            (Platform::Monday, Some(self.monday_base_url)),
            (Platform::Gmail, Some(self.gmail_base_url)),
            (Platform::Notion, Some(self.notion_base_url)),
            (Platform::Loom, Some(self.loom_base_url)),
            (Platform::Fireflies, Some(self.fireflies_base_url)),
            (Platform::Otter, Some(self.otter_base_url)),
            (Platform::Granola, Some(self.granola_base_url)),
            (Platform::Zerodb, self.zerodb_base_url),
            (Platform::Zerovoice, Some(self.zerovoice_base_url)),
        ];
        for (platform, url) in pairs {
            if let Some(url) = url {
                base_urls.set(platform, &url).with_context(|| {
                    format!(
                        "FH_{}_BASE_URL is invalid",
                        platform.as_str().to_uppercase()
                    )
                })?;
            }
        }
        if self.connector_max_attempts == 0 {
            bail!("FH_CONNECTOR_MAX_ATTEMPTS must be at least 1");
        }
        if self.connector_breaker_threshold == 0 {
            bail!("FH_CONNECTOR_BREAKER_THRESHOLD must be at least 1");
        }
        Ok(ConnectorConfig {
            base_urls,
            policy: HttpPolicy {
                max_attempts: self.connector_max_attempts,
                backoff_base: self.connector_backoff_base,
                backoff_max: self.connector_backoff_max,
                breaker_threshold: self.connector_breaker_threshold,
                breaker_cooldown: self.connector_breaker_cooldown,
                max_response_bytes: self.connector_max_response_bytes,
                download_timeout: self.connector_download_timeout,
                default_deadline: self.connector_deadline,
            },
            allow_private_hosts: self.connector_allow_private_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_platform_but_zerodb_has_a_default_base_url() {
        let urls = BaseUrls::default();
        for p in Platform::ALL {
            let expected = !matches!(p, Platform::Zerodb | Platform::Custom);
            assert_eq!(urls.get(*p).is_some(), expected, "{p}");
        }
        assert_eq!(
            urls.get(Platform::Zerovoice).map(Url::as_str),
            Some("https://api.twilio.com/2010-04-01")
        );
    }

    #[test]
    fn base_urls_lose_a_trailing_slash_and_refuse_queries_and_other_schemes() {
        assert_eq!(
            parse_base(Platform::Otter, "http://127.0.0.1:9/api/")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/api"
        );
        for bad in [
            "ftp://x.example",
            "https://x.example/?a=1",
            "https://u:p@x.example",
            "nope",
        ] {
            assert!(parse_base(Platform::Otter, bad).is_err(), "{bad}");
        }
    }
}
