//! Opaque AIP-158 page tokens: keyset cursors bound to the filters they were issued for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Cursor {
    /// Last id of the previous page.
    a: Uuid,
    /// Fingerprint of the filters; a token used with other filters is rejected.
    f: String,
}

/// 0 means the default; negative or above the maximum is an error, not silently clamped.
pub fn page_size(field: &str, requested: i64) -> Result<i64, Error> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=MAX_PAGE_SIZE => Ok(requested),
        _ => Err(Error::invalid_field(
            field,
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        )),
    }
}

pub fn encode(after: Uuid, filters: &str) -> String {
    let json = serde_json::to_vec(&Cursor {
        a: after,
        f: filters.to_owned(),
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The id to continue after, or None for the first page.
pub fn decode(field: &str, token: &str, filters: &str) -> Result<Option<Uuid>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid_field(field, "is not a page token issued for this request");
    if token.len() > 512 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.f != filters {
        return Err(invalid());
    }
    Ok(Some(cursor.a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_bound_to_its_filters() {
        let id = Uuid::now_v7();
        let t = encode(id, "platform=zoom");
        assert_eq!(decode("page_token", &t, "platform=zoom").unwrap(), Some(id));
        assert!(decode("page_token", &t, "platform=slack").is_err());
        assert!(decode("page_token", "garbage!", "").is_err());
        assert_eq!(decode("page_token", "", "").unwrap(), None);
    }
}
