//! Keeping secrets out of what we return: the scrubber of an integration's credential values,
//! and the sanitizing of provider messages.

use crate::domain::Secret;

/// Provider error messages shown to callers are cut to this many characters.
const MESSAGE_CHARS: usize = 200;

/// Values that must never appear in anything we return: the integration's secret credential
/// values. Provider messages and bodies are scrubbed with it.
#[derive(Default)]
pub struct Scrubber(Vec<Secret<String>>);

impl Scrubber {
    pub fn new(values: Vec<Secret<String>>) -> Self {
        // Very short values would redact ordinary words; credentials are never that short.
        Self(
            values
                .into_iter()
                .filter(|v| v.expose().len() >= 6)
                .collect(),
        )
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0 {
            if out.contains(secret.expose().as_str()) {
                out = out.replace(secret.expose().as_str(), "[redacted]");
            }
        }
        out
    }

    /// Scrubs raw bytes (a body) when they hold a secret; borrowed otherwise.
    pub fn bytes<'a>(&self, body: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let hit = self.0.iter().any(|s| contains(body, s.expose().as_bytes()));
        if !hit {
            return std::borrow::Cow::Borrowed(body);
        }
        let text = String::from_utf8_lossy(body);
        std::borrow::Cow::Owned(self.text(&text).into_bytes())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short, printable, scrubbed provider message.
pub fn sanitize(message: &str, scrub: &Scrubber) -> String {
    let scrubbed = scrub.text(message);
    let mut out: String = scrubbed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_CHARS)
        .collect();
    if scrubbed.chars().count() > MESSAGE_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}
