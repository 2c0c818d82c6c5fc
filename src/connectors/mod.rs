//! Connectors: every operation of every platform, sent through one HTTP core.
//!
//! This layer depends only on `domain`, `error` and `body`: never on `service` or `api`. What it
//! needs from above (renewing rejected credentials) it asks through the `Renewal` trait, which
//! the service implements.
//!
//! - `transport`: the shared HTTP core (deadlines, bounded bodies, retries, waits, circuit
//!   breakers, the provider-error table, scrubbing). Nothing else talks to a provider.
//! - `egress`: where requests may go: the table of internal address ranges, and the guarded
//!   client (its resolver refuses them) for every URL the operator did not configure.
//! - `session`: one call against one integration: its credentials, base URL and deadline, the
//!   401 path (`Renewal::renew` once, then one retry), scrubbing of secrets.
//! - `registry`: every platform and operation by name; builds each call's `Session` from the
//!   platform's definition (auth, headers, body encoding, base URL).
//! - `proxy`: the guards of the authenticated proxy (path, query, headers, body) and its send.
//! - `schema`: parameter declarations that render as JSON Schema and check params.
//! - `paging`: opaque page tokens around the provider's cursor or an offset.
//! - `graphql`: GraphQL over the core, and the shared raw-query operation.
//! - `common`, `mail`: pieces several platforms share.
//! - one file per platform (`fireflies.rs`, ...): its auth, connection test and operations.
//!
//! # How to add a platform
//!
//! 1. Create `src/connectors/<platform>.rs` with `pub fn platform() -> PlatformDef`:
//!    `PlatformDef::new(Platform::X, auth, test_connection)` where `auth` turns the
//!    integration's `Credentials` into an `Auth` header (`common::bearer_access_token` for
//!    OAuth bearer tokens) and `test_connection` is an `async fn(Session) -> Result<Identity,
//!    Error>` that makes one cheap authenticated identity call, never a constant
//!    (`common::get_users_me` where the API has `users/me`), and names the account it saw
//!    (`Identity::of_account`) when the answer does: OAuth grants whose token response names
//!    none are told apart by it. Add `.header(..)` for headers every
//!    request needs (Notion-Version), `.form_bodies()` if the API takes form posts,
//!    `.base_url_from("field")` if the host is a credential field.
//! 2. Each operation is a params struct (`#[derive(Deserialize)] #[serde(deny_unknown_fields)]`)
//!    implementing `Params` (`schema()` with `Field::...` declarations, defaults there; `check()`
//!    for rules across fields), and an `async fn(Session, P) -> Result<Page, Error>` (or
//!    `(Session, P, Option<Cursor>)` for lists). Register it with `.read(..)`, `.list(..)`,
//!    `.write(..)` or `.download(..)`: `write` is what viewers may not run. Build URLs with
//!    `session.url(&[segments])` (segments are percent-encoded), send with `session.json(..)`;
//!    provider errors come from `transport` (`bad_answer`, `rejection`, `not_found` for a lookup
//!    that answered nothing), a delete without a body answers `deleted(..)`. GraphQL goes
//!    through `graphql::query` with values only in `variables`; a raw-query operation is
//!    `.write("graphql_query", .., graphql::raw_query)`.
//! 3. Lists read the page to fetch with `Cursor::token(page)?` (the provider's own cursor) or
//!    `Cursor::offset(page)?` (when it has none), and answer `Page::list(items, next)` with
//!    `Cursor::Token(..)` or `next_offset(..)`; the framework makes it an opaque page token, and
//!    a token of the wrong kind is `paging::bad_token()`.
//! 4. Add `<platform>::platform()` to `Registry::new`, and its default base URL to
//!    `config::DEFAULT_BASE_URLS` (overridable as `FH_<PLATFORM>_BASE_URL`).
//! 5. Tests: a fake in `tests/api/connectors/fakes/<platform>.rs` (an axum router that answers
//!    like the provider's docs: success shapes, error shapes, pagination), and
//!    `tests/api/connectors/<platform>.rs` invoking every operation once against it over gRPC
//!    (request shape, auth header, parsing), plus its paging and error cases. The generic tests
//!    in `registry.rs` check every operation's schema against its params struct for free.

mod common;
pub mod config;
pub mod egress;
pub mod graphql;
pub mod paging;
pub mod proxy;
pub mod registry;
pub mod schema;
pub mod session;
pub mod transport;

mod discord;
mod fireflies;
mod gmail;
mod granola;
mod loom;
mod mail;
mod monday;
mod notion;
mod otter;
mod outlook;
mod slack;
mod zerodb;
mod zerovoice;
mod zoom;

use std::future::Future;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use common::{deleted, items_of, next_offset};
pub use config::{BaseUrls, ConnectorConfig, ConnectorSettings};
pub use egress::Egress;
pub use paging::Cursor;
pub use registry::Registry;
pub use schema::{Field, Schema};
pub use session::{NoRenewal, Renewal, Session};
pub use transport::{Auth, HttpCore, HttpPolicy};

