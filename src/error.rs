//! The domain error. Transports map its kind through the one table in `api::error`.

use std::fmt;
use std::time::Duration;

/// What went wrong, independent of transport. Each maps to one gRPC code and one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    /// A concurrent change won; retrying may succeed.
    Aborted,
    /// Ours or a provider's rate limit.
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    /// A position (a stream's resume point) outside what exists.
    OutOfRange,
    Unimplemented,
    Cancelled,
    Internal,
}

/// Why a request failed, as clients switch on it: `google.rpc.ErrorInfo.reason`, the REST
/// error's `reason`, a revocation's or a connection test's `reason`. A public contract: add
/// variants freely, never rename one. The README's list is checked against `Reason::ALL`.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)+
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The UPPER_SNAKE name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)+
                }
            }

            pub fn parse(s: &str) -> Option<Reason> {
                match s {
                    $($text => Some(Reason::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    /// bad input; the field violations name the fields
    InvalidArgument => "INVALID_ARGUMENT",
    /// no, or an unusable, bearer token
    Unauthenticated => "UNAUTHENTICATED",
    /// the caller's role may not do this
    PermissionDenied => "PERMISSION_DENIED",
    /// no such integration in the caller's workspace
    IntegrationNotFound => "INTEGRATION_NOT_FOUND",
    /// the workspace already has a live connection of that account
    IntegrationAlreadyExists => "INTEGRATION_ALREADY_EXISTS",
    /// the integration was disconnected
    IntegrationRevoked => "INTEGRATION_REVOKED",
    /// no operation of that name
    OperationNotFound => "OPERATION_NOT_FOUND",
    /// no REST endpoint at that path
    RouteNotFound => "ROUTE_NOT_FOUND",
    /// a capability this version does not have
    NotImplemented => "NOT_IMPLEMENTED",
    /// the database cannot be reached; retry later
    DatabaseUnavailable => "DATABASE_UNAVAILABLE",
    /// the identity provider's keys cannot be fetched
    JwksUnavailable => "JWKS_UNAVAILABLE",
    /// a bug or a broken invariant; the cause is logged, never shown
    Internal => "INTERNAL",
    /// the operator has not configured this provider (client credentials, base URL)
    ProviderNotConfigured => "PROVIDER_NOT_CONFIGURED",
    /// the provider rejected the credentials, or they are unusable; reconnect
    NeedsReauth => "NEEDS_REAUTH",
    /// the grant lacks a scope (or a refresh token) the call needs
    ScopeMissing => "SCOPE_MISSING",
    /// the provider revoked the grant (`invalid_grant`); reconnect
    RefreshTokenRevoked => "REFRESH_TOKEN_REVOKED",
    /// these credentials do not refresh
    RefreshNotSupported => "REFRESH_NOT_SUPPORTED",
    /// another replica holds the refresh too long; retry
    RefreshInProgress => "REFRESH_IN_PROGRESS",
    /// a credential's base URL, a redirect or another URL not configured by the operator is, or resolves only to, a non-public address
    BaseUrlNotAllowed => "BASE_URL_NOT_ALLOWED",
    /// the provider refused the request; `provider_code` says why
    ProviderRejected => "PROVIDER_REJECTED",
    /// the provider failed (5xx, network); retry later
    ProviderUnavailable => "PROVIDER_UNAVAILABLE",
    /// the provider did not answer within the deadline
    ProviderTimeout => "PROVIDER_TIMEOUT",
    /// the provider's rate limit; RetryInfo says when to retry
    ProviderRateLimited => "PROVIDER_RATE_LIMITED",
    /// this service's rate limit for the call (per workspace, or per client address for the OAuth callback); `retry-after` says when to retry
    RateLimited => "RATE_LIMITED",
    /// the provider failed repeatedly; calls pause for a cool-down
    CircuitOpen => "CIRCUIT_OPEN",
    /// the provider's answer is over the size limit
    ProviderResponseTooLarge => "PROVIDER_RESPONSE_TOO_LARGE",
    /// the provider's answer could not be understood
    ProviderBadResponse => "PROVIDER_BAD_RESPONSE",
    /// the meeting has no transcript
    TranscriptNotFound => "TRANSCRIPT_NOT_FOUND",
    /// the provider cannot revoke tokens; destroyed here only
    ProviderHasNoRevocation => "PROVIDER_HAS_NO_REVOCATION",
    /// the Slack bot token is still used by another connection of the team
    SharedBotToken => "SHARED_BOT_TOKEN",
    /// a stream's resume point is older than the retained events; start again with a snapshot
    EventsExpired => "EVENTS_EXPIRED",
    /// another user, or another workspace, started this authorization; only they can complete it
    AuthorizationStartedByAnotherUser => "AUTHORIZATION_STARTED_BY_ANOTHER_USER",
    /// no such authorization handle; start the connection again
    HandleNotFound => "HANDLE_NOT_FOUND",
    /// the authorization handle expired (5 minutes); start the connection again
    HandleExpired => "HANDLE_EXPIRED",
    /// the authorization handle was already redeemed
    HandleReused => "HANDLE_REUSED",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bad field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// A domain error: a kind, an UPPER_SNAKE reason, a message safe to show to the caller, and
/// (for internal errors only) a cause that is logged but never shown.
///
/// Messages must never contain secrets; constructors take static text or field names.
pub struct Error {
    kind: ErrorKind,
    reason: Reason,
    message: String,
    violations: Vec<FieldViolation>,
    retry_after: Option<Duration>,
    metadata: Vec<(&'static str, String)>,
    cause: Option<anyhow::Error>,
}

impl Error {
    pub fn new(kind: ErrorKind, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason,
            message: message.into(),
            violations: Vec::new(),
            retry_after: None,
            metadata: Vec::new(),
            cause: None,
        }
    }

    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldViolation::new(field, description)])
    }

    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [one] => format!("{} {}", one.field, one.description),
            many => format!(
                "invalid fields: {}",
                many.iter()
                    .map(|v| v.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Self {
            violations,
            ..Self::new(ErrorKind::InvalidArgument, Reason::InvalidArgument, message)
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, Reason::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            Reason::PermissionDenied,
            message,
        )
    }

    pub fn integration_not_found() -> Self {
        Self::new(
            ErrorKind::NotFound,
            Reason::IntegrationNotFound,
            "integration not found",
        )
    }

    pub fn unimplemented(capability: &str) -> Self {
        Self::new(
            ErrorKind::Unimplemented,
            Reason::NotImplemented,
            format!("{capability} is not available in this version"),
        )
    }

    pub fn database_unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Reason::DatabaseUnavailable,
            "database unavailable, retry later",
        )
    }

    /// An unexpected failure: the cause is logged once with the request id, the caller sees only
    /// "internal error".
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorKind::Internal, Reason::Internal, "internal error")
        }
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    /// Keeps a cause for the log on a non-internal error (for example why the database is down).
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn reason(&self) -> Reason {
        self.reason
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    pub fn metadata(&self) -> &[(&'static str, String)] {
        &self.metadata
    }
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("message", &self.message)
            .field("violations", &self.violations)
            .field("cause", &self.cause.as_ref().map(|c| format!("{c:#}")))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    /// Connection-level failures mean the database is unreachable (Unavailable, retryable);
    /// anything else is a bug or a broken invariant (Internal). Constraint violations that mean
    /// something to callers are mapped where the query is made, by constraint name.
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // Protocol errors come from connections cut mid-message (a server or proxy going
            // away); with a well-behaved server nothing else produces them.
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Error::database_unavailable().with_cause(e),
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    // 08xxx connection exceptions, 57P01..03 admin shutdown / cannot connect now.
                    c.starts_with("08") || c.starts_with("57P")
                }) =>
            {
                Error::database_unavailable().with_cause(e)
            }
            _ => Error::internal(e),
        }
    }
}
