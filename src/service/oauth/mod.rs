//! OAuth use cases, one room each: authorize (start and callback), complete (the starting
//! user redeems the callback's handle), refresh (single flight,
//! refresh ahead of expiry) and revoke (upstream revocation and its retry queue).

mod authorize;
mod complete;
mod refresh;
mod revoke;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use reqwest::Url;
use sqlx::PgPool;

use crate::domain::IntegrationId;
use crate::oauth::OAuthSettings;
use crate::oauth::catalogue::Catalogue;
use crate::secrets::KeyRing;
use crate::service::identity::Identifier;

pub use authorize::{CallbackError, CallbackParams, Started};
pub use complete::Completed;

/// How long a replica's background job holds a claimed row.
const CLAIM_LEASE: Duration = Duration::from_secs(120);

struct Inner {
    db: PgPool,
    keyring: Arc<KeyRing>,
    catalogue: Catalogue,
    http: reqwest::Client,
    settings: OAuthSettings,
    public_url: Url,
    frontend_url: Url,
    allowed_origins: Vec<String>,
    /// Asks the provider who a new grant acts as when its token response does not say.
    identifier: Identifier,
    /// Refreshes under way, by integration and the credential version their callers saw: a
    /// caller that saw newer tokens than a flight started from gets a flight of its own.
    inflight: Mutex<HashMap<(IntegrationId, Option<i64>), refresh::Flight>>,
    /// Bounds the refreshes of this replica that talk to providers at once.
    refresh_slots: tokio::sync::Semaphore,
}

/// The OAuth service: cheap to clone, one shared state.
#[derive(Clone)]
pub struct OAuth {
    inner: Arc<Inner>,
}

impl OAuth {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: PgPool,
        keyring: Arc<KeyRing>,
        catalogue: Catalogue,
        http: reqwest::Client,
        settings: OAuthSettings,
        public_url: Url,
        frontend_url: Url,
        allowed_origins: Vec<String>,
        identifier: Identifier,
    ) -> Self {
        let refresh_slots = refresh::slots(&db);
        Self {
            inner: Arc::new(Inner {
                db,
                keyring,
                catalogue,
                http,
                settings,
                public_url,
                frontend_url,
                allowed_origins,
                identifier,
                inflight: Mutex::new(HashMap::new()),
                refresh_slots,
            }),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }
}

/// When tokens that live `expires_in` seconds expire; absurd lifetimes are capped at ten years.
fn expiry(expires_in: Option<u64>) -> Option<chrono::DateTime<Utc>> {
    expires_in.map(|s| Utc::now() + chrono::Duration::seconds(s.min(10 * 365 * 24 * 3600) as i64))
}