use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

/// Typed parameters of one operation.
pub trait Params: DeserializeOwned + Send + 'static {
    /// The declaration the params are checked against and published as.
    fn schema() -> Schema;

    /// Rules across fields that the schema cannot state; InvalidArgument naming the field.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// The parameters of an operation that takes none.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Params for NoParams {
    fn schema() -> Schema {
        Schema::empty()
    }
}

/// What an operation answers: its data and, for lists, where the next page starts.
#[derive(Debug)]
pub struct Page {
    pub data: Value,
    pub next: Option<Cursor>,
}

impl Page {
    pub fn one(data: Value) -> Self {
        Self { data, next: None }
    }

    /// A list; gRPC wraps it as `{"items": [...]}`.
    pub fn list(items: Vec<Value>, next: Option<Cursor>) -> Self {
        Self {
            data: Value::Array(items),
            next,
        }
    }
}

/// A streamed file.
pub struct Download {
    pub content_type: String,
    pub total_bytes: Option<u64>,
    pub chunks: BoxStream<'static, Result<Bytes, Error>>,
}

/// Runs a JSON operation whose params are already typed.
pub type JsonRun =
    Box<dyn FnOnce(Session, Option<Cursor>) -> BoxFuture<'static, Result<Page, Error>> + Send>;
/// Runs a download whose params are already typed.
pub type DownloadRun =
    Box<dyn FnOnce(Session) -> BoxFuture<'static, Result<Download, Error>> + Send>;

/// An operation with its params checked and typed, ready to run.
pub enum Prepared {
    Json(JsonRun),
    Download(DownloadRun),
}

/// Types checked params (the schema already passed them).
type Prepare = Box<dyn Fn(Map<String, Value>) -> Result<Prepared, Error> + Send + Sync>;
type TestRun = Box<dyn Fn(Session) -> BoxFuture<'static, Result<Identity, Error>> + Send + Sync>;

/// Who the credentials act as, as the connection test's answer names it. The test doubles as
/// the identity call, so knowing who connected costs no extra request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The account at the provider (a user id, Slack's team); None when the answer names none.
    pub account: Option<String>,
    /// Slack's bot user when the token is a bot token: the key of a bot token shared by the
    /// connections of one app installation.
    pub bot_user: Option<String>,
}

impl Identity {
    /// An identity naming `account`, when the answer's value is a usable id (a non-empty
    /// string or a number of at most 200 characters).
    pub fn of_account(value: Option<&Value>) -> Self {
        Self {
            account: id_string(value),
            bot_user: None,
        }
    }
}

/// A provider id as text: strings and numbers both occur (Monday's ids are numbers in some
/// API versions); anything else, empty or longer than 200 characters is no id.
pub fn id_string(value: Option<&Value>) -> Option<String> {
    let s = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control)).then_some(s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Answers JSON data.
    Json,
    /// Answers JSON pages: takes and returns page tokens.
    List,
    /// Streams bytes: only through `Download`.
    Download,
}

/// One operation of one platform.
pub struct Operation {
    /// `platform.operation`, e.g. `fireflies.list_transcripts`.
    pub name: String,
    pub platform: Platform,
    pub description: &'static str,
    /// Changes something at the provider: viewers may not run it.
    pub writes: bool,
    pub kind: Kind,
    pub schema: Schema,
    prepare: Prepare,
}

impl Operation {
    /// Checks `params` (InvalidArgument naming each bad field), fills in defaults and types
    /// them. No I/O. Also returns the checked params, which page tokens are bound to.
    pub fn prepare(
        &self,
        params: Map<String, Value>,
    ) -> Result<(Prepared, Map<String, Value>), Error> {
        let checked = self.schema.check(params)?;
        let prepared = (self.prepare)(checked.clone())?;
        Ok((prepared, checked))
    }
}

/// How the proxy sends a JSON object body to a platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Json,
    /// `application/x-www-form-urlencoded` from a flat object (Twilio).
    Form,
}

/// An operation's handler: an `async fn(Session, P) -> Result<T, Error>`.
pub trait Handler<P, T>: Copy + Send + Sync + 'static {
    fn call(self, session: Session, params: P) -> BoxFuture<'static, Result<T, Error>>;
}

impl<P, T, F, Fut> Handler<P, T> for F
where
    F: Fn(Session, P) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
{
    fn call(self, session: Session, params: P) -> BoxFuture<'static, Result<T, Error>> {
        Box::pin(self(session, params))
    }
}

/// A list operation's handler: an `async fn(Session, P, Option<Cursor>) -> Result<Page, Error>`.
pub trait ListHandler<P>: Copy + Send + Sync + 'static {
    fn call(
        self,
        session: Session,
        params: P,
        page: Option<Cursor>,
    ) -> BoxFuture<'static, Result<Page, Error>>;
}

