//! Normalised page tokens for connector lists: the provider's own cursor (or an offset where it
//! has none), wrapped in an opaque token bound to the operation and its params, so a token is
//! never used with another list.
//!
//! Tokens are not signed: everything in them is checked again when used (offsets are numbers;
//! provider cursors are handed back only to the provider they came from, and platforms that
//! turn a cursor into a URL check it stays on the same host and account).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Longest page token accepted.
const MAX_TOKEN_LEN: usize = 4096;

/// Where the next page starts, in the provider's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    /// Items to skip, for providers that page by offset.
    Offset(u64),
    /// The provider's cursor (Granola `cursor`, Twilio `next_page_uri`).
    Token(String),
}

impl Cursor {
    /// The offset of the page to fetch: 0 for the first page. For lists that page by offset,
    /// so a provider cursor in the token was not issued for this operation.
    pub fn offset(page: Option<Cursor>) -> Result<u64, Error> {
        match page {
            None => Ok(0),
            Some(Cursor::Offset(n)) => Ok(n),
            Some(Cursor::Token(_)) => Err(bad_token()),
        }
    }

    /// The provider's cursor of the page to fetch; none for the first page. For lists that page
    /// by the provider's cursor, so an offset in the token was not issued for this operation.
    pub fn token(page: Option<Cursor>) -> Result<Option<String>, Error> {
        match page {
            None => Ok(None),
            Some(Cursor::Token(t)) => Ok(Some(t)),
            Some(Cursor::Offset(_)) => Err(bad_token()),
        }
    }
}

/// The answer to a page token that does not fit the operation it came with.
pub fn bad_token() -> Error {
    not_issued("page_token")
}

fn not_issued(field: &str) -> Error {
    Error::invalid_field(
        field,
        "is not a page token issued for this operation and params",
    )
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// Operation name.
    o: String,
    /// Fingerprint of the params.
    f: String,
    c: Cursor,
}

fn fingerprint(params: &Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(params).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn encode(operation: &str, params: &Map<String, Value>, cursor: &Cursor) -> String {
    let envelope = Envelope {
        o: operation.to_owned(),
        f: fingerprint(params),
        c: cursor.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// The cursor in `token`, which must have been issued for this operation and these params.
pub fn decode(
    field: &str,
    token: &str,
    operation: &str,
    params: &Map<String, Value>,
) -> Result<Option<Cursor>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || not_issued(field);
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if envelope.o != operation || envelope.f != fingerprint(params) {
        return Err(invalid());
    }
    Ok(Some(envelope.c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_token_round_trips_for_its_operation_and_params() {
        let p = params(json!({"limit": 10}));
        let t = encode("granola.list_notes", &p, &Cursor::Token("abc".into()));
        assert_eq!(
            decode("page_token", &t, "granola.list_notes", &p).unwrap(),
            Some(Cursor::Token("abc".into()))
        );
        assert_eq!(decode("page_token", "", "x", &p).unwrap(), None);
    }

    #[test]
    fn a_token_is_refused_for_another_operation_other_params_or_garbage() {
        let p = params(json!({"limit": 10}));
        let t = encode("otter.list_speeches", &p, &Cursor::Offset(20));
        assert!(decode("page_token", &t, "otter.search_speeches", &p).is_err());
        assert!(
            decode(
                "page_token",
                &t,
                "otter.list_speeches",
                &params(json!({"limit": 11}))
            )
            .is_err()
        );
        let err = decode("page_token", "%%%", "otter.list_speeches", &p).unwrap_err();
        assert_eq!(err.violations()[0].field, "page_token");
    }
}
