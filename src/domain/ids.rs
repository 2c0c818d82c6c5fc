//! Typed identifiers and resource names (`workspaces/{w}/integrations/{i}`).

use std::fmt;

use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A tenant. Every resource belongs to exactly one.
    WorkspaceId
);
uuid_id!(
    /// A connection of a workspace to a platform.
    IntegrationId
);
uuid_id!(
    /// The `sub` of a caller's token.
    UserId
);

impl IntegrationId {
    /// Time-ordered ids, so keyset paging by id is paging by creation.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for IntegrationId {
    fn default() -> Self {
        Self::new()
    }
}

/// Accepts `workspaces/{w}/integrations/{id}` or a bare `{id}` from `field`.
///
/// The workspace segment, when given, must be the caller's; a name that points into another
/// workspace is reported as not found, so callers cannot probe for other tenants' resources.
pub fn parse_integration_name(
    field: &str,
    value: &str,
    caller_workspace: WorkspaceId,
) -> Result<IntegrationId, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid_field(field, "is required"));
    }
    if value.len() > 200 {
        return Err(Error::invalid_field(field, "is too long"));
    }
    let id_part = match value.strip_prefix("workspaces/") {
        Some(rest) => {
            let (ws, id) = rest.split_once("/integrations/").ok_or_else(|| {
                Error::invalid_field(
                    field,
                    "must be workspaces/{workspace}/integrations/{id} or an integration id",
                )
            })?;
            let ws = Uuid::parse_str(ws)
                .map_err(|_| Error::invalid_field(field, "has an invalid workspace id"))?;
            if ws != caller_workspace.0 {
                return Err(Error::integration_not_found());
            }
            id
        }
        None => value,
    };
    Uuid::parse_str(id_part)
        .map(IntegrationId)
        .map_err(|_| Error::invalid_field(field, "is not a valid integration id"))
}

/// Correlates a request's log lines with the error a caller saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn new() -> Self {
        Self(Uuid::now_v7().simple().to_string())
    }

    /// Accepts a caller-supplied id only when it is short and plain, so it is safe to log.
    pub fn from_header(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(value.to_owned()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    #[test]
    fn names_in_another_workspace_are_not_found() {
        let mine = WorkspaceId(Uuid::new_v4());
        let other = Uuid::new_v4();
        let id = Uuid::new_v4();
        let err = parse_integration_name(
            "name",
            &format!("workspaces/{other}/integrations/{id}"),
            mine,
        )
        .unwrap_err();
        assert_eq!(err.reason(), Reason::IntegrationNotFound);
        let ok = parse_integration_name(
            "name",
            &format!("workspaces/{}/integrations/{id}", mine.0),
            mine,
        );
        assert_eq!(ok.unwrap().0, id);
        assert_eq!(
            parse_integration_name("name", &id.to_string(), mine)
                .unwrap()
                .0,
            id
        );
    }

    #[test]
    fn garbage_names_are_invalid_arguments_naming_the_field() {
        let ws = WorkspaceId(Uuid::new_v4());
        for bad in [
            "",
            "   ",
            "nope",
            "workspaces/x",
            "workspaces/x/integrations/y",
        ] {
            let err = parse_integration_name("name", bad, ws).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{bad}"
            );
            assert_eq!(err.violations()[0].field, "name");
        }
    }
}
