//! The OAuth providers by name; a platform connects through at most one.

use std::fmt;

use super::Platform;

/// An OAuth provider. Several platforms could share one (Google serves Gmail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderId {
    Zoom,
    Slack,
    Discord,
    Microsoft,
    Monday,
    Notion,
    Google,
    Loom,
    Custom,
}

impl ProviderId {
    pub const ALL: [ProviderId; 9] = [
        Self::Zoom,
        Self::Slack,
        Self::Discord,
        Self::Microsoft,
        Self::Monday,
        Self::Notion,
        Self::Google,
        Self::Loom,
        Self::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zoom => "zoom",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Microsoft => "microsoft",
            Self::Monday => "monday",
            Self::Notion => "notion",
            Self::Google => "google",
            Self::Loom => "loom",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The provider a platform connects through: outlook is Microsoft, gmail is Google.
    pub fn for_platform(platform: Platform) -> Option<Self> {
        Some(match platform {
            Platform::Zoom => Self::Zoom,
            Platform::Slack => Self::Slack,
            Platform::Discord => Self::Discord,
            Platform::Outlook => Self::Microsoft,
            Platform::Monday => Self::Monday,
            Platform::Notion => Self::Notion,
            Platform::Gmail => Self::Google,
            Platform::Loom => Self::Loom,
            Platform::Custom => Self::Custom,
            Platform::Fireflies
            | Platform::Otter
            | Platform::Granola
            | Platform::Zerodb
            | Platform::Zerovoice => {
                return None;
            }
        })
    }

    pub fn platform(self) -> Platform {
        match self {
            Self::Zoom => Platform::Zoom,
            Self::Slack => Platform::Slack,
            Self::Discord => Platform::Discord,
            Self::Microsoft => Platform::Outlook,
            Self::Monday => Platform::Monday,
            Self::Notion => Platform::Notion,
            Self::Google => Platform::Gmail,
            Self::Loom => Platform::Loom,
            Self::Custom => Platform::Custom,
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_oauth_platform_maps_to_a_provider_and_back() {
        for id in ProviderId::ALL {
            assert_eq!(ProviderId::for_platform(id.platform()), Some(id));
        }
        assert_eq!(
            ProviderId::for_platform(Platform::Outlook),
            Some(ProviderId::Microsoft)
        );
        assert_eq!(
            ProviderId::for_platform(Platform::Gmail),
            Some(ProviderId::Google)
        );
        assert_eq!(ProviderId::for_platform(Platform::Fireflies), None);
    }
}
