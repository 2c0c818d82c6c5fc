//! Every platform with a connector, and every operation by its name `platform.operation`.
//! Platforms without one yet are simply absent: their operations are not listed and naming them
//! is OPERATION_NOT_FOUND.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use reqwest::Url;
use tokio::time::Instant;

use super::config::{BaseUrls, parse_base};
use super::session::{NoRenewal, SessionParts};
use super::transport::SendOptions;
use super::{
    HttpCore, Identity, Operation, PlatformDef, Renewal, Session, discord, fireflies, gmail,
    granola, loom, monday, notion, otter, outlook, slack, zerodb, zerovoice, zoom,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::{Error, ErrorKind, Reason};

pub struct Registry {
    platforms: BTreeMap<Platform, PlatformDef>,
    /// Operation name -> (platform, index in its operations).
    by_name: HashMap<String, (Platform, usize)>,
    base_urls: BaseUrls,
}

impl Registry {
    pub fn new(base_urls: BaseUrls) -> Self {
        let mut registry = Self {
            platforms: BTreeMap::new(),
            by_name: HashMap::new(),
            base_urls,
        };
        for def in [
            fireflies::platform(),
            zerodb::platform(),
            zerovoice::platform(),
            granola::platform(),
            otter::platform(),
            zoom::platform(),
            slack::platform(),
            discord::platform(),
            loom::platform(),
            monday::platform(),
            gmail::platform(),
            outlook::platform(),
            notion::platform(),
        ] {
            registry.add(def);
        }
        registry
    }

    fn add(&mut self, def: PlatformDef) {
        for (i, op) in def.operations.iter().enumerate() {
            self.by_name.insert(op.name.clone(), (def.platform, i));
        }
        self.platforms.insert(def.platform, def);
    }

    /// Every operation, or those of one platform, ordered by platform then declaration.
    pub fn operations(&self, platform: Option<Platform>) -> impl Iterator<Item = &Operation> {
        self.platforms
            .values()
            .filter(move |d| platform.is_none_or(|p| d.platform == p))
            .flat_map(|d| d.operations.iter())
    }

    /// The operation named `name`; NotFound `OPERATION_NOT_FOUND` otherwise.
    pub fn operation(&self, name: &str) -> Result<&Operation, Error> {
        self.by_name
            .get(name)
            .and_then(|(p, i)| self.platforms.get(p)?.operations.get(*i))
            .ok_or_else(|| {
                let shown: String = name.chars().take(80).collect();
                Error::new(
                    ErrorKind::NotFound,
                    Reason::OperationNotFound,
                    format!("no operation named {shown:?}; ListOperations names them all"),
                )
                .with_metadata("operation", shown)
            })
    }

    /// The platform's connector; Unimplemented for platforms whose connector is not built yet.
    pub fn platform(&self, platform: Platform) -> Result<&PlatformDef, Error> {
        self.platforms
            .get(&platform)
            .ok_or_else(|| Error::unimplemented(&format!("the {platform} connector")))
    }

    /// A session for one call against the integration `creds` opens: its platform's auth,
    /// headers, body encoding and base URL. Fails before any request when the platform has no
    /// connector, no usable base URL, or the credentials lack what its auth needs.
    pub fn session(
        &self,
        core: Arc<HttpCore>,
        creds: Credentials,
        renewal: Arc<dyn Renewal>,
        deadline: Instant,
        opts: SendOptions,
    ) -> Result<Session, Error> {
        let def = self.platform(creds.integration.platform)?;
        let base = self.base_url(def, &creds, &core)?;
        Session::new(SessionParts {
            core,
            renewal,
            creds,
            auth_of: def.auth,
            headers: def.headers.clone(),
            base,
            body_encoding: def.body_encoding,
            deadline,
            opts,
        })
    }

    /// Who `creds` act as, by running the platform's connection test with them once (no
    /// retries, nothing renews them): for credentials not stored yet, a new OAuth grant or a
    /// pasted token.
    pub async fn identify(
        &self,
        core: Arc<HttpCore>,
        creds: Credentials,
        deadline: Instant,
    ) -> Result<Identity, Error> {
        let def = self.platform(creds.integration.platform)?;
        let session = self.session(
            core,
            creds,
            Arc::new(NoRenewal),
            deadline,
            SendOptions { retries: false },
        )?;
        def.test(session).await
    }

    /// Where this integration's requests go: the credential's base URL for platforms that keep
    /// it there (refused here when it names an internal host outright; names are the guarded
    /// resolver's), else the configured one.
    fn base_url(
        &self,
        def: &PlatformDef,
        creds: &Credentials,
        core: &HttpCore,
    ) -> Result<Url, Error> {
        if let Some(field) = def.base_url_field
            && let Some(raw) = creds.get(field)
        {
            let url = parse_base(def.platform, raw).map_err(|_| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    Reason::NeedsReauth,
                    format!("the integration's {field} is not a usable URL; reconnect it"),
                )
            })?;
            if core.check_destination(def.platform, &url).is_err() {
                return Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    Reason::BaseUrlNotAllowed,
                    format!(
                        "the integration's {field} points at a loopback, private or reserved \
                         address; set FH_CONNECTOR_ALLOW_PRIVATE_HOSTS to allow it"
                    ),
                ));
            }
            return Ok(url);
        }
        self.base_urls.get(def.platform).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                Reason::ProviderNotConfigured,
                format!(
                    "no base URL for {}: set FH_{}_BASE_URL",
                    def.platform,
                    def.platform.as_str().to_uppercase()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Prepared;

    fn registry() -> Registry {
        Registry::new(BaseUrls::default())
    }

    #[test]
    fn every_operation_accepts_its_full_and_its_minimal_schema_sample() {
        let r = registry();
        let mut count = 0;
        for op in r.operations(None) {
            for only_required in [false, true] {
                let sample = op.schema.sample(only_required);
                match op.prepare(sample.clone()) {
                    Ok(_) => {}
                    // A rule across fields (`Params::check`) may refuse the bare minimum, or a
                    // sample setting fields that exclude each other (Discord's before/after);
                    // the struct disagreeing with its schema is reported on `params` itself.
                    Err(e) if e.violations().iter().all(|v| v.field != "params") => {}
                    Err(e) => panic!("{} refuses its own sample {sample:?}: {e:?}", op.name),
                }
            }
            count += 1;
        }
        // Per platform, so each connector's author keeps one line.
        let expected = [
            (Platform::Fireflies, 5),
            (Platform::Granola, 9),
            (Platform::Otter, 7),
            (Platform::Zerodb, 7),
            (Platform::Zerovoice, 9),
            (Platform::Zoom, 7),
            (Platform::Slack, 7),
            (Platform::Discord, 7),
            (Platform::Loom, 7),
            (Platform::Gmail, 8),
            (Platform::Monday, 8),
            (Platform::Notion, 9),
            (Platform::Outlook, 6),
        ];
        for (platform, n) in expected {
            assert_eq!(r.operations(Some(platform)).count(), n, "{platform}");
        }
        let listed: usize = expected.iter().map(|(_, n)| n).sum();
        assert_eq!(
            count, listed,
            "every platform's operations are counted above"
        );
    }

    #[test]
    fn every_schema_is_a_closed_object_with_described_properties() {
        for op in registry().operations(None) {
            let s = op.schema.to_json();
            assert_eq!(s["type"], "object", "{}", op.name);
            assert_eq!(s["additionalProperties"], false, "{}", op.name);
            for (name, prop) in s["properties"].as_object().into_iter().flatten() {
                assert!(
                    prop["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{}.{name} has no description",
                    op.name
                );
            }
            assert!(!op.description.is_empty(), "{}", op.name);
        }
    }

    #[test]
    fn names_are_platform_dot_operation_and_unique() {
        let r = registry();
        let names: Vec<&str> = r.operations(None).map(|o| o.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for op in r.operations(None) {
            assert_eq!(
                op.name.split_once('.').map(|(p, _)| p),
                Some(op.platform.as_str())
            );
        }
    }

    #[test]
    fn only_download_operations_prepare_downloads() {
        for op in registry().operations(None) {
            let prepared = op.prepare(op.schema.sample(false)).ok();
            let is_download = matches!(prepared, Some((Prepared::Download(_), _)));
            assert_eq!(
                is_download,
                op.kind == super::super::Kind::Download,
                "{}",
                op.name
            );
        }
    }

    #[test]
    fn a_platform_without_a_connector_has_no_operations_and_naming_one_is_not_found() {
        let r = registry();
        assert_eq!(r.operations(Some(Platform::Custom)).count(), 0);
        let err = r.operation("custom.send_message").err().map(|e| e.reason());
        assert_eq!(err, Some(Reason::OperationNotFound));
        let unbuilt = r.platform(Platform::Custom).err().map(|e| e.kind());
        assert_eq!(unbuilt, Some(ErrorKind::Unimplemented));
    }
}
