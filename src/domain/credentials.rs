//! Credentials: which fields each platform takes on a direct (non-OAuth) connection and their
//! validation, and the opened credentials connectors act with. Values are `Secret` throughout.

use std::collections::{BTreeMap, HashMap};

use super::{Integration, Platform, Secret};
use crate::error::{Error, ErrorKind, FieldViolation, Reason};

const MAX_VALUE_LEN: usize = 4096;

/// One credential field a platform takes.
#[derive(Debug)]
pub struct CredentialField {
    pub name: &'static str,
    pub required: bool,
    /// Sensitive fields are sealed and never shown; others (a base URL) are sealed too but are
    /// not secret, so they may appear in messages.
    pub secret: bool,
    check: fn(&str) -> Result<(), &'static str>,
}

/// The fields a platform takes for a direct connection.
#[derive(Debug)]
pub struct CredentialSpec {
    pub platform: Platform,
    pub fields: &'static [CredentialField],
    /// The field that identifies the account at the provider, when one does.
    pub account_field: Option<&'static str>,
}

/// Credentials that passed their platform's checks; the values stay secret.
#[derive(Debug)]
pub struct ValidatedCredentials {
    pub fields: BTreeMap<&'static str, Secret<String>>,
    /// The provider account the credentials identify (Twilio account SID, ZeroDB base URL).
    pub provider_account_id: Option<String>,
}

fn any(_: &str) -> Result<(), &'static str> {
    Ok(())
}

fn twilio_sid(v: &str) -> Result<(), &'static str> {
    let ok =
        v.len() == 34 && v.starts_with("AC") && v[2..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be AC followed by 32 letters or digits")
    }
}

fn granola_key(v: &str) -> Result<(), &'static str> {
    if v.starts_with("grn_") {
        Ok(())
    } else {
        Err("must be a Granola API key (grn_...)")
    }
}

fn http_url(v: &str) -> Result<(), &'static str> {
    match reqwest::Url::parse(v) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none() =>
        {
            Ok(())
        }
        _ => Err("must be an http(s) URL without a query"),
    }
}

fn slack_token(v: &str) -> Result<(), &'static str> {
    if v.starts_with("xoxb-") || v.starts_with("xoxp-") {
        Ok(())
    } else {
        Err("must be a Slack bot (xoxb-) or user (xoxp-) token")
    }
}

const fn secret(name: &'static str) -> CredentialField {
    CredentialField {
        name,
        required: true,
        secret: true,
        check: any,
    }
}

static SPECS: &[CredentialSpec] = &[
    CredentialSpec {
        platform: Platform::Fireflies,
        fields: &[secret("api_key")],
        account_field: None,
    },
    CredentialSpec {
        platform: Platform::Otter,
        fields: &[secret("api_key")],
        account_field: None,
    },
    CredentialSpec {
        platform: Platform::Granola,
        fields: &[CredentialField {
            name: "api_key",
            required: true,
            secret: true,
            check: granola_key,
        }],
        account_field: None,
    },
    CredentialSpec {
        platform: Platform::Zerodb,
        fields: &[
            secret("api_key"),
            CredentialField {
                name: "base_url",
                required: true,
                secret: false,
                check: http_url,
            },
        ],
        account_field: Some("base_url"),
    },
    CredentialSpec {
        platform: Platform::Zerovoice,
        fields: &[
            CredentialField {
                name: "account_sid",
                required: true,
                secret: false,
                check: twilio_sid,
            },
            secret("auth_token"),
        ],
        account_field: Some("account_sid"),
    },
    // Token-based connections of OAuth platforms that the product spec allowed.
    CredentialSpec {
        platform: Platform::Slack,
        fields: &[
            CredentialField {
                name: "access_token",
                required: true,
                secret: true,
                check: slack_token,
            },
            CredentialField {
                name: "team_id",
                required: false,
                secret: false,
                check: any,
            },
        ],
        account_field: Some("team_id"),
    },
    CredentialSpec {
        platform: Platform::Discord,
        fields: &[secret("bot_token")],
        account_field: None,
    },
    CredentialSpec {
        platform: Platform::Monday,
        fields: &[secret("api_token")],
        account_field: None,
    },
    CredentialSpec {
        platform: Platform::Notion,
        fields: &[secret("access_token")],
        account_field: None,
    },
];