impl<P, F, Fut> ListHandler<P> for F
where
    F: Fn(Session, P, Option<Cursor>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Page, Error>> + Send + 'static,
{
    fn call(
        self,
        session: Session,
        params: P,
        page: Option<Cursor>,
    ) -> BoxFuture<'static, Result<Page, Error>> {
        Box::pin(self(session, params, page))
    }
}

/// A platform: how it authenticates, where it lives, its connection test and its operations.
pub struct PlatformDef {
    pub platform: Platform,
    auth: fn(&Credentials) -> Result<Auth, Error>,
    /// The credential field holding the base URL, for platforms whose host is per account.
    base_url_field: Option<&'static str>,
    headers: HeaderMap,
    body_encoding: BodyEncoding,
    test: TestRun,
    operations: Vec<Operation>,
}

/// Types params that passed their schema.
fn parse<P: Params>(checked: Map<String, Value>) -> Result<P, Error> {
    let typed: P = serde_json::from_value(Value::Object(checked)).map_err(|e| {
        // The schema passed, so the struct disagrees with its own schema: a bug, but the
        // caller can still be told which params failed in general terms.
        tracing::error!(error = %e, "params passed their schema but not their struct");
        Error::invalid_field("params", "do not match the operation's schema")
    })?;
    typed.check()?;
    Ok(typed)
}

impl PlatformDef {
    pub fn new<F, Fut>(
        platform: Platform,
        auth: fn(&Credentials) -> Result<Auth, Error>,
        test: F,
    ) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Identity, Error>> + Send + 'static,
    {
        Self {
            platform,
            auth,
            base_url_field: None,
            headers: HeaderMap::new(),
            body_encoding: BodyEncoding::Json,
            test: Box::new(move |s| Box::pin(test(s))),
            operations: Vec::new(),
        }
    }

    /// The base URL is this credential field (ZeroDB), falling back to the configured one.
    pub fn base_url_from(mut self, field: &'static str) -> Self {
        self.base_url_field = Some(field);
        self
    }

    /// A header every request carries.
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        self
    }

    /// The API takes form-encoded bodies.
    pub fn form_bodies(mut self) -> Self {
        self.body_encoding = BodyEncoding::Form;
        self
    }

    /// Runs the connection test; it names who the credentials act as where the answer says.
    pub fn test(&self, session: Session) -> BoxFuture<'static, Result<Identity, Error>> {
        (self.test)(session)
    }

    fn push(
        mut self,
        name: &str,
        description: &'static str,
        writes: bool,
        kind: Kind,
        schema: Schema,
        prepare: Prepare,
    ) -> Self {
        self.operations.push(Operation {
            name: format!("{}.{name}", self.platform.as_str()),
            platform: self.platform,
            description,
            writes,
            kind,
            schema,
            prepare,
        });
        self
    }

    /// Registers an operation whose checked params become a `P` that `wrap` binds to its
    /// handler.
    fn typed<P: Params>(
        self,
        name: &str,
        description: &'static str,
        writes: bool,
        kind: Kind,
        wrap: impl Fn(P) -> Prepared + Send + Sync + 'static,
    ) -> Self {
        let prepare: Prepare = Box::new(move |params| Ok(wrap(parse(params)?)));
        self.push(name, description, writes, kind, P::schema(), prepare)
    }

    fn single<P: Params>(
        self,
        name: &str,
        description: &'static str,
        writes: bool,
        handler: impl Handler<P, Page>,
    ) -> Self {
        self.typed(name, description, writes, Kind::Json, move |p: P| {
            Prepared::Json(Box::new(move |s, _| handler.call(s, p)))
        })
    }

    /// An operation that only reads.
    pub fn read<P: Params>(
        self,
        name: &str,
        description: &'static str,
        handler: impl Handler<P, Page>,
    ) -> Self {
        self.single(name, description, false, handler)
    }

    /// An operation that changes something at the provider.
    pub fn write<P: Params>(
        self,
        name: &str,
        description: &'static str,
        handler: impl Handler<P, Page>,
    ) -> Self {
        self.single(name, description, true, handler)
    }

    /// A paged read: the handler gets the cursor of the page to fetch.
    pub fn list<P: Params>(
        self,
        name: &str,
        description: &'static str,
        handler: impl ListHandler<P>,
    ) -> Self {
        self.typed(name, description, false, Kind::List, move |p: P| {
            Prepared::Json(Box::new(move |s, c| handler.call(s, p, c)))
        })
    }

    /// A streamed read, served by `Download`.
    pub fn download<P: Params>(
        self,
        name: &str,
        description: &'static str,
        handler: impl Handler<P, Download>,
    ) -> Self {
        self.typed(name, description, false, Kind::Download, move |p: P| {
            Prepared::Download(Box::new(move |s| handler.call(s, p)))
        })
    }
}
