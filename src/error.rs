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
    Unimplemented,
    Cancelled,
    Internal,
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
    reason: &'static str,
    message: String,
    violations: Vec<FieldViolation>,
    retry_after: Option<Duration>,
    metadata: Vec<(&'static str, String)>,
    cause: Option<anyhow::Error>,
}

impl Error {
    pub fn new(kind: ErrorKind, reason: &'static str, message: impl Into<String>) -> Self {
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
            ..Self::new(ErrorKind::InvalidArgument, "INVALID_ARGUMENT", message)
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, "UNAUTHENTICATED", message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, "PERMISSION_DENIED", message)
    }

    pub fn integration_not_found() -> Self {
        Self::new(
            ErrorKind::NotFound,
            "INTEGRATION_NOT_FOUND",
            "integration not found",
        )
    }

    pub fn unimplemented(capability: &str) -> Self {
        Self::new(
            ErrorKind::Unimplemented,
            "NOT_IMPLEMENTED",
            format!("{capability} is not available in this version"),
        )
    }

    pub fn database_unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "DATABASE_UNAVAILABLE",
            "database unavailable, retry later",
        )
    }

    /// An unexpected failure: the cause is logged once with the request id, the caller sees only
    /// "internal error".
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorKind::Internal, "INTERNAL", "internal error")
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
    pub fn reason(&self) -> &'static str {
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
