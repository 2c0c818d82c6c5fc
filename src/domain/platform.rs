//! Platforms, integration statuses, connection types and health states, with their wire names.

use std::fmt;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase name used in the database, REST and paths.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// Parses the lowercase name, case-insensitively.
            pub fn parse(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($s) { return Some($name::$variant); })+
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// A platform a workspace can connect.
    Platform {
        Zoom = "zoom",
        Slack = "slack",
        Discord = "discord",
        Outlook = "outlook",
        Monday = "monday",
        Gmail = "gmail",
        Notion = "notion",
        Loom = "loom",
        Fireflies = "fireflies",
        Otter = "otter",
        Granola = "granola",
        Zerodb = "zerodb",
        Zerovoice = "zerovoice",
        Custom = "custom",
    }
);

impl Platform {
    /// Platforms whose normal connection is the browser OAuth flow.
    pub fn is_oauth(self) -> bool {
        matches!(
            self,
            Platform::Zoom
                | Platform::Slack
                | Platform::Discord
                | Platform::Outlook
                | Platform::Monday
                | Platform::Gmail
                | Platform::Notion
                | Platform::Loom
                | Platform::Custom
        )
    }

    /// A human name for default display names.
    pub fn title(self) -> &'static str {
        match self {
            Platform::Zoom => "Zoom",
            Platform::Slack => "Slack",
            Platform::Discord => "Discord",
            Platform::Outlook => "Outlook",
            Platform::Monday => "Monday.com",
            Platform::Gmail => "Gmail",
            Platform::Notion => "Notion",
            Platform::Loom => "Loom",
            Platform::Fireflies => "Fireflies",
            Platform::Otter => "Otter",
            Platform::Granola => "Granola",
            Platform::Zerodb => "ZeroDB",
            Platform::Zerovoice => "ZeroVoice",
            Platform::Custom => "Custom OAuth",
        }
    }
}

string_enum!(
    /// Lifecycle of an integration.
    IntegrationStatus {
        Pending = "pending",
        Connected = "connected",
        NeedsReauth = "needs_reauth",
        Error = "error",
        Revoked = "revoked",
    }
);

string_enum!(
    /// What the last health checks say about a connection.
    HealthState {
        Unknown = "unknown",
        Healthy = "healthy",
        Degraded = "degraded",
        NeedsReauth = "needs_reauth",
        Revoked = "revoked",
    }
);

string_enum!(
    /// How an integration's credentials were obtained: an API key or pasted token (direct), or
    /// the provider's consent screen (oauth).
    ConnectionType {
        Direct = "direct",
        Oauth = "oauth",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_round_trips_through_its_name() {
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(*p));
            assert_eq!(Platform::parse(&p.as_str().to_uppercase()), Some(*p));
        }
        assert_eq!(Platform::parse("myspace"), None);
    }
}
