//! gRPC adapters: thin translations between proto messages and the use cases.

pub mod connectors;
pub mod convert;
pub mod health;
pub mod integrations;
pub mod oauth;

use tonic::{Request, Status};

use crate::domain::{Caller, IntegrationId, RequestId, parse_integration_name};
use crate::error::Error;

/// Who is calling and the request id, as the layers left them in the request's extensions.
pub struct Ctx {
    pub caller: Caller,
    pub rid: RequestId,
}

impl Ctx {
    pub fn of<T>(req: &Request<T>) -> Result<Self, Status> {
        let rid = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default();
        // The auth layer rejects unauthenticated calls before they get here; a missing caller
        // means the layer is not installed, so fail closed.
        let caller = req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            super::error::to_status(&Error::unauthenticated("missing bearer token"), &rid)
        })?;
        Ok(Self { caller, rid })
    }

    pub fn status(&self, err: Error) -> Status {
        super::error::to_status(&err, &self.rid)
    }

    /// The integration a request's `name` field names, in the caller's workspace.
    pub fn integration(&self, name: &str) -> Result<IntegrationId, Status> {
        parse_integration_name("name", name, self.caller.workspace_id).map_err(|e| self.status(e))
    }
}

/// The time the caller gave this call (`grpc-timeout`, gRPC over HTTP/2 spec); None when it set
/// none or sent a value that does not parse.
pub fn requested_timeout<T>(req: &Request<T>) -> Option<std::time::Duration> {
    use std::time::Duration;
    let value = req.metadata().get("grpc-timeout")?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    // The spec allows at most 8 digits, which also keeps the arithmetic below from overflowing.
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}
