//! gRPC adapters: thin translations between proto messages and the use cases.

pub mod connectors;
pub mod convert;
pub mod health;
pub mod integrations;
pub mod oauth;

use tonic::{Request, Status};

use crate::domain::{Caller, RequestId};
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
}

/// An RPC that a later release implements: UNIMPLEMENTED naming what is missing, after the same
/// authentication every RPC gets.
pub fn not_yet<T>(req: &Request<T>, capability: &str) -> Status {
    match Ctx::of(req) {
        Ok(ctx) => ctx.status(Error::unimplemented(capability)),
        Err(status) => status,
    }
}
