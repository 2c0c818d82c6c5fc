//! Who is calling: user, workspace and role from the bearer token, and what each role may do.

use std::str::FromStr;

use super::{UserId, WorkspaceId};
use crate::error::Error;

/// What a caller may do within its workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
    /// Internal services acting for the workspace.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "viewer" => Role::Viewer,
            "service" => Role::Service,
            _ => return Err(()),
        })
    }
}

/// The authenticated caller, taken from its token; every use case receives one.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub role: Role,
}

impl Caller {
    /// Connect, update, test and run operations: members and above.
    pub fn require_member(&self) -> Result<(), Error> {
        match self.role {
            Role::Viewer => Err(Error::permission_denied("viewers can only read")),
            Role::Owner | Role::Admin | Role::Member | Role::Service => Ok(()),
        }
    }

    /// Disconnect, revoke and other destructive actions: admins, owners and services.
    pub fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Owner | Role::Admin | Role::Service => Ok(()),
            Role::Member | Role::Viewer => Err(Error::permission_denied(
                "only admins, owners and services may do this",
            )),
        }
    }
}