/// The direct-connection spec of a platform; `None` for platforms that connect only through OAuth.
pub fn credential_spec(platform: Platform) -> Option<&'static CredentialSpec> {
    SPECS.iter().find(|s| s.platform == platform)
}

impl CredentialSpec {
    /// Checks every field, collecting all violations so the caller can fix them in one go.
    /// Messages name fields, never values.
    pub fn validate(&self, input: HashMap<String, String>) -> Result<ValidatedCredentials, Error> {
        let mut violations = Vec::new();
        for name in input.keys() {
            if !self.fields.iter().any(|f| f.name == name) {
                let shown: String = name.chars().take(64).collect();
                violations.push(FieldViolation::new(
                    format!("credentials.{shown}"),
                    format!("is not a {} credential field", self.platform),
                ));
            }
        }
        let mut fields = BTreeMap::new();
        let mut account = None;
        let mut input = input;
        for f in self.fields {
            let field = format!("credentials.{}", f.name);
            let value = input
                .remove(f.name)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            if value.is_empty() {
                if f.required {
                    violations.push(FieldViolation::new(field, "is required"));
                }
                continue;
            }
            if value.len() > MAX_VALUE_LEN {
                violations.push(FieldViolation::new(
                    field,
                    format!("must be at most {MAX_VALUE_LEN} bytes"),
                ));
                continue;
            }
            if value.chars().any(char::is_control) {
                violations.push(FieldViolation::new(
                    field,
                    "must not contain control characters",
                ));
                continue;
            }
            if let Err(why) = (f.check)(&value) {
                violations.push(FieldViolation::new(field, why));
                continue;
            }
            if self.account_field == Some(f.name) {
                account = Some(value.trim_end_matches('/').to_owned());
            }
            fields.insert(f.name, Secret::new(value));
        }
        if !violations.is_empty() {
            return Err(Error::invalid_fields(violations));
        }
        Ok(ValidatedCredentials {
            fields,
            provider_account_id: account,
        })
    }
}

/// Opened credentials of one integration. They never leave the service: no response, log line
/// or error may contain a value.
pub struct Credentials {
    pub integration: Integration,
    fields: BTreeMap<String, Secret<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("integration", &self.integration.id)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    pub fn new(integration: Integration, fields: BTreeMap<String, Secret<String>>) -> Self {
        Self {
            integration,
            fields,
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(|s| s.expose().as_str())
    }

    /// A field the platform cannot work without; its absence means the integration must be
    /// reconnected.
    pub fn require(&self, field: &str) -> Result<&str, Error> {
        self.get(field).ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                Reason::NeedsReauth,
                format!("the integration has no {field}; reconnect it"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn zerovoice_needs_an_account_sid_of_the_twilio_form() {
        let spec = credential_spec(Platform::Zerovoice).unwrap();
        let err = spec
            .validate(creds(&[("account_sid", "AC123"), ("auth_token", "t")]))
            .unwrap_err();
        assert_eq!(err.violations()[0].field, "credentials.account_sid");
        let sid = format!("AC{}", "a1".repeat(16));
        let ok = spec
            .validate(creds(&[("account_sid", &sid), ("auth_token", "tok")]))
            .unwrap();
        assert_eq!(ok.provider_account_id.as_deref(), Some(sid.as_str()));
    }

    #[test]
    fn unknown_and_missing_fields_are_all_reported_without_values() {
        let spec = credential_spec(Platform::Zerodb).unwrap();
        let err = spec
            .validate(creds(&[("apikey", "sekret-value")]))
            .unwrap_err();
        let fields: Vec<_> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"credentials.apikey"));
        assert!(fields.contains(&"credentials.api_key"));
        assert!(fields.contains(&"credentials.base_url"));
        assert!(!format!("{err:?} {err}").contains("sekret-value"));
    }

    #[test]
    fn oauth_only_platforms_have_no_direct_spec() {
        for p in [
            Platform::Zoom,
            Platform::Gmail,
            Platform::Outlook,
            Platform::Loom,
            Platform::Custom,
        ] {
            assert!(credential_spec(p).is_none(), "{p}");
        }
    }
}
